"""Paired significance between the study's rows: a per-user paired test on the stored
per-user metric (averaged over seeds per user), Holm-corrected within each task."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchmark.eval.significance import holm

TEST_NAME = "Wilcoxon signed-rank test (two-sided, zero differences dropped), Holm-corrected per task"


def paired_test(a: pd.Series, b: pd.Series) -> dict[str, float]:
    """Wilcoxon signed-rank on the users present in both (index = user): mean of a - b,
    the number of users, the statistic and the two-sided p-value (1 when every
    difference is zero, NaN with no common user)."""
    from scipy.stats import wilcoxon

    common = a.index.intersection(b.index)
    x, y = a.loc[common].to_numpy(float), b.loc[common].to_numpy(float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    out = {"users": int(len(x)), "mean_diff": float(np.mean(x - y)) if len(x) else math.nan,
           "statistic": math.nan, "p": math.nan}
    if len(x) == 0:
        return out
    if np.allclose(x, y):
        out["p"] = 1.0
        return out
    result = wilcoxon(x, y, zero_method="wilcox", alternative="two-sided")
    out["statistic"], out["p"] = float(result.statistic), float(result.pvalue)
    return out


def pairwise(per_user: dict[str, pd.Series], alpha: float = 0.05) -> pd.DataFrame:
    """Every pair of the given rows (name -> per-user values): the paired test, then
    Holm over all pairs. Columns: a, b, users, mean_diff (a - b), statistic, p, p_holm,
    significant."""
    names = list(per_user)
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            rows.append({"a": a, "b": b} | paired_test(per_user[a], per_user[b]))
    table = pd.DataFrame(rows, columns=["a", "b", "users", "mean_diff", "statistic", "p"])
    table["p_holm"] = holm(table["p"].tolist()) if len(table) else []
    table["significant"] = table["p_holm"] < alpha
    return table
