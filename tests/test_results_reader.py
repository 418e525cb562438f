"""The one reader of the results store (benchmark.tracking.results): which runs count,
rows per hyperparameter variant in `llm4rec results` as on the leaderboard, the label
of a std that includes candidate re-draws, and the per-user reader."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from benchmark.cli import app
from benchmark.tracking import ResultsStore, counted_runs, finished_runs, read_per_user, read_runs, summarize
from benchmark.tracking.results import normalize_runs
from conftest import shipped, synthetic_task
from paradigm_fixtures import zeroshot_task


def test_which_runs_count():
    runs = normalize_runs(pd.DataFrame({
        "run_id": list("abcdefg"), "experiment": ["t@v1"] * 7,
        "status": ["FINISHED", "FINISHED", "FINISHED", "FINISHED", "FAILED", "FINISHED", "FINISHED"],
        "start_time": [1, 2, 3, 4, 5, 6, 7], "submission": ["m"] * 7, "submission_version": ["1"] * 7,
        "seed": ["0", "0", "1", "1", "1", "0", "0"],
        "tag:partial": [None, None, "true", None, None, None, None],
        "param:limit_users": [None, None, None, "5", None, None, None],
        "param:hp.dim": ["8", "8", "8", "8", "8", "16", "16"]}).rename(columns={"submission_version": "version"}))
    counted = counted_runs(runs)
    # b replaces a (same seed, later); c and d are partial, e failed; f and g: another config, g the later
    assert sorted(counted["run_id"]) == ["b", "g"]
    assert sorted(counted["config"]) == ['{"dim": "16"}', '{"dim": "8"}']



def test_only_the_newest_code_of_a_submission_counts():
    """Seeds 0 and 1 ran with old code, then seed 0 with new code: the old seed 1 must
    not stand beside the new seed 0 as if one model had made both."""
    runs = normalize_runs(pd.DataFrame({
        "run_id": list("abcd"), "experiment": ["t@v1"] * 4, "status": ["FINISHED"] * 4,
        "start_time": [1, 2, 3, 4], "submission": ["m", "m", "m", "other"], "version": ["1"] * 4,
        "seed": ["0", "1", "0", "1"], "tag:submission_digest": ["old", "old", "new", None]}))
    assert sorted(counted_runs(runs)["run_id"]) == ["c", "d"]

def log_run(store: ResultsStore, task, submission: str, seed: int, ndcg: float, hp: dict | None = None,
            candidate_hash: str | None = None, users: int = 20) -> str:
    """A run as the harness logs it: identity tags, hp.* params, metrics, per-user values."""
    tags = {"task": task.task, "task_version": task.version, "family": task.family, "dataset": "synthetic",
            "submission": submission, "submission_version": "1", "paradigm": "id-from-scratch", "seed": seed,
            "main_score": task.main_score}
    if candidate_hash:
        tags["candidate_set_hash"] = candidate_hash
    params = {"seed": seed} | {f"hp.{k}": v for k, v in (hp or {}).items()}
    run_id = store.start(task.experiment_name, f"{submission} seed={seed}", tags, params)
    values = np.linspace(ndcg - 0.1, ndcg + 0.1, users)
    store.log_metrics(run_id, {m: ndcg for m in task.metrics})
    store.log_artifacts(run_id, {"per_user_metrics.parquet": pd.DataFrame({"user": np.arange(users),
                                                                           task.main_score: values})})
    store.end(run_id)
    return run_id


def results(task, uri: str, tmp_path, *extra: str):
    path = tmp_path / f"{task.task.replace('/', '_')}.yaml"
    path.write_text(yaml.safe_dump(task.model_dump(mode="json")))
    return CliRunner().invoke(app, ["results", "--task", str(path), "--tracking-uri", uri, *extra])


def test_results_keep_hyperparameter_variants_apart_like_the_leaderboard(tracking_uri, tmp_path):
    from leaderboard.snapshot import build_snapshot, load_snapshot
    from leaderboard.tables import all_leaderboards

    task = synthetic_task(seeds=[0, 1])
    store = ResultsStore(tracking_uri)
    for seed, ndcg in ((0, 0.30), (1, 0.32)):
        log_run(store, task, "study", seed, ndcg, hp={"train_samples": 100})
    log_run(store, task, "study", 0, 0.10, hp={"train_samples": 400})
    log_run(store, task, "pop", 0, 0.20)

    table = summarize(finished_runs(store, task), task)
    assert table["submission"].tolist() == ["study", "pop", "study"]  # two rows for the two budgets
    assert table["variant"].tolist() == ["train_samples=100", "", "train_samples=400"]
    assert table["seeds"].tolist() == [2, 1, 1] and table["rank"].tolist() == [1, 2, 3]
    assert table["NDCG@5"].tolist() == pytest.approx([0.31, 0.20, 0.10])
    assert not table["std_includes_candidate_redraws"].any()

    shown = results(task, tracking_uri, tmp_path)
    assert shown.exit_code == 0, shown.output
    assert "1 [train_samples=100]" in shown.output and "1 [train_samples=400]" in shown.output
    assert "re-draws" not in shown.output
    rows = json.loads(results(task, tracking_uri, tmp_path, "--format", "json").output)
    assert [(r["submission"], r["variant"]) for r in rows] == [("study", "train_samples=100"), ("pop", ""),
                                                               ("study", "train_samples=400")]

    # The leaderboard reads the same rows through the same reader.
    board = all_leaderboards(load_snapshot(build_snapshot(tracking_uri, tmp_path / "snap")))[task.experiment_name]
    assert board[["submission", "variant", "seeds"]].values.tolist() == \
        table[["submission", "variant", "seeds"]].values.tolist()
    assert board["score"].tolist() == pytest.approx(table["NDCG@5"].tolist())


def test_results_label_a_std_that_includes_candidate_redraws(tracking_uri, tmp_path):
    """The deterministic pop on a zero-shot task: its spread over seeds comes from the
    candidate sets drawn per seed alone."""
    from benchmark.runner import evaluate

    task = zeroshot_task(trust=None, seeds=[0, 1])
    evaluate([shipped("pop")], task, tracking_uri=tracking_uri)
    table = summarize(finished_runs(ResultsStore(tracking_uri), task), task)
    assert table["std_includes_candidate_redraws"].all() and table.loc[0, "NDCG@5 std"] > 0
    shown = results(task, tracking_uri, tmp_path)
    assert shown.exit_code == 0, shown.output
    assert "mean ± std over seeds (includes candidate re-draws)" in " ".join(shown.output.split())


def test_the_runs_table_and_the_per_user_reader(tracking_uri):
    task = synthetic_task(seeds=[0])
    store = ResultsStore(tracking_uri)
    first = log_run(store, task, "pop", 0, 0.2, candidate_hash="abc", users=7)
    runs = read_runs(store, task.experiment_name)
    row = runs.set_index("run_id").loc[first]
    assert (row["experiment"], row["submission"], row["version"], row["state"], row["config"]) == \
        (task.experiment_name, "pop", "1", "finished", "{}")
    assert row["tag:candidate_set_hash"] == "abc" and row["metric:NDCG@5"] == pytest.approx(0.2)
    assert read_runs(store, "no/such@v1").empty
    per_user = read_per_user(counted_runs(runs), store.uri)
    assert len(per_user) == 7 and per_user["NDCG@5"].mean() == pytest.approx(0.2)
    assert set(per_user["run_id"].astype(str)) == {first}
