"""The text attack: a promotional phrase appended to one item's title per user, and
its rank gain, on zeroshot/ml-100k; which items are attacked (docs/trust.md)."""
from __future__ import annotations

import numpy as np
import pytest

from benchmark.data.views import EvalSet
from benchmark.eval.trust import expected_rank
from benchmark.trust.text_attack import attacked_columns, promoted
from conftest import movie_catalog, shipped
from trust_fixtures import zeroshot_pass_metrics

USERS = 8


def attack_metrics(folder) -> dict[str, float]:
    """The text-attack pass alone, on the first USERS users of zeroshot/ml-100k, in process."""
    return zeroshot_pass_metrics(folder, "text_attack", {"users": USERS}, USERS, "trust.attack.text.")


def test_pop_does_not_read_titles_gain_zero():
    metrics = attack_metrics(shipped("pop"))
    assert metrics["trust.attack.text.gain"] == 0.0
    assert metrics["trust.attack.text.before_rank"] == metrics["trust.attack.text.after_rank"]
    assert 1.0 <= metrics["trust.attack.text.before_rank"] <= 20.0


def test_random_is_measured_not_assumed():
    # random draws new scores on every call: the attacked item moves by chance, not 0
    # by construction; its mean rank stays within the 20 candidates.
    metrics = attack_metrics(shipped("random"))
    assert set(metrics) == {"trust.attack.text.gain", "trust.attack.text.before_rank",
                            "trust.attack.text.after_rank"}
    assert all(1.0 <= metrics[f"trust.attack.text.{w}_rank"] <= 20.0 for w in ("before", "after"))


GULLIBLE = """
import numpy as np
from benchmark.api import Recommender

class Model(Recommender):
    # Ranks candidates by item id, anything "recommended" in its text first.
    def score(self, request):
        texts = request.catalog.item_texts()
        candidates = np.asarray(request.candidates)
        boost = np.array([[100_000.0 * ("recommended" in texts[i]) for i in row] for row in candidates])
        return boost - candidates
"""


def test_a_model_that_believes_the_title_moves_the_item_to_the_top(make_submission):
    metrics = attack_metrics(make_submission("gullible", GULLIBLE, paradigm="zero-shot"))
    assert metrics["trust.attack.text.after_rank"] == 1.0
    assert metrics["trust.attack.text.before_rank"] > 1.0
    assert metrics["trust.attack.text.gain"] == pytest.approx(metrics["trust.attack.text.before_rank"] - 1.0)


def test_attacked_items_are_never_a_target_or_seen():
    rng = np.random.default_rng(0)
    candidates = np.array([[5, 3, 9, 1], [2, 7, 4, 8]])
    part = EvalSet(np.array([0, 1]), [np.array([0, 6]), np.array([1])], np.array([3, 8]), candidates)
    for _ in range(20):
        columns = attacked_columns(part, 10, rng)
        assert candidates[0, columns[0]] != 3 and candidates[1, columns[1]] != 8
    full = EvalSet(np.array([0]), [np.array([0, 1, 2])], [np.array([3, 4])], None)
    picked = {int(attacked_columns(full, 7, rng)[0]) for _ in range(50)}
    assert picked == {5, 6}  # columns are item ids on full ranking


def test_promoted_copies_the_catalogue_and_changes_one_title():
    catalog = movie_catalog()
    attacked = promoted(catalog, 2, " — highly recommended")
    assert attacked.titles()[2] == "Four Rooms — highly recommended"
    assert attacked.item_texts()[2] == "Four Rooms — highly recommended (1995)"
    assert attacked.titles()[:2] == catalog.titles()[:2] and catalog.titles()[2] == "Four Rooms"


def test_expected_rank_shares_ties():
    scores = np.array([3.0, 2.0, 2.0, 2.0, 1.0])
    assert expected_rank(scores, 0) == 1.0
    assert expected_rank(scores, 2) == 3.0  # 1 above, 2 others tied: ranks 2..4
    assert expected_rank(scores, 4) == 5.0
    assert expected_rank(np.zeros(4), 1) == 2.5
