"""Counterfactual fairness of LLM rankers (FaiRLLM): rankings under prompts with a
sensitive attribute against the neutral prompt on zeroshot/ml-100k, and the similarity
arithmetic (Jaccard@k, rank-biased overlap, SNSR / SNSV) by hand (docs/trust.md)."""
from __future__ import annotations

import numpy as np
import pytest

from benchmark.eval.trust import jaccard_at_k, rbo, snsr, snsv, stable_rankings
from conftest import shipped
from trust_fixtures import zeroshot_pass_metrics

USERS = 6


def counterfactual_metrics(folder) -> dict[str, float]:
    """The counterfactual pass alone, on the first USERS users of zeroshot/ml-100k, in
    process."""
    return zeroshot_pass_metrics(folder, "counterfactual", {"users": USERS, "k": 10}, USERS,
                                 "trust.counterfactual.")


VALUES = {"gender": ["F", "M"], "age": ["under_25", "25-49", "50_and_over"]}


def test_pop_ignores_the_prompt_similarity_one_spread_zero():
    metrics = counterfactual_metrics(shipped("pop"))
    for attribute, labels in VALUES.items():
        for label in labels:
            assert metrics[f"trust.counterfactual.{attribute}.{label}.jaccard@10"] == 1.0
            assert metrics[f"trust.counterfactual.{attribute}.{label}.rbo"] == pytest.approx(1.0)
        assert metrics[f"trust.counterfactual.{attribute}.snsr"] == 0.0
        assert metrics[f"trust.counterfactual.{attribute}.snsv"] == 0.0


def test_random_is_measured_not_assumed():
    # random draws new scores on every call, so its rankings differ from the test pass's
    # by chance: the pass reports that rather than 1 by construction.
    metrics = counterfactual_metrics(shipped("random"))
    assert len(metrics) == 5 * 2 + 2 * 4
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    assert metrics["trust.counterfactual.gender.jaccard@10"] < 1.0


PROMPT_READER = """
import numpy as np
from benchmark.api import Recommender

class Model(Recommender):
    # Ranks candidates by item id; told the user is a woman, it ranks them backwards.
    def score(self, request):
        scores = -np.asarray(request.candidates, dtype=np.float64)
        return -scores if "woman" in request.prompt_template else scores
"""


def test_a_model_that_reads_the_prompt_changes_its_ranking(make_submission):
    metrics = counterfactual_metrics(make_submission("prompt-reader", PROMPT_READER, paradigm="zero-shot"))
    # Reversed 20 candidates: the top 10 swap halves (Jaccard 0, RBO 0); "a man" keeps them.
    assert metrics["trust.counterfactual.gender.F.jaccard@10"] == 0.0
    assert metrics["trust.counterfactual.gender.F.rbo"] == 0.0
    assert metrics["trust.counterfactual.gender.M.jaccard@10"] == 1.0
    assert metrics["trust.counterfactual.gender.jaccard@10"] == 0.5
    assert metrics["trust.counterfactual.gender.snsr"] == 1.0
    assert metrics["trust.counterfactual.gender.snsv"] == pytest.approx(0.5)
    assert metrics["trust.counterfactual.age.snsr"] == 0.0  # no age wording mentions a woman


# --- the arithmetic -------------------------------------------------------------------------

def test_stable_rankings_keep_the_list_order_of_ties():
    scores = np.array([[1.0, 1.0, 2.0, 1.0], [0.0, 3.0, 2.0, 1.0]])
    candidates = np.array([[7, 8, 9, 6], [4, 5, 6, 7]])
    assert stable_rankings(scores, candidates).tolist() == [[9, 7, 8, 6], [5, 6, 7, 4]]


def test_jaccard_at_k():
    a, b = np.array([1, 2, 3, 4]), np.array([2, 1, 5, 4])
    assert jaccard_at_k(a, b, 2) == 1.0
    assert jaccard_at_k(a, b, 3) == pytest.approx(2 / 4)  # {1,2,3} vs {1,2,5}
    assert jaccard_at_k(a, b, 4) == pytest.approx(3 / 5)
    assert jaccard_at_k(a, a[::-1], 2) == 0.0


def test_rbo_extrapolated_by_hand():
    # X_1 = 1, X_2 = 1, X_3 = 3: 3/3 * .5^3 + (.5/.5) * (1 * .5 + 1/2 * .25 + 3/3 * .125) = .875
    assert rbo([1, 2, 3], [1, 3, 2], p=0.5, depth=3) == pytest.approx(0.875)
    # X_1 = 0, X_2 = 2: 2/2 * .81 + (.1/.9) * (2/2 * .81) = .9
    assert rbo([1, 2], [2, 1], p=0.9, depth=2) == pytest.approx(0.9)
    # Only the first `depth` items count.
    assert rbo([1, 2, 3, 4], [1, 2, 4, 3], p=0.9, depth=2) == pytest.approx(1.0)
    for p in (0.1, 0.5, 0.9, 0.98):
        assert rbo(list(range(10)), list(range(10)), p, 10) == pytest.approx(1.0)
    assert rbo([1, 2, 3], [4, 5, 6], 0.9, 3) == 0.0


def test_snsr_and_snsv_are_the_range_and_population_std():
    assert snsr([1.0, 0.5, 0.0]) == 1.0
    assert snsv([1.0, 0.5, 0.0]) == pytest.approx(np.sqrt(1 / 6))
    assert snsr([0.7, 0.7]) == snsv([0.7, 0.7]) == 0.0
