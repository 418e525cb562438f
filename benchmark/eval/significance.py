"""The suite's one paired significance test: used by the leaderboard ("vs leader") and by
the paradigm study's pair tables. A two-sided paired t-test on per-user values, seeds
matched one by one, Holm-corrected over a task's comparisons.

Why the paired t-test and not Wilcoxon's signed-rank test: rows are ranked by the mean
over users, and the t-test asks exactly whether the mean per-user difference is zero.
With hundreds of users the mean difference is close to normal even though per-user NDCG
is not. Wilcoxon asks about the median of the differences and drops (or splits) the many
users whose difference is exactly zero (both models miss the target), so it can disagree
with the ranking it is meant to qualify.

Pairing: a row (a submission version with one set of hyperparameters) has one run per
seed. Two rows are compared on the seeds they share only, seed by seed: the same seed
and the same evaluation draw (the candidate-set hash of a sampled-candidate task, which
differs per seed), so a user's two values come from the same candidates. A user's paired
value is the mean over the shared seeds of the difference; users either row lacks drop
out.
"""
from __future__ import annotations

from typing import Hashable, Iterable

import numpy as np
import pandas as pd

ALPHA = 0.05
TEST_NAME = ("paired t-test on per-user values (two-sided; over the seeds both rows share, matched seed by "
             "seed), Holm-corrected over the task's comparisons")
_TESTS = ["n_users", "test_seeds", "diff", "p_value"]


def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values, in the order given; NaN entries are
    left out of the family and stay NaN."""
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full_like(p, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    if not len(valid):
        return adjusted
    order = valid[np.argsort(p[valid], kind="stable")]
    m = len(order)
    scaled = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    adjusted[order] = np.minimum(scaled, 1.0)
    return adjusted


def t_test_rows(diff: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-sample t-test of mean = 0 on each row of `diff` (rows x users, NaN = no
    value): (users, mean, two-sided p). No spread gives p = 1 for a zero mean and 0
    otherwise (t is 0 or infinite); fewer than two users give NaN."""
    from scipy import stats

    diff = np.atleast_2d(np.asarray(diff, dtype=float))
    valid = ~np.isnan(diff)
    n = valid.sum(axis=1)
    filled = np.where(valid, diff, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=1) / n
        sd = np.sqrt((((filled - mean[:, None]) * valid) ** 2).sum(axis=1) / (n - 1))
        p = 2 * stats.t.sf(np.abs(mean / (sd / np.sqrt(n))), n - 1)
    p = np.where(sd <= 1e-15, np.where(np.abs(mean) <= 1e-15, 1.0, 0.0), p)
    return n, np.where(n > 0, mean, np.nan), np.where(n < 2, np.nan, p)


def paired_pvalue(a, b) -> float:
    """Two-sided paired t-test of mean(a - b) = 0 for aligned arrays; NaN with fewer than two users."""
    return float(t_test_rows(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))[2][0])


def seed_matrix(per_user: pd.DataFrame, runs: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per-user values of `column`, rows (key, draw), columns users.

    per_user: `run_id`, `user`, `column` (per_user_metrics.parquet of many runs).
    runs: `run_id`, `key` (the row a run belongs to), `seed`, and optionally `draw`
    (a hash of what the run was evaluated on; NaN when the run logged none). Runs
    without a seed cannot be matched and are left out."""
    seeds = pd.to_numeric(runs["seed"], errors="coerce")
    runs, seeds = runs[seeds.notna()], seeds.dropna()
    draw = runs["draw"] if "draw" in runs else pd.Series(None, index=runs.index, dtype=object)
    label = seeds.map("{:g}".format) + ("/" + draw.astype("string")).fillna("")
    owner = pd.DataFrame({"key": runs["key"].to_numpy(), "draw": label.to_numpy()}, index=runs["run_id"].to_numpy())
    rows = per_user.loc[per_user["run_id"].isin(owner.index), ["run_id", "user", column]]
    if rows.empty:
        return pd.DataFrame(index=pd.MultiIndex.from_arrays([[], []], names=["key", "draw"]))
    ids = rows["run_id"].astype(object).to_numpy()
    rows = rows.assign(key=owner["key"].reindex(ids).to_numpy(), draw=owner["draw"].reindex(ids).to_numpy())
    return rows.groupby(["key", "draw", "user"], sort=False)[column].mean().unstack("user")


def paired_tests(matrix: pd.DataFrame, reference: Hashable, others: Iterable[Hashable] | None = None) -> pd.DataFrame:
    """The paired test of `reference` against each of `others` (default: every other key
    of `matrix`, see seed_matrix), vectorized over them. Per other key: n_users,
    test_seeds (the seeds both share), diff (reference minus other, mean over users of
    the per-user paired value) and p_value (NaN when fewer than two users pair up)."""
    keys = matrix.index.get_level_values("key")
    if others is None:
        others = [k for k in dict.fromkeys(keys) if k != reference]
    others = [k for k in others if k != reference]
    if reference not in set(keys) or not others:
        return pd.DataFrame({"key": others} | {c: np.nan for c in _TESTS})
    mine = matrix.xs(reference, level="key")
    rest = matrix[keys.isin(others)]
    draws = rest.index.get_level_values("draw")
    rest = rest[draws.isin(mine.index)]
    shared = rest.index.get_level_values("draw")
    diff = pd.DataFrame(mine.reindex(shared).to_numpy() - rest.to_numpy(),
                        index=rest.index.get_level_values("key"), columns=matrix.columns)
    grouped = diff.groupby(level=0, sort=False)
    per_user = grouped.mean().reindex(others)  # NaN-skipping: over the shared seeds that hold the user
    n, mean, p = t_test_rows(per_user.to_numpy())
    seeds = grouped.size().reindex(others).fillna(0).astype(int)
    return pd.DataFrame({"key": others, "n_users": n, "test_seeds": seeds.to_numpy(), "diff": mean, "p_value": p})


def compare_to_reference(matrix: pd.DataFrame, reference: Hashable, alpha: float = ALPHA) -> pd.DataFrame:
    """paired_tests of `reference` (the leader) against every other key, with `p_holm`
    (Holm over these comparisons) and `significant` (p_holm < alpha)."""
    return with_holm(paired_tests(matrix, reference), alpha)


def pairwise(matrix: pd.DataFrame, keys: Iterable[Hashable] | None = None, alpha: float = ALPHA) -> pd.DataFrame:
    """Every pair (a, b) of `keys` (default: all of the matrix's, in order): the paired
    test with diff = a - b, then Holm over all pairs. Columns: a, b, n_users,
    test_seeds, diff, p_value, p_holm, significant."""
    keys = list(dict.fromkeys(matrix.index.get_level_values("key")) if keys is None else keys)
    tables = [paired_tests(matrix, a, keys[i + 1:]).rename(columns={"key": "b"}).assign(a=a)
              for i, a in enumerate(keys[:-1])]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["b", "a", *_TESTS])
    return with_holm(table[["a", "b", *_TESTS]], alpha)


def with_holm(table: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """`table` (one paired test per row, `p_value`) with `p_holm` (Holm over its rows) and
    `significant` (p_holm < alpha)."""
    table = table.copy()
    table["p_holm"] = holm(table["p_value"].to_numpy(dtype=float))
    table["significant"] = table["p_holm"] < alpha
    return table
