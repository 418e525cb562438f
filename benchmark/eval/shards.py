"""Exact sharded evaluation (DESIGN.md §12): a part's users split into contiguous
shards, each scored by its own model call (a worker process holding a fitted model)
while the others are, each into its own evaluator and recorder. Their sufficient
statistics then merge into what one pass over all users gives: per-user rows in the
same order, summaries equal to within 1e-12 (most bit for bit), the same record for the
trust passes.

Shards run in threads of this process: each call crosses into its own worker process,
so a thread mostly waits with the GIL released. The family evaluates each shard as it
evaluates any part (`evaluate_part`); nothing here depends on the family.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from benchmark.progress import track

if TYPE_CHECKING:
    from benchmark.api import TrainData
    from benchmark.data.views import EvalSet, LabelledRows
    from benchmark.families import TaskFamily
    from benchmark.scoring import Evaluation
    from benchmark.tasks.schema import TaskSpec


def split_users(n: int, shards: int) -> list[np.ndarray]:
    """The rows 0..n-1 of a part (its users; a CTR part's impressions) in `shards`
    contiguous ranges whose sizes differ by at most one, the larger first; some are
    empty when there are fewer rows than shards."""
    if isinstance(shards, bool) or not isinstance(shards, (int, np.integer)) or shards < 1:
        raise ValueError(f"the number of shards must be an integer >= 1, got {shards!r}")
    if n < 0:
        raise ValueError(f"the number of rows must be >= 0, got {n}")
    return np.array_split(np.arange(n, dtype=np.int64), int(shards))


class ShardStopped(RuntimeError):
    """A shard stopped before its next batch because another shard failed."""


class _ShardCall:
    """Shard i's model call: it refuses a new batch once any shard has failed, and
    counts each answered batch towards the one progress bar. Everything else (a
    recorder's `observe`) is the wrapped call's own."""

    def __init__(self, call: Callable, batches: queue.SimpleQueue, stop: threading.Event) -> None:
        self._call = call
        self._batches = batches
        self._stop = stop

    def __call__(self, request):
        if self._stop.is_set():
            raise ShardStopped("another shard failed")
        answer = self._call(request)
        self._batches.put(True)
        return answer

    def __getattr__(self, attribute: str):
        return getattr(self._call, attribute)


def evaluate_sharded(family: "TaskFamily", calls: Sequence[Callable], part: "EvalSet | LabelledRows",
                     task: "TaskSpec", train: "TrainData", name: str, label: str,
                     show_progress: bool = False) -> tuple["Evaluation", Callable]:
    """Evaluate `part` with calls[i] (what `family.test_call` gave for worker i) scoring
    shard i of its rows (`split_users`), all shards at once; one progress bar counts the
    batches of all of them. Returns the merged evaluation and the call for the trust
    passes: the calls' records merged into one RecordingScorer of the first shard's
    scorer when they record, else the first call. Extra calls (more than rows) stay idle.

    A shard that raises stops the others before their next batch, and its error is
    raised, with a note naming the shard: there is no partial result."""
    if not calls:
        raise ValueError("evaluate_sharded needs at least one model call")
    ranges = [rows for rows in split_users(len(part), len(calls)) if rows.size] or [np.arange(0, dtype=np.int64)]
    calls = list(calls[:len(ranges)])
    batches: queue.SimpleQueue = queue.SimpleQueue()  # True per answered batch, None per finished shard
    stop = threading.Event()

    def evaluate_shard(index: int) -> "Evaluation":
        try:
            return family.evaluate_part(_ShardCall(calls[index], batches, stop), part.subset(ranges[index]), task,
                                        train, name, label)
        except BaseException:
            stop.set()
            raise

    total = sum(-(-rows.size // task.batch_size) for rows in ranges)
    with ThreadPoolExecutor(max_workers=len(ranges), thread_name_prefix=f"{name}-{label}-shard") as pool:
        futures = [pool.submit(evaluate_shard, index) for index in range(len(ranges))]
        for future in futures:
            future.add_done_callback(lambda _: batches.put(None))
        try:
            answered = _answered_batches(batches, len(futures))
            for _ in track(answered, f"{name} scoring {label} ({len(ranges)} shards)", total) \
                    if show_progress else answered:
                pass
        except BaseException:  # Ctrl-C here: the shards stop before their next batch
            stop.set()
            raise
    _raise_first_failure(futures, ranges, name, label)
    evaluations = [future.result() for future in futures]
    merged = type(evaluations[0]).merge([evaluation.state() for evaluation in evaluations])
    return merged, _merged_call(calls)


def _answered_batches(batches: queue.SimpleQueue, shards: int) -> Iterator[None]:
    """One item per batch any shard answers, until every shard has finished."""
    running = shards
    while running:
        if batches.get() is None:
            running -= 1
        else:
            yield None


def _raise_first_failure(futures, ranges: list[np.ndarray], name: str, label: str) -> None:
    """The failure of the lowest failed shard (not one that only stopped because of it)."""
    failures = [(index, future.exception()) for index, future in enumerate(futures) if future.exception()]
    real = [(index, error) for index, error in failures if not isinstance(error, ShardStopped)] or failures
    if real:
        index, error = real[0]
        rows = ranges[index]
        span = f"rows {rows[0]}..{rows[-1]}" if rows.size else "no rows"
        error.add_note(f"in shard {index + 1} of {len(ranges)} of submission '{name}' on {label} ({span})")
        raise error


def _merged_call(calls: list[Callable]) -> Callable:
    """The calls' records as one RecordingScorer (when they record), else the first call."""
    from benchmark.trust.recording import RecordingScorer

    if not all(isinstance(call, RecordingScorer) for call in calls):
        return calls[0]
    return RecordingScorer.merge(_merged_scorer([call.score for call in calls]),
                                 [call.state() for call in calls])


def _merged_scorer(scorers: list[Callable]) -> Callable:
    """The first shard's scorer, for the trust passes; recommend() read into scores also
    counts output validity, so that one holds every shard's counts."""
    from benchmark.recommendations import RecommendationScorer

    return RecommendationScorer.merged(scorers) if isinstance(scorers[0], RecommendationScorer) else scorers[0]