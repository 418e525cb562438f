"""Extra passes over a task's test users that measure how a ranker behaves rather than
how well it ranks: position bias (the target moved to fixed positions of the candidate
list), consistency under reordered candidates and popularity bias of what it puts on
top (the validity of recommend() output is counted by benchmark.recommendations).
Definitions: docs/metrics.md ("Trust")."""
from __future__ import annotations

from typing import Callable

import numpy as np

from benchmark.api import ScoreRequest, TrainData
from benchmark.data.views import EvalSet
from benchmark.eval.candidates import place_target, shuffle_rows, target_columns
from benchmark.eval.metrics import RankingEvaluator
from benchmark.eval.trust import position_gap, shuffle_consistency, top_k_popularity
from benchmark.progress import track
from benchmark.scoring import score_batch
from benchmark.tasks.schema import TaskSpec


class RecordingScorer:
    """Wraps a model's score() and keeps each request's candidates and the scores
    returned, so that trust metrics can look at the test pass without a second one."""

    def __init__(self, score: Callable) -> None:
        self.score = score
        self.candidates: list[np.ndarray] = []
        self.scores: list[np.ndarray] = []

    def __call__(self, request: ScoreRequest) -> np.ndarray:
        scores = self.score(request)
        if request.candidates is not None and isinstance(scores, np.ndarray):
            self.candidates.append(np.asarray(request.candidates))
            self.scores.append(np.array(scores, copy=True))
        return scores

    def popularity_bias(self, train: TrainData, k: int) -> dict[str, float]:
        if not self.scores:
            return {}
        popularity = np.bincount(train.interactions["item_id"], minlength=train.n_items)
        per_user = top_k_popularity(np.concatenate(self.scores), np.concatenate(self.candidates), popularity, k)
        return {f"trust.ARP@{k}": float(per_user.mean())}


def _scores(score: Callable, task: TaskSpec, train: TrainData, part: EvalSet, candidates: np.ndarray,
            name: str, label: str) -> np.ndarray:
    out = []
    for start in range(0, len(part), task.batch_size):
        rows = slice(start, start + task.batch_size)
        out.append(score_batch(score, task, train, part.users[rows], part.histories[rows], candidates[rows],
                               f"submission '{name}': score() on {label} batch {start // task.batch_size}"))
    return np.concatenate(out) if out else np.empty((0, candidates.shape[1]))


def position_bias(score: Callable, task: TaskSpec, train: TrainData, test: EvalSet, seed: int,
                  name: str) -> dict[str, float]:
    """The first `users` test users with the target at each position: the main metric
    per position and PosGap (max - min); then `shuffles` seeded orders of the same
    candidates: the mean Kendall tau-b between the rankings (1 = order-invariant)."""
    spec = task.trust.position_bias
    part = test.subset(np.arange(min(spec.users, len(test))))
    targets = np.asarray(part.targets)
    rng = np.random.default_rng([task.eval_users.seed, seed, 2])  # streams 0, 1: candidate draws
    passes = [(f"position {p}", place_target(part.candidates, targets, p)) for p in spec.positions]
    passes += [(f"shuffle {i}", shuffle_rows(part.candidates, rng)) for i in range(spec.shuffles)]
    scores = [_scores(score, task, train, part, candidates, name, label)
              for label, candidates in track(passes, f"{name} position-bias pass")]
    main = task.main_score
    per_position: dict[int, float] = {}
    for position, (_, candidates), pass_scores in zip(spec.positions, passes, scores):
        evaluator = RankingEvaluator([main])
        evaluator.add(part.users, pass_scores, target_columns(candidates, targets))
        per_position[position] = evaluator.summary()[main]
    metrics = {f"trust.pos_{p}.{main}": value for p, value in per_position.items()}
    metrics["trust.PosGap"] = position_gap(per_position)
    shuffled = len(spec.positions)
    orders = [candidates for _, candidates in passes[shuffled:]]
    metrics["trust.kendall_tau"] = shuffle_consistency(orders, scores[shuffled:])
    return metrics
