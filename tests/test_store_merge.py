"""`llm4rec store merge`: runs made in another store (a GPU machine's) join the main
store with their params, tags, metrics, artifacts and status, once, and the results
tables read from the merged store equal the source's."""
from __future__ import annotations

import pandas as pd
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from benchmark.cli import app
from benchmark.runner import evaluate
from benchmark.tracking import ResultsStore, finished_runs, summarize
from benchmark.tracking.merge import TAG_MERGED_FROM, merge_stores
from conftest import shipped, synthetic_task


def quiet(*_):
    pass


def test_merge_copies_finished_runs_with_artifacts_once(tmp_path):
    source, dest = f"sqlite:///{tmp_path / 'gpu.db'}", f"sqlite:///{tmp_path / 'main.db'}"
    task = synthetic_task(seeds=[0, 1])
    evaluate([shipped("pop"), shipped("random")], task, tracking_uri=source)
    live = ResultsStore(source).start(task.experiment_name, "still running", {"run_key": "x"}, {})

    report = merge_stores(source, dest, log=quiet)
    assert len(report.copied) == 4
    assert report.skipped == [f"{task.experiment_name} · still running: status RUNNING (still running, or never ended)"]

    before = summarize(finished_runs(ResultsStore(source), task), task)
    after = summarize(finished_runs(ResultsStore(dest), task), task)
    pd.testing.assert_frame_equal(before, after)
    client = MlflowClient(dest)
    for run in client.search_runs([client.get_experiment_by_name(task.experiment_name).experiment_id]):
        original = MlflowClient(source).get_run(run.data.tags[TAG_MERGED_FROM])
        assert original.info.run_id != live
        assert run.data.params == original.data.params and run.data.metrics == original.data.metrics
        assert (run.info.status, run.info.start_time, run.info.end_time) == \
            (original.info.status, original.info.start_time, original.info.end_time)
        assert {a.path for a in client.list_artifacts(run.info.run_id)} == \
            {a.path for a in MlflowClient(source).list_artifacts(original.info.run_id)} != set()

    again = merge_stores(source, dest, log=quiet)
    assert again.copied == [] and sum("copied before" in s for s in again.skipped) == 4


def test_merge_keeps_the_destinations_finished_runs(tmp_path):
    source, dest = f"sqlite:///{tmp_path / 'gpu.db'}", f"sqlite:///{tmp_path / 'main.db'}"
    task = synthetic_task()
    evaluate([shipped("pop")], task, tracking_uri=source)
    mine = evaluate([shipped("pop")], task, tracking_uri=dest)
    report = merge_stores(source, dest, log=quiet)
    assert report.copied == [] and "same run key" in report.skipped[0]
    assert finished_runs(ResultsStore(dest), task).run_id.tolist() == mine.run_id.tolist()


def test_merge_command_names_a_missing_store(tmp_path):
    result = CliRunner().invoke(app, ["store", "merge", f"sqlite:///{tmp_path / 'nope.db'}",
                                      "--tracking-uri", f"sqlite:///{tmp_path / 'main.db'}"])
    assert result.exit_code == 2 and "no store at" in result.output and "nope.db" in result.output
    same = f"sqlite:///{tmp_path / 'main.db'}"
    MlflowClient(same).search_experiments()  # creates it
    result = CliRunner().invoke(app, ["store", "merge", same, "--tracking-uri", same])
    assert result.exit_code == 2 and "the same store" in result.output


def test_end_stale_marks_only_old_running_runs_killed(tmp_path):
    import time

    from benchmark.tracking.store import end_stale_runs

    uri = f"sqlite:///{tmp_path / 'main.db'}"
    store = ResultsStore(uri)
    experiment = store.experiment_id("sequential/synthetic@v1")
    old = store.client.create_run(experiment, start_time=int((time.time() - 3 * 3600) * 1000), run_name="old")
    store.log_metrics(old.info.run_id, {"NDCG@5": 0.25})
    fresh = store.start("sequential/synthetic@v1", "fresh", {}, {})
    assert end_stale_runs(store, 2.0, dry_run=True)[0].startswith("sequential/synthetic@v1 · old (started 3.0 h ago)")
    assert store.client.get_run(old.info.run_id).info.status == "RUNNING"  # a dry run changes nothing
    result = CliRunner().invoke(app, ["store", "end-stale", "--older-than-hours", "2", "--tracking-uri", uri])
    assert result.exit_code == 0 and "1 stale runs ended as KILLED" in result.output
    ended = store.client.get_run(old.info.run_id)
    assert ended.info.status == "KILLED" and "still RUNNING 3.0 h" in ended.data.tags["failure_reason"]
    assert ended.data.metrics == {"NDCG_at_5": 0.25}  # nothing recorded is lost
    assert store.client.get_run(fresh).info.status == "RUNNING"
