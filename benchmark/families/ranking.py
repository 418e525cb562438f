"""The ranking families: a model scores (or recommends) items for users, and the
evaluator ranks each user's targets among them.

- sequential: one target per user (its next item), full ranking over the catalogue;
- topk: a set of targets per user (its items in the test period), full ranking;
- zeroshot: one target among a sampled candidate set drawn per seed; text and LLM
  rankers may answer with `recommend()` instead of scores.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from benchmark.data.splits import TEST, VALID
from benchmark.data.views import (
    EvalSet,
    TaskViews,
    catalog_and_training,
    grouped_items,
    item_sets,
    next_items,
    sample_users,
    validation_set,
)
from benchmark.families.base import TaskFamily

if TYPE_CHECKING:
    from benchmark.api import Recommender, TrainData
    from benchmark.data import PreparedData
    from benchmark.scoring import Evaluation
    from benchmark.tasks.schema import TaskSpec
    from benchmark.trust import TrustRun


class RankingFamily(TaskFamily):
    capabilities = ("score",)
    full_ranking = True

    def build_views(self, task: "TaskSpec", prepared: "PreparedData") -> TaskViews:
        from benchmark.api import TrainData

        catalog, train_rows, part = catalog_and_training(prepared)
        validation, test = (self.eval_set(p, part, prepared.sequence, task) for p in (VALID, TEST))
        dataset = prepared.dataset
        train = TrainData(train_rows, dataset.n_users, catalog, validation_set(validation),
                          users=dataset.users.copy())
        return TaskViews(train, validation, sample_users(test, task))

    def eval_set(self, which: int, part: np.ndarray, seq: pd.DataFrame, task: "TaskSpec") -> EvalSet:
        """The users with rows of part `which`, their histories and targets."""
        raise NotImplementedError

    def evaluator(self, task: "TaskSpec", train: "TrainData"):
        from benchmark.eval.metrics import RankingEvaluator

        return RankingEvaluator(task.metrics)

    def evaluate_part(self, call: Callable, part: EvalSet, task: "TaskSpec", train: "TrainData", name: str,
                      label: str, show_progress: bool = False) -> "Evaluation":
        from benchmark.scoring import score_users

        return score_users(call, self.evaluator(task, train), part, task, train, name, label, show_progress)

    def scorer(self, model: "Recommender", train: "TrainData") -> Callable:
        """The model as a score function: its score(), or its recommend() read by the
        harness (benchmark.recommendations) into scores."""
        if not model.implements("score") and model.implements("recommend"):
            from benchmark.recommendations import RecommendationScorer

            return RecommendationScorer(model.recommend, train.catalog)
        return model.score

    def test_call(self, model: "Recommender", train: "TrainData", task: "TaskSpec") -> Callable:
        """The model's scorer, recording what the test pass ranks for the trust passes."""
        from benchmark.eval.trust import popularity_groups
        from benchmark.trust.recording import RecordingScorer

        score = self.scorer(model, train)
        if task.trust is None or task.trust.exposure is None:
            return RecordingScorer(score)
        popularity = np.bincount(train.interactions["item_id"], minlength=train.n_items)
        exposure = task.trust.exposure
        groups = popularity_groups(popularity, exposure.head_share, exposure.tail_share)
        return RecordingScorer(score, popularity, groups, task.trust.popularity_k)

    def trust_metrics(self, run: "TrustRun") -> dict[str, float]:
        """The validity of recommend() output as the harness counted it, then the
        task's trust passes (benchmark.trust)."""
        from benchmark.recommendations import RecommendationScorer
        from benchmark.trust import run_passes

        metrics: dict[str, float] = {}
        if isinstance(run.recorded.score, RecommendationScorer):
            metrics |= run.recorded.score.rates(run.test.candidates.shape[1])
        return metrics | run_passes(run)


class Sequential(RankingFamily):
    name = "sequential"
    title = "Sequential (full ranking)"
    split_methods = ("leave_one_out",)
    contract_task = "contract-sequential.yaml"

    def eval_set(self, which, part, seq, task) -> EvalSet:
        return next_items(which, part, seq)


class TopK(RankingFamily):
    name = "topk"
    title = "Top-K (full ranking)"
    split_methods = ("global_time", "ratio")
    contract_task = "contract-topk.yaml"

    def eval_set(self, which, part, seq, task) -> EvalSet:
        return item_sets(which, part, seq, task.history.exclude_seen)

    def evaluator(self, task: "TaskSpec", train: "TrainData"):
        from benchmark.eval.multi import TopKEvaluator

        popularity = np.bincount(train.interactions["item_id"], minlength=train.n_items)
        return TopKEvaluator(task.metrics, train.n_items, popularity)


class ZeroShot(Sequential):
    name = "zeroshot"
    title = "Zero-shot candidate ranking"
    capabilities = ("score", "recommend")
    contract_task = "contract-zeroshot.yaml"
    full_ranking = False
    sampled_candidates = True
    needs_prompt = True

    def build_views(self, task: "TaskSpec", prepared: "PreparedData") -> TaskViews:
        views = super().build_views(task, prepared)
        return replace(views, rated=grouped_items(prepared.sequence)[1])

    def for_seed(self, views: TaskViews, task: "TaskSpec", seed: int) -> TaskViews:
        """A candidate set per validation and test user for this seed: the target plus
        `candidates.n_negatives` items the user never rated, in a random order (numpy's
        PCG64 seeded by the task's user-sample seed, the run seed and the part)."""
        from benchmark.api.types import readonly
        from benchmark.eval.candidates import sample_candidates, shuffle_rows

        parts = []
        for stream, part in enumerate((views.test, views.validation)):
            rng = np.random.default_rng([task.eval_users.seed, seed, stream])
            rated = [views.rated[u] for u in part.users]
            candidates = sample_candidates(np.asarray(part.targets), rated, views.train.n_items,
                                           task.candidates.n_negatives, rng)
            parts.append(EvalSet(part.users, part.histories, part.targets,
                                 readonly(shuffle_rows(candidates, rng))))
        test, validation = parts
        return TaskViews(views.train, validation, test, views.rated)

    def run_tags(self, task: "TaskSpec", views: TaskViews) -> dict[str, str]:
        from benchmark.eval.candidates import candidate_hash

        return {"candidate_set_hash": candidate_hash(views.test.users, views.test.candidates)}

    def artifacts(self, views: TaskViews) -> dict[str, pd.DataFrame]:
        """The test candidate sets: user, target, candidates in the order shown."""
        test = views.test
        return {"candidates.parquet": pd.DataFrame({
            "user": test.users, "target": np.asarray(test.targets),
            "candidates": [row.tolist() for row in test.candidates]})}
