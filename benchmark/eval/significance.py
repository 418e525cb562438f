"""Multiple-comparison correction shared by the leaderboard and the paradigm study."""
from __future__ import annotations

import numpy as np


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
