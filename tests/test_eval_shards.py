"""Exact sharded evaluation: evaluators over users split into shards merge into the
single-process metrics (summaries within 1e-12, per-user rows equal), and the sharded
test pass with real model calls gives the same metrics and the same trust record."""
from __future__ import annotations

import pickle
import threading

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.api import FitContext, find_submission
from benchmark.data import prepare
from benchmark.data.views import build_views
from benchmark.eval import CTREvaluator, RankingEvaluator, TopKEvaluator
from benchmark.eval.shards import evaluate_sharded, split_users
from benchmark.executors import build_model, close_model
from benchmark.families import family
from conftest import shipped, synthetic_task
from test_runner import ctr_task
from test_zeroshot import zeroshot_task

SEEDS = (0, 1, 2)


def shard_layouts(n: int) -> list[list[np.ndarray]]:
    """Balanced splits into 1, 2, 3 and 7 shards, and an uneven one led by a single user."""
    return [split_users(n, shards) for shards in (1, 2, 3, 7)] + [
        [np.arange(0, 1), np.arange(1, n - 5), np.arange(n - 5, n)]]


def in_chunks(add, rows: np.ndarray, size: int = 16) -> None:
    for start in range(0, len(rows), size):
        add(rows[start:start + size])


def assert_merges_exactly(make, add, n: int) -> None:
    """`make()` a fresh evaluator, `add(evaluator, rows)` rows of the data: one evaluator
    over all rows equals the merged (pickled) states of every shard layout."""
    single = make()
    in_chunks(lambda rows: add(single, rows), np.arange(n))
    expected_summary, expected_per_user = single.summary(), single.per_user()
    for layout in shard_layouts(n):
        states = []
        for rows in layout:
            shard = make()
            in_chunks(lambda chunk: add(shard, chunk), rows)
            states.append(pickle.loads(pickle.dumps(shard.state())))
        merged = type(single).merge(states)
        summary = merged.summary()
        assert summary.keys() == expected_summary.keys()
        for name, value in expected_summary.items():
            assert abs(summary[name] - value) <= 1e-12, (name, [len(rows) for rows in layout])
        pd.testing.assert_frame_equal(merged.per_user(), expected_per_user, check_exact=True)


def test_split_users_is_contiguous_and_balanced():
    parts = split_users(10, 3)
    assert [p.tolist() for p in parts] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert [p.size for p in split_users(2, 3)] == [1, 1, 0]
    with pytest.raises(ValueError, match="shards must be an integer >= 1"):
        split_users(10, 0)


@pytest.mark.parametrize("seed", SEEDS)
def test_full_ranking_with_exclusions_and_ties_merges_exactly(seed):
    rng = np.random.default_rng(seed)
    n, m = 61, 30
    users = rng.permutation(1000)[:n]
    scores = rng.integers(0, 4, (n, m)).astype(np.float32)  # heavy ties
    targets = rng.integers(0, m, n)
    exclude = [rng.choice(m, rng.integers(0, 6), replace=False) for _ in range(n)]

    def add(evaluator, rows):
        evaluator.add(users[rows], scores[rows], targets[rows], [exclude[i] for i in rows])

    assert_merges_exactly(lambda: RankingEvaluator(["HR@5", "NDCG@10", "MRR", "MRR@3"]), add, n)


@pytest.mark.parametrize("seed", SEEDS)
def test_candidate_set_ranking_merges_exactly(seed):
    rng = np.random.default_rng(seed)
    n = 45
    scores = rng.integers(0, 3, (n, 10)).astype(np.float64)
    targets = rng.integers(0, 10, n)
    assert_merges_exactly(lambda: RankingEvaluator(["HR@1", "NDCG@3", "MRR"]),
                          lambda ev, rows: ev.add(rows + 7, scores[rows], targets[rows]), n)


@pytest.mark.parametrize("seed", SEEDS)
def test_multi_target_topk_with_coverage_and_arp_merges_exactly(seed):
    rng = np.random.default_rng(seed)
    n, m = 58, 40
    scores = rng.integers(0, 5, (n, m)).astype(np.float32)
    targets = [rng.choice(m, rng.integers(1, 6), replace=False) for _ in range(n)]
    exclude = [rng.choice(m, rng.integers(0, 9), replace=False) for _ in range(n)]
    popularity = rng.integers(0, 100, m)
    metrics = ["Recall@5", "NDCG@10", "Precision@3", "MAP@10", "HR@5", "MRR@10", "ItemCoverage@5",
               "ItemCoverage@10", "ARP@5"]

    def add(evaluator, rows):
        evaluator.add(rows, scores[rows], [targets[i] for i in rows], [exclude[i] for i in rows])

    assert_merges_exactly(lambda: TopKEvaluator(metrics, m, popularity), add, n)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("user_sorted", [True, False])
def test_ctr_auc_gauc_logloss_merge_exactly(seed, user_sorted):
    """Impressions split anywhere, a user's impressions across shards included."""
    rng = np.random.default_rng(seed)
    n = 400
    users = rng.integers(0, 40, n)
    if user_sorted:
        users = np.sort(users)
    labels = rng.integers(0, 2, n)
    labels[users == users[0]] = 1  # a single-class user: left out of GAUC
    predictions = rng.integers(0, 5, n) / 4  # ties, and 0 and 1 (clipped in LogLoss)
    assert_merges_exactly(lambda: CTREvaluator(["AUC", "GAUC", "LogLoss"]),
                          lambda ev, rows: ev.add(users[rows], labels[rows], predictions[rows]), n)


def test_states_of_different_set_ups_do_not_merge():
    one, other = RankingEvaluator(["HR@5"]), RankingEvaluator(["HR@10"])
    with pytest.raises(ValueError, match="field 'metrics' of state 1"):
        RankingEvaluator.merge([one.state(), other.state()])
    with pytest.raises(ValueError, match="field 'item_popularity'"):
        TopKEvaluator.merge([TopKEvaluator(["ARP@5"], 3, np.array([1, 2, 3])).state(),
                             TopKEvaluator(["ARP@5"], 3, np.array([1, 2, 4])).state()])
    with pytest.raises(ValueError, match="no states to merge"):
        CTREvaluator.merge([])


# --- the sharded test pass with real model calls ----------------------------------------------

SEQUENTIAL = synthetic_task(trust={"position_bias": None, "popularity_k": 5})
TOPK = synthetic_task(task="topk/synthetic", family="topk", split={"method": "global_time"},
                      history={"max_len": None, "exclude_seen": True},
                      metrics=["Recall@5", "NDCG@5", "ItemCoverage@5", "ARP@5"], main_score="NDCG@5",
                      trust={"position_bias": None, "popularity_k": 5})
ZEROSHOT = zeroshot_task(trust={"position_bias": None, "popularity_k": 3})

# recommend(): the candidates backwards, an item that is not one, and the first one again.
LISTWISE = """
from benchmark.api import Recommender

class Model(Recommender):
    def recommend(self, request):
        return [[int(c) for c in row[::-1][:4]] + [10_000, int(row[-1])] for row in request.candidates]
"""


def views_of(task):
    views = build_views(task, prepare(task, log=lambda _: None))
    return family(task.family).for_seed(views, task, 0)


def fitted_calls(folder, task, views, n: int, sandbox: bool = False):
    """n fitted models of the submission and their test-pass calls (as the runner makes them)."""
    models = [build_model(find_submission(folder), sandbox=sandbox) for _ in range(n)]
    for model in models:
        model.fit(views.train, FitContext(seed=0))
    return models, [family(task.family).test_call(model, views.train, task) for model in models]


def assert_same_record(one, merged) -> None:
    def joined(parts):
        return np.concatenate(parts) if parts else np.empty(0)

    for name in ("users", "arp", "long_tail", "candidates", "scores"):
        np.testing.assert_array_equal(joined(getattr(merged, name)), joined(getattr(one, name)), err_msg=name)
    for name in ("exposure", "group_hits", "group_targets"):
        np.testing.assert_allclose(getattr(merged, name), getattr(one, name), rtol=0, atol=1e-12, err_msg=name)
    assert merged.k == one.k


@pytest.mark.parametrize("task, submission", [
    (SEQUENTIAL, "pop"), (TOPK, "pop"), (ctr_task(), "pop"), (ZEROSHOT, "pop"), (ZEROSHOT, "listwise")])
def test_sharded_test_pass_equals_one_pass(task, submission, make_submission):
    folder = make_submission("listwise", LISTWISE, paradigm="zero-shot") if submission == "listwise" \
        else shipped(submission)
    views = views_of(task)
    task_family = family(task.family)
    _, [one_call] = fitted_calls(folder, task, views, 1)
    one = task_family.evaluate_part(one_call, views.test, task, views.train, submission, "test")
    _, calls = fitted_calls(folder, task, views, 3)
    threads = torch.get_num_threads()
    sharded, merged_call = evaluate_sharded(task_family, calls, views.test, task, views.train, submission, "test",
                                            show_progress=True)

    assert torch.get_num_threads() == threads  # the shards' evaluators left this thread's setting alone
    expected = one.summary()
    assert sharded.summary().keys() == expected.keys()
    for name, value in expected.items():
        assert abs(sharded.summary()[name] - value) <= 1e-12, name
    pd.testing.assert_frame_equal(sharded.per_user(), one.per_user(), check_exact=True)
    if task.family == "ctr":
        assert merged_call is calls[0]  # nothing recorded: the first shard's call
        return
    assert_same_record(one_call, merged_call)
    assert merged_call.score is calls[0].score or submission == "listwise"
    if submission == "listwise":  # output validity counted over every shard's users
        n_candidates = views.test.candidates.shape[1]
        assert merged_call.score.counts == one_call.score.counts
        assert merged_call.score.rates(n_candidates) == one_call.score.rates(n_candidates)
        assert merged_call.score.counts.users == len(views.test)


def test_shards_run_at_the_same_time():
    """Each shard's first batch waits for the others': a pass that ran them one after
    another would break the barrier."""
    task = SEQUENTIAL
    views = views_of(task)
    barrier = threading.Barrier(3, timeout=30)

    def call(request):
        if request.users[0] in first_users:
            barrier.wait()
        return np.ones((len(request.users), request.n_candidates))

    first_users = {int(views.test.users[rows[0]]) for rows in split_users(len(views.test), 3)}
    evaluation, _ = evaluate_sharded(family(task.family), [call] * 3, views.test, task, views.train, "waiting",
                                     "test")
    assert len(evaluation.per_user()) == len(views.test)


FAILING = """
import numpy as np
from benchmark.api import Recommender

class Model(Recommender):
    def score(self, request):
        if {bad} in request.users:
            raise ValueError("cannot score user {bad}")
        return np.zeros((len(request.users), request.n_candidates))
"""


def test_a_failing_shard_fails_the_whole_pass_with_its_error(make_submission):
    task = SEQUENTIAL
    views = views_of(task)
    bad = int(views.test.users[-1])  # in the last shard
    folder = make_submission("failing", FAILING.format(bad=bad))
    _, calls = fitted_calls(folder, task, views, 3)
    with pytest.raises(ValueError, match=f"cannot score user {bad}") as caught:
        evaluate_sharded(family(task.family), calls, views.test, task, views.train, "failing", "test")
    assert any("shard 3 of 3" in note for note in caught.value.__notes__)


def test_more_workers_than_users_leaves_the_extra_ones_idle():
    task = SEQUENTIAL
    views = views_of(task)
    part = views.test.subset(np.arange(2))
    _, calls = fitted_calls(shipped("pop"), task, views, 4)
    evaluation, merged = evaluate_sharded(family(task.family), calls, part, task, views.train, "pop", "test")
    assert evaluation.per_user()["user"].tolist() == part.users.tolist()
    assert [len(call.users) for call in calls] == [1, 1, 0, 0]
    assert len(np.concatenate(merged.users)) == 2


def test_sandboxed_workers_score_their_shards():
    """The case sharding is for: one sandboxed worker process per shard."""
    task = SEQUENTIAL
    views = views_of(task)
    _, [one_call] = fitted_calls(shipped("pop"), task, views, 1)
    one = family(task.family).evaluate_part(one_call, views.test, task, views.train, "pop", "test")
    models, calls = fitted_calls(shipped("pop"), task, views, 2, sandbox=True)
    try:
        sharded, merged = evaluate_sharded(family(task.family), calls, views.test, task, views.train, "pop", "test")
    finally:
        for model in models:
            close_model(model)
    assert sharded.summary() == pytest.approx(one.summary(), abs=1e-12, rel=0)
    pd.testing.assert_frame_equal(sharded.per_user(), one.per_user(), check_exact=True)
    assert_same_record(one_call, merged)


# --- the runner: `llm4rec run --shards N` ------------------------------------------------------

def test_a_sharded_run_equals_one_worker_with_the_same_run_key(make_submission, tmp_path):
    """A zero-shot model scored by 3 sandboxed workers: the same metrics, trust figures
    and run key as one worker; a model that trains keeps one worker."""
    from mlflow.tracking import MlflowClient

    from benchmark.runner import evaluate
    from benchmark.tracking.store import ResultsStore

    listwise = make_submission("listwise", LISTWISE, paradigm="zero-shot")
    task = zeroshot_task(trust={"position_bias": None, "popularity_k": 3})
    runs = {}
    for shards in (1, 3):
        uri = f"sqlite:///{tmp_path / f'shards{shards}.db'}"
        frame = evaluate([listwise, shipped("pop")], task, store=ResultsStore(uri), shards=shards)
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name(task.experiment_name)
        runs[shards] = {r.data.tags["submission"]: r for r in client.search_runs([experiment.experiment_id])}
        assert list(frame.status) == ["FINISHED", "FINISHED"]
    for name in ("listwise", "pop"):
        one, sharded = runs[1][name], runs[3][name]
        assert sharded.data.tags["run_key"] == one.data.tags["run_key"]
        figures = [m for m in one.data.metrics if not m.startswith("cost.")]
        assert figures and all(abs(sharded.data.metrics[m] - one.data.metrics[m]) <= 1e-12 for m in figures)
    assert runs[3]["listwise"].data.tags["shards"] == "3" and "shards" not in runs[3]["pop"].data.tags
