"""The fairness trust pass: group labels, the gap, ratio and permutation test between
the groups' mean main scores, and the pass end to end on ml-100k's users."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.api import FitContext, Recommender, ScoreRequest, Submission, TrainData
from benchmark.data import prepare
from benchmark.data.views import TaskViews, build_views
from benchmark.eval.trust import (bin_labels, binned, gap_ratio, group_codes, group_means, metric_label,
                                  permutation_p)
from benchmark.tasks import load_task
from benchmark.tasks.schema import FairnessSpec, TaskSpec
from benchmark.trust import TrustRun, fairness, run_passes
from conftest import SHARED_ASSETS, shipped, synthetic_task
from trust_fixtures import trust_run

ML1M_AGES = ["under_18", "18-24", "25-34", "35-44", "45-49", "50-55", "56_and_over"]
ONLY_FAIRNESS = {"position_bias": None, "exposure": None, "counterfactual": None, "robustness": None,
                 "poisoning": None, "text_attack": None, "memorization": None,
                 "fairness": {"permutations": 500}}


# --- the arithmetic -------------------------------------------------------------------

def test_metric_label_keeps_only_safe_characters():
    assert metric_label("Film-Noir & Crime") == "Film-Noir_Crime"
    assert metric_label(" under_18 ") == "under_18"
    assert metric_label(3.5) == "3_5"
    assert metric_label("?!") == "_"


def test_bin_labels_are_ml1m_age_groups():
    assert bin_labels([18, 25, 35, 45, 50, 56]) == ML1M_AGES
    assert bin_labels([0.5, 1.5]) == ["under_0_5", "0_5-1_5", "1_5_and_over"]
    assert bin_labels([1, 2, 4]) == ["under_1", "1", "2-3", "4_and_over"]
    with pytest.raises(ValueError, match="increasing"):
        bin_labels([25, 18])


def test_binned_puts_edges_in_the_upper_group_and_nan_nowhere():
    labels = binned(np.array([7, 17.9, 18, 24, 25, 55, 56, 73, np.nan]), [18, 25, 35, 45, 50, 56])
    assert labels.tolist() == ["under_18", "under_18", "18-24", "18-24", "25-34", "50-55", "56_and_over",
                               "56_and_over", None]


def test_group_codes_drop_missing_and_small_groups():
    names, codes = group_codes(["b", "a", None, "b", "c", "a", "b"], min_size=2)
    assert names == ["a", "b"]
    assert codes.tolist() == [1, 0, -1, 1, -1, 0, 1]


def test_gap_and_ratio_by_hand():
    scores = np.array([0.2, 0.4, 0.1, 0.1, 0.3, 0.5])
    codes = np.array([0, 0, 1, 1, 2, 2])
    means = group_means(scores, codes, 3)
    assert means == pytest.approx([0.3, 0.1, 0.4])
    gap, ratio = gap_ratio(means)
    assert gap == pytest.approx(0.3) and ratio == pytest.approx(0.25)
    assert np.isnan(gap_ratio(np.zeros(2))[1])


def test_permutation_p_is_small_for_separate_groups_and_not_for_random_labels():
    rng = np.random.default_rng(0)
    codes = np.repeat([0, 1], 100)
    apart = np.where(codes == 0, 0.1, 0.6) + rng.normal(0, 0.05, 200)
    assert permutation_p(apart, codes, 999, np.random.default_rng(1)) == pytest.approx(1 / 1000)
    # Under the null the p-value is uniform: its mean over many label draws is about 1/2.
    noise = rng.random(200)
    ps = [permutation_p(noise, rng.permutation(codes), 200, rng) for _ in range(40)]
    assert 0.35 < np.mean(ps) < 0.65
    assert max(ps) > 0.5


def test_constant_scores_have_no_gap_and_p_one():
    codes = np.array([0, 1, 2] * 7 + [0])
    scores = np.full(len(codes), 0.1)  # group sums of 0.1 are inexact in floating point
    gap, ratio = gap_ratio(group_means(scores, codes, 3))
    assert gap == pytest.approx(0, abs=1e-15) and ratio == pytest.approx(1)
    assert permutation_p(scores, codes, 50, np.random.default_rng(0)) == 1


# --- the pass on ml-100k ------------------------------------------------------------------

class PopularForWomen(Recommender):
    """Most popular items for women, every item the same score for men."""

    def fit(self, train: TrainData, ctx: FitContext) -> None:
        self.counts = np.bincount(train.interactions["item_id"], minlength=train.n_items).astype(np.float64)
        self.women = np.zeros(train.n_users, dtype=bool)
        self.women[train.users.loc[train.users["gender"] == "F", "user_id"].to_numpy()] = True

    def score(self, request: ScoreRequest) -> np.ndarray:
        counts = self.counts if request.candidates is None else self.counts[request.candidates]
        return np.where(self.women[request.users][:, None], counts, 0.0)


class Constant(Recommender):
    def fit(self, train: TrainData, ctx: FitContext) -> None:
        pass

    def score(self, request: ScoreRequest) -> np.ndarray:
        return np.zeros((len(request.users), request.n_candidates))


@pytest.fixture(scope="module")
def ml100k(tmp_path_factory) -> tuple[TaskSpec, TaskViews]:
    """zeroshot/ml-100k (200 test users, 20 candidates each) with only the fairness pass:
    popularity is a strong signal there, so the groups it serves stand far apart."""
    task = TaskSpec.model_validate(load_task("zeroshot/ml-100k").model_dump() | {"trust": ONLY_FAIRNESS})
    with pytest.MonkeyPatch.context() as patch:  # a module-wide cache, away from the real one
        patch.setenv("LLM4REC_CACHE", str(tmp_path_factory.mktemp("cache")))
        patch.setenv("LLM4REC_ASSETS", SHARED_ASSETS)
        views = build_views(task, prepare(task, log=lambda _: None))
    return task, views


def group_mean(run: TrustRun, users: pd.Series) -> float:
    frame = run.per_user[run.per_user["user"].isin(users)]
    return float(frame[run.task.main_score].mean())


def test_a_model_that_serves_only_women_shows_a_large_gender_gap(ml100k):
    task, views = ml100k
    run = trust_run(PopularForWomen(), task, views)
    assert fairness.applies(run) is None
    metrics = run_passes(run, log=lambda _: None)
    users = views.train.users
    women = group_mean(run, users.loc[users["gender"] == "F", "user_id"])
    men = group_mean(run, users.loc[users["gender"] == "M", "user_id"])
    assert women > 2 * men
    assert metrics["trust.fairness.gender.group.F"] == pytest.approx(women)
    assert metrics["trust.fairness.gender.group.M"] == pytest.approx(men)
    assert metrics["trust.fairness.gender.gap"] == pytest.approx(women - men)
    assert metrics["trust.fairness.gender.ratio"] == pytest.approx(men / women)
    assert metrics["trust.fairness.gender.p"] == pytest.approx(1 / 501)  # no shuffle reaches the gap
    assert metrics["trust.fairness.gender.groups"] == 2
    ages = {key.rsplit(".", 1)[1] for key in metrics if key.startswith("trust.fairness.age.group.")}
    assert ages and ages <= set(ML1M_AGES) and metrics["trust.fairness.age.groups"] == len(ages)
    assert "trust.fairness.occupation.group.student" in metrics
    assert "trust.fairness.occupation.group.doctor" not in metrics  # 7 users: fewer than min_group_users
    assert metrics["cost.trust_seconds.fairness"] > 0


def test_a_constant_model_shows_no_gap(ml100k):
    task, views = ml100k
    metrics = fairness.measure(trust_run(Constant(), task, views), FairnessSpec(permutations=200))
    for attribute in ("gender", "age", "occupation"):
        assert metrics[f"trust.fairness.{attribute}.gap"] == pytest.approx(0, abs=1e-12)
        assert metrics[f"trust.fairness.{attribute}.p"] == 1


def test_too_few_groups_log_nothing_and_the_pass_is_seeded(ml100k):
    task, views = ml100k
    run = trust_run(Submission(shipped("pop")).build(), task, views)
    spec = FairnessSpec(attributes=["gender", "zip_code"], min_group_users=100, permutations=100)
    metrics = fairness.measure(run, spec)
    # Only men are 100 or more: one group, so nothing for gender; each zip code is smaller.
    assert metrics == {}
    metrics = fairness.measure(run, FairnessSpec(attributes=["gender"], permutations=100))
    assert set(metrics) == {f"trust.fairness.gender.{m}" for m in ("group.F", "group.M", "gap", "ratio", "p",
                                                                    "groups")}
    again = fairness.measure(run, FairnessSpec(attributes=["gender"], permutations=100))
    assert again == metrics  # the pass's own seeded stream


def test_fairness_needs_user_attributes():
    task = synthetic_task(trust=ONLY_FAIRNESS)
    prepared = prepare(task, log=lambda _: None)
    run = trust_run(Constant(), task, build_views(task, prepared))
    assert "none of the attributes gender, age, occupation" in fairness.applies(run)
