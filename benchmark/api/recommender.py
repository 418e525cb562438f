"""The base class every submission's model derives from."""
from __future__ import annotations

from typing import Any

import numpy as np

from benchmark.api.types import (CompletionRequest, FitContext, ModelReport, PredictRequest, Recommendation,
                                 ScoreRequest, TrainData)


class Recommender:
    """A model under evaluation.

    The harness constructs it with the card's `hyperparameters` as keyword arguments,
    calls `fit` once per (task, seed), then, on ranking tasks (sequential, top-K),
    `score` on batches of users: a float array [len(request.users),
    request.n_candidates]; higher means ranked earlier, equal scores are ties (the
    metrics average over tie orderings). A model that ranks fixed candidate sets may
    implement `recommend` instead: one ranked list per user, of item ids or free text
    (the harness maps text to the candidates and counts what it cannot map, named
    twice, or leaves out). On CTR tasks it calls `predict`: a float array
    [len(request.features)] of probabilities in [0, 1]. A model that writes text (an
    LLM) may implement `complete`: each prompt's greedy continuation, which the trust
    passes use to probe what it memorized. After the test pass it asks `report()` for
    what the model knows about itself (parameters, tokens, LLM identity).
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

    def recommend(self, request: ScoreRequest) -> list[Recommendation]:
        raise NotImplementedError(f"{type(self).__name__} does not implement recommend()")

    def predict(self, request: PredictRequest) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not implement predict() (CTR tasks)")

    def complete(self, request: CompletionRequest) -> list[str]:
        raise NotImplementedError(f"{type(self).__name__} does not implement complete()")

    def report(self) -> ModelReport:
        """What the model tells the harness about itself; nothing by default."""
        return ModelReport()

    @classmethod
    def implements(cls, capability: str) -> bool:
        """Whether the class overrides `capability` ("score", "recommend", "predict",
        "complete")."""
        return getattr(cls, capability) is not getattr(Recommender, capability)
