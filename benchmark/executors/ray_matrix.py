"""The matrix of cells on Ray (`llm4rec run --executor ray`, DESIGN.md §12).

Every (task, submission, seed) cell is a Ray task with the resources its card declares
(`resources:` cpus, gpus, memory_gb), computed on a worker node by the same code as a
local run (`runner.compute_cell`: the sandbox, the limits, the trust passes) and
recorded under the same run key. Only this driver talks to the results store: it
claims each key, starts and ends its MLflow run, beats its heartbeat and writes what
the worker sends back, so workers need no access to the store.

- Each task's data is prepared once, here, and reaches the workers once through Ray's
  object store; a submission's files travel as bytes once per submission and are
  unpacked on a node only where its folder is not there with the same digest.
- A key another driver holds is set aside and claimed again later: its finished run
  is then reused (two drivers submitting one matrix never run a key twice).
- A cell that fails, or whose worker is lost, is recorded FAILED and run once more in a
  new run (`attempt` tag 1, 2); on a cluster, failures are often the node's, not the
  submission's.
- Without an address, a private cluster is started on 127.0.0.1 and stopped at the
  end; Ray's servers then bind to the loopback only.
"""
from __future__ import annotations

import os
import time
from collections import deque
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Sequence

from benchmark.api import Submission
from benchmark.api.registry import package_root, submission_files
from benchmark.paths import cache_dir
from benchmark.progress import log
from benchmark.runner import (
    Cell,
    CellOutcome,
    RunResult,
    TaskData,
    cell_key,
    cell_views,
    compute_cell,
    curve_logger,
    matrix_progress,
    new_result,
    record,
    reused,
    reused_or_skipped,
    settle,
    start_run,
)
from benchmark.tracking.store import ResultsStore

# Runs of a cell at most: the first, and one retry after a failure or a lost worker.
ATTEMPTS = 2
# How often a key held by another driver is tried again, and progress is said.
RECLAIM_SECONDS = 2.0
PROGRESS_SECONDS = 10.0


def run_on_ray(cells: Sequence[Cell], data: dict[str, TaskData], store: ResultsStore | None, sandbox: bool,
               wait: bool, address: str | None = None, workers: int | None = None) -> list[RunResult]:
    """Run the cells on Ray (see the module doc); one RunResult per cell, in order.
    Cells finished before are reused without a cluster."""
    results: dict[int, RunResult] = {}
    for index, cell in enumerate(cells):
        if store is not None:
            done = store.finished_run(cell.task.experiment_name, cell_key(cell, data[cell.task.task].prepared))
            if done is not None:
                results[index] = reused(new_result(cell), done, cell)
    todo = [index for index in range(len(cells)) if index not in results]
    if todo:
        with ray_cluster(address, workers) as ray:
            ran = _Matrix(ray, [cells[i] for i in todo], data, store, sandbox, wait).run()
        results |= dict(zip(todo, ran))
    return [results[index] for index in range(len(cells))]


@contextmanager
def ray_cluster(address: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """Ray, connected: to the cluster at `address` ("auto", "HOST:PORT" or
    "ray://HOST:PORT"), else to a private one started here on 127.0.0.1 with `workers`
    CPUs (default: this machine's), no dashboard, stopped on exit."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    loopback = address is None or _on_loopback(address)
    if loopback:
        # Ray binds its servers to every interface, and resolves 127.0.0.1 to the
        # machine's address, unless told that it is no cluster of several machines
        # (read when ray is imported; a private cluster's processes inherit it).
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    if address is not None:
        # `ray start` clusters require Ray's token (~/.ray/auth_token), which a client
        # sends only in token mode.
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    import ray
    from ray._private import ray_constants

    if loopback:
        ray_constants.ENABLE_RAY_CLUSTER = False  # ray may have been imported before the variable was set

    if ray.is_initialized():  # a caller's own connection (tests, notebooks): used as it is
        yield ray
        return
    if address is None:
        ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False, _node_ip_address="127.0.0.1",
                 log_to_driver=False, configure_logging=False)
        log(f"ray: a private cluster on 127.0.0.1 with {workers or os.cpu_count()} CPUs")
    else:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
        log(f"ray: joined the cluster at {address}: {_describe(ray.cluster_resources())}")
    try:
        yield ray
    finally:
        ray.shutdown()


def _on_loopback(address: str) -> bool:
    from benchmark.tracking.server import is_loopback

    return is_loopback(address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]"))


@dataclass(frozen=True)
class SubmissionFiles:
    """A submission's files as bytes, to rebuild its folder on a node that lacks it."""

    digest: str
    folder: str  # the submission's folder, relative to its package root
    files: dict[str, bytes]

    @classmethod
    def of(cls, submission: Submission) -> "SubmissionFiles":
        root = package_root(submission.folder.resolve())
        files = {relative: path.read_bytes() for relative, path in submission_files(submission.folder)
                 if path.is_file()}
        return cls(submission.digest, submission.folder.resolve().relative_to(root).as_posix(), files)

    def on_this_node(self, submission: Submission) -> Submission:
        """The submission where this node has it: its own folder when that holds the
        same files, else a copy unpacked once under the cache, keyed by digest."""
        if submission.folder.is_dir() and Submission(submission.folder).digest == self.digest:
            return submission
        root = cache_dir() / "submissions" / self.digest
        if not (root / ".complete").is_file():
            for relative, content in self.files.items():
                path = root / relative
                if not path.resolve().is_relative_to(root.resolve()):
                    raise ValueError(f"submission file {relative!r} lies outside its folder")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
            (root / ".complete").touch()
        copy = Submission(root / self.folder)
        copy.__dict__["card"] = submission.card  # a variant's card (a study's budget) travels as it is
        copy.__dict__["digest"] = self.digest
        return copy


def compute_remote(cell: Cell, files: SubmissionFiles, views, sandbox: bool) -> CellOutcome:
    """A cell on a Ray worker (views: its task's, sent once per task): its curves held
    back for the driver to store."""
    cell = replace(cell, submission=files.on_this_node(cell.submission))
    if not cell.submission.card.resources.gpus:
        # Ray hides no GPU from a task that asked for none: a cell may only use what it was given.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    curves: list[tuple[str, float, int]] = []
    outcome = compute_cell(cell, cell_views(cell, views), sandbox,
                           curve_logger(None, None, cell.submission.name, curves))
    outcome.curves = curves
    return outcome


@dataclass
class _Running:
    cell: Cell
    result: RunResult
    attempt: int
    started: float
    dispatched: float = 0.0  # Unix time of the current attempt's dispatch
    claim: ExitStack = field(default_factory=ExitStack)  # the run key, held until the cell is settled
    beat: ExitStack = field(default_factory=ExitStack)  # the current run's heartbeat
    key: str = ""
    views: Any = None  # the cell's views (cell_views), for its tags and artifacts


class _Matrix:
    """The driver's loop: claim, dispatch, collect, record, retry, say progress."""

    def __init__(self, ray, cells: Sequence[Cell], data: dict[str, TaskData], store: ResultsStore | None,
                 sandbox: bool, wait: bool) -> None:
        self.ray, self.cells, self.data, self.store = ray, list(cells), data, store
        self.sandbox, self.wait = sandbox, wait
        self.results: list[RunResult | None] = [None] * len(self.cells)
        self.remote = ray.remote(compute_remote)
        self.views = {task: ray.put(d.views) for task, d in data.items()}  # once per task
        self.files: dict[str, Any] = {}
        self.running: dict[Any, tuple[int, _Running]] = {}
        self.slots = max(1, int(ray.cluster_resources().get("CPU", 1))) + 1  # one queued behind the busy ones
        self.nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
        self.said_busy: set[int] = set()
        self.started = time.perf_counter()
        self.last_progress = 0.0
        self.last_state: tuple[int, int] | None = None

    def run(self) -> list[RunResult]:
        waiting = deque(range(len(self.cells)))
        log(f"matrix: {len(self.cells)} cells on Ray ({_describe(self.ray.cluster_resources())})")
        try:
            while waiting or self.running:
                waiting = self._dispatch(waiting)
                self._collect(timeout=RECLAIM_SECONDS if waiting else PROGRESS_SECONDS)
                self._progress()
        except BaseException:
            self._abandon()
            raise
        self._progress(final=True)
        return [r for r in self.results if r is not None]

    def _dispatch(self, waiting: deque) -> deque:
        """Start what the slots allow; keys held elsewhere wait for a later round."""
        later = deque()
        while waiting:
            index = waiting.popleft()
            if len(self.running) >= self.slots:
                later.append(index)
                continue
            if not self._start(index):
                later.append(index)
        return later

    def _start(self, index: int) -> bool:
        """Claim the cell's key and dispatch it; False when another driver holds the key
        and we wait for it."""
        cell = self.cells[index]
        state = _Running(cell, new_result(cell), 1, time.perf_counter())
        unmet = self._unschedulable(cell)
        if unmet:
            state.result.status, state.result.reason = "FAILED", unmet
            log(f"{cell.label}: FAILED — {unmet}")
            self.results[index] = state.result
            return True
        if self.store is not None:
            state.key = cell_key(cell, self._data(cell).prepared)
            state.views = cell_views(cell, self._data(cell).views)
            quiet = index in self.said_busy  # said once; the retries every few seconds are not
            claim = state.claim.enter_context(self.store.claim(
                cell.task.experiment_name, state.key, log=(lambda _: None) if quiet else log, wait=False,
                label=cell.label))
            if not claim.held and self.wait:
                state.claim.close()
                self.said_busy.add(index)
                return False
            if not claim.must_run:
                self.results[index] = reused_or_skipped(state.result, claim, cell)
                state.claim.close()
                return True
        self._submit(index, state)
        return True

    def _data(self, cell: Cell) -> TaskData:
        return self.data[cell.task.task]

    def _submit(self, index: int, state: _Running) -> None:
        cell = state.cell
        if self.store is not None:
            state.result.run_id = start_run(self.store, cell, self._data(cell).prepared, state.views, state.key,
                                            self.sandbox, {"executor": "ray", "attempt": str(state.attempt)})
            state.beat = ExitStack()
            state.beat.enter_context(self.store.heartbeat(state.result.run_id))
        digest = cell.submission.digest
        if digest not in self.files:  # once per submission
            self.files[digest] = self.ray.put(SubmissionFiles.of(cell.submission))
        need = _demand(cell)
        options = {"num_cpus": need["CPU"], "num_gpus": need["GPU"], "max_retries": 0}
        if need["memory"]:
            options["memory"] = int(need["memory"])
        state.dispatched = time.time()
        ref = self.remote.options(**options).remote(cell, self.files[digest], self.views[cell.task.task],
                                                    self.sandbox)
        self.running[ref] = (index, state)

    def _collect(self, timeout: float) -> None:
        if not self.running:
            if timeout:
                time.sleep(min(timeout, RECLAIM_SECONDS))
            return
        ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=timeout)
        for ref in ready:
            index, state = self.running.pop(ref)
            self._finish(index, state, self._outcome(ref, state))

    def _outcome(self, ref, state: _Running) -> CellOutcome:
        from ray.exceptions import RayError

        try:
            return self.ray.get(ref)
        except RayError as error:  # the worker died (killed, out of memory, node lost): the cell is lost
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            reason = f"the Ray worker running it was lost ({type(error).__name__}: {first[:300]})"
            log(f"{state.cell.label}: FAILED — {reason}")
            return CellOutcome("FAILED", reason=reason, traceback=str(error),
                               seconds=time.perf_counter() - state.started)

    def _finish(self, index: int, state: _Running, outcome: CellOutcome) -> None:
        cell = state.cell
        if outcome.status == "FAILED":
            outcome.reason = f"{outcome.reason} (attempt {state.attempt} of {ATTEMPTS})"
        if self.store is not None:
            state.beat.close()
            record(self.store, state.result.run_id, outcome, cell, self._data(cell).prepared, state.views)
        if outcome.status == "FAILED" and state.attempt < ATTEMPTS:
            log(f"{cell.label}: attempt {state.attempt} failed; running it once more")
            state.attempt += 1
            self._submit(index, state)
            return
        state.claim.close()
        self.results[index] = settle(state.result, outcome, state.started)
        if outcome.began == outcome.began:  # a lost cell has no start of its own
            self.results[index].queued_seconds = max(0.0, outcome.began - state.dispatched)

    def _unschedulable(self, cell: Cell) -> str | None:
        """Why no node of the cluster could ever run the cell (Ray would queue it forever)."""
        need = _demand(cell)
        for node in self.nodes:
            if all(node.get(kind, 0) >= amount for kind, amount in need.items() if amount):
                return None
        shards = f" for each of its {cell.workers} shards" if cell.workers > 1 else " per run"
        resources = cell.submission.card.resources
        return (f"its card asks for {resources.cpus:g} CPUs, {resources.gpus:g} GPUs"
                + (f", {resources.memory_gb:g} GB" if resources.memory_gb else "")
                + f"{shards}; no node of the Ray cluster has that ({_describe(self.ray.cluster_resources())})")

    def _progress(self, final: bool = False) -> None:
        """Said when something changed, at most every PROGRESS_SECONDS (and at the end)."""
        now = time.perf_counter()
        if not final and now - self.last_progress < PROGRESS_SECONDS:
            return
        settled = [r for r in self.results if r is not None]
        state = (len(settled), len(self.running))
        if state != self.last_state:
            log(matrix_progress(settled, len(self.cells), self.slots - 1, len(self.running), now - self.started))
        self.last_progress, self.last_state = now, state

    def _abandon(self) -> None:
        """Interrupted (Ctrl-C) or broken: cancel what runs, end its runs KILLED, let go of the keys."""
        for ref, (_, state) in list(self.running.items()):
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # already finished or gone: nothing to cancel
                pass
            state.beat.close()
            if self.store is not None and state.result.run_id:
                self.store.end(state.result.run_id, "KILLED", "the matrix's driver was interrupted")
            state.claim.close()
        self.running.clear()


def _demand(cell: Cell) -> dict[str, float]:
    """What the cell's Ray task asks for: its card's resources, once per model worker."""
    resources = cell.submission.card.resources
    return {"CPU": resources.cpus * cell.workers, "GPU": resources.gpus * cell.workers,
            "memory": (resources.memory_gb or 0) * 2**30 * cell.workers}


def _describe(resources: dict) -> str:
    parts = [f"{resources.get('CPU', 0):g} CPUs"]
    if resources.get("GPU"):
        parts.append(f"{resources['GPU']:g} GPUs")
    return ", ".join(parts)


__all__ = ["ATTEMPTS", "SubmissionFiles", "ray_cluster", "run_on_ray"]
