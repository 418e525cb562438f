"""A submission in the harness's own process (--no-sandbox, for debugging one's own
model), behind copies: fit gets a private copy of the training part, every call a copy
of its request (each history its own array), and the harness keeps a copy of every
answer. Whatever the model writes into what it was given (a history, the catalogue's
items table, the interactions, even after flipping `flags.writeable` back on) changes
nothing that the harness or any other run sees.

This is no security boundary: code in the harness's process can reach anything the
harness holds (docs/sandbox.md). Runs made this way are tagged `sandbox=false`.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from benchmark.api import (Catalog, CompletionRequest, FitContext, ModelReport, PredictRequest, Recommendation,
                           Recommender, ScoreRequest, TrainData)
from benchmark.api.types import ValidationSet
from benchmark.executors.protocol import separate


def private_catalog(catalog: Catalog) -> Catalog:
    return Catalog(catalog.n_items, catalog.items.copy(deep=True))


def private_train(train: TrainData, catalog: Catalog) -> TrainData:
    """A deep copy of the training part, holding `catalog` (itself a private copy)."""
    validation = train.validation
    if validation is not None:
        targets = validation.targets
        validation = ValidationSet(
            separate(validation.users), [separate(h) for h in validation.histories],
            separate(targets) if isinstance(targets, np.ndarray) else [separate(t) for t in targets])
    return dataclasses.replace(
        train, interactions=train.interactions.copy(deep=True), catalog=catalog, validation=validation,
        users=None if train.users is None else train.users.copy(deep=True),
        feature_fields=list(train.feature_fields))


class InProcessRecommender(Recommender):
    """The model, called in this process through copies of everything it is given."""

    def __init__(self, model: Recommender) -> None:  # noqa: no super().__init__: holds no hyperparameters
        self._model = model
        self.ranks_full_catalogue = type(model).ranks_full_catalogue
        self._catalogs: dict[int, tuple[Catalog, Catalog]] = {}  # id -> (the harness's, the model's copy)

    def fit(self, train: TrainData, ctx: FitContext) -> None:
        if ctx.evaluate_validation is not None:  # validation requests are copies too
            evaluate = ctx.evaluate_validation
            ctx = dataclasses.replace(ctx, evaluate_validation=lambda call: evaluate(
                lambda request: _owned(call(self._request(request)))))
        self._model.fit(private_train(train, self._private(train.catalog)), ctx)

    def score(self, request: ScoreRequest) -> np.ndarray:
        return _owned(self._model.score(self._request(request)))

    def recommend(self, request: ScoreRequest) -> list[Recommendation]:
        return self._model.recommend(self._request(request))

    def predict(self, request: PredictRequest) -> np.ndarray:
        return _owned(self._model.predict(self._request(request)))

    def complete(self, request: CompletionRequest) -> list[str]:
        return self._model.complete(CompletionRequest(list(request.prompts), request.max_new_tokens,
                                                       list(request.stop)))

    def report(self) -> ModelReport:
        return self._model.report()

    def implements(self, capability: str) -> bool:  # type: ignore[override]
        return self._model.implements(capability)

    def _private(self, catalog: Catalog) -> Catalog:
        """The model's copy of a catalogue of the harness (one per catalogue, so the
        requests of a run refer to the catalogue its fit saw)."""
        known = self._catalogs.get(id(catalog))
        if known is None or known[0] is not catalog:
            known = self._catalogs[id(catalog)] = (catalog, private_catalog(catalog))
        return known[1]

    def _request(self, request: ScoreRequest | PredictRequest) -> ScoreRequest | PredictRequest:
        if isinstance(request, PredictRequest):
            return PredictRequest(request.features.copy(deep=True), list(request.feature_fields),
                                  self._private(request.catalog))
        return ScoreRequest(
            users=separate(request.users), histories=[separate(h) for h in request.histories],
            candidates=None if request.candidates is None else separate(request.candidates),
            catalog=self._private(request.catalog), prompt_template=request.prompt_template)


def _owned(output):
    """The harness's own copy of an answer (the model may change its array later)."""
    return np.array(output, copy=True) if isinstance(output, np.ndarray) else output

