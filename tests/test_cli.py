"""The command line end to end: a real run on a slice of ml-100k into a temporary
MLflow store, the results table, validate, and --help for every command."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from benchmark.data.assets import fetch_asset
from conftest import REPO, shipped

COMMANDS = ["tasks", "submissions", "run", "results", "validate", "assets", "assets fetch", "store", "store merge",
            "store end-stale"]


def llm4rec(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "benchmark.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def ml100k_slice(tmp_path) -> Path:
    """The first 80 users of ml-100k (all their ratings) and the item/user files, as a
    RecBole atomic folder, and a task on it."""
    source = fetch_asset("ml-100k")
    folder = tmp_path / "ml-100k-slice"
    folder.mkdir()
    lines = (source / "ml-100k.inter").read_text().splitlines(keepends=True)
    keep = {str(u) for u in range(1, 81)}
    (folder / "ml-100k-slice.inter").write_text(
        lines[0] + "".join(line for line in lines[1:] if line.split("\t", 1)[0] in keep))
    for suffix in ("item", "user"):
        (folder / f"ml-100k-slice.{suffix}").write_text((source / f"ml-100k.{suffix}").read_text())
    spec = yaml.safe_load((REPO / "tasks" / "sequential" / "ml-100k.yaml").read_text())
    spec |= {"task": "sequential/ml-100k-slice", "dataset": {"name": "ml-100k-slice", "path": str(folder)},
             "seeds": [0, 1]}
    path = tmp_path / "ml-100k-slice.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_run_and_results_on_a_slice_of_ml100k(ml100k_slice, tmp_path):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    task = str(ml100k_slice)
    done = llm4rec("run", "--task", task, "-s", "random", "-s", str(shipped("pop")),
                   "--tracking-uri", uri, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "ranked by NDCG@10" in done.stdout
    assert "runs: 4 (4 finished, 0 failed)" in done.stdout
    table = done.stdout[done.stdout.index("ranked by"):]
    assert table.index("pop") < table.index("random")  # ranked: pop first

    shown = llm4rec("results", "--task", task, "--format", "json", "--tracking-uri", uri, cwd=tmp_path)
    rows = json.loads(shown.stdout)
    assert [r["submission"] for r in rows] == ["pop", "random"]
    assert all(r["seeds"] == 2 for r in rows)
    assert rows[0]["NDCG@10"] > rows[1]["NDCG@10"]

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("sequential/ml-100k-slice@v1")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}

    as_csv = llm4rec("results", "--task", task, "--format", "csv", "--tracking-uri", uri, cwd=tmp_path)
    header = next(csv.reader(as_csv.stdout.splitlines()))
    assert header[:5] == ["submission", "version", "paradigm", "rank", "seeds"]

    again = llm4rec("run", "--task", task, "-s", "random", "--tracking-uri", uri, cwd=tmp_path)
    assert "runs: 2 (2 reused, 0 failed)" in again.stdout


def test_default_store_is_sqlite_in_the_working_directory(ml100k_slice, tmp_path):
    done = llm4rec("run", "--task", str(ml100k_slice), "-s", "pop", "--seed", "0", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "mlflow.db").is_file()
    assert list((tmp_path / "mlartifacts").rglob("per_user_metrics.parquet"))


def test_failed_run_gives_exit_code_1_and_its_reason(make_submission, ml100k_slice, tmp_path):
    folder = make_submission("nan", """
import numpy as np
from benchmark.api import Recommender
class Model(Recommender):
    def score(self, request):
        return np.full((len(request.users), request.n_candidates), np.nan)
""")
    done = llm4rec("run", "--task", str(ml100k_slice), "-s", str(folder), "-s", "pop", "--seed", "0",
                   "--tracking-uri", f"sqlite:///{tmp_path / 's.db'}", cwd=tmp_path)
    assert done.returncode == 1
    assert "FAILED" in done.stdout and "rule 'finite'" in done.stdout
    assert "1 finished" in done.stdout and "1 failed" in done.stdout


def test_validate_passes_a_good_submission_and_fails_a_bad_one(make_submission, tmp_path):
    good = llm4rec("validate", str(shipped("pop")), cwd=tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "✓ sequential: same seed, same metrics" in good.stdout
    bad = make_submission("wrongshape", """
import numpy as np
from benchmark.api import Recommender
class Model(Recommender):
    def score(self, request):
        return np.zeros((len(request.users), 3), dtype=np.float32)
""")
    failed = llm4rec("validate", str(bad), cwd=tmp_path)
    assert failed.returncode == 1
    assert "✗ sequential: fit and score" in failed.stdout and "rule 'shape'" in failed.stdout


def test_unknown_names_get_a_did_you_mean(tmp_path):
    done = llm4rec("run", "--task", "sequential/ml-100k", "-s", "rando", cwd=tmp_path)
    assert done.returncode == 2
    assert "Did you mean: random" in done.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, tmp_path):
    done = llm4rec(*command.split(), "--help", cwd=tmp_path)
    assert done.returncode == 0
    assert "Usage:" in done.stdout and len(done.stdout.split("\n")) > 4


def test_tasks_and_submissions_list(tmp_path):
    tasks = llm4rec("tasks", cwd=tmp_path)
    assert "sequential/ml-100k" in tasks.stdout
    subs = llm4rec("submissions", cwd=tmp_path)
    assert "random" in subs.stdout and "non-personalized" in subs.stdout
