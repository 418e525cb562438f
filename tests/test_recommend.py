"""recommend(): the harness reads ranked lists (texts or item ids) into scores over the
candidates and counts output validity itself (benchmark.recommendations); a model can
neither skip the contract check nor report its own hallucination rate."""
from __future__ import annotations

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from benchmark.api import Recommender, ScoreRequest
from benchmark.eval.trust import validity_rates
from benchmark.recommendations import (
    RecommendationReader,
    RecommendationScorer,
    ValidityCounts,
    normalize_title,
    parse_ranking,
    ranking_scores,
)
from benchmark.scoring import ContractViolation
from conftest import MOVIE_TITLES, movie_catalog

TITLES = MOVIE_TITLES
CATALOG = movie_catalog()
TEXTS = CATALOG.item_texts()
# Toy Story, Usual Suspects, Il Postino, Seven, Twelve Monkeys
CANDIDATE_IDS = [0, 6, 12, 10, 5]
CANDS = [TEXTS[i] for i in CANDIDATE_IDS]


def request_for(n_users: int, candidates=CANDIDATE_IDS) -> ScoreRequest:
    return ScoreRequest(users=np.arange(100, 100 + n_users), histories=[np.array([1, 2])] * n_users,
                        candidates=np.tile(np.asarray(candidates), (n_users, 1)), catalog=CATALOG)


# ---------------------------------------------------------------------- parsing text


def test_parse_exact_normalised_and_fuzzy():
    text = "1. Toy Story (1995)\n2. The Usual Suspects\n3) **Il Postino (1994)**\n4. Twelve Monkies (1995)"
    parsed = parse_ranking(text, CANDS, TEXTS)
    assert parsed.order == [0, 1, 2, 4]
    assert (parsed.hallucinated, parsed.duplicates, parsed.missing, parsed.malformed) == (0, 0, 1, False)
    assert parsed.compliant
    assert normalize_title("Usual Suspects, The (1995)") == normalize_title("the usual suspects!") == "usual suspects"


def test_parse_hallucinations_duplicates_and_missing():
    text = ("Here is my ranking:\n1. Star Wars (1977)\n2. Toy Story (1995)\n3. Toy Story\n"
            "4. The Matrix (1999)\n5. Seven (Se7en) (1995) - a dark thriller\n")
    parsed = parse_ranking(text, CANDS, TEXTS)
    assert parsed.order == [0, 3]
    assert parsed.hallucinated == 2 and parsed.off_candidates == 1  # Star Wars is in the catalogue
    assert parsed.duplicates == 1 and parsed.missing == 3 and not parsed.malformed
    assert not parsed.compliant
    assert ValidityCounts.of(parsed).items_named == 5
    scores = ranking_scores(parsed, len(CANDS))
    assert scores[0] > scores[3] > scores[1] == scores[2] == scores[4] == 0


def test_parse_malformed_and_unmarked():
    for text in ("", "I cannot help with that.", "   \n"):
        parsed = parse_ranking(text, CANDS, TEXTS)
        assert parsed.malformed and parsed.order == [] and parsed.missing == 5 and parsed.hallucinated == 0
        assert not parsed.compliant and np.all(ranking_scores(parsed, 5) == 0)
    parsed = parse_ranking("Sure!\nTwelve Monkeys\nToy Story (1995)", CANDS, TEXTS)
    assert parsed.order == [4, 0] and parsed.hallucinated == 0  # prose lines are not items
    parsed = parse_ranking("1. Toy Story (1995) 2. Babe (1995) 3. 2. Copycat", CANDS, TEXTS)
    assert parsed.order == [0] and parsed.off_candidates == 2


# ---------------------------------------------------------------------- the reader

# A listwise model's outputs for 4 users over the same 5 candidates, counted by hand:
OUTPUTS = [
    # named 4: all candidates, nothing wrong; missing 1 (Seven)
    "1. Toy Story (1995)\n2. The Usual Suspects\n3) **Il Postino (1994)**\n4. Twelve Monkies (1995)",
    # named 5: Star Wars (catalogue) and The Matrix (invented) hallucinated, Toy Story repeated; missing 3
    "Here is my ranking:\n1. Star Wars (1977)\n2. Toy Story (1995)\n3. Toy Story\n4. The Matrix (1999)\n"
    "5. Seven (Se7en) (1995) - a dark thriller\n",
    # named 0: malformed; missing 5
    "I cannot help with that.",
    # ids: 10 (Seven), 5 (Twelve Monkeys), 10 again, 19 (Star Wars, not a candidate), 99 (no such
    # item): named 5, hallucinated 2 (1 off-candidate), duplicates 1; missing 3
    [10, np.int64(5), 10, 19, 99],
]


def test_reader_scores_and_counts_texts_and_ids_as_computed_by_hand():
    scores, counts = RecommendationReader(CATALOG).read(OUTPUTS, request_for(4), "test")
    assert scores.dtype == np.float32 and scores.shape == (4, 5)
    assert scores.tolist() == [[5, 4, 3, 0, 2], [5, 0, 0, 4, 0], [0, 0, 0, 0, 0], [0, 0, 0, 5, 4]]
    assert counts == ValidityCounts(users=4, hallucinated=4, off_candidates=2, duplicates=2, missing=12,
                                    malformed=1, compliant=1, items_named=14)
    assert counts.rates(5) == {"trust.hallucination_rate": 4 / 14, "trust.duplicate_rate": 2 / 14,
                               "trust.missing_rate": 12 / 20, "trust.malformed_rate": 1 / 4,
                               "trust.compliance": 1 / 4}


def test_an_empty_id_list_is_malformed_and_ranks_nothing():
    scores, counts = RecommendationReader(CATALOG).read([[], np.array([], dtype=float)], request_for(2), "t")
    assert np.all(scores == 0) and counts.malformed == 2 and counts.missing == 10 and counts.compliant == 0


def test_rates_are_those_of_the_listwise_counters():
    # The same formulas as the counters a listwise model used to keep (llm_stats).
    counts = ValidityCounts(users=4, hallucinated=4, duplicates=2, missing=8, malformed=1, compliant=3,
                            items_named=40)
    assert counts.rates(20) == validity_rates({"users": 4, "items_named": 40, "hallucinated": 4, "duplicates": 2,
                                               "missing": 8, "malformed": 1, "compliant": 3}, 20)
    assert ValidityCounts().rates(20) == {}  # no users: no rates


@pytest.mark.parametrize("outputs, rule, detail", [
    ({"100": "1. Babe"}, "type", "expected a list with one recommendation per user, got dict"),
    (np.array([[0, 6]]), "type", "got ndarray"),
    ("1. Toy Story", "type", "got str"),
    (["1. Toy Story", "2. Babe"], "length", "expected 1 recommendations (one per user), got 2"),
    ([{"ids": [0]}], "recommendation", "the entry for user 100 is a dict"),
    ([None], "recommendation", "the entry for user 100 is a NoneType"),
    ([[0, 6.0]], "recommendation", "the list for user 100 holds 6.0 (float)"),
    ([["Toy Story (1995)"]], "recommendation", "holds 'Toy Story (1995)' (str)"),
    ([[True]], "recommendation", "holds True (bool)"),
    ([[3, None]], "recommendation", "holds None (NoneType)"),
])
def test_a_response_breaking_the_contract_names_the_rule(outputs, rule, detail):
    with pytest.raises(ContractViolation) as error:
        RecommendationScorer(lambda request: outputs, CATALOG, name="x")(request_for(1))
    message = str(error.value)
    assert message.startswith(f"submission 'x': recommend() call 0: rule '{rule}': ") and detail in message


# ---------------------------------------------------------------- no self-reporting

CHEAT = """
from benchmark.api import ModelReport, Recommender

PERFECT = {"users": 10**6, "hallucinated": 0, "off_candidates": 0, "duplicates": 0, "missing": 0,
           "malformed": 0, "compliant": 10**6, "items_named": 10**6}


class Model(Recommender):
    # Claims a perfect record everywhere a harness might once have looked.
    llm_stats = dict(PERFECT)
    hallucination_rate = 0.0
    compliance = 1.0

    def recommend(self, request):
        self.llm_stats = dict(PERFECT)
        self.counts = self.validity = dict(PERFECT)
        texts = request.catalog.item_texts()
        # Per user: the first candidate, an invented title, the first candidate again.
        first = [texts[row[0]] for row in request.candidates]
        return [f"1. {t}\\n2. Not A Real Movie\\n3. {t}" for t in first]

    def report(self):
        return ModelReport(tokens=0, llm={"llm.hallucination_rate": "0.0"})
"""


class Cheater(Recommender):
    def __init__(self) -> None:
        super().__init__()
        self.llm_stats = {"users": 1, "hallucinated": 0, "items_named": 1, "compliant": 1}

    def recommend(self, request):
        self.llm_stats["users"] += len(request.users)
        self.llm_stats["items_named"] += len(request.users)
        return [[19, 99] for _ in request.users]  # two items that are not candidates


def test_a_model_cannot_set_its_own_hallucination_rate():
    model = Cheater()
    scorer = RecommendationScorer(model.recommend, CATALOG)
    for _ in range(3):
        scorer(request_for(2))
    assert scorer.rates(5)["trust.hallucination_rate"] == 1.0 and scorer.rates(5)["trust.compliance"] == 0.0
    assert scorer.counts.users == 6 and scorer.counts.items_named == 12


def test_a_listwise_run_logs_the_rates_the_harness_computed(make_submission, tracking_uri):
    from benchmark.runner import evaluate
    from test_zeroshot import zeroshot_task

    folder = make_submission("cheater", CHEAT, paradigm="zero-shot")
    task = zeroshot_task(trust={"position_bias": None, "popularity_k": 3})
    runs = evaluate([folder], task, tracking_uri=tracking_uri)
    assert runs.status.tolist() == ["FINISHED"], runs.reason.tolist()
    metrics = MlflowClient(tracking_uri).get_run(runs.run_id[0]).data.metrics
    # 3 items named per user: 1 invented, 1 repeated; 9 of the 10 candidates missing.
    assert metrics["trust.hallucination_rate"] == pytest.approx(1 / 3)
    assert metrics["trust.duplicate_rate"] == pytest.approx(1 / 3)
    assert metrics["trust.missing_rate"] == pytest.approx(9 / 10)
    assert metrics["trust.malformed_rate"] == 0.0 and metrics["trust.compliance"] == 0.0
