"""The base class every submission's model derives from."""
from __future__ import annotations

from typing import Any

import numpy as np

from benchmark.api.types import FitContext, PredictRequest, ScoreRequest, TrainData


class Recommender:
    """A model under evaluation.

    The harness constructs it with the card's `hyperparameters` as keyword arguments,
    calls `fit` once per (task, seed), then, on ranking tasks (sequential, top-K),
    `score` on batches of users: a float array [len(request.users),
    request.n_candidates]; higher means ranked earlier, equal scores are ties (the
    metrics average over tie orderings). On CTR tasks it calls `predict`: a float
    array [len(request.features)] of probabilities in [0, 1].
    """

    # Whether score() accepts full-ranking requests (candidates=None). Models that can
    # only rank a given candidate set (LLM rankers) set False; `llm4rec validate` then
    # checks them on candidate sets only.
    ranks_full_catalogue: bool = True

    def __init__(self, **hyperparameters: Any) -> None:
        self.hyperparameters = hyperparameters

    def fit(self, train: TrainData, ctx: FitContext) -> None:
        """Learn from the training part. Models that need no training keep this."""

    def score(self, request: ScoreRequest) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not implement score()")

    def predict(self, request: PredictRequest) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not implement predict() (CTR tasks)")
