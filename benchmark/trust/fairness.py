"""The fairness pass: the test pass's main score per group of each sensitive attribute
of the users (gender, age group, occupation), the largest gap and the ratio between
the groups, and a permutation test of the gap (docs/trust.md). Nothing is scored again."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from benchmark.eval.trust import binned, gap_ratio, group_codes, group_means, metric_label, permutation_p
from benchmark.trust import TrustRun

if TYPE_CHECKING:
    from benchmark.tasks.schema import FairnessSpec


def applies(run: TrustRun) -> str | None:
    users = run.train.users
    wanted = run.task.trust.fairness.attributes
    if users is None:
        return "the dataset has no user attributes"
    if not set(wanted) & set(users.columns):
        return f"the users have none of the attributes {', '.join(wanted)}"
    if run.task.main_score not in run.per_user.columns:
        return f"{run.task.main_score} is not a per-user metric"
    return None


def measure(run: TrustRun, spec: "FairnessSpec") -> dict[str, float]:
    """For each attribute of spec.attributes that the users have: each group's mean main
    score over its test users, then gap (max - min), ratio (min / max) and the
    permutation p of the gap over the groups of at least `min_group_users` users (none
    where fewer than two such groups remain)."""
    users = run.per_user["user"].drop_duplicates().to_numpy()
    scores = run.main_per_user(users)
    table = run.train.users.drop_duplicates("user_id").set_index("user_id")
    rng = run.rng("fairness")
    metrics: dict[str, float] = {}
    for attribute in (a for a in spec.attributes if a in table.columns):
        labels = user_labels(table[attribute].reindex(users), spec.bins.get(attribute))
        names, codes = group_codes(labels, spec.min_group_users)
        if len(names) < 2:
            continue
        compared = codes >= 0
        metrics |= _gap_metrics(f"trust.fairness.{metric_label(attribute)}", names, scores[compared],
                                codes[compared], spec.permutations, rng)
    return metrics


def user_labels(values: pd.Series, edges: list[float] | None) -> np.ndarray:
    """Each user's group label: its value's bin where the attribute has `edges` (numbers
    stored as text, like ml-100k's ages, are read as numbers), else its value as a
    label; None where the value is missing or blank."""
    if edges is not None:
        return binned(pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64), edges)
    missing = values.isna() | (values.astype(str).str.strip() == "")
    return np.array([None if gone else metric_label(value) for value, gone in zip(values, missing)], dtype=object)


def _gap_metrics(prefix: str, names: list[str], scores: np.ndarray, codes: np.ndarray, permutations: int,
                 rng: np.random.Generator) -> dict[str, float]:
    means = group_means(scores, codes, len(names))
    gap, ratio = gap_ratio(means)
    metrics = {f"{prefix}.group.{name}": float(mean) for name, mean in zip(names, means)}
    return metrics | {f"{prefix}.gap": gap, f"{prefix}.ratio": ratio,
                      f"{prefix}.p": permutation_p(scores, codes, permutations, rng),
                      f"{prefix}.groups": float(len(names))}
