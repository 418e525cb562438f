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
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

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
from benchmark.specs import SpecError
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
    status: str  # FINISHED, FAILED, REUSED (a finished run with the same key) or SKIPPED
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    reason: str | None = None
    per_user: pd.DataFrame | None = None
    # What else the run logged: costs, trust metrics (trust.*), the model's own costs.
    costs: dict[str, float] = field(default_factory=dict)
    # The cell's own time where it ran (fit, score, trust passes), and the time from its
    # dispatch to its result being recorded (the executor's overhead is the difference).
    cell_seconds: float = float("nan")
    wall_seconds: float = float("nan")
    # Of the wall time, how long the cell waited for a free worker (Ray's queue).
    queued_seconds: float = 0.0

    def row(self) -> dict:
        return {"task": self.task, "submission": self.submission, "version": self.version,
                "paradigm": self.paradigm, "seed": self.seed, "status": self.status,
                "run_id": self.run_id, "reason": self.reason, "cell_seconds": self.cell_seconds,
                "wall_seconds": self.wall_seconds, "queued_seconds": self.queued_seconds} | self.metrics


@dataclass(frozen=True)
class Cell:
    """One (task, submission, seed) of a matrix: one run in the store, under one run key."""

    submission: Submission
    task: TaskSpec
    seed: int
    limit_users: int | None = None
    # Model workers that score the test users between them (exact, benchmark.eval.shards);
    # only for models that do not train on interactions: others use one.
    shards: int = 1

    @property
    def shardable(self) -> bool:
        return self.submission.card.paradigm == "zero-shot"

    @property
    def workers(self) -> int:
        """The model workers this cell's test pass uses."""
        return self.shards if self.shardable else 1

    @property
    def label(self) -> str:
        return f"{self.task.task} · {self.submission.name} seed {self.seed}"


@dataclass
class TaskData:
    """A task's data, prepared once per task for every cell of a matrix."""

    prepared: PreparedData
    views: TaskViews

    @classmethod
    def of(cls, task: TaskSpec) -> "TaskData":
        prepared = prepare(task, log=log)
        log(f"{task.task}: {describe_summary(prepared.summary)}")
        return cls(prepared, build_views(task, prepared))


@dataclass
class CellOutcome:
    """What computing a cell gave, wherever it ran (here or on a Ray worker): plain
    data, no store. The harness records it (`record`)."""

    status: str  # FINISHED or FAILED
    metrics: dict[str, float] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)
    identity: dict[str, str] = field(default_factory=dict)
    per_user: pd.DataFrame | None = None
    reason: str | None = None
    traceback: str | None = None
    # Training-curve points (name, value, step) held back for the store, where the cell
    # ran away from it; empty when they went to the store live.
    curves: list[tuple[str, float, int]] = field(default_factory=list)
    seconds: float = float("nan")
    began: float = float("nan")  # Unix time the computation began, where it ran


def evaluate(
    submissions: str | Path | Submission | Sequence[str | Path | Submission],
    tasks: str | TaskSpec | Sequence[str | TaskSpec],
    seeds: Sequence[int] | None = None,
    tracking_uri: str | None = None,
    store: ResultsStore | None | bool = True,
    limit_users: int | None = None,
    sandbox: bool = True,
    wait: bool = True,
    executor: str = "local",
    ray_address: str | None = None,
    ray_workers: int | None = None,
    shards: int = 1,
) -> pd.DataFrame:
    """Evaluate submissions on tasks over seeds (default: each task's seeds); one row per
    run. Results go to the MLflow store at `tracking_uri` (see ResultsStore); pass
    store=False to keep them in memory only. `limit_users` evaluates only the first N
    test users, for quick looks: such runs are tagged partial and never ranked.
    `sandbox=False` runs the models in this process (to debug one's own model; runs are
    tagged sandbox=false); the default needs bubblewrap (SandboxUnavailable says how to
    install it). A run key that another live process is running is waited for, or with
    wait=False skipped. Two submissions with one name from different folders or files
    are a SpecError naming both. `executor="ray"` runs the cells as Ray tasks
    (benchmark.executors.ray_matrix): on the cluster at `ray_address`, else on a private
    one on 127.0.0.1 with `ray_workers` CPUs. `shards` > 1 scores the test users of a
    zero-shot model with that many model workers at once, merged exactly (the run key
    and the metrics are those of one worker)."""
    submissions = [_as_submission(s) for s in _as_list(submissions)]
    check_distinct(submissions)
    tasks = [_as_task(t) for t in _as_list(tasks)]
    cells = [Cell(submission, task, seed, limit_users, shards) for task in tasks for submission in submissions
             for seed in (seeds if seeds is not None else task.seeds)]
    for cell in cells:
        if cell.shards > 1 and not cell.shardable:
            log(f"{cell.label}: trains on interactions, so its test users are scored by one worker "
                f"(--shards {cell.shards} applies to zero-shot models)")
    return pd.DataFrame([r.row() for r in run_cells(cells, store, tracking_uri, sandbox, wait, executor,
                                                    ray_address, ray_workers)])


EXECUTORS = ("local", "ray")


def run_cells(cells: Sequence[Cell], store: ResultsStore | None | bool = True, tracking_uri: str | None = None,
              sandbox: bool = True, wait: bool = True, executor: str = "local", ray_address: str | None = None,
              ray_workers: int | None = None) -> list[RunResult]:
    """Run a matrix of cells, each task's data prepared once; one RunResult per cell, in
    order (see `evaluate`)."""
    if executor not in EXECUTORS:
        raise SpecError(f"--executor: unknown executor {executor!r}; expected one of {', '.join(EXECUTORS)}")
    if sandbox:
        require_sandbox()
    if store is True:
        store = ResultsStore(tracking_uri)
    data: dict[str, TaskData] = {}
    for cell in cells:
        if cell.task.task not in data:
            data[cell.task.task] = TaskData.of(cell.task)
    if executor == "ray":
        from benchmark.executors.ray_matrix import run_on_ray

        return run_on_ray(cells, data, store or None, sandbox, wait, ray_address, ray_workers)
    results: list[RunResult] = []
    started = time.perf_counter()
    for cell in cells:
        if len(cells) > 1:
            log(matrix_progress(results, len(cells), 1, 1, time.perf_counter() - started))
        results.append(run_cell(cell, data[cell.task.task], store or None, sandbox, wait))
    return results


def matrix_progress(settled: Sequence[RunResult], total: int, parallel: int, running: int, elapsed: float) -> str:
    """One line on a matrix in progress: cells done, failed, running, waiting, time left
    (from the cells computed so far, `parallel` at a time)."""
    failed = sum(r.status == "FAILED" for r in settled)
    computed = [r.wall_seconds for r in settled if r.status in ("FINISHED", "FAILED") and r.wall_seconds > 0]
    waiting = total - len(settled) - running
    line = (f"matrix: {len(settled)}/{total} done ({failed} failed), {running} running, {waiting} waiting; "
            f"{_duration(elapsed)} so far")
    left = total - len(settled)
    if computed and left:
        line += f", about {_duration(sum(computed) / len(computed) * left / max(1, min(parallel, left)))} left"
    return line


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


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
    """One run of prepared data (see run_cell)."""
    return run_cell(Cell(submission, task, seed, limit_users), TaskData(prepared, views), store, sandbox, wait)


def run_cell(cell: Cell, data: TaskData, store: ResultsStore | None, sandbox: bool = True,
             wait: bool = True) -> RunResult:
    """One cell, here. With a store, the run key is claimed first (ResultsStore.claim): a
    key finished before, or by another process meanwhile, is reused; a key another live
    process is running is waited for, or with wait=False skipped (status SKIPPED)."""
    started = time.perf_counter()
    result = new_result(cell)
    views = cell_views(cell, data.views)
    if store is None:
        outcome = compute_cell(cell, views, sandbox, curve_logger(None, None, cell.submission.name))
        return settle(result, outcome, started)
    key = cell_key(cell, data.prepared)
    with store.claim(cell.task.experiment_name, key, log=log, wait=wait, label=cell.label) as claim:
        if not claim.must_run:
            return reused_or_skipped(result, claim, cell)
        result.run_id = start_run(store, cell, data.prepared, views, key, sandbox)
        with store.heartbeat(result.run_id):
            try:
                outcome = compute_cell(cell, views, sandbox,
                                       curve_logger(store, result.run_id, cell.submission.name))
            except KeyboardInterrupt:
                store.end(result.run_id, "KILLED", "interrupted by the user")
                raise
            record(store, result.run_id, outcome, cell, data.prepared, views)
    return settle(result, outcome, started)


def new_result(cell: Cell) -> RunResult:
    card = cell.submission.card
    return RunResult(cell.task.task, card.name, card.version, card.paradigm, cell.seed, "FINISHED")


def cell_key(cell: Cell, prepared: PreparedData) -> str:
    return run_key(cell.submission, cell.task, cell.seed, prepared, cell.limit_users)


def cell_views(cell: Cell, views: TaskViews) -> TaskViews:
    """The task's views as this cell's seed and user limit make them."""
    views = family(cell.task.family).for_seed(views, cell.task, cell.seed)
    if cell.limit_users is not None:
        views = replace(views, test=views.test.subset(np.arange(min(cell.limit_users, len(views.test)))))
    return views


def reused_or_skipped(result: RunResult, claim, cell: Cell) -> RunResult:
    """A claimed key that must not run here: its finished run is reused, or (another
    process holds it and we would not wait) it is skipped."""
    if claim.finished_run is not None:
        return reused(result, claim.finished_run, cell)
    result.status, result.reason = "SKIPPED", "being run by another process"
    return result


def reused(result: RunResult, done, cell: Cell) -> RunResult:
    """The result of a cell whose key has a finished run (`done`, an MLflow run)."""
    log(f"{cell.label}: finished before (run {done.info.run_id}), reused")
    result.status, result.run_id = "REUSED", done.info.run_id
    result.metrics = {m: done.data.metrics.get(m.replace("@", "_at_"), np.nan) for m in cell.task.metrics}
    return result


def start_run(store: ResultsStore, cell: Cell, prepared: PreparedData, views: TaskViews, key: str, sandbox: bool,
              extra_tags: dict[str, str] | None = None) -> str:
    """The cell's RUNNING run in the store, with its tags and parameters (views: the
    cell's, `cell_views`)."""
    card, seed = cell.submission.card, cell.seed
    limit = {"limit_users": cell.limit_users} if cell.limit_users is not None else {}
    tags = run_tags(cell.submission, cell.task, seed, prepared, key, views, cell.limit_users) | {"sandbox": str(sandbox).lower()} | (extra_tags or {})
    if cell.workers > 1:
        tags["shards"] = str(cell.workers)
    return store.start(cell.task.experiment_name, f"{card.name}@{card.version} seed={seed}", tags,
                       {f"hp.{k}": v for k, v in card.hyperparameters.items()} | {"seed": seed} | limit)


def compute_cell(cell: Cell, views: TaskViews, sandbox: bool, log_metric: Callable) -> CellOutcome:
    """Fit and score one cell (views: the cell's, `cell_views`), with no store: a
    failure becomes a FAILED outcome with its reason, so a batch goes on; a Ctrl-C
    propagates. `log_metric` takes the model's curve points."""
    card = cell.submission.card
    log(f"{cell.label}: fit" + ("" if sandbox else " (in process, unsandboxed)"))
    began, started = time.time(), time.perf_counter()
    try:
        metrics, per_user, costs, identity = _fit_and_score(cell.submission, cell.task, cell.seed, views,
                                                            log_metric, sandbox, cell.workers)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # a failed run is recorded, the batch goes on (sys.exit() included)
        reason = f"submission '{card.name}': {failure_reason(error)}"
        log(f"{cell.label}: FAILED — {reason}")
        return CellOutcome("FAILED", reason=reason, traceback=traceback.format_exc(),
                           seconds=time.perf_counter() - started, began=began)
    log(f"{cell.label}: {cell.task.main_score} = {metrics[cell.task.main_score]:.4f}")
    return CellOutcome("FINISHED", metrics, costs, identity, per_user, seconds=time.perf_counter() - started,
                       began=began)


def record(store: ResultsStore, run_id: str, outcome: CellOutcome, cell: Cell, prepared: PreparedData,
           views: TaskViews) -> None:
    """Write a computed cell into its started run and end it: FINISHED with its metrics,
    costs and artifacts, or FAILED with its reason and traceback."""
    for name, value, step in outcome.curves:
        store.log_metrics(run_id, {name: value}, step)
    if outcome.status == "FAILED":
        store.log_artifacts(run_id, {"traceback.txt": outcome.traceback or outcome.reason or ""})
        store.end(run_id, "FAILED", outcome.reason)
        return
    store.set_tags(run_id, outcome.identity)
    store.log_metrics(run_id, outcome.metrics | outcome.costs)
    artifacts = {
        "per_user_metrics.parquet": outcome.per_user,
        "task.json": cell.task.model_dump(),
        "submission.json": cell.submission.card.model_dump(),
        "data_summary.json": prepared.summary,
    }
    artifacts |= family(cell.task.family).artifacts(views)
    store.log_artifacts(run_id, artifacts)
    store.end(run_id)


def settle(result: RunResult, outcome: CellOutcome, started: float) -> RunResult:
    """The run's result from its outcome."""
    result.status, result.reason = outcome.status, outcome.reason
    result.metrics, result.per_user, result.costs = outcome.metrics, outcome.per_user, outcome.costs
    result.cell_seconds, result.wall_seconds = outcome.seconds, time.perf_counter() - started
    return result


def failure_reason(error: BaseException) -> str:
    """A failed run's reason: a limit as the limit says it, else the error's type and text."""
    if isinstance(error, LimitExceeded):
        return str(error)
    if isinstance(error, SystemExit):
        return f"SystemExit: the submission called sys.exit({error.code!r})"
    return f"{type(error).__name__}: {error}"


def _fit_and_score(submission: Submission, task: TaskSpec, seed: int, views: TaskViews, log_metric: Callable,
                   sandbox: bool = True, workers: int = 1
                   ) -> tuple[dict[str, float], pd.DataFrame, dict[str, float], dict[str, str]]:
    """Fit, score the test part, run the trust passes, measure; returns (metrics,
    per-user metrics, costs and trust metrics, the model's identity tags). What the
    model says about itself comes only from its report(); time, memory and output
    validity are measured here. With `workers` > 1 (zero-shot models only), that many
    models score the test users between them (benchmark.eval.shards); the first serves
    the trust passes."""
    seed_everything(seed)
    task_family = family(task.family)
    zero_shot = submission.card.paradigm == "zero-shot"
    limits = Limits.effective(task.limits, submission.card.limits)
    with RunMonitor() as monitor, ExitStack() as open_models:
        # Sandboxed workers (one per run, or per shard), or the model in this process behind copies.
        models = []
        for _ in range(workers):
            models.append(build_model(submission, sandbox=sandbox, limits=limits))
            open_models.callback(close_model, models[-1])
        ctx = _fit_context(submission, task_family, task, seed, views, log_metric, zero_shot)
        started = time.perf_counter()
        train = catalogue_only(views.train) if zero_shot else views.train
        _each(lambda model: model.fit(train, ctx), models)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        calls = [task_family.test_call(model, views.train, task) for model in models]
        if workers == 1:
            call = calls[0]
            evaluator = task_family.evaluate_part(call, views.test, task, views.train, submission.name, "test",
                                                  show_progress=True)
        else:
            from benchmark.eval.shards import evaluate_sharded

            evaluator, call = evaluate_sharded(task_family, calls, views.test, task, views.train, submission.name,
                                               "test", show_progress=True)
        score_seconds = time.perf_counter() - started
        metrics, per_user = evaluator.summary(), evaluator.per_user()
        model = models[0]
        fit_again = None if zero_shot else functools.partial(
            _fitted_again, submission, task_family, task, seed, views, sandbox, limits)
        trust = task_family.trust_metrics(TrustRun(task, views, seed, submission.name, submission.card.paradigm,
                                                   model, call, per_user, fit_again))
        report = model.report()
        peaks = [worker_peak_rss_mb(each) for each in models]
    if not isinstance(report, ModelReport):
        raise TypeError(f"report() must return a benchmark.api.ModelReport, got {type(report).__name__}")
    costs = {"cost.fit_seconds": fit_seconds, "cost.score_seconds": score_seconds,
             "cost.peak_rss_mb": monitor.peak_mb, "cost.load_average": monitor.mean_load} | trust
    if peaks[0] is not None:  # measured by the harness over the workers' processes (their sum when sharded)
        costs["cost.worker_peak_rss_mb"] = sum(peaks)
    return metrics, per_user, costs | report.costs(), dict(report.llm)


def _each(work: Callable, models: list) -> None:
    """work(model) for every model, at once when there are several (sharded workers
    load and fit side by side)."""
    if len(models) == 1:
        work(models[0])
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(models)) as pool:
        for future in [pool.submit(work, model) for model in models]:
            future.result()


@contextmanager
def _fitted_again(submission: Submission, task_family: TaskFamily, task: TaskSpec, seed: int, views: TaskViews,
                  sandbox: bool, limits: Limits, train: TrainData) -> Iterator[Recommender]:
    """A fresh model of the submission fitted on `train` (a trust pass's altered
    training part) under the run's seed and limits, its training curves not stored;
    closed on exit."""
    seed_everything(seed)
    model = build_model(submission, sandbox=sandbox, limits=limits)
    try:
        ctx = _fit_context(submission, task_family, task, seed, views, curve_logger(None, None, submission.name),
                           zero_shot=False)
        model.fit(train, ctx)
        yield model
    finally:
        close_model(model)


def _fit_context(submission: Submission, task_family: TaskFamily, task: TaskSpec, seed: int, views: TaskViews,
                 log_metric: Callable, zero_shot: bool) -> FitContext:
    def evaluate_validation(call) -> float:
        evaluation = task_family.evaluate_part(call, views.validation, task, views.train, submission.name,
                                               "validation")
        return evaluation.summary()[task.main_score]

    return FitContext(
        seed=seed,
        evaluate_validation=None if zero_shot else evaluate_validation,  # zero-shot models select nothing
        progress=lambda iterable, description="training", total=None: track(
            iterable, f"{submission.name} {description}", total),
        log_metric=log_metric,
    )


def curve_name(name: str) -> str:
    """Where a model's curve point is stored: under CURVE_PREFIX, whatever it is named
    ("NDCG@10" -> "train/NDCG@10"), with what MLflow refuses (other characters, "..")
    replaced by "_"."""
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"ctx.log_metric: the name must be a non-empty str, got {name!r:.80}")
    name = re.sub(r"\.{2,}", "_", re.sub(r"[^\w\-. /@]", "_", name.strip())).lstrip("/")[:200]
    return name if name.startswith(CURVE_PREFIX) else CURVE_PREFIX + name


def curve_logger(store: ResultsStore | None, run_id: str | None, name: str,
                 held: list[tuple[str, float, int]] | None = None) -> Callable:
    """ctx.log_metric for one run: points under CURVE_PREFIX, at most MAX_CURVE_POINTS,
    written to the store as they come, or appended to `held` (a cell that runs away
    from the store), or (neither) checked and dropped."""
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
        if points > MAX_CURVE_POINTS:
            return
        if store is not None:
            store.log_metrics(run_id, {key: float(value)}, int(step))
        elif held is not None:
            held.append((key, float(value), int(step)))

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
