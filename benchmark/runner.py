"""fit -> score in user batches -> validate each response -> metrics -> results store.

Every (task, submission, seed) is one run. A run that breaks the contract or raises
is recorded as FAILED with its reason, and the other runs go on.
"""
from __future__ import annotations

import functools
import hashlib
import json
import random
import subprocess
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

import benchmark
from benchmark.api import FitContext, ModelReport, Submission, TrainData, find_submission
from benchmark.data import PreparedData, prepare
from benchmark.data.views import TaskViews, build_views
from benchmark.environment import environment_tags
from benchmark.executors import build_model
from benchmark.families import TaskFamily, family
from benchmark.paths import REPO_ROOT
from benchmark.progress import RunMonitor, log, track
from benchmark.tasks import TaskSpec, load_task
from benchmark.tracking.store import ResultsStore


@dataclass
class RunResult:
    task: str
    submission: str
    version: str
    paradigm: str
    seed: int
    status: str  # FINISHED, FAILED or REUSED (a finished run with the same key)
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    reason: str | None = None
    per_user: pd.DataFrame | None = None

    def row(self) -> dict:
        return {"task": self.task, "submission": self.submission, "version": self.version,
                "paradigm": self.paradigm, "seed": self.seed, "status": self.status,
                "run_id": self.run_id, "reason": self.reason} | self.metrics


def evaluate(
    submissions: str | Path | Submission | Sequence[str | Path | Submission],
    tasks: str | TaskSpec | Sequence[str | TaskSpec],
    seeds: Sequence[int] | None = None,
    tracking_uri: str | None = None,
    store: ResultsStore | None | bool = True,
    limit_users: int | None = None,
) -> pd.DataFrame:
    """Evaluate submissions on tasks over seeds (default: each task's seeds); one row per
    run. Results go to the MLflow store at `tracking_uri` (see ResultsStore); pass
    store=False to keep them in memory only. `limit_users` evaluates only the first N
    test users, for quick looks: such runs are tagged partial and never ranked."""
    if store is True:
        store = ResultsStore(tracking_uri)
    rows = []
    for task in map(_as_task, _as_list(tasks)):
        prepared = prepare(task, log=log)
        log(f"{task.task}: {describe_summary(prepared.summary)}")
        views = build_views(task, prepared)
        for submission in map(_as_submission, _as_list(submissions)):
            for seed in seeds if seeds is not None else task.seeds:
                rows.append(run_one(submission, task, seed, prepared, views, store or None, limit_users).row())
    return pd.DataFrame(rows)


def describe_summary(summary: dict) -> str:
    text = (f"{summary['n_users']:,} users, {summary['n_items']:,} items, "
            f"{summary['n_interactions']:,} interactions; {summary['n_test_users']:,} users with test "
            f"interactions ({summary['n_test_users_without_history']:,} of them with no earlier one); "
            f"{summary['users_with_tied_last_two_timestamps']:,} users whose last two interactions "
            "share a timestamp (ties broken by row order)")
    if "test_from" in summary:
        text += f"; validation from t={summary['valid_from']:.0f}, test from t={summary['test_from']:.0f}"
    return text


def run_one(submission: Submission, task: TaskSpec, seed: int, prepared: PreparedData,
            views: TaskViews, store: ResultsStore | None, limit_users: int | None = None) -> RunResult:
    card = submission.card
    result = RunResult(task.task, card.name, card.version, card.paradigm, seed, "FINISHED")
    key = run_key(submission, task, seed, prepared, limit_users)
    views = family(task.family).for_seed(views, task, seed)
    if limit_users is not None:
        views = replace(views, test=views.test.subset(np.arange(min(limit_users, len(views.test)))))
    if store is not None and (done := store.finished_run(task.experiment_name, key)):
        log(f"{task.task} · {card.name} seed {seed}: finished before (run {done.info.run_id}), reused")
        result.status, result.run_id = "REUSED", done.info.run_id
        result.metrics = {m: done.data.metrics.get(m.replace("@", "_at_"), np.nan) for m in task.metrics}
        return result
    if store is not None:
        limit = {"limit_users": limit_users} if limit_users is not None else {}
        result.run_id = store.start(task.experiment_name, f"{card.name}@{card.version} seed={seed}",
                                    run_tags(submission, task, seed, prepared, key, views, limit_users),
                                    {f"hp.{k}": v for k, v in card.hyperparameters.items()} | {"seed": seed}
                                    | limit)
    log(f"{task.task} · {card.name} seed {seed}: fit")
    try:
        costs, identity = _fit_and_score(submission, task, seed, views, result, store)
    except KeyboardInterrupt:
        if store is not None:
            store.end(result.run_id, "KILLED", "interrupted by the user")
        raise
    except Exception as error:  # a failed run is recorded, the batch goes on
        result.status = "FAILED"
        result.reason = f"submission '{card.name}': {type(error).__name__}: {error}"
        log(f"{task.task} · {card.name} seed {seed}: FAILED — {result.reason}")
        if store is not None:
            store.log_artifacts(result.run_id, {"traceback.txt": traceback.format_exc()})
            store.end(result.run_id, "FAILED", result.reason)
        return result
    if store is not None:
        store.set_tags(result.run_id, identity)
        store.log_metrics(result.run_id, result.metrics | costs)
        artifacts = {
            "per_user_metrics.parquet": result.per_user,
            "task.json": task.model_dump(),
            "submission.json": card.model_dump(),
            "data_summary.json": prepared.summary,
        }
        artifacts |= family(task.family).artifacts(views)
        store.log_artifacts(result.run_id, artifacts)
        store.end(result.run_id)
    main = result.metrics[task.main_score]
    log(f"{task.task} · {card.name} seed {seed}: {task.main_score} = {main:.4f}")
    return result


def _fit_and_score(submission: Submission, task: TaskSpec, seed: int, views: TaskViews,
                   result: RunResult, store: ResultsStore | None) -> tuple[dict[str, float], dict[str, str]]:
    """Fit, score the test part, run the trust passes, measure; returns (costs and trust
    metrics, the model's identity tags). What the model says about itself comes only
    from its report(); time, memory and output validity are measured here."""
    seed_everything(seed)
    task_family = family(task.family)
    zero_shot = submission.card.paradigm == "zero-shot"
    with RunMonitor() as monitor:
        model = build_model(submission)  # in process, or a worker in the card's own environment
        ctx = _fit_context(submission, task_family, task, seed, views, result, store, zero_shot)
        started = time.perf_counter()
        model.fit(catalogue_only(views.train) if zero_shot else views.train, ctx)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        call = task_family.test_call(model, views.train)
        evaluator = task_family.evaluate_part(call, views.test, task, views.train, submission.name, "test",
                                              show_progress=True)
        score_seconds = time.perf_counter() - started
        trust = task_family.trust_metrics(model, call, task, views, seed, submission.name)
        report = model.report()
    if not isinstance(report, ModelReport):
        raise TypeError(f"report() must return a benchmark.api.ModelReport, got {type(report).__name__}")
    result.metrics = evaluator.summary()
    result.per_user = evaluator.per_user()
    costs = {"cost.fit_seconds": fit_seconds, "cost.score_seconds": score_seconds,
             "cost.peak_rss_mb": monitor.peak_mb, "cost.load_average": monitor.mean_load} | trust
    if monitor.children_peak_mb is not None:
        costs["cost.worker_peak_rss_mb"] = monitor.children_peak_mb
    return costs | report.costs(), dict(report.llm)


def _fit_context(submission: Submission, task_family: TaskFamily, task: TaskSpec, seed: int, views: TaskViews,
                 result: RunResult, store: ResultsStore | None, zero_shot: bool) -> FitContext:
    def evaluate_validation(call) -> float:
        evaluation = task_family.evaluate_part(call, views.validation, task, views.train, submission.name,
                                               "validation")
        return evaluation.summary()[task.main_score]

    return FitContext(
        seed=seed,
        evaluate_validation=None if zero_shot else evaluate_validation,  # zero-shot models select nothing
        progress=lambda iterable, description="training", total=None: track(
            iterable, f"{submission.name} {description}", total),
        log_metric=(lambda name, value, step: store.log_metrics(result.run_id, {name: value}, step))
        if store is not None else (lambda *_: None),
    )


def catalogue_only(train: TrainData) -> TrainData:
    """What a zero-shot model may see: the catalogue, no interactions, no users."""
    return TrainData(train.interactions.iloc[0:0].copy(), train.n_users, train.catalog)


def run_key(submission: Submission, task: TaskSpec, seed: int, prepared: PreparedData,
            limit_users: int | None = None) -> str:
    card = submission.card
    parts = [card.name, card.version, card.hyperparameters, task.task, task.version, task.digest(),
             seed, prepared.dataset_fingerprint, prepared.split_fingerprint, benchmark.__version__]
    if limit_users is not None:
        parts.append({"limit_users": limit_users})
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def run_tags(submission: Submission, task: TaskSpec, seed: int, prepared: PreparedData, key: str,
             views: TaskViews | None = None, limit_users: int | None = None) -> dict:
    card = submission.card
    extra = {"partial": "true"} if limit_users is not None else {}
    if task.prompt:
        extra["prompt_hash"] = task.prompt_hash()
    if views is not None:
        extra |= family(task.family).run_tags(task, views)
    return extra | {
        "task": task.task, "task_version": task.version, "family": task.family,
        "dataset": task.dataset.name, "submission": card.name, "submission_version": card.version,
        "paradigm": card.paradigm, "seed": seed, "run_key": key,
        "harness_version": benchmark.__version__, "harness_git_sha": harness_git_sha(),
        "dataset_fingerprint": prepared.dataset_fingerprint,
        "split_fingerprint": prepared.split_fingerprint, "task_digest": task.digest(),
        "main_score": task.main_score,
    } | environment_tags()


@functools.cache
def harness_git_sha() -> str:
    try:
        sha = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "benchmark"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha + ("-dirty" if dirty else "")) if sha else "unknown"


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _as_task(task: str | TaskSpec) -> TaskSpec:
    return task if isinstance(task, TaskSpec) else load_task(task)


def _as_submission(submission: str | Path | Submission) -> Submission:
    return submission if isinstance(submission, Submission) else find_submission(submission)
