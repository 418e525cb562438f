"""The data-poisoning pass (benchmark/trust/poisoning.py): fake users built from the
training popularity, the targets' tie-aware exposure, and whole runs on a hand-made
dataset where `pop`'s exposure of the targets before and after is worked out by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.api import Catalog, Submission, TrainData
from benchmark.data import prepare
from benchmark.data.views import build_views
from benchmark.eval.trust import (HEAD, MID, TAIL, fake_user_items, poisoning_targets, popularity_groups,
                                  target_hits)
from benchmark.runner import run_one
from benchmark.tasks.schema import TaskSpec, TrustSpec
from benchmark.trust.poisoning import poisoned_train
from conftest import shipped
from paradigm_fixtures import zeroshot_task

POISONING = ("trust.attack.poisoning.before", "trust.attack.poisoning.after", "trust.attack.poisoning.gain")


# ------------------------------------------------------------------ the pure pieces

def test_popular_filler_is_the_most_popular_non_targets_in_random_order_then_the_target_round_robin():
    popularity = np.array([5, 9, 9, 1, 0, 2])
    targets = np.array([4, 3])
    fakes = fake_user_items(popularity, targets, 5, "popular", 3, np.random.default_rng(0))
    assert [f[-1] for f in fakes] == [4, 3, 4, 3, 4]
    assert all(sorted(f[:-1]) == [0, 1, 2] for f in fakes)
    assert len({tuple(f) for f in fakes}) > 1  # the filler's order is drawn per fake user
    # Equal counts go by item id; a filler larger than the non-targets is all of them.
    assert [f.tolist() for f in fake_user_items(popularity, targets, 2, "popular", 1, np.random.default_rng(0))] \
        == [[1, 4], [1, 3]]
    assert all(sorted(f[:-1]) == [0, 1, 2, 5] for f in fake_user_items(popularity, targets, 3, "popular", 10,
                                                                         np.random.default_rng(0)))


def test_random_filler_draws_distinct_non_targets_per_fake_user_reproducibly():
    popularity = np.arange(30)
    targets = np.array([7])
    fakes = fake_user_items(popularity, targets, 6, "random", 4, np.random.default_rng(1))
    for fake in fakes:
        assert len(fake) == 5 and fake[-1] == 7
        assert len(set(fake[:-1])) == 4 and 7 not in fake[:-1]
    assert len({frozenset(f[:-1]) for f in fakes}) > 1
    again = fake_user_items(popularity, targets, 6, "random", 4, np.random.default_rng(1))
    assert all(np.array_equal(a, b) for a, b in zip(fakes, again))


def test_targets_come_from_the_tail_preferring_items_with_training_interactions():
    popularity = np.array([40, 30, 20, 3, 2, 2, 0, 0])
    groups = popularity_groups(popularity, 0.2, 0.2)
    assert groups.tolist() == [HEAD, MID, MID, TAIL, TAIL, TAIL, TAIL, TAIL]
    drawn = poisoning_targets(popularity, groups, 3, np.random.default_rng(0))
    assert sorted(drawn) == [3, 4, 5]
    # Not enough interacted tail items: the whole tail; never more than it holds.
    assert set(poisoning_targets(popularity, groups, 4, np.random.default_rng(0))) <= {3, 4, 5, 6, 7}
    assert sorted(poisoning_targets(popularity, groups, 9, np.random.default_rng(0))) == [3, 4, 5, 6, 7]


def test_target_hits_is_tie_aware_and_leaves_out_excluded_items():
    scores = np.array([[4.0, 3.0, 2.0, 2.0, 1.0],
                       [4.0, 3.0, 2.0, 2.0, 1.0]])
    targets = np.array([2, 4])
    # Top 2 of row 0: items 0, 1 (neither target). Top 3: 0, 1, then 2 and 3 tied for one place.
    assert target_hits(scores, targets, 2).tolist() == [0.0, 0.0]
    assert target_hits(scores, targets, 3).tolist() == [0.25, 0.25]
    # Row 1 with items 0 and 3 excluded: its top 3 is 1, 2, 4 (both targets).
    hits = target_hits(scores, targets, 3, [np.array([], dtype=np.int64), np.array([0, 3])])
    assert hits.tolist() == [0.25, 1.0]


def test_poisoned_training_part_appends_fake_users_after_the_real_ones():
    interactions = pd.DataFrame({"user_id": [0, 0, 1], "item_id": [0, 1, 2], "timestamp": [10.0, 20.0, 15.0],
                                 "rating": [3.0, 5.0, 4.0], "row": [2, 0, 1]})
    users = pd.DataFrame({"user_id": [0, 1], "original_id": ["a", "b"], "gender": ["F", "M"]})
    train = TrainData(interactions, 2, Catalog(4, pd.DataFrame({"item_id": range(4)})), users=users)
    poisoned = poisoned_train(train, [np.array([1, 0, 3]), np.array([2, 3])])
    assert poisoned.n_users == 4 and poisoned.catalog is train.catalog and poisoned.validation is None
    fake = poisoned.interactions.iloc[3:]
    assert fake["user_id"].tolist() == [2, 2, 2, 3, 3] and fake["item_id"].tolist() == [1, 0, 3, 2, 3]
    assert fake["timestamp"].tolist() == [21.0, 22.0, 23.0, 24.0, 25.0]
    assert fake["rating"].tolist() == [5.0] * 5 and fake["row"].tolist() == [3, 4, 5, 6, 7]
    assert poisoned.interactions.dtypes.equals(interactions.dtypes)
    assert [len(s) for s in poisoned.sequences()] == [2, 1, 3, 2]
    assert poisoned.users["original_id"].tolist() == ["a", "b", "fake-0", "fake-1"]
    assert poisoned.users["gender"].iloc[2:].isna().all()
    assert len(train.interactions) == 3 and len(train.users) == 2  # the run's part is left as it was


# ------------------------------------------------------------------ whole runs

# Ten users; each rates its training items, then i5 (validation), then i6 (test).
# Training counts: i0 8, i1 6, i2 3, i3 1, i4 1 (i5, i6 none). With head and tail shares
# of 0.2 the tail is i3, i4 (and the uninteracted i5, i6): the targets are i3 and i4.
TRAINING = {"u0": ["i0", "i1", "i2"], "u1": ["i0", "i1", "i2"], "u2": ["i0", "i1", "i2"],
            "u3": ["i0", "i1"], "u4": ["i0", "i1"], "u5": ["i0", "i1"], "u6": ["i0"], "u7": ["i0"],
            "u8": ["i3"], "u9": ["i4"]}


def tiny_dataset(folder) -> str:
    rows = [(user, item, float(t), 4.0) for user, items in TRAINING.items()
            for t, item in enumerate([*items, "i5", "i6"], start=1)]
    folder.mkdir()
    pd.DataFrame(rows, columns=["user", "item", "timestamp", "rating"]).to_csv(folder / "interactions.csv",
                                                                               index=False)
    pd.DataFrame({"user": list(TRAINING), "gender": ["F", "M"] * 5}).to_csv(folder / "users.csv", index=False)
    return str(folder)


def only_poisoning(**spec) -> dict:
    """A trust block with every other pass off."""
    off = {name: None for name, field in TrustSpec.model_fields.items()
           if name != "poisoning" and not isinstance(field.default, int)}
    return off | {"poisoning": spec}


def tiny_task(folder, exclude_seen: bool = False, **poisoning) -> TaskSpec:
    # 4 fake users (0.4 of 10), each rating i0 and i1 (the filler) then i3 or i4 in turn.
    poisoning = {"fake_users": 0.4, "filler": "popular", "filler_size": 2, "targets": 2, "k": 3} | poisoning
    return TaskSpec.model_validate({
        "task": "sequential/poison", "family": "sequential", "version": 1,
        "dataset": {"name": "poison", "path": tiny_dataset(folder)},
        "split": {"method": "leave_one_out"},
        "history": {"max_len": 10, "exclude_seen": exclude_seen},
        "trust": only_poisoning(**poisoning),
        "metrics": ["HR@3"], "main_score": "HR@3", "seeds": [0], "batch_size": 4,
    })


def poisoning_metrics(submission: Submission, task: TaskSpec, sandbox: bool = False) -> dict[str, float]:
    prepared = prepare(task, log=lambda _: None)
    result = run_one(submission, task, 0, prepared, build_views(task, prepared), None, sandbox=sandbox)
    assert result.status == "FINISHED", result.reason
    return {name: value for name, value in result.costs.items() if name.startswith("trust.attack.poisoning")}


# Fitted again, pop counts i0 12, i1 10, i2 3, i3 3, i4 3. Its top 3 for every user:
# before, i0 i1 i2 (no target); after, i0 i1 and one place shared by i2 i3 i4 (1/3 each).
# Seen items excluded (histories: training items and i5), users' shares of the targets:
#            before (i0 8, i1 6, i2 3, i3 1, i4 1)   after (i0 12, i1 10, i2 3, i3 3, i4 3)
# u0-u2      i3 i4 i6: 1                         i3 i4 i6: 1
# u3-u5      i2 i3 i4: 1                         i2 i3 i4: 1
# u6, u7     i1 i2, i3|i4 for one place: 1/2     i1, i2|i3|i4 for two places: 2/3
# u8 (u9)    i0 i1 i2: 0                         i0 i1, i2|i4 (i2|i3) for one: (0 + 1/2) / 2
@pytest.mark.parametrize("exclude_seen, before, after", [(False, 0.0, 1 / 3),
                                                         (True, 7 / 10, (3 + 3 + 2 * 2 / 3 + 2 / 4) / 10)])
def test_poisoning_moves_pops_targets_into_the_top_k_by_the_hand_computed_share(tmp_path, exclude_seen, before,
                                                                                after):
    metrics = poisoning_metrics(Submission(shipped("pop")), tiny_task(tmp_path / "data", exclude_seen))
    assert metrics["trust.attack.poisoning.before"] == pytest.approx(before, abs=1e-12)
    assert metrics["trust.attack.poisoning.after"] == pytest.approx(after, abs=1e-12)
    assert metrics["trust.attack.poisoning.gain"] == pytest.approx(after - before, abs=1e-12)


def test_the_poisoned_model_is_fitted_again_inside_the_sandbox(tmp_path):
    metrics = poisoning_metrics(Submission(shipped("pop")), tiny_task(tmp_path / "data"), sandbox=True)
    assert metrics["trust.attack.poisoning.before"] == 0.0
    assert metrics["trust.attack.poisoning.after"] == pytest.approx(1 / 3, abs=1e-12)


def test_random_scores_give_the_same_figures_on_every_run_of_a_seed(tmp_path):
    task = tiny_task(tmp_path / "data", filler="random")
    first = poisoning_metrics(Submission(shipped("random")), task)
    assert sorted(first) == sorted(POISONING)
    assert all(0 <= first[name] <= 1 for name in POISONING[:2])
    assert poisoning_metrics(Submission(shipped("random")), task) == first


CONSTANT = """
import numpy as np
from benchmark.api import Recommender

class Model(Recommender):
    def fit(self, train, ctx):
        pass

    def score(self, request):
        return np.zeros((len(request.users), request.n_candidates))
"""


def test_zero_shot_models_and_candidate_set_tasks_skip_the_pass(tmp_path, make_submission, monkeypatch):
    import benchmark.progress

    logged: list[str] = []
    monkeypatch.setattr(benchmark.progress, "log", logged.append)
    zero_shot = Submission(make_submission("constant", CONSTANT, paradigm="zero-shot"))
    assert poisoning_metrics(zero_shot, tiny_task(tmp_path / "data")) == {}
    assert poisoning_metrics(Submission(shipped("pop")), zeroshot_task(trust=only_poisoning())) == {}
    skipped = [line for line in logged if "poisoning pass skipped" in line]
    assert len(skipped) == 2
    assert "does not train" in skipped[0] and "target items are rarely among a user's candidates" in skipped[1]
