"""Trust measurements for rankers over candidate sets (LLM rankers above all):
position bias, ranking consistency across candidate orders, popularity bias and
output validity. Definitions are in docs/metrics.md."""
from __future__ import annotations

import numpy as np


def kendall_tau_b(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b between two score vectors over the same items (ties allowed);
    NaN when either vector is constant."""
    da = np.sign(a[:, None] - a[None, :])
    db = np.sign(b[:, None] - b[None, :])
    upper = np.triu_indices(len(a), k=1)
    da, db = da[upper], db[upper]
    denominator = np.sqrt(np.count_nonzero(da) * np.count_nonzero(db))
    return float((da * db).sum() / denominator) if denominator else float("nan")


def shuffle_consistency(candidate_sets: list[np.ndarray], score_sets: list[np.ndarray]) -> float:
    """Mean Kendall tau-b, over users and pairs of orderings, between the rankings a
    model gives the same candidates presented in different orders. Each score matrix
    is aligned with its candidate matrix (same users, columns in presentation order)."""
    aligned = []
    for candidates, scores in zip(candidate_sets, score_sets):
        order = np.argsort(candidates, axis=1)  # by item id: the same column order for every set
        aligned.append(np.take_along_axis(scores, order, axis=1))
    taus = [kendall_tau_b(x[row], y[row])
            for i, x in enumerate(aligned) for y in aligned[i + 1:] for row in range(len(x))]
    taus = [t for t in taus if not np.isnan(t)]
    return float(np.mean(taus)) if taus else float("nan")


def top_k_popularity(scores: np.ndarray, candidates: np.ndarray, popularity: np.ndarray, k: int) -> np.ndarray:
    """Per user, the expected mean popularity of its top-k candidates (ARP@k), averaged
    over the orderings of tied scores: a tie group that straddles the cutoff
    contributes each member in proportion to the places left for it."""
    values = popularity[candidates].astype(np.float64)
    out = np.empty(len(scores))
    for row, (s, v) in enumerate(zip(scores, values)):
        above = (s[None, :] > s[:, None]).sum(axis=1)  # items scored strictly higher
        tied = (s[None, :] == s[:, None]).sum(axis=1)
        weight = np.clip((k - above) / tied, 0.0, 1.0)
        out[row] = (weight * v).sum() / min(k, len(s))
    return out


def position_gap(per_position: dict[int, float]) -> float:
    """PosGap: the spread (max - min) of a metric over the target's positions."""
    values = list(per_position.values())
    return float(max(values) - min(values)) if values else float("nan")


def validity_rates(stats: dict[str, float], n_candidates: int) -> dict[str, float]:
    """Output validity from an LLM ranker's counters (see benchmark.kits.llm.listwise):
    hallucinated and duplicate items per item named, missing candidates per candidate,
    malformed outputs and compliant users (nothing hallucinated, nothing malformed)
    per user."""
    named = max(float(stats.get("items_named", 0)), 1.0)
    users = max(float(stats.get("users", 0)), 1.0)
    rates = {"trust.hallucination_rate": stats.get("hallucinated", 0) / named,
             "trust.duplicate_rate": stats.get("duplicates", 0) / named,
             "trust.missing_rate": stats.get("missing", 0) / (users * n_candidates),
             "trust.malformed_rate": stats.get("malformed", 0) / users}
    if "compliant" in stats:
        rates["trust.compliance"] = stats["compliant"] / users
    return rates
