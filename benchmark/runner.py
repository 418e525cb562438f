"""fit -> score in user batches -> validate each response -> metrics -> results store.

Every (task, submission, seed) is one run. By default each run's model is a sandboxed
worker process (benchmark.executors; docs/sandbox.md) under the task's limits; with
sandbox=False (--no-sandbox) it runs in this process, behind copies. A run that breaks
the contract, raises, exits, crashes or goes past a limit is recorded as FAILED with
its reason, and the other runs go on; an interrupted one (Ctrl-C) is recorded as KILLED.
The harness alone writes the store: task metrics and costs once, after the test pass;
a model's own curves (ctx.log_metric) only under CURVE_PREFIX.
"""
from __future__ import annotations

import functools
import hashlib
import json
import random
import re
import subprocess
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

import benchmark
from benchmark.api import FitContext, ModelReport, Recommender, Submission, TrainData, find_submission
from benchmark.api.registry import check_distinct
from benchmark.data import PreparedData, prepare
from benchmark.data.views import TaskViews, build_views
from benchmark.environment import environment_tags
from benchmark.executors import build_model, close_model, require_sandbox, worker_peak_rss_mb
from benchmark.executors.limits import LimitExceeded, Limits
from benchmark.families import TaskFamily, family
from benchmark.paths import REPO_ROOT
from benchmark.progress import RunMonitor, log, track
from benchmark.tasks import TaskSpec, load_task
from benchmark.tracking.store import ResultsStore
from benchmark.trust import TrustRun

# Where a model's own training curves go (ctx.log_metric("loss", ...) -> "train/loss"):
# a name of its own can never overwrite a task metric or a cost.
CURVE_PREFIX = "train/"
# At most this many curve points per run reach the store; later ones are dropped.
MAX_CURVE_POINTS = 10_000


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
    # What else the run logged: costs, trust metrics (trust.*), the model's own costs.
    costs: dict[str, float] = field(default_factory=dict)

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
    sandbox: bool = True,
    wait: bool = True,
) -> pd.DataFrame:
    """Evaluate submissions on tasks over seeds (default: each task's seeds); one row per
    run. Results go to the MLflow store at `tracking_uri` (see ResultsStore); pass
    store=False to keep them in memory only. `limit_users` evaluates only the first N
    test users, for quick looks: such runs are tagged partial and never ranked.
    `sandbox=False` runs the models in this process (to debug one's own model; runs are
    tagged sandbox=false); the default needs bubblewrap (SandboxUnavailable says how to
    install it). A run key that another live process is running is waited for, or with
    wait=False skipped. Two submissions with one name from different folders or files
    are a SpecError naming both."""
    submissions = [_as_submission(s) for s in _as_list(submissions)]
    check_distinct(submissions)
    if sandbox:
        require_sandbox()
    if store is True:
        store = ResultsStore(tracking_uri)
    rows = []
    for task in map(_as_task, _as_list(tasks)):
        prepared = prepare(task, log=log)
        log(f"{task.task}: {describe_summary(prepared.summary)}")
        views = build_views(task, prepared)
        for submission in submissions:
            for seed in seeds if seeds is not None else task.seeds:
                rows.append(run_one(submission, task, seed, prepared, views, store or None, limit_users,
                                    sandbox=sandbox, wait=wait).row())
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
            views: TaskViews, store: ResultsStore | None, limit_users: int | None = None,
            sandbox: bool = True, wait: bool = True) -> RunResult:
    """One run. With a store, the run key is claimed first (ResultsStore.claim): a key
    finished before, or by another process meanwhile, is reused; a key another live
    process is running is waited for, or with wait=False skipped (status SKIPPED)."""
    card = submission.card
    result = RunResult(task.task, card.name, card.version, card.paradigm, seed, "FINISHED")
    key = run_key(submission, task, seed, prepared, limit_users)
    views = family(task.family).for_seed(views, task, seed)
    if limit_users is not None:
        views = replace(views, test=views.test.subset(np.arange(min(limit_users, len(views.test)))))
    if store is None:
        return _execute(submission, task, seed, prepared, views, None, result, sandbox)
    label = f"{task.task} · {card.name} seed {seed}"
    with store.claim(task.experiment_name, key, log=log, wait=wait, label=label) as claim:
        if claim.finished_run is not None:
            done = claim.finished_run
            log(f"{label}: finished before (run {done.info.run_id}), reused")
            result.status, result.run_id = "REUSED", done.info.run_id
            result.metrics = {m: done.data.metrics.get(m.replace("@", "_at_"), np.nan) for m in task.metrics}
            return result
        if not claim.held:
            result.status, result.reason = "SKIPPED", "being run by another process"
            return result
        limit = {"limit_users": limit_users} if limit_users is not None else {}
        result.run_id = store.start(task.experiment_name, f"{card.name}@{card.version} seed={seed}",
                                    run_tags(submission, task, seed, prepared, key, views, limit_users)
                                    | {"sandbox": str(sandbox).lower()},
                                    {f"hp.{k}": v for k, v in card.hyperparameters.items()} | {"seed": seed}
                                    | limit)
        with store.heartbeat(result.run_id):
            return _execute(submission, task, seed, prepared, views, store, result, sandbox)


def _execute(submission: Submission, task: TaskSpec, seed: int, prepared: PreparedData, views: TaskViews,
             store: ResultsStore | None, result: RunResult, sandbox: bool) -> RunResult:
    """Fit and score one run and record it (its store run, if any, is started)."""
    card = submission.card
    log(f"{task.task} · {card.name} seed {seed}: fit" + ("" if sandbox else " (in process, unsandboxed)"))
    try:
        costs, identity = _fit_and_score(submission, task, seed, views, result, store, sandbox)
    except KeyboardInterrupt:
        if store is not None:
            store.end(result.run_id, "KILLED", "interrupted by the user")
        raise
    except BaseException as error:  # a failed run is recorded, the batch goes on (sys.exit() included)
        result.status = "FAILED"
        result.reason = f"submission '{card.name}': {failure_reason(error)}"
        log(f"{task.task} · {card.name} seed {seed}: FAILED — {result.reason}")
        if store is not None:
            store.log_artifacts(result.run_id, {"traceback.txt": traceback.format_exc()})
            store.end(result.run_id, "FAILED", result.reason)
        return result
    result.costs = costs
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


def failure_reason(error: BaseException) -> str:
    """A failed run's reason: a limit as the limit says it, else the error's type and text."""
    if isinstance(error, LimitExceeded):
        return str(error)
    if isinstance(error, SystemExit):
        return f"SystemExit: the submission called sys.exit({error.code!r})"
    return f"{type(error).__name__}: {error}"


def _fit_and_score(submission: Submission, task: TaskSpec, seed: int, views: TaskViews, result: RunResult,
                   store: ResultsStore | None, sandbox: bool = True) -> tuple[dict[str, float], dict[str, str]]:
    """Fit, score the test part, run the trust passes, measure; returns (costs and trust
    metrics, the model's identity tags). What the model says about itself comes only
    from its report(); time, memory and output validity are measured here."""
    seed_everything(seed)
    task_family = family(task.family)
    zero_shot = submission.card.paradigm == "zero-shot"
    limits = Limits.effective(task.limits, submission.card.limits)
    with RunMonitor() as monitor:
        # A sandboxed worker (one per run), or the model in this process behind copies.
        model = build_model(submission, sandbox=sandbox, limits=limits)
        try:
            ctx = _fit_context(submission, task_family, task, seed, views, store, result.run_id, zero_shot)
            started = time.perf_counter()
            model.fit(catalogue_only(views.train) if zero_shot else views.train, ctx)
            fit_seconds = time.perf_counter() - started
            started = time.perf_counter()
            call = task_family.test_call(model, views.train, task)
            evaluator = task_family.evaluate_part(call, views.test, task, views.train, submission.name, "test",
                                                  show_progress=True)
            score_seconds = time.perf_counter() - started
            result.metrics = evaluator.summary()
            result.per_user = evaluator.per_user()
            fit_again = None if zero_shot else functools.partial(
                _fitted_again, submission, task_family, task, seed, views, sandbox, limits)
            trust = task_family.trust_metrics(TrustRun(task, views, seed, submission.name, submission.card.paradigm,
                                                       model, call, result.per_user, fit_again))
            report = model.report()
            worker_peak = worker_peak_rss_mb(model)
        finally:
            close_model(model)
    if not isinstance(report, ModelReport):
        raise TypeError(f"report() must return a benchmark.api.ModelReport, got {type(report).__name__}")
    costs = {"cost.fit_seconds": fit_seconds, "cost.score_seconds": score_seconds,
             "cost.peak_rss_mb": monitor.peak_mb, "cost.load_average": monitor.mean_load} | trust
    if worker_peak is not None:  # measured by the harness over the worker's processes
        costs["cost.worker_peak_rss_mb"] = worker_peak
    return costs | report.costs(), dict(report.llm)


@contextmanager
def _fitted_again(submission: Submission, task_family: TaskFamily, task: TaskSpec, seed: int, views: TaskViews,
                  sandbox: bool, limits: Limits, train: TrainData) -> Iterator[Recommender]:
    """A fresh model of the submission fitted on `train` (a trust pass's altered
    training part) under the run's seed and limits, its training curves not stored;
    closed on exit."""
    seed_everything(seed)
    model = build_model(submission, sandbox=sandbox, limits=limits)
    try:
        ctx = _fit_context(submission, task_family, task, seed, views, None, None, zero_shot=False)
        model.fit(train, ctx)
        yield model
    finally:
        close_model(model)


def _fit_context(submission: Submission, task_family: TaskFamily, task: TaskSpec, seed: int, views: TaskViews,
                 store: ResultsStore | None, run_id: str | None, zero_shot: bool) -> FitContext:
    def evaluate_validation(call) -> float:
        evaluation = task_family.evaluate_part(call, views.validation, task, views.train, submission.name,
                                               "validation")
        return evaluation.summary()[task.main_score]

    return FitContext(
        seed=seed,
        evaluate_validation=None if zero_shot else evaluate_validation,  # zero-shot models select nothing
        progress=lambda iterable, description="training", total=None: track(
            iterable, f"{submission.name} {description}", total),
        log_metric=curve_logger(store, run_id, submission.name),
    )


def curve_name(name: str) -> str:
    """Where a model's curve point is stored: under CURVE_PREFIX, whatever it is named
    ("NDCG@10" -> "train/NDCG@10"), with what MLflow refuses (other characters, "..")
    replaced by "_"."""
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"ctx.log_metric: the name must be a non-empty str, got {name!r:.80}")
    name = re.sub(r"\.{2,}", "_", re.sub(r"[^\w\-. /@]", "_", name.strip())).lstrip("/")[:200]
    return name if name.startswith(CURVE_PREFIX) else CURVE_PREFIX + name


def curve_logger(store: ResultsStore | None, run_id: str | None, name: str):
    """ctx.log_metric for one run: points under CURVE_PREFIX, at most MAX_CURVE_POINTS."""
    points = 0

    def log_metric(metric: str, value: float, step: int) -> None:
        nonlocal points
        key = curve_name(metric)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"ctx.log_metric({metric!r}): the value must be a number, got {value!r:.80}")
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
            raise TypeError(f"ctx.log_metric({metric!r}): the step must be an int, got {step!r:.80}")
        points += 1
        if points == MAX_CURVE_POINTS + 1:
            log(f"{name}: more than {MAX_CURVE_POINTS:,} training-curve points; later ones are not stored")
        if store is not None and points <= MAX_CURVE_POINTS:
            store.log_metrics(run_id, {key: float(value)}, int(step))

    return log_metric


def catalogue_only(train: TrainData) -> TrainData:
    """What a zero-shot model may see: the catalogue, no interactions, no users."""
    return TrainData(train.interactions.iloc[0:0].copy(), train.n_users, train.catalog)


def run_key(submission: Submission, task: TaskSpec, seed: int, prepared: PreparedData,
            limit_users: int | None = None) -> str:
    card = submission.card
    parts = [card.name, card.version, card.hyperparameters, submission.digest, task.task, task.version,
             task.digest(), seed, prepared.dataset_fingerprint, prepared.split_fingerprint, benchmark.__version__]
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
        "paradigm": card.paradigm, "seed": seed, "run_key": key, "submission_digest": submission.digest,
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
