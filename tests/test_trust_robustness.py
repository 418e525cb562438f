"""The robustness trust pass: the perturbations of what a model sees (drop, shuffle,
insert, typos) and the pass end to end: pop never moves, an order-dependent model
suffers from shuffling, typos move a title-reading model and not an ID model."""
from __future__ import annotations

import numpy as np
import pytest

from benchmark.api import FitContext, Recommender, ScoreRequest, Submission, TrainData
from benchmark.data import prepare
from benchmark.data.views import TaskViews, build_views
from benchmark.eval.trust import drop_items, insert_items, relative_drop, shuffle_items, typo_title
from benchmark.tasks import load_task
from benchmark.tasks.schema import RobustnessSpec, TaskSpec
from benchmark.trust import robustness, run_passes
from conftest import shipped, synthetic_task
from trust_fixtures import trust_run

PERTURBATIONS = ("drop", "shuffle", "insert", "typos")
ONLY_ROBUSTNESS = {"position_bias": None, "exposure": None, "fairness": None, "counterfactual": None,
                   "poisoning": None, "text_attack": None, "memorization": None,
                   "robustness": {"users": 150}}


# --- the perturbations --------------------------------------------------------------------

def is_subsequence(short: np.ndarray, long: np.ndarray) -> bool:
    rest = iter(long.tolist())
    return all(item in rest for item in short.tolist())


def test_drop_removes_a_share_and_keeps_the_order():
    rng = np.random.default_rng(0)
    history = np.arange(100, 110)
    dropped = drop_items(history, 0.2, rng)
    assert len(dropped) == 8 and is_subsequence(dropped, history)
    assert len(drop_items(np.array([1, 2]), 0.2, rng)) == 1  # at least one of two or more
    assert drop_items(np.array([7]), 0.2, rng).tolist() == [7]
    assert len(drop_items(np.array([], dtype=np.int64), 0.2, rng)) == 0


def test_shuffle_permutes_and_insert_adds_catalogue_items():
    rng = np.random.default_rng(0)
    history = np.arange(20, 40)
    shuffled = shuffle_items(history, rng)
    assert sorted(shuffled.tolist()) == history.tolist() and shuffled.tolist() != history.tolist()
    inserted = insert_items(history, 3, n_items=15, rng=rng)
    assert len(inserted) == 23 and inserted.dtype == history.dtype and is_subsequence(history, inserted)
    added = inserted[~np.isin(inserted, history)]
    assert len(added) == 3 and ((added >= 0) & (added < 15)).all()
    assert len(insert_items(np.array([], dtype=np.int64), 2, 15, rng)) == 2


def swapped_once(before: str, after: str) -> bool:
    """`after` is `before` with one pair of adjacent letters swapped."""
    diff = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
    return (len(before) == len(after) and len(diff) == 2 and diff[1] == diff[0] + 1
            and after[diff[0]] == before[diff[1]] and after[diff[1]] == before[diff[0]])


def test_typos_swap_two_adjacent_letters_in_a_share_of_the_words():
    rng = np.random.default_rng(0)
    title = "The Good, the Bad and the Ugly (1966) ab cd ef gh ii"
    words = title.split(" ")  # 13 words: round(0.2 * 13) = 3 get a typo
    for _ in range(20):
        typo = typo_title(title, 0.2, rng).split(" ")
        changed = [i for i, (a, b) in enumerate(zip(words, typo)) if a != b]
        assert len(typo) == len(words) and len(changed) == 3
        assert all(swapped_once(words[i], typo[i]) for i in changed)
        assert words.index("(1966)") not in changed and words.index("ii") not in changed
    assert swapped_once("Babe", typo_title("Babe", 0.1, rng))  # at least one word
    assert typo_title("1995 ?!", 0.5, rng) == "1995 ?!"  # nothing to swap


def test_relative_drop():
    assert relative_drop(0.5, 0.4) == pytest.approx(0.2)
    assert relative_drop(0.5, 0.6) == pytest.approx(-0.2)
    assert np.isnan(relative_drop(0.0, 0.1))


# --- the pass -------------------------------------------------------------------------------

class LastItemTransitions(Recommender):
    """Scores each item by how often it followed the history's last item in training:
    it depends on the order of the history."""

    def fit(self, train: TrainData, ctx: FitContext) -> None:
        self.follows = np.zeros((train.n_items, train.n_items))
        for items in train.sequences():
            np.add.at(self.follows, (items[:-1], items[1:]), 1.0)

    def score(self, request: ScoreRequest) -> np.ndarray:
        last = np.array([h[-1] if len(h) else 0 for h in request.histories])
        return self.follows[last]


class TitleWords(Recommender):
    """Scores each item by the words its title shares with the history's titles."""

    def fit(self, train: TrainData, ctx: FitContext) -> None:
        pass

    def score(self, request: ScoreRequest) -> np.ndarray:
        words = [set(title.lower().split()) for title in request.catalog.titles()]
        scores = np.zeros((len(request.users), request.n_candidates))
        for row, history in enumerate(request.histories):
            seen = set().union(*(words[i] for i in history))
            scores[row] = [len(w & seen) for w in words]
        return scores


@pytest.fixture(scope="module")
def prepared() -> dict:
    return {}


def task_views(prepared: dict, name: str) -> tuple[TaskSpec, TaskViews]:
    """A shipped task (or "synthetic") with only the robustness pass, prepared once per module."""
    if name not in prepared:
        base = synthetic_task() if name == "synthetic" else load_task(name)
        task = TaskSpec.model_validate(base.model_dump() | {"trust": ONLY_ROBUSTNESS})
        prepared[name] = task, build_views(task, prepare(task, log=lambda _: None))
    return prepared[name]


@pytest.mark.parametrize("name", ["sequential/ml-100k", "topk/ml-100k"])
def test_pop_is_unmoved_by_every_perturbation(prepared, name):
    # topk excludes each user's seen items from its ranking: the real ones, whatever
    # the model is shown, or dropping items would move even pop.
    task, views = task_views(prepared, name)
    run = trust_run(Submission(shipped("pop")).build(), task, views)
    assert robustness.applies(run) is None
    metrics = run_passes(run, log=lambda _: None)
    base = run.main_per_user(run.first_users(150).users).mean()
    for perturbation in PERTURBATIONS:
        assert metrics[f"trust.robustness.{perturbation}.drop"] == 0
        assert metrics[f"trust.robustness.{perturbation}.score"] == pytest.approx(base)
    assert metrics["cost.trust_seconds.robustness"] > 0


def test_shuffling_hurts_a_model_of_the_last_item_and_typos_do_not(prepared):
    # On the synthetic data users mostly step to the next item: the last one predicts it.
    task, views = task_views(prepared, "synthetic")
    run = trust_run(LastItemTransitions(), task, views)
    metrics = robustness.measure(run, RobustnessSpec())
    assert metrics["trust.robustness.shuffle.drop"] > 0.5
    assert metrics["trust.robustness.drop.drop"] > 0 and metrics["trust.robustness.insert.drop"] > 0
    assert metrics["trust.robustness.typos.drop"] == 0  # an ID model: the titles are not read
    assert robustness.measure(run, RobustnessSpec()) == metrics  # the pass's own seeded stream


def test_typos_move_a_model_that_reads_titles(prepared):
    task, views = task_views(prepared, "sequential/ml-100k")
    run = trust_run(TitleWords(), task, views)
    metrics = robustness.measure(run, RobustnessSpec(drop=None, insert=None))
    assert metrics["trust.robustness.typos.drop"] > 0.5
    assert metrics["trust.robustness.shuffle.drop"] == 0  # a bag of words: order does not matter
    assert set(metrics) == {f"trust.robustness.{p}.{m}" for p in ("shuffle", "typos") for m in ("score", "drop")}
