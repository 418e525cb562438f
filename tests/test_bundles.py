"""From a submitter's folder to a verified leaderboard row: submit -> verify -> the row
marked verified; every kind of tampering refused with its reason and nothing written;
an import without verification shows as self-reported; store export and import round
trip through the same manifest format."""
from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from benchmark.bundles import BundleError, import_bundle, submit, verify
from benchmark.cli import app
from benchmark.tracking import ResultsStore
from benchmark.tracking.manifest import MANIFEST, read_manifest
from benchmark.tracking.results import counted_runs, read_runs
from conftest import shipped, synthetic_task

TASK = synthetic_task(seeds=[0, 1])
NOISY = """
import numpy as np
from benchmark.api import Recommender

class Model(Recommender):
    def fit(self, train, ctx):
        self.counts = np.bincount(train.interactions["item_id"].to_numpy(), minlength=train.n_items)
        self.rng = np.random.default_rng(ctx.seed)

    def score(self, request):
        base = self.counts if request.candidates is None else self.counts[request.candidates]
        base = np.broadcast_to(base, (len(request.users), request.n_candidates))
        return (base + 0.5 * self.rng.random(base.shape)).astype(np.float32)
"""


@pytest.fixture
def tasks_here(tmp_path, monkeypatch):
    """The synthetic task registered under ./tasks (as a maintainer's task would be)."""
    folder = tmp_path / "tasks" / "sequential"
    folder.mkdir(parents=True)
    (folder / "synthetic.yaml").write_text(yaml.safe_dump(TASK.model_dump(mode="json", exclude_none=True)))
    monkeypatch.setenv("LLM4REC_TASKS", str(tmp_path / "tasks"))
    return TASK.task


@pytest.fixture
def noisy(make_submission):
    return make_submission("noisy-pop", NOISY)


@pytest.fixture
def bundle(noisy, tasks_here, tmp_path) -> Path:
    return submit(noisy, [tasks_here], tmp_path / "bundle", log=lambda _: None)


def rows(uri: str) -> pd.DataFrame:
    return counted_runs(read_runs(ResultsStore(uri)))


def edit_manifest(folder: Path, change) -> None:
    path = folder / MANIFEST
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def test_submit_verify_and_the_row_is_verified_in_the_snapshot(bundle, tracking_uri, tmp_path):
    manifest, runs = read_manifest(bundle)
    assert manifest["bundle"]["name"] == "noisy-pop" and len(runs) == 2
    assert {r.tags["seed"] for r in runs} == {"0", "1"}
    assert all(0 < r.metrics["NDCG@5"] < 1 for r in runs)
    assert (bundle / "submission" / "model.py").is_file()

    done = verify(bundle, tracking_uri, log=lambda _: None)
    assert len(done.recorded) == 2
    stored = rows(tracking_uri)
    assert set(stored["tag:provenance"]) == {"verified"} and set(stored["tag:verified"]) == {"true"}
    assert set(stored["tag:bundle_hash"]) == {done.bundle_hash}
    # The recorded numbers are the maintainer's re-run, and they equal the manifest's.
    by_seed = {r.tags["seed"]: r.metrics["NDCG@5"] for r in runs}
    assert {str(int(s)): v for s, v in zip(stored["seed"], stored["metric:NDCG@5"])} == by_seed

    from leaderboard.snapshot import build_snapshot, load_snapshot
    from leaderboard.tables import all_leaderboards

    snapshot = load_snapshot(build_snapshot(tracking_uri, tmp_path / "snap"))
    board = all_leaderboards(snapshot)[TASK.experiment_name]
    assert board.set_index("submission").loc["noisy-pop", "provenance"] == "verified"


def test_an_archive_round_trips_and_a_sample_of_seeds_is_verified(noisy, tasks_here, tmp_path, tracking_uri):
    archive = submit(noisy, [tasks_here], tmp_path / "bundle.tar.gz", archive=True, log=lambda _: None)
    assert tarfile.is_tarfile(archive)
    done = verify(archive, tracking_uri, sample_seeds=1, log=lambda _: None)
    assert len(done.compared) == len(done.recorded) == 1


TAMPERING = {
    "metric raised by 0.01": (lambda b: edit_manifest(b, lambda m: m["runs"][0]["metrics"].update(
        {"NDCG@5": m["runs"][0]["metrics"]["NDCG@5"] + 0.01})), "is not the mean of the per-user values"),
    "per-user file edited": (lambda b: _edit_per_user(b), "was changed after the run"),
    "code changed after the run": (lambda b: (b / "submission" / "model.py").write_text(
        (b / "submission" / "model.py").read_text().replace("0.5 *", "0.4 *")), "the code changed after the runs"),
    "card renamed to pop": (lambda b: _rename_card(b, "pop"), "is the submission at"),
    "task version changed": (lambda b: edit_manifest(b, lambda m: [r["tags"].update({"task_version": "9"})
                                                                   for r in m["runs"]]), "field 'runs[0].tags.task_version'"),
    "dataset fingerprint changed": (lambda b: edit_manifest(b, lambda m: [r["tags"].update(
        {"dataset_fingerprint": "0" * 16}) for r in m["runs"]]), "field 'runs[0].tags.dataset_fingerprint'"),
    "unknown task": (lambda b: edit_manifest(b, lambda m: m["runs"][0]["tags"].update({"task": "sequential/absent"})),
                     "there is no task 'sequential/absent' here"),
    "per-user file missing": (lambda b: next((b / "runs").glob("*/*.parquet")).unlink(), "is missing from"),
}


def _edit_per_user(folder: Path) -> None:
    path = sorted((folder / "runs").glob("*/*.parquet"))[0]
    table = pd.read_parquet(path)
    table.loc[0, "NDCG@5"] = 1.0
    table.to_parquet(path, index=False)


def _rename_card(folder: Path, name: str) -> None:
    """A consistent forgery: the card, the manifest and its digest all say `name`."""
    from benchmark.api import Submission

    card = folder / "submission" / "submission.yaml"
    card.write_text(card.read_text().replace("name: noisy-pop", f"name: {name}"))
    digest = Submission(folder / "submission").digest

    def rename(manifest):
        manifest["bundle"] |= {"name": name, "digest": digest}
        for run in manifest["runs"]:
            run["tags"] |= {"submission": name, "submission_digest": digest}

    edit_manifest(folder, rename)


@pytest.mark.parametrize("attack", TAMPERING)
def test_a_tampered_bundle_is_refused_with_the_reason_and_nothing_is_written(attack, bundle, tracking_uri, tmp_path):
    tamper, reason = TAMPERING[attack]
    tamper(bundle)
    for act in (lambda: verify(bundle, tracking_uri, log=lambda _: None),
                lambda: import_bundle(bundle, tracking_uri, log=lambda _: None)):
        with pytest.raises(BundleError) as refused:
            act()
        assert reason in str(refused.value) and str(bundle) in str(refused.value), str(refused.value)
    assert rows(tracking_uri).empty


def test_a_rerun_that_differs_names_every_metric_seed_and_user(noisy, tasks_here, tmp_path, tracking_uri):
    """Consistent lies (the per-user file, its hash and the metric all edited together)
    pass every check but the re-run."""
    bundle = submit(noisy, [tasks_here], tmp_path / "bundle", seeds=[0], log=lambda _: None)
    path = sorted((bundle / "runs").glob("*/*.parquet"))[0]
    table = pd.read_parquet(path)
    table["NDCG@5"] = 1.0
    table.to_parquet(path, index=False)
    from benchmark.tracking.manifest import sha256_file

    edit_manifest(bundle, lambda m: m["runs"][0].update(
        {"per_user_sha256": sha256_file(path), "metrics": m["runs"][0]["metrics"] | {"NDCG@5": 1.0}}))
    result = CliRunner().invoke(app, ["verify", str(bundle), "--tracking-uri", tracking_uri])
    assert result.exit_code != 0
    message = " ".join(result.stderr.split())
    assert "sequential/synthetic seed 0: NDCG@5: manifest 1.0, re-run" in message
    assert "per-user NDCG@5 differs for" in message and "user " in message
    assert rows(tracking_uri).empty


def test_import_without_verification_is_self_reported(bundle, tracking_uri, tmp_path):
    result = CliRunner().invoke(app, ["store", "import", str(bundle), "--tracking-uri", tracking_uri])
    assert result.exit_code == 0, result.output
    assert "2 runs imported as self-reported" in result.output
    stored = rows(tracking_uri)
    assert set(stored["tag:provenance"]) == {"self-reported"}


def test_store_export_and_import_round_trip(tracking_uri, tmp_path):
    from benchmark.runner import evaluate

    evaluate([shipped("pop"), shipped("random")], TASK, tracking_uri=tracking_uri)
    exported = tmp_path / "results"
    result = CliRunner().invoke(app, ["store", "export", "--out", str(exported), "--tracking-uri", tracking_uri])
    assert result.exit_code == 0 and "4 runs exported" in result.output, result.output
    other = f"sqlite:///{tmp_path / 'other.db'}"
    result = CliRunner().invoke(app, ["store", "import", str(exported), "--trusted", "--tracking-uri", other])
    assert result.exit_code == 0, result.output
    before, after = rows(tracking_uri), rows(other)
    columns = ["submission", "seed", "metric:NDCG@5", "metric:HR@5", "tag:run_key", "tag:submission_digest"]
    key = ["submission", "seed"]
    pd.testing.assert_frame_equal(before[columns].sort_values(key).reset_index(drop=True),
                                  after[columns].sort_values(key).reset_index(drop=True))
    assert "tag:provenance" not in after  # the maintainer's own runs: trusted, nothing to mark
    again = CliRunner().invoke(app, ["store", "import", str(exported), "--tracking-uri", other])
    assert "0 runs imported" in again.output  # run keys already finished there


def test_bad_bundles_name_the_path_and_the_field(tmp_path, tracking_uri):
    (tmp_path / "empty").mkdir()
    for path, expected in ((tmp_path / "absent", "no such bundle"), (tmp_path / "empty", "no manifest.json")):
        result = CliRunner().invoke(app, ["verify", str(path), "--tracking-uri", tracking_uri])
        assert result.exit_code != 0 and expected in result.stderr and str(path) in result.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / MANIFEST).write_text(json.dumps({"format": "llm4rec-results", "format_version": 1,
                                            "bundle": {"name": "x", "version": "1", "digest": "d", "folder": "."},
                                            "runs": [{"experiment": "e"}]}))
    result = CliRunner().invoke(app, ["verify", str(bad), "--tracking-uri", tracking_uri])
    assert "field 'runs[0].run_name': missing" in result.stderr
