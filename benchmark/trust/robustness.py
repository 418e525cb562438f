"""The robustness pass: the main score of the first test users when what the model sees
is perturbed at test time — items dropped from the history, its order shuffled, random
items inserted, typos in the catalogue's titles — and its relative drop from the test
pass's score of the same users (docs/trust.md)."""
from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from benchmark.api import Catalog, ScoreRequest, TrainData
from benchmark.eval.trust import drop_items, insert_items, relative_drop, shuffle_items, typo_title
from benchmark.trust import TrustRun

if TYPE_CHECKING:
    from benchmark.data.views import EvalSet
    from benchmark.tasks.schema import RobustnessSpec


def applies(run: TrustRun) -> str | None:
    if len(run.test) == 0:
        return "no test users"
    if run.task.main_score not in run.per_user.columns:
        return f"{run.task.main_score} is not a per-user metric"
    return None


def measure(run: TrustRun, spec: "RobustnessSpec") -> dict[str, float]:
    """trust.robustness.<perturbation>.score (the main score over the first `users` test
    users with the perturbation) and .drop ((base - score) / base, base = their test
    pass score) for each perturbation that the spec sets (typos: where items have titles)."""
    part = run.first_users(spec.users)
    base = _mean(run.main_per_user(part.users))
    main = run.task.main_score
    metrics: dict[str, float] = {}
    for name, histories, train in perturbations(run, spec, part):
        # The model sees the perturbed histories; the evaluation keeps the real ones
        # (the seen items that exclude_seen removes from the ranking stay the same).
        seeing = _seeing(run.score, part.users, histories, run.task.history.max_len)
        per_user = run.evaluate(part, f"robustness {name}", train=train, score=seeing).per_user()
        score = _mean(per_user[main].to_numpy())
        metrics[f"trust.robustness.{name}.score"] = score
        metrics[f"trust.robustness.{name}.drop"] = relative_drop(base, score)
    return metrics


def perturbations(run: TrustRun, spec: "RobustnessSpec",
                  part: "EvalSet") -> Iterator[tuple[str, list[np.ndarray], TrainData | None]]:
    """(name, each user's history as the model sees it, another training part or None)
    for each perturbation that is set, drawn in this order from the pass's stream."""
    rng = run.rng("robustness")
    seen = run.visible_histories(part)
    if spec.drop is not None:
        yield "drop", [drop_items(h, spec.drop, rng) for h in seen], None
    if spec.shuffle:
        yield "shuffle", [shuffle_items(h, rng) for h in seen], None
    if spec.insert is not None:
        yield "insert", [insert_items(h, spec.insert, run.train.n_items, rng) for h in seen], None
    if spec.typos is not None and "title" in run.train.catalog.items:
        yield "typos", seen, replace(run.train, catalog=typo_catalog(run.train.catalog, spec.typos, rng))


def typo_catalog(catalog: Catalog, share: float, rng: np.random.Generator) -> Catalog:
    """A copy of the catalogue with typos (typo_title) in every title that is text."""
    items = catalog.items.copy()
    titles = items["title"].astype(object)
    items["title"] = [typo_title(t, share, rng) if isinstance(t, str) else t for t in titles]
    return Catalog(catalog.n_items, items)


def _seeing(score: Callable, users: np.ndarray, histories: list[np.ndarray], max_len: int | None) -> Callable:
    """`score` given each user's perturbed history (cut to the task's length, so an
    insertion pushes the oldest items out, as a longer history would) in place of its
    own."""
    by_user = {int(u): (h[-max_len:] if max_len else h) for u, h in zip(users, histories)}

    def call(request: ScoreRequest) -> np.ndarray:
        return score(replace(request, histories=[by_user[int(u)] for u in request.users]))

    return call


def _mean(values: np.ndarray) -> float:
    """The mean as the evaluators' summaries take it, so an unchanged model drops by 0 exactly."""
    return math.fsum(values) / len(values)
