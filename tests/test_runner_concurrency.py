"""The runner under concurrency and sudden death, through the real command: four
`llm4rec run` processes on one store (fresh, then existing) leave exactly one FINISHED
run per run key and all succeed; a harness killed with SIGKILL mid-matrix loses
nothing, and the same command again finishes the matrix without a duplicate."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import yaml
from mlflow.tracking import MlflowClient

from conftest import shipped, synthetic_task

TASK = synthetic_task(seeds=[0, 1])
SLOW_MODEL = """
import time
import numpy as np
from benchmark.api import Recommender

class Model(Recommender):
    def fit(self, train, ctx):
        time.sleep(4)  # long enough to be killed in

    def score(self, request):
        return np.zeros((len(request.users), request.n_candidates))
"""


def task_file(tmp_path: Path) -> Path:
    path = tmp_path / "synthetic.yaml"
    path.write_text(yaml.safe_dump(TASK.model_dump(mode="json", exclude_none=True)))
    return path


def llm4rec_run(tmp_path: Path, uri: str, *submissions: str) -> subprocess.Popen:
    arguments = [a for s in submissions for a in ("--submission", s)]
    return subprocess.Popen([sys.executable, "-m", "benchmark.cli", "run", "--task", str(task_file(tmp_path)),
                             "--tracking-uri", uri, *arguments], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def stored_runs(uri: str) -> list:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(TASK.experiment_name)
    return client.search_runs([experiment.experiment_id]) if experiment else []


def finished_per_key(uri: str) -> Counter:
    return Counter(r.data.tags["run_key"] for r in stored_runs(uri) if r.info.status == "FINISHED")


def test_four_commands_at_once_on_a_fresh_then_an_existing_store(tmp_path, tracking_uri):
    submissions = (str(shipped("pop")), str(shipped("random")))
    for store in ("fresh", "existing"):
        commands = [llm4rec_run(tmp_path, tracking_uri, *submissions) for _ in range(4)]
        for command in commands:
            stdout, stderr = command.communicate(timeout=600)
            assert command.returncode == 0, (store, stdout[-2000:], stderr[-4000:])
            assert "Traceback" not in stderr, (store, stderr[-4000:])
            assert "runs: 4 (" in stdout and "0 failed" in stdout, (store, stdout[-2000:])
        per_key = finished_per_key(tracking_uri)
        assert len(per_key) == 4 and set(per_key.values()) == {1}, (store, per_key)
        assert {r.info.status for r in stored_runs(tracking_uri)} == {"FINISHED"}, store


def test_a_harness_killed_mid_matrix_loses_nothing_and_the_rerun_has_no_duplicate(tmp_path, tracking_uri,
                                                                                     make_submission):
    slow = make_submission("slow", SLOW_MODEL)
    matrix = (str(shipped("pop")), str(slow), str(shipped("random")))
    first = llm4rec_run(tmp_path, tracking_uri, *matrix)
    seen = ""
    for line in first.stderr:  # the harness's progress: kill it once the slow model is fitting
        seen += line
        if "slow seed 0: fit" in line:
            break
    else:
        raise AssertionError(f"the command ended before the slow run:\n{seen}")
    os.killpg(first.pid, signal.SIGKILL)
    first.communicate()
    before = {r.info.run_id: r.info.status for r in stored_runs(tracking_uri)}
    assert sorted(before.values()) == ["FINISHED", "FINISHED", "RUNNING"], before  # pop's two seeds, slow's

    again = llm4rec_run(tmp_path, tracking_uri, *matrix)
    stdout, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stderr[-4000:]
    assert "left RUNNING by" in stderr and "marked KILLED" in stderr, stderr[-4000:]
    assert "runs: 6 (4 finished, 2 reused, 0 failed)" in stdout, stdout[-2000:]
    after = {r.info.run_id: r.info.status for r in stored_runs(tracking_uri)}
    for run_id, status in before.items():  # nothing recorded is lost
        assert after[run_id] == ("KILLED" if status == "RUNNING" else status)
    per_key = finished_per_key(tracking_uri)
    assert len(per_key) == 6 and set(per_key.values()) == {1}, per_key
    assert not [p for p in Path("/proc").glob("[0-9]*") if _mounts(p, slow)]  # its sandbox died with it


def _mounts(process: Path, folder: Path) -> bool:
    try:
        return str(folder) in (process / "cmdline").read_bytes().decode(errors="replace") and \
            "zombie" not in (process / "status").read_text()
    except OSError:
        return False
