"""fit -> score in user batches -> validate each response -> metrics -> results store.

Every (task, submission, seed) is one run. A run that breaks the contract or raises
is recorded as FAILED with its reason, and the other runs go on.
"""
from __future__ import annotations

import hashlib
import json
import random
import subprocess
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

import benchmark
from benchmark.api import FitContext, Recommender, Submission, find_submission
from benchmark.data import PreparedData, prepare
from benchmark.data.views import TaskViews, build_views
from benchmark.executors import build_model
from benchmark.paths import REPO_ROOT
from benchmark.progress import PeakMemory, log, track
from benchmark.scoring import evaluate_part
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
) -> pd.DataFrame:
    """Evaluate submissions on tasks over seeds (default: each task's seeds); one row per
    run. Results go to the MLflow store at `tracking_uri` (see ResultsStore); pass
    store=False to keep them in memory only."""
    if store is True:
        store = ResultsStore(tracking_uri)
    rows = []
    for task in map(_as_task, _as_list(tasks)):
        prepared = prepare(task, log=log)
        log(f"{task.task}: {describe_summary(prepared.summary)}")
        views = build_views(task, prepared)
        for submission in map(_as_submission, _as_list(submissions)):
            for seed in seeds if seeds is not None else task.seeds:
                rows.append(run_one(submission, task, seed, prepared, views, store or None).row())
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
            views: TaskViews, store: ResultsStore | None) -> RunResult:
    card = submission.card
    result = RunResult(task.task, card.name, card.version, card.paradigm, seed, "FINISHED")
    key = run_key(submission, task, seed, prepared)
    if store is not None and (done := store.finished_run(task.experiment_name, key)):
        log(f"{task.task} · {card.name} seed {seed}: finished before (run {done.info.run_id}), reused")
        result.status, result.run_id = "REUSED", done.info.run_id
        result.metrics = {m: done.data.metrics.get(m.replace("@", "_at_"), np.nan) for m in task.metrics}
        return result
    if store is not None:
        result.run_id = store.start(task.experiment_name, f"{card.name}@{card.version} seed={seed}",
                                    run_tags(submission, task, seed, prepared, key),
                                    {f"hp.{k}": v for k, v in card.hyperparameters.items()} | {"seed": seed})
    log(f"{task.task} · {card.name} seed {seed}: fit")
    try:
        costs = _fit_and_score(submission, task, seed, views, result, store)
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
        store.log_metrics(result.run_id, result.metrics | costs)
        store.log_artifacts(result.run_id, {
            "per_user_metrics.parquet": result.per_user,
            "task.json": task.model_dump(),
            "submission.json": card.model_dump(),
            "data_summary.json": prepared.summary,
        })
        store.end(result.run_id)
    main = result.metrics[task.main_score]
    log(f"{task.task} · {card.name} seed {seed}: {task.main_score} = {main:.4f}")
    return result


def _fit_and_score(submission: Submission, task: TaskSpec, seed: int, views: TaskViews,
                   result: RunResult, store: ResultsStore | None) -> dict[str, float]:
    seed_everything(seed)
    with PeakMemory() as memory:
        model = build_model(submission)  # in process, or a worker in the card's own environment
        ctx = FitContext(
            seed=seed,
            evaluate_validation=lambda call: evaluate_part(
                call, views.validation, task, views.train, submission.name, "validation"
            ).summary()[task.main_score],
            progress=lambda iterable, description="training", total=None: track(
                iterable, f"{submission.name} {description}", total),
            log_metric=(lambda name, value, step: store.log_metrics(result.run_id, {name: value}, step))
            if store is not None else (lambda *_: None),
        )
        started = time.perf_counter()
        model.fit(views.train, ctx)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        model_call = model.predict if task.family == "ctr" else model.score
        evaluator = evaluate_part(model_call, views.test, task, views.train, submission.name, "test",
                                  show_progress=True)
        score_seconds = time.perf_counter() - started
    result.metrics = evaluator.summary()
    result.per_user = evaluator.per_user()
    costs = {"cost.fit_seconds": fit_seconds, "cost.score_seconds": score_seconds,
             "cost.peak_rss_mb": memory.peak_mb}
    parameters = _trainable_parameters(model)
    if parameters is not None:
        costs["cost.trainable_parameters"] = parameters
    worker_memory = getattr(model, "worker_peak_rss_mb", None)  # a submission in its own environment
    if worker_memory is not None:
        costs["cost.worker_peak_rss_mb"] = worker_memory
    return costs


def run_key(submission: Submission, task: TaskSpec, seed: int, prepared: PreparedData) -> str:
    card = submission.card
    parts = [card.name, card.version, card.hyperparameters, task.task, task.version, task.digest(),
             seed, prepared.dataset_fingerprint, prepared.split_fingerprint, benchmark.__version__]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def run_tags(submission: Submission, task: TaskSpec, seed: int, prepared: PreparedData, key: str) -> dict:
    card = submission.card
    return {
        "task": task.task, "task_version": task.version, "family": task.family,
        "dataset": task.dataset.name, "submission": card.name, "submission_version": card.version,
        "paradigm": card.paradigm, "seed": seed, "run_key": key,
        "harness_version": benchmark.__version__, "harness_git_sha": harness_git_sha(),
        "dataset_fingerprint": prepared.dataset_fingerprint,
        "split_fingerprint": prepared.split_fingerprint, "task_digest": task.digest(),
        "main_score": task.main_score,
    }


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


def _trainable_parameters(model: Recommender) -> int | None:
    """Counted over the model's torch modules, or as reported by its worker process."""
    import torch

    if getattr(model, "trainable_parameters", None) is not None:
        return model.trainable_parameters
    modules = [v for v in vars(model).values() if isinstance(v, torch.nn.Module)]
    if not modules:
        return None
    return sum(p.numel() for m in modules for p in m.parameters() if p.requires_grad)


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _as_task(task: str | TaskSpec) -> TaskSpec:
    return task if isinstance(task, TaskSpec) else load_task(task)


def _as_submission(submission: str | Path | Submission) -> Submission:
    return submission if isinstance(submission, Submission) else find_submission(submission)
