"""Item-side exposure: tie-aware top-k weights, popularity groups, the Gini of exposure,
and the exposure pass over what the test pass recorded (docs/trust.md)."""
from __future__ import annotations

import numpy as np
import pytest

from benchmark.api import find_submission
from benchmark.data import prepare
from benchmark.data.views import build_views
from benchmark.eval.trust import HEAD, MID, TAIL, gini, popularity_groups, top_k_popularity, top_k_weights
from benchmark.runner import run_one
from conftest import shipped, synthetic_task


def test_top_k_weights_share_the_places_left_among_a_tie_at_the_cutoff():
    scores = np.array([[3.0, 2.0, 2.0, 2.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0], [5.0, 4.0, 3.0, 2.0, 1.0]])
    weights = top_k_weights(scores, 2)
    assert np.allclose(weights[0], [1, 1 / 3, 1 / 3, 1 / 3, 0])
    assert np.allclose(weights[1], [0.4] * 5)
    assert np.allclose(weights[2], [1, 1, 0, 0, 0])
    assert np.allclose(weights.sum(axis=1), 2)
    assert np.allclose(top_k_weights(scores, 9).sum(axis=1), 5)  # k beyond the columns: all of them


def test_arp_is_the_weighted_popularity_of_the_top_k():
    scores = np.array([[3.0, 2.0, 2.0, 1.0]])
    candidates = np.array([[0, 1, 2, 3]])
    popularity = np.array([10.0, 4.0, 8.0, 100.0])
    assert top_k_popularity(scores, candidates, popularity, 2) == pytest.approx((10 + 0.5 * 4 + 0.5 * 8) / 2)


def test_popularity_groups_split_the_interactions_head_mid_tail():
    popularity = np.array([30, 50, 10, 5, 5, 0])  # shares held before each, by popularity: 0, .5, .8, .9, .95, 1
    groups = popularity_groups(popularity, head_share=0.2, tail_share=0.2)
    assert groups.tolist() == [MID, HEAD, TAIL, TAIL, TAIL, TAIL]
    assert (popularity_groups(np.zeros(3), 0.2, 0.2) == TAIL).all()


def test_gini_of_exposure():
    assert gini(np.ones(5)) == pytest.approx(0.0)
    assert gini(np.array([0, 0, 0, 1.0])) == pytest.approx(0.75)
    assert np.isnan(gini(np.zeros(3)))


def exposure_of(submission: str, task) -> dict[str, float]:
    prepared = prepare(task, log=lambda _: None)
    views = build_views(task, prepared)
    result = run_one(find_submission(shipped(submission)), task, 0, prepared, views, None, sandbox=False)
    assert result.status == "FINISHED", result.reason
    return result.costs


def test_pop_puts_only_head_items_in_front_and_never_exposes_the_tail():
    task = synthetic_task(trust={"popularity_k": 5, "exposure": {"head_share": 0.3, "tail_share": 0.3}})
    metrics = exposure_of("pop", task)
    train = build_views(task, prepare(task, log=lambda _: None)).train
    popularity = np.bincount(train.interactions["item_id"], minlength=train.n_items)
    weights = top_k_weights(popularity[None, :].astype(float), 5)[0]  # the same for every user
    groups = popularity_groups(popularity, 0.3, 0.3)
    assert metrics["trust.ARP@5"] == pytest.approx((weights * popularity).sum() / 5)
    assert metrics["trust.APLT@5"] == pytest.approx((weights * (groups != HEAD)).sum() / 5)
    assert metrics["trust.exposure_gini@5"] == pytest.approx(gini(weights))
    if "trust.hit@5.tail" in metrics:
        assert metrics["trust.hit@5.tail"] == 0.0
    assert metrics["cost.trust_seconds.exposure"] >= 0 and "cost.trust_seconds" in metrics


def test_a_constant_model_exposes_every_item_alike(make_submission):
    folder = make_submission("constant", """
import numpy as np
from benchmark.api import Recommender

class Constant(Recommender):
    def score(self, request):
        return np.zeros((len(request.users), request.n_candidates))
""", entrypoint="model:Constant")
    task = synthetic_task(trust={"popularity_k": 5})
    prepared = prepare(task, log=lambda _: None)
    views = build_views(task, prepared)
    result = run_one(find_submission(folder), task, 0, prepared, views, None, sandbox=False)
    metrics = result.costs
    n_items = views.train.n_items
    assert metrics["trust.exposure_gini@5"] == pytest.approx(0.0, abs=1e-12)
    for group in ("head", "mid", "tail"):  # every target has the same chance 5/n
        if f"trust.hit@5.{group}" in metrics:
            assert metrics[f"trust.hit@5.{group}"] == pytest.approx(5 / n_items)
    popularity = np.bincount(views.train.interactions["item_id"], minlength=n_items)
    groups = popularity_groups(popularity, 0.2, 0.2)
    assert metrics["trust.APLT@5"] == pytest.approx((groups != HEAD).mean())


def test_no_trust_block_no_trust_metrics():
    metrics = exposure_of("pop", synthetic_task())
    assert not [m for m in metrics if m.startswith("trust.") or m.startswith("cost.trust")]
