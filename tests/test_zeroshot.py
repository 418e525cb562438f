"""The zero-shot track: sampled candidate sets, the zero-shot data rule, trust metrics
(position bias, order consistency, popularity bias, output validity) and partial runs."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from benchmark.eval.candidates import place_target, sample_candidates, shuffle_rows, target_columns
from benchmark.eval.trust import kendall_tau_b, shuffle_consistency, top_k_popularity, validity_rates
from benchmark.runner import evaluate
from benchmark.tasks import load_task
from benchmark.tasks.schema import TaskSpec
from benchmark.tracking import ResultsStore
from benchmark.tracking.results import finished_runs
from conftest import shipped, synthetic_task

PROMPT = "{% for h in history %}{{ h }}\n{% endfor %}--\n{% for c in candidates %}{{ c }}\n{% endfor %}"


def zeroshot_task(**changes) -> TaskSpec:
    spec = synthetic_task().model_dump() | {
        "task": "zeroshot/synthetic", "family": "zeroshot",
        "candidates": {"mode": "sampled", "n_negatives": 9},
        "eval_users": {"sample": 30, "seed": 0},
        "prompt": PROMPT,
        "trust": {"position_bias": {"users": 12, "positions": [1, 5, 10], "shuffles": 3}, "popularity_k": 3},
        "metrics": ["NDCG@1", "NDCG@5", "HR@5", "MRR"], "main_score": "NDCG@5", "batch_size": 7,
    }
    return TaskSpec.model_validate(spec | changes)


# --- candidate sets ---------------------------------------------------------------------

def test_candidates_hold_the_target_and_only_unrated_items():
    rng = np.random.default_rng(0)
    rated = [np.array([0, 1, 2]), np.array([5, 6])]
    targets = np.array([2, 6])
    candidates = sample_candidates(targets, rated, n_items=30, n_negatives=9, rng=rng)
    assert candidates.shape == (2, 10)
    assert (candidates[:, 0] == targets).all()
    for row, items in zip(candidates, rated):
        assert len(set(row)) == 10
        assert not set(row[1:]) & set(items)
    shuffled = shuffle_rows(candidates, rng)
    assert (np.sort(shuffled, axis=1) == np.sort(candidates, axis=1)).all()
    assert (shuffled[np.arange(2), target_columns(shuffled, targets)] == targets).all()


def test_too_few_unrated_items_is_a_clear_error():
    with pytest.raises(ValueError, match="only 2 unrated items"):
        sample_candidates(np.array([0]), [np.arange(3)], n_items=5, n_negatives=4, rng=np.random.default_rng(0))


def test_place_target_keeps_the_order_of_the_others():
    rows = np.array([[4, 7, 1, 9], [3, 2, 8, 5]])
    placed = place_target(rows, np.array([1, 3]), position=4)
    assert placed.tolist() == [[4, 7, 9, 1], [2, 8, 5, 3]]
    assert place_target(rows, np.array([9, 2]), 1).tolist() == [[9, 4, 7, 1], [2, 3, 8, 5]]


# --- trust metrics ------------------------------------------------------------------------

def test_kendall_tau_b_matches_its_definition():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    assert kendall_tau_b(a, a) == pytest.approx(1.0)
    assert kendall_tau_b(a, -a) == pytest.approx(-1.0)
    assert np.isnan(kendall_tau_b(a, np.zeros(4)))
    # With ties: tau-b = (C - D) / sqrt((n0 - n1)(n0 - n2)); here C=4, D=1, one tie in b.
    b = np.array([1.0, 1.0, 3.0, 2.0])
    assert kendall_tau_b(a, b) == pytest.approx((4 - 1) / np.sqrt(6 * 5))


def test_shuffle_consistency_is_one_for_an_order_invariant_model():
    rng = np.random.default_rng(1)
    base = np.tile(np.arange(10), (5, 1))
    orders = [shuffle_rows(base, rng) for _ in range(3)]
    by_item = [c.astype(float) * 0.1 for c in orders]  # the score depends on the item only
    assert shuffle_consistency(orders, by_item) == pytest.approx(1.0)
    by_position = [np.tile(-np.arange(10.0), (5, 1)) for _ in orders]  # only on the position
    assert abs(shuffle_consistency(orders, by_position)) < 0.5


def test_top_k_popularity_averages_over_tie_orderings():
    rng = np.random.default_rng(2)
    scores = rng.integers(0, 3, size=(4, 6)).astype(float)
    candidates = np.tile(np.arange(6), (4, 1))
    popularity = rng.integers(0, 50, size=6)
    k = 3
    got = top_k_popularity(scores, candidates, popularity, k)
    for row in range(4):  # brute force: every ordering of the ties, equally likely
        values = []
        for perm in itertools.permutations(range(6)):
            order = sorted(range(6), key=lambda j: (-scores[row, j], perm.index(j)))
            values.append(popularity[order[:k]].mean())
        assert got[row] == pytest.approx(np.mean(values))


def test_validity_rates():
    rates = validity_rates({"users": 4, "items_named": 40, "hallucinated": 4, "duplicates": 2,
                            "missing": 8, "malformed": 1, "compliant": 3}, n_candidates=20)
    assert rates == {"trust.hallucination_rate": 0.1, "trust.duplicate_rate": 0.05,
                     "trust.missing_rate": 0.1, "trust.malformed_rate": 0.25, "trust.compliance": 0.75}


# --- the task -----------------------------------------------------------------------------

def test_the_shipped_zeroshot_task_follows_llmrank():
    task = load_task("zeroshot/ml-100k")
    assert task.family == "zeroshot" and task.eval_users.sample == 200
    assert task.candidates.n_negatives == 19 and task.history.max_len == 20
    assert "{{ h }}" in task.prompt and len(task.prompt_hash()) == 64


@pytest.mark.parametrize("change, message", [
    ({"prompt": None}, "needs a 'prompt'"),
    ({"candidates": {"mode": "full"}}, "'sampled' is for"),
    ({"trust": {"position_bias": {"positions": [1, 11]}}}, r"\[11\] outside 1..10"),
])
def test_bad_zeroshot_specs_name_the_rule(change, message):
    with pytest.raises(ValueError, match=message):
        zeroshot_task(**change)


def test_sampled_candidates_only_on_zeroshot():
    with pytest.raises(ValueError, match="'sampled' is for"):
        synthetic_task(candidates={"mode": "sampled"})


SPY = """
import numpy as np
from benchmark.api import Recommender

class Model(Recommender):
    def fit(self, train, ctx):  # what it was given, told through its curves (it runs in its sandbox)
        seen = {"rows": len(train.interactions), "validation": train.validation is None,
                "users": train.users is None, "evaluate": ctx.evaluate_validation is None,
                "titles": all(t.startswith("Item ") for t in train.catalog.item_texts()[:2])}
        for name, value in seen.items():
            ctx.log_metric(f"seen.{name}", float(value), 0)

    def score(self, request):
        assert request.prompt_template is not None and request.candidates is not None
        # A position-biased ranker: the first candidate shown is best.
        return np.tile(-np.arange(request.n_candidates, dtype=np.float32), (len(request.users), 1))
"""


def test_a_zero_shot_submission_gets_the_catalogue_and_nothing_else(tmp_path, make_submission, tracking_uri,
                                                                      monkeypatch):
    import benchmark.progress as progress

    lines = []
    monkeypatch.setattr(progress, "log", lines.append)
    folder = make_submission("first-shown", SPY, paradigm="zero-shot")
    task = zeroshot_task()
    runs = evaluate([folder], task, tracking_uri=tracking_uri)
    # The position-bias pass (3 positions + 3 shuffles) shows progress like the test pass.
    assert any(line.startswith("first-shown position-bias pass: 6/6 in ") for line in lines), lines
    assert runs.status.tolist() == ["FINISHED"]
    client = MlflowClient(tracking_uri)
    run = client.get_run(runs.run_id[0])
    metrics = run.data.metrics
    seen = {k.removeprefix("train/seen."): v for k, v in metrics.items() if k.startswith("train/seen.")}
    # No interactions, validation, users or validation scorer; the catalogue, as text.
    assert seen == {"rows": 0, "validation": 1, "users": 1, "evaluate": 1, "titles": 1}
    # Target first -> NDCG@5 = 1; at positions 5 and 10 of 10: 1/log2(6) and 0.
    assert metrics["trust.pos_1.NDCG_at_5"] == pytest.approx(1.0)
    assert metrics["trust.pos_5.NDCG_at_5"] == pytest.approx(1 / np.log2(6))
    assert metrics["trust.pos_10.NDCG_at_5"] == 0.0
    assert metrics["trust.PosGap"] == pytest.approx(1.0)
    assert metrics["trust.kendall_tau"] < 0.5
    assert "trust.ARP_at_3" in metrics
    assert run.data.tags["prompt_hash"] == task.prompt_hash()
    stored = pd.read_parquet(client.download_artifacts(run.info.run_id, "candidates.parquet", str(tmp_path)))
    assert len(stored) == 30 and all(len(c) == 10 for c in stored["candidates"])
    assert all(t in c for t, c in zip(stored["target"], stored["candidates"]))


def test_candidates_are_drawn_once_per_seed(tracking_uri):
    task = zeroshot_task(seeds=[0, 1], trust=None)
    runs = evaluate([shipped("pop"), shipped("random")], task, tracking_uri=tracking_uri)
    client = MlflowClient(tracking_uri)
    hashes = {(r.submission, r.seed): client.get_run(r.run_id).data.tags["candidate_set_hash"]
              for r in runs.itertuples()}
    assert hashes[("pop", 0)] == hashes[("random", 0)] != hashes[("pop", 1)] == hashes[("random", 1)]


def test_id_models_rank_the_same_candidates_and_beat_random(tracking_uri):
    task = zeroshot_task(trust=None, eval_users={"sample": 60, "seed": 0})
    runs = evaluate([shipped("pop"), shipped("random")], task, tracking_uri=tracking_uri).set_index("submission")
    assert runs.loc["pop", "NDCG@5"] > runs.loc["random", "NDCG@5"]


def test_limited_runs_are_partial_and_never_ranked(tracking_uri):
    task = zeroshot_task(trust=None)
    full = evaluate([shipped("pop")], task, tracking_uri=tracking_uri)
    limited = evaluate([shipped("pop")], task, tracking_uri=tracking_uri, limit_users=5)
    assert limited.status.tolist() == ["FINISHED"]  # a new run, not the full one reused
    run = MlflowClient(tracking_uri).get_run(limited.run_id[0])
    assert run.data.tags["partial"] == "true" and run.data.params["limit_users"] == "5"
    ranked = finished_runs(ResultsStore(tracking_uri), task)
    assert ranked.run_id.tolist() == full.run_id.tolist()


def test_validate_checks_candidate_rankers_on_candidate_sets(make_submission):
    from benchmark.validate import validate_submission

    first_shown = make_submission("first-shown-v", SPY.replace("class Model(Recommender):",
                                                              "class Model(Recommender):\n    ranks_full_catalogue = False"),
                                  paradigm="zero-shot")
    checks = validate_submission(str(first_shown))
    names = [c.name for c in checks]
    assert all(c.ok for c in checks), [(c.name, c.detail) for c in checks if not c.ok]
    assert any(n.startswith("zeroshot: fit and score") for n in names)
    assert not any(n.startswith(("sequential", "topk")) for n in names)
    pop = validate_submission(str(shipped("pop")))
    assert {c.name.split(":")[0] for c in pop} >= {"sequential", "topk", "zeroshot"}


def test_results_show_the_trust_columns(tracking_uri, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from benchmark.cli import app
    from benchmark.tracking.results import summarize

    task = zeroshot_task()
    evaluate([shipped("pop"), shipped("random")], task, tracking_uri=tracking_uri)
    table = summarize(finished_runs(ResultsStore(tracking_uri), task), task).set_index("submission")
    # pop scores each item alone: its order never changes with the candidates' order.
    assert table.loc["pop", "trust.kendall_tau"] == 1.0 > table.loc["random", "trust.kendall_tau"]
    assert table.loc["pop", "trust.PosGap"] == 0.0 and "trust.PosGap std" in table
    path = tmp_path / "zeroshot.yaml"
    path.write_text(yaml.safe_dump(task.model_dump(mode="json")))
    shown = CliRunner().invoke(app, ["results", "--task", str(path), "--tracking-uri", tracking_uri])
    assert shown.exit_code == 0, shown.output
    header = next(line for line in shown.output.splitlines() if "submission" in line)
    assert all(column in header for column in ("PosGap", "tau", "ARP@3")) and "halluc." not in header
    assert " std" not in header
