"""CTR metrics (DESIGN.md §5): AUC with tied predictions counted ½, GAUC, LogLoss.

AUC is the Mann-Whitney statistic: over all (positive, negative) pairs, 1 when the
positive is predicted higher, ½ on a tie. It is computed per tie group of predictions
(equivalent to the mid-rank formula) in integers, so it is exact up to the final division.
Every metric is computed from a CTRState (tie groups per user and prediction, the loss
sum as an exact float expansion), so states of impressions evaluated apart (shards,
benchmark.eval.shards) merge into exactly the metrics of one evaluation.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark.eval.metrics import agreed
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


@dataclass(frozen=True)
class CTRState:
    """What the CTR metrics need of a set of impressions, exactly: its tie groups (same
    user, same prediction) with their positive and negative counts, sorted by user then
    prediction, and (when LogLoss is asked for) the sum of its log losses as floats whose
    exact sum is the exact sum of the losses. States of disjoint impressions merge
    exactly, whichever way the impressions were split (`CTREvaluator.merge`)."""

    metrics: tuple[str, ...]
    users: np.ndarray
    predictions: np.ndarray
    positives: np.ndarray
    negatives: np.ndarray
    loss_terms: tuple[float, ...] = ()

    @property
    def impressions(self) -> int:
        return int(self.positives.sum() + self.negatives.sum())


def _tie_groups(users: np.ndarray, predictions: np.ndarray, positives: np.ndarray,
                negatives: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(users, predictions, positives, negatives) per tie group, sorted by user then
    prediction, the counts of rows in the same group summed. A row is one impression
    (its label as positives, 1 - label as negatives) or a group of an earlier call."""
    if users.size == 0:
        return users, predictions, positives, negatives
    ids, keys = np.unique(users, return_inverse=True)
    keys = keys.reshape(-1)
    order = np.lexsort((predictions, keys))
    k, p = keys[order], predictions[order]
    new = np.ones(k.size, dtype=bool)
    new[1:] = (k[1:] != k[:-1]) | (p[1:] != p[:-1])
    starts = np.flatnonzero(new)
    return (ids[k[starts]], p[starts], np.add.reduceat(positives[order], starts),
            np.add.reduceat(negatives[order], starts))


def _auc_per_key(keys: np.ndarray, positives: np.ndarray, negatives: np.ndarray) -> tuple[np.ndarray, ...]:
    """From tie groups sorted by key then prediction: per key (keys, positives, negatives,
    AUC; NaN where single-class). Integer counts, so exact up to the final division."""
    key_first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    # Negatives strictly below each tie group within its key: exclusive cumsum restarted per key.
    below = np.cumsum(negatives) - negatives
    below -= np.repeat(below[key_first], np.diff(np.append(key_first, keys.size)))
    # Twice the Mann-Whitney U: each positive beats `below` negatives and ties its group's.
    u2 = np.add.reduceat(positives * (2 * below + negatives), key_first)
    key_positives = np.add.reduceat(positives, key_first)
    key_negatives = np.add.reduceat(negatives, key_first)
    pairs = key_positives * key_negatives
    with np.errstate(invalid="ignore", divide="ignore"):
        auc_values = np.where(pairs > 0, u2 / (2.0 * pairs), np.nan)
    return keys[key_first], key_positives, key_negatives, auc_values


def _losses(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """Per impression: binary cross-entropy of its prediction clipped to [1e-7, 1 - 1e-7]."""
    p = np.clip(predictions, LOGLOSS_EPS, 1 - LOGLOSS_EPS)
    return np.where(labels == 1, -np.log(p), -np.log1p(-p))


def _float_expansion(values: np.ndarray) -> tuple[float, ...]:
    """Floats whose exact sum is the exact sum of `values`: math.fsum's correctly rounded
    sum, then that of what it left out, and so on (each term 53 bits further) until
    nothing is left. So fsum over the terms of several sets equals fsum over all their
    values, bit for bit, however the values were split."""
    values = values.tolist()
    terms: list[float] = []
    while residual := math.fsum(itertools.chain(values, (-term for term in terms))):
        terms.append(residual)
    return tuple(terms)


def _state(metrics: tuple[str, ...], users: np.ndarray, labels: np.ndarray, predictions: np.ndarray) -> CTRState:
    """The state of checked impressions."""
    loss_terms = _float_expansion(_losses(labels, predictions)) if "LogLoss" in metrics else ()
    return CTRState(metrics, *_tie_groups(users, predictions, labels, 1 - labels), loss_terms=loss_terms)


def _merged(metrics: tuple[str, ...], states: Sequence[CTRState]) -> CTRState:
    """One state of the impressions of `states` (disjoint sets of impressions)."""
    if len(states) == 1:
        return states[0]
    if not states:
        empty = np.empty(0, dtype=np.int64)
        return CTRState(metrics, empty, np.empty(0, dtype=np.float64), empty, empty)
    groups = (np.concatenate([getattr(s, field) for s in states])
              for field in ("users", "predictions", "positives", "negatives"))
    return CTRState(metrics, *_tie_groups(*groups), loss_terms=sum((s.loss_terms for s in states), ()))


def _state_auc(state: CTRState) -> float:
    """AUC over all impressions: the tie groups of all users pooled by prediction."""
    pooled = _tie_groups(np.zeros(state.predictions.size, np.int64), state.predictions, state.positives,
                         state.negatives)
    _, positives, negatives, value = _auc_per_key(pooled[0], *pooled[2:])
    if positives[0] == 0 or negatives[0] == 0:
        raise ValueError("AUC needs both positive and negative labels")
    return float(value[0])


def _state_per_user(state: CTRState) -> pd.DataFrame:
    users, positives, negatives, auc_values = _auc_per_key(state.users, state.positives, state.negatives)
    return pd.DataFrame({"user": users, "impressions": positives + negatives, "positives": positives,
                         "auc": auc_values})


def _gauc(table: pd.DataFrame) -> dict[str, float]:
    """GAUC from the per-user table, with the users it counts and excludes (single-class)."""
    kept = table[table["auc"].notna()]
    if kept.empty:
        raise ValueError("GAUC: no user has both a positive and a negative impression")
    # Weight each user's AUC by its impressions.
    weights = kept["impressions"].to_numpy(np.float64)
    return {"GAUC": math.fsum((weights * kept["auc"].to_numpy()).tolist()) / math.fsum(weights.tolist()),
            "GAUC.users": float(len(kept)), "GAUC.excluded_users": float(len(table) - len(kept))}


def _state_metrics(state: CTRState) -> dict[str, float]:
    """The state's metrics; GAUC also reports "GAUC.users" and "GAUC.excluded_users"."""
    if state.users.size == 0:
        raise ValueError("no impressions were added; nothing to summarise")
    out: dict[str, float] = {}
    for name in state.metrics:
        if name == "AUC":
            out[name] = _state_auc(state)
        elif name == "LogLoss":
            out[name] = math.fsum(state.loss_terms) / state.impressions
        else:
            out |= _gauc(_state_per_user(state))
    return out


def auc(labels: np.ndarray, predictions: np.ndarray) -> float:
    """ROC AUC with tied predictions counted ½. Predictions may be any real scores (no NaN)."""
    labels, predictions = _check_inputs(labels, predictions)
    return _state_auc(_state(("AUC",), np.zeros(labels.size, np.int64), labels, predictions))


def ctr_per_user(labels: np.ndarray, predictions: np.ndarray, users: np.ndarray) -> pd.DataFrame:
    """One row per user (sorted by user): user, impressions, positives, auc (NaN for single-class users)."""
    labels, predictions = _check_inputs(labels, predictions)
    users = np.asarray(users)
    if users.shape != labels.shape:
        raise ValueError(f"users {users.shape} must match labels {labels.shape}")
    return _state_per_user(_state((), users, labels, predictions))


def log_loss(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Mean binary cross-entropy, predictions clipped to [1e-7, 1 - 1e-7]; NaN or values outside [0, 1] raise."""
    labels, predictions = _check_inputs(labels, predictions)
    _check_probabilities(predictions)
    return math.fsum(_losses(labels, predictions).tolist()) / labels.size


def ctr_metrics(
    labels: np.ndarray,
    predictions: np.ndarray,
    users: np.ndarray | None = None,
    metrics: Sequence[str] = CTR_METRIC_NAMES,
) -> dict[str, float]:
    """The requested CTR metrics; GAUC also reports "GAUC.users" and "GAUC.excluded_users" (single-class)."""
    names = tuple(parse_metric(name, "ctr")[0] for name in metrics)
    if not names:
        raise ValueError("at least one metric is required")
    labels, predictions = _check_inputs(labels, predictions)
    if "LogLoss" in names:
        _check_probabilities(predictions)
    if users is None:
        if "GAUC" in names:
            raise ValueError("GAUC needs the user of every impression")
        users = np.zeros(labels.size, np.int64)
    users = np.asarray(users)
    if users.shape != labels.shape:
        raise ValueError(f"users {users.shape} must match labels {labels.shape}")
    return _state_metrics(_state(names, users, labels, predictions))


class CTREvaluator:
    """Collects impressions chunk by chunk; AUC ranks all of them at once, so they are kept.

    Impressions split across evaluators (shards, split any way) merge exactly:
    `merge([e.state() for e in shards])` has the same summary and per-user table.
    """

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
        self._merged: list[CTRState] = []  # states merged in (see `merge`)
        self._state: CTRState | None = None  # state() of what was added so far

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
        self._state = None

    def state(self) -> CTRState:
        """The tie groups and loss sum of every impression added or merged in (picklable)."""
        if self._state is None:
            parts = list(self._merged)
            if self._labels:
                parts.append(_state(self.metrics, np.concatenate(self._users), np.concatenate(self._labels),
                                    np.concatenate(self._predictions)))
            self._state = _merged(self.metrics, parts)
        return self._state

    @classmethod
    def merge(cls, states: Sequence[CTRState]) -> "CTREvaluator":
        """An evaluator holding the impressions of `states` (states of the same metrics)."""
        evaluator = cls(agreed(states, "metrics"))
        evaluator._merged = list(states)
        return evaluator

    def summary(self) -> dict[str, float]:
        return _state_metrics(self.state())

    def per_user(self) -> pd.DataFrame:
        """user, impressions, positives, auc (NaN for single-class users): for paired tests on GAUC."""
        state = self.state()
        if state.users.size == 0:
            raise ValueError("no impressions were added; nothing to summarise")
        return _state_per_user(state)
