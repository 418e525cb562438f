"""Exact, tie-aware single-target ranking metrics (DESIGN.md §5).

Each user has one target among its candidates. With g candidates scored strictly
above the target and t others tied with it, the target's rank is uniform on
{g+1, ..., g+t+1}; every metric reports its expectation over that range, so a
model gains nothing from how ties happen to be broken and a constant-score model
scores exactly chance.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

# Names, families and cutoff rules live in the metric registry; re-exported here.
from benchmark.eval.registry import (  # noqa: F401
    CTR_METRIC_NAMES,
    METRIC_NAMES,
    TOPK_METRIC_NAMES,
    metric_names,
    parse_metric,
)

# Score elements per counting block: ~2 MB of float32, so the block's temporaries
# stay in L2 and are reused instead of re-faulted per chunk.
_BLOCK_ELEMS = 1 << 19


# Prefix-sum tables P[r] = sum_{i=1..r} f(i), P[0] = 0, cached and grown by doubling.
_TERMS = {
    "NDCG": lambda r: 1.0 / np.log2(r + 1.0),
    "MRR": lambda r: 1.0 / r,
}
_TABLES: dict[str, torch.Tensor] = {}


def _prefix_table(kind: str, max_rank: int) -> torch.Tensor:
    table = _TABLES.get(kind)
    if table is None or table.numel() <= max_rank:
        size = max(1024, 1 << max_rank.bit_length())
        # np.cumsum adds strictly left to right, so P[r] does not depend on the table size.
        table = np.zeros(size + 1)
        np.cumsum(_TERMS[kind](np.arange(1, size + 1, dtype=np.float64)), out=table[1:])
        table = torch.from_numpy(table)
        _TABLES[kind] = table
    return table


def metrics_from_counts(greater: torch.Tensor, ties: torch.Tensor, metrics: Sequence[str]) -> dict[str, torch.Tensor]:
    """Per-user expected metric values (float64) from rank counts, keyed by metric name."""
    g = torch.as_tensor(greater, dtype=torch.int64)
    t = torch.as_tensor(ties, dtype=torch.int64)
    if g.shape != t.shape:
        raise ValueError(f"greater and ties differ in shape: {tuple(g.shape)} vs {tuple(t.shape)}")
    if g.numel() and (int(g.min()) < 0 or int(t.min()) < 0):
        raise ValueError("greater and ties must be non-negative counts")
    lo, hi = g, g + t + 1  # the target's rank lies in (lo, hi]
    n_tied = (t + 1).to(torch.float64)
    out: dict[str, torch.Tensor] = {}
    for name in metrics:
        base, k = parse_metric(name)
        lo_k, hi_k = (lo, hi) if k is None else (lo.clamp(max=k), hi.clamp(max=k))
        if base in ("HR", "Recall"):
            value = (hi_k - lo_k).to(torch.float64) / n_tied
        else:
            table = _prefix_table(base, int(hi_k.max()) if hi_k.numel() else 0)
            value = (table[hi_k] - table[lo_k]) / n_tied
        out[name] = value
    return out


def chance_level(n_candidates: int, metric: str) -> float:
    """Expected metric of a ranking that carries no information (all candidates tied)."""
    if n_candidates < 1:
        raise ValueError(f"n_candidates must be >= 1, got {n_candidates}")
    values = metrics_from_counts(torch.zeros(1, dtype=torch.int64), torch.tensor([n_candidates - 1]), [metric])
    return float(values[metric][0])


def _work_dtype(scores: torch.Tensor) -> torch.dtype:
    # Counts are float sums of +-1; float32 adds integers exactly only below 2**24.
    if scores.dtype == torch.float64 or scores.shape[1] >= 1 << 24:
        return torch.float64
    return torch.float32


def _count_block(
    block: torch.Tensor, target: torch.Tensor, buf: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(greater, ties, rows holding NaN) for one block of rows; target is [rows, 1]."""
    n_cands = block.shape[1]
    d = buf[: block.shape[0]]
    # sign(s - target) is +1/0/-1 exactly (gradual underflow makes s - t == 0 iff s == t;
    # torch.set_flush_denormal(True) would break that, and it is off by default), and
    # torch's sub/sign/sum kernels are several times faster than gt/eq + count_nonzero.
    torch.sub(block, target, out=d)
    # NaN (a NaN score, or inf - inf) must be caught here: torch.sign maps NaN to 0, a tie.
    invalid = torch.isnan(d.amax(1))  # amax propagates NaN and is nearly free on a cached block
    d.sign_()
    signed = d.sum(1)  # greater - less
    d.abs_()
    unequal = d.sum(1)  # greater + less
    greater = ((signed + unequal) * 0.5).to(torch.int64)
    ties = (n_cands - 1) - unequal.to(torch.int64)
    if invalid.any():
        # Rows whose target is +-inf: inf - inf is NaN, so count those by comparison.
        inf_rows = torch.nonzero(invalid & torch.isinf(target[:, 0])).flatten()
        if inf_rows.numel():
            rows, tgt = block[inf_rows], target[inf_rows]
            greater[inf_rows] = (rows > tgt).sum(1)
            ties[inf_rows] = (rows == tgt).sum(1) - 1
            invalid[inf_rows] = torch.isnan(rows).any(1)
    return greater, ties, invalid


def _rank_counts(
    scores: torch.Tensor, target_cols: torch.Tensor, buf: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Counts in row blocks, so temporaries are one small block whatever the chunk size."""
    n, m = scores.shape
    if n and (int(target_cols.min()) < 0 or int(target_cols.max()) >= m):
        raise ValueError(f"target column out of range [0, {m})")
    dtype = _work_dtype(scores)
    rows_per_block = max(1, _BLOCK_ELEMS // max(m, 1))
    if buf is None or buf.dtype != dtype or buf.shape[1] != m or buf.shape[0] < min(rows_per_block, n):
        buf = torch.empty((min(rows_per_block, n), m), dtype=dtype)
    target = scores.gather(1, target_cols[:, None])
    greater = torch.empty(n, dtype=torch.int64)
    ties = torch.empty(n, dtype=torch.int64)
    invalid = torch.empty(n, dtype=torch.bool)
    with _single_threaded():
        for start in range(0, n, rows_per_block):
            sl = slice(start, start + rows_per_block)
            greater[sl], ties[sl], invalid[sl] = _count_block(scores[sl], target[sl].to(dtype), buf)
    return greater, ties, invalid, buf


@contextlib.contextmanager
def _single_threaded() -> Iterator[None]:
    # Each block is a handful of small ops; with intra-op threads every op ends in an
    # OpenMP barrier, and when other processes load the cores each barrier can wait a
    # whole scheduler slice (2 loaded cores: 264 users/s with 2 threads, 15,000 with 1).
    # One thread is already far faster than a model produces scores. With OpenMP (the
    # Linux wheels) the setting belongs to the calling Python thread, so evaluators
    # running at once in threads (shards, benchmark.eval.shards) each set and restore
    # their own.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def target_rank_counts(scores: torch.Tensor, target_cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(greater, ties) int64 per row: candidates scored above the target, and others tied with it.

    `scores` is already masked (excluded candidates at -inf). O(n_cands) per row, no sort.
    """
    if scores.dim() != 2:
        raise ValueError(f"scores must be 2-D [n_users, n_candidates], got shape {tuple(scores.shape)}")
    if not scores.is_floating_point():
        raise TypeError(f"scores must be floating point, got {scores.dtype}")
    if scores.dtype not in (torch.float32, torch.float64):
        scores = scores.to(torch.float32)  # half sums of +-1 lose exactness past 2048
    greater, ties, invalid, _ = _rank_counts(scores, torch.as_tensor(target_cols, dtype=torch.int64))
    if invalid.any():
        raise ValueError(f"scores contain NaN in rows {torch.nonzero(invalid).flatten()[:10].tolist()}")
    return greater, ties


def agreed(states: Sequence[Any], field: str) -> Any:
    """The value of `field` that every state to merge shares; a ValueError when they differ or there are none."""
    if not states:
        raise ValueError("no states to merge")
    first = getattr(states[0], field)
    for index, state in enumerate(states[1:], start=1):
        value = getattr(state, field)
        same = np.array_equal(first, value) if isinstance(first, np.ndarray) or isinstance(value, np.ndarray) \
            else first == value
        if not same:
            raise ValueError(f"cannot merge states: field '{field}' of state {index} ({value!r:.80}) "
                             f"differs from state 0's ({first!r:.80})")
    return first


@dataclass(frozen=True)
class RankingState:
    """A RankingEvaluator's sufficient statistics: per user, in the order added, its rank counts."""

    metrics: tuple[str, ...]
    users: np.ndarray
    greater: np.ndarray
    ties: np.ndarray


class RankingEvaluator:
    """Accumulates per-user rank counts chunk by chunk, so only one chunk's score matrix ever exists.

    Users split across evaluators (shards) merge exactly: `merge([e.state() for e in shards])`
    gives the per-user rows of all shards in shard order, and so the same summary.
    """

    def __init__(self, metrics: Sequence[str]) -> None:
        metrics = list(metrics)
        if not metrics:
            raise ValueError("at least one metric is required")
        for name in metrics:
            parse_metric(name)
        dupes = sorted({m for m in metrics if metrics.count(m) > 1})
        if dupes:
            raise ValueError(f"metrics listed more than once: {dupes}")
        self.metrics = tuple(metrics)
        self._users: list[np.ndarray] = []
        self._greater: list[np.ndarray] = []
        self._ties: list[np.ndarray] = []
        self._buf: torch.Tensor | None = None  # block scratch, reused across add() calls

    def add(
        self,
        users: np.ndarray,
        scores: np.ndarray,
        target_cols: np.ndarray,
        exclude: Sequence[np.ndarray] | None = None,
    ) -> None:
        """Count ranks for one chunk. exclude[i]: columns removed from user i's candidates (never its target)."""
        scores = np.asarray(scores)
        if scores.ndim != 2:
            raise ValueError(f"scores must be 2-D [n_users, n_candidates], got shape {scores.shape}")
        if not np.issubdtype(scores.dtype, np.floating):
            raise TypeError(f"scores must be floating point, got {scores.dtype}")
        if scores.dtype not in (np.float32, np.float64):
            scores = scores.astype(np.float32)
        n, m = scores.shape
        users = np.asarray(users)
        target_cols = np.asarray(target_cols)
        if users.shape != (n,) or target_cols.shape != (n,):
            raise ValueError(
                f"users {users.shape} and target_cols {target_cols.shape} must both have shape ({n},) to match scores"
            )
        if not np.issubdtype(target_cols.dtype, np.integer):
            raise TypeError(f"target_cols must be integers, got {target_cols.dtype}")
        if n == 0:
            return
        target_cols = target_cols.astype(np.int64, copy=False)
        if target_cols.min() < 0 or target_cols.max() >= m:
            bad = users[(target_cols < 0) | (target_cols >= m)][:10].tolist()
            raise ValueError(f"target column out of range [0, {m}) for users {bad}")

        scores = np.ascontiguousarray(scores)
        with warnings.catch_warnings():
            # Read-only arrays are fine: we never write through this view.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            scores_t, target_t = torch.from_numpy(scores), torch.from_numpy(target_cols)
        greater_t, ties_t, invalid, self._buf = _rank_counts(scores_t, target_t, self._buf)
        if invalid.any():
            raise ValueError(f"scores contain NaN for users {users[invalid.numpy()][:10].tolist()}")
        greater, ties = greater_t.numpy(), ties_t.numpy()

        if exclude is not None:
            if len(exclude) != n:
                raise ValueError(f"exclude has {len(exclude)} entries for {n} users")
            self._remove_excluded(users, scores, target_cols, exclude, greater, ties)

        self._users.append(users.copy())
        self._greater.append(greater)
        self._ties.append(ties)

    @staticmethod
    def _remove_excluded(
        users: np.ndarray,
        scores: np.ndarray,
        target_cols: np.ndarray,
        exclude: Sequence[np.ndarray],
        greater: np.ndarray,
        ties: np.ndarray,
    ) -> None:
        # Rather than copying the chunk and writing -inf (a full pass plus a big buffer),
        # subtract each excluded candidate's contribution: O(#excluded). Same result as
        # masking whenever the target is finite, and correct even when it is -inf.
        n, m = scores.shape
        cols_list = [np.asarray(e, dtype=np.int64).ravel() for e in exclude]
        lens = np.fromiter((c.size for c in cols_list), dtype=np.int64, count=n)
        if not lens.any():
            return
        cols = np.concatenate(cols_list)
        rows = np.repeat(np.arange(n, dtype=np.int64), lens)
        out_of_range = (cols < 0) | (cols >= m)
        if out_of_range.any():
            bad = np.unique(users[rows[out_of_range]])[:10].tolist()
            raise ValueError(f"exclude has column indices outside [0, {m}) for users {bad}")
        keep = cols != target_cols[rows]  # the target is never masked
        key = np.unique(rows[keep] * m + cols[keep])  # a column listed twice counts once
        rows, cols = np.divmod(key, m)
        values = scores[rows, cols]
        target_values = scores[rows, target_cols[rows]]
        greater -= np.bincount(rows[values > target_values], minlength=n)
        ties -= np.bincount(rows[values == target_values], minlength=n)

    def state(self) -> RankingState:
        """The rank counts of every user added so far (picklable; see `merge`)."""
        if self._users:
            return RankingState(self.metrics, np.concatenate(self._users), np.concatenate(self._greater),
                                np.concatenate(self._ties))
        empty = np.empty(0, dtype=np.int64)
        return RankingState(self.metrics, empty, empty, empty)

    @classmethod
    def merge(cls, states: Sequence[RankingState]) -> "RankingEvaluator":
        """An evaluator holding the users of `states` in that order (states of the same metrics)."""
        evaluator = cls(agreed(states, "metrics"))
        for state in states:
            evaluator._users.append(state.users)
            evaluator._greater.append(state.greater)
            evaluator._ties.append(state.ties)
        return evaluator

    def per_user(self) -> pd.DataFrame:
        """One row per added user: user, greater, ties, then one column per metric."""
        state = self.state()
        users, greater, ties = state.users, state.greater, state.ties
        values = metrics_from_counts(torch.from_numpy(greater), torch.from_numpy(ties), self.metrics)
        frame = pd.DataFrame({"user": users, "greater": greater, "ties": ties})
        for name in self.metrics:
            frame[name] = values[name].numpy()
        return frame

    def summary(self) -> dict[str, float]:
        """Mean over users of each metric."""
        if not self._users:
            raise ValueError("no users were added; nothing to summarise")
        frame = self.per_user()
        return {name: float(math.fsum(frame[name]) / len(frame)) for name in self.metrics}
