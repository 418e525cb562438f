"""Exact, tie-aware multi-target top-K metrics (DESIGN.md §5).

Each user has a set R of relevant items among its candidates. Equal scores are ties,
every order within a tie group is equally likely (independently per user), and every
metric reports its exact expectation over those orders (McSherry & Najork 2008,
"Computing IR performance measures efficiently in the presence of tied scores").

For relevant item j: g = candidates scored strictly above it, n = its tie group's size
(itself included), r = relevant items in that group, B = relevant items strictly above.
Its position is uniform on g+1..g+n, so Recall, Precision, NDCG and MAP follow by
linearity; HR and MRR depend only on the best group holding a relevant item.
ItemCoverage and ARP use P(item i in user u's top K), which is 1 above the group that
straddles position K, (K - g_K)/n_K inside it, and 0 below.

Only positions up to the largest K matter, so each row gets a partial top-K selection
and one full-row count of the group at that boundary, never a full sort.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from benchmark.eval.metrics import _prefix_table, _single_threaded, agreed
from benchmark.eval.registry import SPECS, parse_metric

# Score elements per block: the block is copied and masked, and its comparison
# temporaries (bool and float64) stay ~16 MB whatever the chunk size.
_BLOCK_ELEMS = 1 << 20

_BEYOND_ACCURACY = ("ItemCoverage", "ARP")


@dataclass(frozen=True)
class TopKState:
    """A TopKEvaluator's sufficient statistics: its set-up, the per-user columns in the
    order added, and per ItemCoverage/ARP cutoff K the catalogue-wide coverage
    accumulators (items certainly in some top K; sum over users of log P(not in the top K))."""

    metrics: tuple[str, ...]
    n_items: int
    item_popularity: np.ndarray | None
    users: np.ndarray
    n_relevant: np.ndarray
    n_candidates: np.ndarray
    values: dict[str, np.ndarray]  # per per-user metric
    covered: dict[int, np.ndarray]
    log_missed: dict[int, np.ndarray]


class TopKEvaluator:
    """Accumulates exact expected top-K metrics chunk by chunk over users; columns are catalogue items.

    Users split across evaluators (shards) merge: `merge([e.state() for e in shards])` has
    the per-user rows of all shards in shard order; coverage sums its log terms in
    another order, so ItemCoverage@K agrees to rounding (far below 1e-12).
    """

    def __init__(self, metrics: Sequence[str], n_items: int, item_popularity: np.ndarray | None = None) -> None:
        metrics = list(metrics)
        if not metrics:
            raise ValueError("at least one metric is required")
        parsed = [parse_metric(name, "topk") for name in metrics]
        dupes = sorted({m for m in metrics if metrics.count(m) > 1})
        if dupes:
            raise ValueError(f"metrics listed more than once: {dupes}")
        if n_items < 1:
            raise ValueError(f"n_items must be >= 1, got {n_items}")
        self.metrics = tuple(metrics)
        self.n_items = int(n_items)
        self._parsed = dict(zip(metrics, parsed))
        self._beyond_ks = sorted({k for base, k in parsed if base in _BEYOND_ACCURACY})

        self._popularity: torch.Tensor | None = None
        self._item_popularity: np.ndarray | None = None  # as given, for state()
        if any(base == "ARP" for base, _ in parsed):
            if item_popularity is None:
                raise ValueError("ARP needs item_popularity (training interactions per item)")
            pop = np.asarray(item_popularity, dtype=np.float64)
            if pop.shape != (self.n_items,):
                raise ValueError(f"item_popularity has shape {pop.shape}, expected ({self.n_items},)")
            if not np.isfinite(pop).all() or (pop < 0).any():
                raise ValueError("item_popularity must be finite and non-negative")
            self._item_popularity = pop.copy()
            self._popularity = torch.from_numpy(self._item_popularity)

        # Coverage: items certainly in some top-K, and sum over users of log P(not in top-K).
        self._covered = {k: torch.zeros(self.n_items, dtype=torch.bool) for k in self._beyond_ks}
        self._log_missed = {k: torch.zeros(self.n_items, dtype=torch.float64) for k in self._beyond_ks}
        self._users: list[np.ndarray] = []
        self._n_relevant: list[np.ndarray] = []
        self._n_candidates: list[np.ndarray] = []
        self._values: dict[str, list[np.ndarray]] = {name: [] for name in self._per_user_metrics}
        self._k_max = max(k for _, k in parsed)
        self._work: torch.Tensor | None = None  # block scratch (masked copy), reused across add() calls

    @property
    def _per_user_metrics(self) -> tuple[str, ...]:
        return tuple(name for name in self.metrics if SPECS[self._parsed[name][0]].per_user_column is not None)

    def add(
        self,
        users: np.ndarray,
        scores: np.ndarray,
        targets: Sequence[np.ndarray],
        exclude: Sequence[np.ndarray] | None = None,
    ) -> None:
        """Evaluate one chunk. targets[i]: user i's relevant columns (non-empty);
        exclude[i]: columns removed from its candidates (relevant ones are kept)."""
        scores = np.asarray(scores)
        if scores.ndim != 2:
            raise ValueError(f"scores must be 2-D [n_users, n_items], got shape {scores.shape}")
        if not np.issubdtype(scores.dtype, np.floating):
            raise TypeError(f"scores must be floating point, got {scores.dtype}")
        n, m = scores.shape
        if m != self.n_items:
            raise ValueError(f"scores have {m} columns but the catalogue has n_items={self.n_items}")
        users = np.asarray(users)
        if users.shape != (n,):
            raise ValueError(f"users has shape {users.shape}, expected ({n},) to match scores")
        if len(targets) != n:
            raise ValueError(f"targets has {len(targets)} entries for {n} users")
        if exclude is not None and len(exclude) != n:
            raise ValueError(f"exclude has {len(exclude)} entries for {n} users")
        if n == 0:
            return

        rel_rows, rel_cols = _flatten_columns(targets, users, m, "targets")
        n_rel = np.bincount(rel_rows, minlength=n)
        if (n_rel == 0).any():
            raise ValueError(f"targets are empty for users {users[n_rel == 0][:10].tolist()}")
        ex_rows, ex_cols = (np.empty(0, np.int64),) * 2
        if exclude is not None:
            ex_rows, ex_cols = _flatten_columns(exclude, users, m, "exclude")
            keep = ~np.isin(ex_rows * m + ex_cols, rel_rows * m + rel_cols, assume_unique=True)
            ex_rows, ex_cols = ex_rows[keep], ex_cols[keep]  # a relevant item is never excluded
        n_excluded = np.bincount(ex_rows, minlength=n)

        # Relevant columns padded to [n, r_max] with copies of each row's last one.
        r_max = int(n_rel.max())
        starts = np.concatenate(([0], np.cumsum(n_rel)[:-1]))
        slot = np.minimum(np.arange(r_max), n_rel[:, None] - 1)
        rel_padded = torch.from_numpy(rel_cols[starts[:, None] + slot])

        dtype = torch.float64 if scores.dtype == np.float64 else torch.float32
        with warnings.catch_warnings():
            # Read-only arrays are fine: scores are only ever copied out of.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            scores_t = torch.from_numpy(np.ascontiguousarray(scores))
        stats = {key: torch.empty((n, r_max), dtype=torch.int64) for key in ("g", "n", "r", "b")}
        top_pop = {k: torch.empty(n, dtype=torch.float64) for k in self._beyond_ks}
        covered = {k: torch.zeros(m, dtype=torch.bool) for k in self._beyond_ks}
        log_missed = {k: torch.zeros(m, dtype=torch.float64) for k in self._beyond_ks}
        e_all = torch.from_numpy(n_excluded)
        ex_rows_t, ex_cols_t = torch.from_numpy(ex_rows), torch.from_numpy(ex_cols)
        block_bounds = np.searchsorted(ex_rows, np.arange(0, n + 1))  # ex_rows is sorted

        k_top = min(self._k_max, m)
        rows_per_block = max(1, _BLOCK_ELEMS // m)
        self._ensure_buffer(min(rows_per_block, n), m, dtype)
        with _single_threaded():
            for a in range(0, n, rows_per_block):
                b = min(a + rows_per_block, n)
                work = self._work[: b - a]
                work.copy_(scores_t[a:b])
                lo, hi = block_bounds[a], block_bounds[b]
                er, ec = ex_rows_t[lo:hi] - a, ex_cols_t[lo:hi]
                # NaN anywhere in a row fails it, excluded columns included (as RankingEvaluator does).
                invalid = torch.zeros(b - a, dtype=torch.bool)
                invalid[er[torch.isnan(work[er, ec])]] = True
                work[er, ec] = -math.inf  # excluded columns sink below every candidate
                # Only positions <= K_max matter, so a partial selection replaces a full sort.
                top, top_idx = torch.topk(work, k_top, dim=1)  # descending; NaN counts as largest
                invalid |= torch.isnan(top[:, 0])
                if invalid.any():
                    bad = users[a + torch.nonzero(invalid).flatten().numpy()][:10].tolist()
                    raise ValueError(f"scores contain NaN for users {bad}")
                e = e_all[a:b, None]
                top_asc = top.flip(1)
                # The boundary group at position min(K_max, #candidates): everything above it
                # lies in `top`, so only this group needs a count over the whole row (where the
                # excluded columns' -inf ties with a -inf candidate).
                kth = top.gather(1, torch.clamp(m - e, max=self._k_max) - 1)
                kth_group = (work == kth).sum(1, keepdim=True) - (kth == -math.inf) * e

                rv = work.gather(1, rel_padded[a:b])
                right = torch.searchsorted(top_asc, rv, right=True)
                # Below the boundary, g comes out as K_max (all of `top` is above): no metric counts it.
                stats["g"][a:b] = k_top - right
                group = torch.where(rv == kth, kth_group, right - torch.searchsorted(top_asc, rv))
                stats["n"][a:b] = torch.where(rv < kth, 1, group)  # any n >= 1 will do there
                # Among the relevant items; the padding copies the last column, so uncount it.
                pad = r_max - torch.from_numpy(n_rel[a:b, None])
                last = rv[:, -1:]
                rv_sorted = rv.sort(dim=1).values
                right = torch.searchsorted(rv_sorted, rv, right=True)
                stats["b"][a:b] = r_max - right - pad * (last > rv)
                stats["r"][a:b] = right - torch.searchsorted(rv_sorted, rv) - pad * (last == rv)

                if self._beyond_ks:
                    work[er, ec] = math.nan  # compares false with everything below
                    for k in self._beyond_ks:
                        cutoff = top.gather(1, torch.clamp(m - e, max=k) - 1)
                        right = torch.searchsorted(top_asc, cutoff, right=True)
                        tied = torch.where(cutoff == kth, kth_group, right - torch.searchsorted(top_asc, cutoff))
                        self._top_k_probabilities(work, top, top_idx, cutoff, k_top - right, tied,
                                                  torch.clamp(m - e, max=k), covered[k], log_missed[k], top_pop[k], a)

            valid = torch.arange(r_max) < torch.from_numpy(n_rel)[:, None]
            values = _accuracy_metrics(stats, valid, torch.from_numpy(n_rel), self._parsed, self._per_user_metrics)
        n_cands = m - n_excluded
        for name in self._per_user_metrics:
            base, k = self._parsed[name]
            if base == "ARP":
                values[name] = top_pop[k].numpy() / np.minimum(k, n_cands)
        # Only a chunk that passed every check reaches the accumulators.
        for k in self._beyond_ks:
            self._covered[k] |= covered[k]
            self._log_missed[k] += log_missed[k]
        self._users.append(users.copy())
        self._n_relevant.append(n_rel)
        self._n_candidates.append(n_cands)
        for name in self._per_user_metrics:
            self._values[name].append(values[name])

    def _top_k_probabilities(
        self,
        work: torch.Tensor,
        top: torch.Tensor,
        top_idx: torch.Tensor,
        cutoff: torch.Tensor,
        above: torch.Tensor,
        tied: torch.Tensor,
        k_u: torch.Tensor,
        covered: torch.Tensor,
        log_missed: torch.Tensor,
        top_pop: torch.Tensor,
        a: int,
    ) -> None:
        """Fold one block's P(item in top-K) into coverage and popularity.

        cutoff: each row's value at position K (k_u = K, or all candidates when fewer);
        above/tied: candidates above it and in its group; top/top_idx: the row's partial
        selection. work holds NaN at excluded columns.
        """
        p_tie = (k_u - above).to(torch.float64) / tied  # [rows, 1]
        # Usually the cutoff's group lies inside the selection; otherwise (a group that runs
        # past it, or a -inf cutoff, which the selection may fill with excluded columns)
        # the row is compared in full.
        spill = (((top == cutoff).sum(1, keepdim=True) < tied) | (cutoff == -math.inf))[:, 0]
        p = torch.where(top > cutoff, 1.0, torch.where(top == cutoff, p_tie, 0.0))
        p[spill] = 0.0
        covered[top_idx[p == 1.0]] = True
        partial = (p > 0.0) & (p < 1.0)
        log_missed.index_add_(0, top_idx[partial], torch.log1p(-p[partial]))  # log P(not in this top-K)
        rows = a + torch.arange(work.shape[0])
        if self._popularity is not None:
            top_pop[rows] = (p * self._popularity[top_idx]).sum(1)
        if not spill.any():
            return
        work, cutoff, p_tie, rows = work[spill], cutoff[spill], p_tie[spill, 0], rows[spill]
        gt = work > cutoff
        eq = (work == cutoff).to(torch.float64)
        whole = p_tie == 1.0
        covered |= gt.any(0)
        if whole.any():
            covered |= eq[whole].any(0)
        # Rows whose whole group is in are counted as covered just above.
        log_missed += torch.where(whole, 0.0, torch.log1p(-p_tie)) @ eq
        if self._popularity is not None:
            pop = self._popularity
            top_pop[rows] = gt.to(torch.float64) @ pop + p_tie * (eq @ pop)

    def _ensure_buffer(self, rows: int, m: int, dtype: torch.dtype) -> None:
        buf = self._work
        if buf is None or buf.dtype != dtype or buf.shape[1] != m or buf.shape[0] < rows:
            self._work = torch.empty((rows, m), dtype=dtype)

    def state(self) -> TopKState:
        """Everything added so far (picklable; see `merge`)."""
        def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
            return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)

        return TopKState(
            self.metrics, self.n_items, self._item_popularity,
            cat(self._users, np.int64), cat(self._n_relevant, np.int64), cat(self._n_candidates, np.int64),
            {name: cat(self._values[name], np.float64) for name in self._per_user_metrics},
            {k: v.numpy().copy() for k, v in self._covered.items()},
            {k: v.numpy().copy() for k, v in self._log_missed.items()})

    @classmethod
    def merge(cls, states: Sequence[TopKState]) -> "TopKEvaluator":
        """An evaluator holding the users of `states` in that order (states of one set-up)."""
        evaluator = cls(agreed(states, "metrics"), agreed(states, "n_items"), agreed(states, "item_popularity"))
        for state in states:
            evaluator._users.append(state.users)
            evaluator._n_relevant.append(state.n_relevant)
            evaluator._n_candidates.append(state.n_candidates)
            for name in evaluator._per_user_metrics:
                evaluator._values[name].append(state.values[name])
            for k in evaluator._beyond_ks:
                evaluator._covered[k] |= torch.from_numpy(state.covered[k])
                evaluator._log_missed[k] += torch.from_numpy(state.log_missed[k])
        return evaluator

    def per_user(self) -> pd.DataFrame:
        """One row per added user: user, n_relevant, n_candidates, then one column per per-user metric."""
        state = self.state()
        frame = pd.DataFrame({"user": state.users, "n_relevant": state.n_relevant,
                              "n_candidates": state.n_candidates})
        for name in self._per_user_metrics:
            frame[name] = state.values[name]
        return frame

    def summary(self) -> dict[str, float]:
        """Mean over users of each per-user metric; ItemCoverage@K over the whole catalogue."""
        if not self._users:
            raise ValueError("no users were added; nothing to summarise")
        frame = self.per_user()
        out = {}
        for name in self.metrics:
            base, k = self._parsed[name]
            if base == "ItemCoverage":
                p_covered = torch.where(self._covered[k], 1.0, -torch.expm1(self._log_missed[k]))
                out[name] = math.fsum(p_covered.tolist()) / self.n_items
            else:
                out[name] = math.fsum(frame[name]) / len(frame)
        return out


def _flatten_columns(lists: Sequence[np.ndarray], users: np.ndarray, m: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of per-user column lists, sorted by row then column, duplicates dropped."""
    arrays = [np.asarray(x).ravel() for x in lists]
    for i, x in enumerate(arrays):
        if x.size and not np.issubdtype(x.dtype, np.integer):
            raise TypeError(f"{what} for user {users[i]!r} must be integer column indices, got {x.dtype}")
    lens = np.fromiter((x.size for x in arrays), dtype=np.int64, count=len(arrays))
    cols = np.concatenate(arrays).astype(np.int64) if lens.any() else np.empty(0, np.int64)
    rows = np.repeat(np.arange(len(arrays), dtype=np.int64), lens)
    bad = (cols < 0) | (cols >= m)
    if bad.any():
        raise ValueError(f"{what} has column indices outside [0, {m}) for users {np.unique(users[rows[bad]])[:10].tolist()}")
    rows, cols = np.divmod(np.unique(rows * m + cols), m)
    return rows, cols


def _accuracy_metrics(
    stats: dict[str, torch.Tensor],
    valid: torch.Tensor,
    n_rel: torch.Tensor,
    parsed: dict[str, tuple[str, int | None]],
    names: Sequence[str],
) -> dict[str, np.ndarray]:
    """Per-user expected Recall/Precision/NDCG/MAP/HR/MRR (float64) from the tie-group counts."""
    rows = torch.nonzero(valid)[:, 0]
    g, n, r, b = (stats[key][valid] for key in ("g", "n", "r", "b"))
    n_f = n.to(torch.float64)
    n_users = valid.shape[0]

    def per_user_sum(x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(n_users, dtype=torch.float64).index_add_(0, rows, x)

    # HR and MRR: the best tie group holding a relevant item (g*, n*, r*), and
    # S[t] = P(its first t positions hold no relevant item) = C(n*-r*, t) / C(n*, t).
    hr_ks = [parsed[x][1] for x in names if parsed[x][0] in ("HR", "MRR")]
    if hr_ks:
        best = torch.where(valid, stats["g"], torch.iinfo(torch.int64).max).argmin(1, keepdim=True)
        gs, ns, rs = (stats[key].gather(1, best)[:, 0] for key in ("g", "n", "r"))
        i = torch.arange(max(hr_ks))
        ratio = (ns[:, None] - rs[:, None] - i).clamp(min=0).to(torch.float64) / (ns[:, None] - i).clamp(min=1)
        s = torch.cat([torch.ones(n_users, 1, dtype=torch.float64), ratio.cumprod(1)], 1)
        # P(first relevant at group position i) = S[i-1] * r* / (n* - i + 1), for i <= n*.
        pos = i + 1
        first_at = s[:, :-1] * rs[:, None] / (ns[:, None] - pos + 1).clamp(min=1) / (gs[:, None] + pos)

    out: dict[str, np.ndarray] = {}
    for name in names:
        base, k = parsed[name]
        if base == "ARP":
            continue  # filled in from the top-K probabilities
        u = (k - g).clamp(min=0, max=None).minimum(n)  # positions of the group inside the top K
        if base in ("Recall", "Precision"):
            hits = per_user_sum(u / n_f)
            value = hits / n_rel if base == "Recall" else hits / k
        elif base == "NDCG":
            table = _prefix_table("NDCG", k)
            dcg = per_user_sum((table[(g + n).clamp(max=k)] - table[g.clamp(max=k)]) / n_f)
            value = dcg / table[n_rel.clamp(max=k)]
        elif base == "MAP":
            # Given position g+u, the group's other relevant items expected before it:
            # (u-1)c with c = (r-1)/(n-1); so sum_u (b+1+(u-1)c)/(g+u)
            # = (b+1-c(g+1)) (H[g+U]-H[g]) + cU, with H the harmonic prefix sums.
            h = _prefix_table("MRR", k)
            c = torch.where(n > 1, (r - 1).to(torch.float64) / (n - 1).clamp(min=1), 0.0)
            harmonic = h[(g + u).clamp(max=k)] - h[g.clamp(max=k)]
            precision_sum = ((b + 1) - c * (g + 1)) * harmonic + c * u
            value = per_user_sum(precision_sum / n_f) / n_rel.clamp(max=k)
        elif base == "HR":
            value = 1.0 - s.gather(1, (k - gs).clamp(min=0).minimum(ns)[:, None])[:, 0]
        else:  # MRR
            in_top = (pos[None, :] <= (k - gs)[:, None]) & (pos[None, :] <= ns[:, None])
            value = torch.where(in_top, first_at, 0.0).sum(1)
        out[name] = value.to(torch.float64).numpy()
    return out
