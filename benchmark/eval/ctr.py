"""CTR metrics (DESIGN.md §5): AUC with tied predictions counted ½, GAUC, LogLoss.

AUC is the Mann-Whitney statistic: over all (positive, negative) pairs, 1 when the
positive is predicted higher, ½ on a tie. It is computed per tie group of predictions
(equivalent to the mid-rank formula) in integers, so it is exact up to the final division.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from benchmark.eval.registry import CTR_METRIC_NAMES, parse_metric

LOGLOSS_EPS = 1e-7
_PROBABILITY_RULE = "CTR predictions must be probabilities: finite numbers in [0, 1]"


def _check_inputs(labels: np.ndarray, predictions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.ndim != 1 or predictions.shape != labels.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} must be 1-D of equal length")
    if labels.size == 0:
        raise ValueError("no impressions to evaluate")
    if not (np.issubdtype(predictions.dtype, np.number) or predictions.dtype == np.bool_):
        raise TypeError(f"predictions must be numeric, got {predictions.dtype}")
    predictions = predictions.astype(np.float64)
    nan = np.isnan(predictions)
    if nan.any():
        raise ValueError(f"predictions contain NaN at rows {np.flatnonzero(nan)[:10].tolist()} ({_PROBABILITY_RULE})")
    binary = np.isin(labels, (0, 1)) if np.issubdtype(labels.dtype, np.number) or labels.dtype == np.bool_ else None
    if binary is None or not binary.all():
        bad = labels[~binary][:5].tolist() if binary is not None else labels.dtype
        raise ValueError(f"labels must be binary 0/1, got {bad}")
    return labels.astype(np.int64), predictions


def _check_probabilities(predictions: np.ndarray) -> None:
    outside = (predictions < 0) | (predictions > 1)  # also catches +-inf
    if outside.any():
        rows = np.flatnonzero(outside)[:10]
        raise ValueError(f"predictions outside [0, 1] at rows {rows.tolist()}: "
                         f"{predictions[rows].tolist()} ({_PROBABILITY_RULE})")


def _grouped_auc(keys: np.ndarray, labels: np.ndarray, predictions: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per key (keys are dense 0..G-1): (impressions, positives, negatives, AUC; NaN where single-class)."""
    order = np.lexsort((predictions, keys))
    k, p, y = keys[order], predictions[order], labels[order]
    new = np.ones(k.size, dtype=bool)
    new[1:] = (k[1:] != k[:-1]) | (p[1:] != p[:-1])  # a tie group: same key, same prediction
    starts = np.flatnonzero(new)
    group_pos = np.add.reduceat(y, starts)
    group_neg = np.diff(np.append(starts, k.size)) - group_pos
    group_key = k[starts]
    # Negatives strictly below each tie group within its key: exclusive cumsum restarted per key.
    below = np.cumsum(group_neg) - group_neg
    key_first = np.flatnonzero(np.diff(group_key, prepend=-1))
    below -= np.repeat(below[key_first], np.diff(np.append(key_first, group_key.size)))
    # Twice the Mann-Whitney U: each positive beats `below` negatives and ties its group's.
    u2 = np.add.reduceat(group_pos * (2 * below + group_neg), key_first)
    positives = np.add.reduceat(group_pos, key_first)
    negatives = np.add.reduceat(group_neg, key_first)
    pairs = positives * negatives
    with np.errstate(invalid="ignore", divide="ignore"):
        auc_values = np.where(pairs > 0, u2 / (2.0 * pairs), np.nan)
    return positives + negatives, positives, negatives, auc_values


def auc(labels: np.ndarray, predictions: np.ndarray) -> float:
    """ROC AUC with tied predictions counted ½. Predictions may be any real scores (no NaN)."""
    labels, predictions = _check_inputs(labels, predictions)
    _, positives, negatives, value = _grouped_auc(np.zeros(labels.size, np.int64), labels, predictions)
    if positives[0] == 0 or negatives[0] == 0:
        raise ValueError("AUC needs both positive and negative labels")
    return float(value[0])


def ctr_per_user(labels: np.ndarray, predictions: np.ndarray, users: np.ndarray) -> pd.DataFrame:
    """One row per user (sorted by user): user, impressions, positives, auc (NaN for single-class users)."""
    labels, predictions = _check_inputs(labels, predictions)
    users = np.asarray(users)
    if users.shape != labels.shape:
        raise ValueError(f"users {users.shape} must match labels {labels.shape}")
    ids, keys = np.unique(users, return_inverse=True)
    impressions, positives, _, auc_values = _grouped_auc(keys.astype(np.int64), labels, predictions)
    return pd.DataFrame({"user": ids, "impressions": impressions, "positives": positives, "auc": auc_values})


def log_loss(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Mean binary cross-entropy, predictions clipped to [1e-7, 1 - 1e-7]; NaN or values outside [0, 1] raise."""
    labels, predictions = _check_inputs(labels, predictions)
    _check_probabilities(predictions)
    p = np.clip(predictions, LOGLOSS_EPS, 1 - LOGLOSS_EPS)
    losses = np.where(labels == 1, -np.log(p), -np.log1p(-p))
    return math.fsum(losses.tolist()) / losses.size


def ctr_metrics(
    labels: np.ndarray,
    predictions: np.ndarray,
    users: np.ndarray | None = None,
    metrics: Sequence[str] = CTR_METRIC_NAMES,
) -> dict[str, float]:
    """The requested CTR metrics; GAUC also reports "GAUC.users" and "GAUC.excluded_users" (single-class)."""
    names = [parse_metric(name, "ctr")[0] for name in metrics]
    if not names:
        raise ValueError("at least one metric is required")
    out: dict[str, float] = {}
    for name in names:
        if name == "AUC":
            out[name] = auc(labels, predictions)
        elif name == "LogLoss":
            out[name] = log_loss(labels, predictions)
        else:
            if users is None:
                raise ValueError("GAUC needs the user of every impression")
            table = ctr_per_user(labels, predictions, users)
            kept = table[table["auc"].notna()]
            if kept.empty:
                raise ValueError("GAUC: no user has both a positive and a negative impression")
            # Weight each user's AUC by its impressions.
            weights = kept["impressions"].to_numpy(np.float64)
            out[name] = math.fsum((weights * kept["auc"].to_numpy()).tolist()) / math.fsum(weights.tolist())
            out["GAUC.users"] = float(len(kept))
            out["GAUC.excluded_users"] = float(len(table) - len(kept))
    return out


class CTREvaluator:
    """Collects impressions chunk by chunk; AUC ranks all of them at once, so they are kept."""

    def __init__(self, metrics: Sequence[str]) -> None:
        metrics = list(metrics)
        if not metrics:
            raise ValueError("at least one metric is required")
        for name in metrics:
            parse_metric(name, "ctr")
        dupes = sorted({m for m in metrics if metrics.count(m) > 1})
        if dupes:
            raise ValueError(f"metrics listed more than once: {dupes}")
        self.metrics = tuple(metrics)
        self._users: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._predictions: list[np.ndarray] = []

    def add(self, users: np.ndarray, labels: np.ndarray, predictions: np.ndarray) -> None:
        """One chunk of impressions; checked now, so a bad chunk fails where it arrives."""
        labels, predictions = _check_inputs(labels, predictions)
        if "LogLoss" in self.metrics:
            _check_probabilities(predictions)
        users = np.asarray(users)
        if users.shape != labels.shape:
            raise ValueError(f"users {users.shape} must match labels {labels.shape}")
        self._users.append(users.copy())
        self._labels.append(labels)
        self._predictions.append(predictions)

    def _all(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self._labels:
            raise ValueError("no impressions were added; nothing to summarise")
        return np.concatenate(self._users), np.concatenate(self._labels), np.concatenate(self._predictions)

    def summary(self) -> dict[str, float]:
        users, labels, predictions = self._all()
        return ctr_metrics(labels, predictions, users, self.metrics)

    def per_user(self) -> pd.DataFrame:
        """user, impressions, positives, auc (NaN for single-class users): for paired tests on GAUC."""
        users, labels, predictions = self._all()
        return ctr_per_user(labels, predictions, users)
