"""What the test pass ranked, kept for the trust passes without a second pass: the
candidate sets and their scores (small), and, for every ranking, the tie-aware top-k
of each user reduced on the fly to popularity and exposure counts (a full-ranking
score matrix is never kept). A test pass split over several scorers (shards of users,
benchmark.eval.shards) merges their records into the one a single pass would keep."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from benchmark.api import ScoreRequest
from benchmark.eval.metrics import agreed
from benchmark.eval.trust import GROUP_NAMES, top_k_weights


@dataclass(frozen=True)
class Record:
    """What a RecordingScorer kept, without the scorer (picklable): its set-up, per batch
    the candidate sets and scores and per user the arp / long-tail shares, and the
    exposure and per-group hit counts summed over users."""

    k: int
    popularity: np.ndarray | None
    groups: np.ndarray | None
    candidates: list[np.ndarray]
    scores: list[np.ndarray]
    users: list[np.ndarray]
    arp: list[np.ndarray]
    long_tail: list[np.ndarray]
    exposure: np.ndarray
    group_hits: np.ndarray
    group_targets: np.ndarray


class RecordingScorer:
    """Wraps the model's score() for the test pass; `observe` (called by the evaluation
    with each checked batch and its targets) accumulates the exposure counts."""

    def __init__(self, score: Callable, popularity: np.ndarray | None = None, groups: np.ndarray | None = None,
                 k: int = 10) -> None:
        self.score = score
        self.k = k
        self.popularity = popularity
        self.groups = groups
        self.candidates: list[np.ndarray] = []
        self.scores: list[np.ndarray] = []
        self.users: list[np.ndarray] = []
        self.arp: list[np.ndarray] = []  # per user: mean popularity of the top k
        self.long_tail: list[np.ndarray] = []  # per user: share of the top k outside the head
        n_items = 0 if popularity is None else len(popularity)
        self.exposure = np.zeros(n_items)  # per item: expected number of users with it in their top k
        self.group_hits = np.zeros(len(GROUP_NAMES))  # targets in the top k, per target's group
        self.group_targets = np.zeros(len(GROUP_NAMES))

    def __call__(self, request: ScoreRequest) -> np.ndarray:
        scores = self.score(request)
        if request.candidates is not None and isinstance(scores, np.ndarray):
            self.candidates.append(np.asarray(request.candidates))
            self.scores.append(np.array(scores, copy=True))
        return scores

    def observe(self, users: np.ndarray, scores: np.ndarray, candidates: np.ndarray | None,
                targets: np.ndarray | Sequence[np.ndarray], exclude: Sequence[np.ndarray] | None) -> None:
        """One checked batch: `targets` are columns of `scores` (one per user, or an
        array per user), `exclude` the columns removed from each user's ranking."""
        if self.popularity is None:
            return
        scores = np.array(scores, dtype=np.float64, copy=True)
        if exclude is not None:
            for row, columns in enumerate(exclude):
                scores[row, np.asarray(columns, dtype=np.int64)] = -np.inf
        weights = top_k_weights(scores, self.k)
        items = np.broadcast_to(np.arange(scores.shape[1]), scores.shape) if candidates is None \
            else np.asarray(candidates)
        depth = min(self.k, scores.shape[1])
        self.users.append(np.asarray(users))
        self.arp.append((weights * self.popularity[items]).sum(axis=1) / depth)
        self.long_tail.append((weights * (self.groups[items] != 0)).sum(axis=1) / depth)
        np.add.at(self.exposure, items.ravel(), weights.ravel())
        for row, columns in enumerate(targets):
            columns = np.atleast_1d(np.asarray(columns, dtype=np.int64))
            target_groups = self.groups[items[row, columns]]
            np.add.at(self.group_hits, target_groups, weights[row, columns])
            np.add.at(self.group_targets, target_groups, 1)

    def state(self) -> Record:
        return Record(self.k, self.popularity, self.groups, list(self.candidates), list(self.scores),
                      list(self.users), list(self.arp), list(self.long_tail), self.exposure.copy(),
                      self.group_hits.copy(), self.group_targets.copy())

    @classmethod
    def merge(cls, score: Callable, records: Sequence[Record]) -> "RecordingScorer":
        """A recorder of `score` holding `records` one after the other, as if one pass had
        ranked their users in that order (sums of exposure and hits agree to rounding)."""
        merged = cls(score, agreed(records, "popularity"), agreed(records, "groups"), agreed(records, "k"))
        for record in records:
            for name in ("candidates", "scores", "users", "arp", "long_tail"):
                getattr(merged, name).extend(getattr(record, name))
            merged.exposure += record.exposure
            merged.group_hits += record.group_hits
            merged.group_targets += record.group_targets
        return merged

    def candidate_scores(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(candidates, scores) of the test pass's candidate-set requests, in order."""
        if not self.scores:
            return None
        return np.concatenate(self.candidates), np.concatenate(self.scores)
