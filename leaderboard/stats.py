"""Significance against the leader: a per-user paired t-test, Holm-corrected.

Why the paired t-test (and not Wilcoxon): the leaderboard ranks by the *mean* over
users, and the t-test asks exactly whether the mean per-user difference is zero. With
hundreds of users the mean difference is close to normal even though per-user NDCG is
not. Wilcoxon's signed-rank test asks about the median of the differences and drops
(or splits) the many users whose difference is exactly zero (both models miss the
target), so it can disagree with the ranking it is meant to qualify.
"""
from __future__ import annotations

from typing import Hashable, Mapping

import numpy as np
import pandas as pd

from benchmark.eval.significance import holm  # noqa: F401 (re-exported)

ALPHA = 0.05
# Per-user column holding a metric, where the name differs: CTR logs the per-user AUC
# (what GAUC averages) as `auc`; global AUC does not decompose over users.
PER_USER_ALIASES = {"AUC": "auc", "GAUC": "auc"}


def per_user_column(metric: str, columns) -> str | None:
    """The per-user column to test `metric` on, or None when the runs did not log it."""
    if metric in columns:
        return metric
    alias = PER_USER_ALIASES.get(metric)
    return alias if alias in columns else None


def per_user_means(per_user: pd.DataFrame, run_ids, column: str) -> pd.Series:
    """One value per user: the metric averaged over the given runs (the seeds)."""
    rows = per_user[per_user["run_id"].isin(list(run_ids))]
    return rows.groupby("user", sort=True)[column].mean().dropna()


def per_user_matrix(per_user: pd.DataFrame, runs_by_key: Mapping[Hashable, list], column: str) -> pd.DataFrame:
    """Rows: keys (leaderboard rows), columns: users, values: the metric averaged over
    each key's runs (seeds). One pass over the per-user table, whatever the row count."""
    owner = pd.Series({run: key for key, runs in runs_by_key.items() for run in runs}, dtype=object)
    rows = per_user.loc[per_user["run_id"].isin(owner.index), ["run_id", "user", column]]
    if rows.empty:
        return pd.DataFrame()
    run_ids = rows["run_id"] if isinstance(rows["run_id"].dtype, pd.CategoricalDtype) else rows["run_id"].astype("category")
    rows = rows.assign(key=np.asarray(run_ids.map(owner.to_dict()), dtype=object))  # maps the few categories
    return rows.groupby(["key", "user"], sort=True)[column].mean().unstack("user")


def paired_pvalue(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided paired t-test of mean(a - b) = 0; NaN with fewer than two users."""
    from scipy import stats

    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(diff) < 2:
        return float("nan")
    if np.allclose(diff, diff[0], rtol=0, atol=1e-15):  # no spread: t is 0 or infinite
        return 1.0 if abs(diff[0]) <= 1e-15 else 0.0
    return float(stats.ttest_rel(a, b).pvalue)


def compare_to_leader(matrix: pd.DataFrame, leader: Hashable, alpha: float = ALPHA) -> pd.DataFrame:
    """Paired t-test of the leader against every other row of `matrix` (keys x users,
    see per_user_matrix), each on the users both were evaluated on, vectorized over
    rows; Holm over the comparisons. Returns, per other key: n_users, diff (leader minus
    other, mean over common users), p_value, p_holm, significant (p_holm < alpha)."""
    from scipy import stats

    columns = ["key", "n_users", "diff", "p_value", "p_holm", "significant"]
    if leader not in matrix.index or len(matrix) < 2:
        return pd.DataFrame(columns=columns)
    others = matrix.drop(index=leader)
    diff = matrix.loc[leader].to_numpy()[None, :] - others.to_numpy()  # NaN where either lacks the user
    valid = ~np.isnan(diff)
    n = valid.sum(axis=1)
    filled = np.where(valid, diff, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=1) / n
        sd = np.sqrt((((filled - mean[:, None]) * valid) ** 2).sum(axis=1) / (n - 1))
        t = mean / (sd / np.sqrt(n))
        p = 2 * stats.t.sf(np.abs(t), n - 1)
    flat = sd <= 1e-15  # no spread: t is 0 (p = 1) or infinite (p = 0)
    p = np.where(flat, np.where(np.abs(mean) <= 1e-15, 1.0, 0.0), p)
    p = np.where(n < 2, np.nan, p)
    table = pd.DataFrame({"key": others.index, "n_users": n, "diff": np.where(n > 0, mean, np.nan), "p_value": p})
    table["p_holm"] = holm(table["p_value"].to_numpy())
    table["significant"] = table["p_holm"] < alpha
    return table
