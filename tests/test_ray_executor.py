"""The matrix on Ray (`--executor ray`), on a real local cluster started here on
127.0.0.1 (no dashboard; every port it opens is checked to be on the loopback; stopped
at the end): the same metrics and run keys as the local executor, reuse on a second
submission of the matrix, a crashing submission and a lost worker recorded FAILED and
retried once while the other cells finish, two drivers at once without a duplicate, a
card asking for a GPU no node has, and submission files shipped to a node without them."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from benchmark.api import Submission
from benchmark.executors.ray_matrix import SubmissionFiles
from benchmark.runner import evaluate
from benchmark.tracking.store import ResultsStore
from conftest import shipped, synthetic_task

TASK = synthetic_task(seeds=[0, 1])
RAY_BIN = Path(sys.executable).with_name("ray")
LOOPBACK = ("127.0.0.1", "[::ffff:127.0.0.1]", "[::1]")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _session_processes(session: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == session:
                pids.append(int(entry))
    return pids


def _listening(pids: list[int]) -> list[str]:
    """The local addresses on which these processes listen (ss -ltnp)."""
    lines = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout.splitlines()
    wanted = {f"pid={pid}," for pid in pids}
    return [line.split()[3] for line in lines if any(w in line for w in wanted)]


@pytest.fixture(scope="module")
def cluster():
    """A Ray head with 2 CPUs on 127.0.0.1, in its own session so that every process of
    it (and only those) is stopped at the end."""
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port = _free_port()
    env = dict(os.environ, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token")
    head = subprocess.Popen([str(RAY_BIN), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                             "--include-dashboard=false", "--num-cpus=2", f"--temp-dir={temp}",
                             "--disable-usage-stats", "--block"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        address = f"127.0.0.1:{port}"
        deadline = time.time() + 90
        while not _ready(address, env):
            assert head.poll() is None and time.time() < deadline, "the Ray head did not start"
            time.sleep(1)
        yield address, head.pid
    finally:
        for pid in _session_processes(head.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        head.wait(timeout=30)


def _ready(address: str, env: dict) -> bool:
    probe = subprocess.run([str(RAY_BIN), "status", f"--address={address}"], env=env, capture_output=True,
                           timeout=60)
    return probe.returncode == 0


def _runs(uri: str) -> list:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(TASK.experiment_name)
    return client.search_runs([experiment.experiment_id]) if experiment else []


def _keys(uri: str, status: str = "FINISHED") -> Counter:
    return Counter(r.data.tags["run_key"] for r in _runs(uri) if r.info.status == status)


MATRIX = [shipped("pop"), shipped("random")]
METRICS = ["HR@5", "NDCG@5", "MRR"]


def test_ray_matrix_equals_local_with_the_same_keys_then_reuses(cluster, tmp_path):
    address, session = cluster
    local_uri, ray_uri = (f"sqlite:///{tmp_path / name}" for name in ("local.db", "ray.db"))
    local = evaluate(MATRIX, TASK, store=ResultsStore(local_uri))
    on_ray = evaluate(MATRIX, TASK, store=ResultsStore(ray_uri), executor="ray", ray_address=address)
    assert list(on_ray.status) == ["FINISHED"] * 4
    assert on_ray[["submission", "seed", *METRICS]].equals(local[["submission", "seed", *METRICS]])
    assert _keys(ray_uri) == _keys(local_uri) and len(_keys(ray_uri)) == 4
    assert {r.data.tags["executor"] for r in _runs(ray_uri)} == {"ray"}
    # Every port of the cluster, now that workers ran, is on the loopback.
    addresses = _listening(_session_processes(session))
    assert addresses and all(a.rsplit(":", 1)[0] in LOOPBACK for a in addresses), addresses

    again = evaluate(MATRIX, TASK, store=ResultsStore(ray_uri), executor="ray", ray_address=address)
    assert list(again.status) == ["REUSED"] * 4
    assert list(again.run_id) == list(on_ray.run_id)
    assert len(_runs(ray_uri)) == 4  # nothing new was written


CRASHES = """
import numpy as np
from benchmark.api import Recommender

class Model(Recommender):
    def fit(self, train, ctx):
        raise RuntimeError("this model always crashes")

    def score(self, request):
        return np.zeros((len(request.users), request.n_candidates))
"""

KILLS_ITS_PROCESS = """
import os
import numpy as np
from benchmark.api import Recommender

class Model(Recommender):
    def fit(self, train, ctx):
        os._exit(3)  # unsandboxed, this is the Ray worker itself

    def score(self, request):
        return np.zeros((len(request.users), request.n_candidates))
"""


def test_a_crashing_submission_fails_its_cells_after_one_retry_and_the_others_finish(cluster, tmp_path,
                                                                                     make_submission):
    address, _ = cluster
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    crashing = make_submission("crashes", CRASHES)
    task = synthetic_task(seeds=[0])
    runs = evaluate([shipped("pop"), crashing], task, store=ResultsStore(uri), executor="ray", ray_address=address)
    by_name = runs.set_index("submission")
    assert by_name.loc["pop", "status"] == "FINISHED"
    assert by_name.loc["crashes", "status"] == "FAILED"
    assert "this model always crashes" in by_name.loc["crashes", "reason"]
    assert "(attempt 2 of 2)" in by_name.loc["crashes", "reason"]
    failed = [r for r in _runs(uri) if r.data.tags["submission"] == "crashes"]
    assert sorted(r.data.tags["attempt"] for r in failed) == ["1", "2"]
    assert {r.info.status for r in failed} == {"FAILED"}
    assert all("this model always crashes" in r.data.tags["failure_reason"] for r in failed)


def test_a_lost_worker_is_recorded_failed_and_retried(cluster, tmp_path, make_submission):
    address, _ = cluster
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    killer = make_submission("killer", KILLS_ITS_PROCESS)
    task = synthetic_task(seeds=[0])
    runs = evaluate([killer, shipped("pop")], task, store=ResultsStore(uri), executor="ray", ray_address=address,
                    sandbox=False)
    by_name = runs.set_index("submission")
    assert by_name.loc["pop", "status"] == "FINISHED"
    assert by_name.loc["killer", "status"] == "FAILED"
    assert "Ray worker running it was lost" in by_name.loc["killer", "reason"]
    lost = [r for r in _runs(uri) if r.data.tags["submission"] == "killer"]
    assert sorted(r.data.tags["attempt"] for r in lost) == ["1", "2"]
    assert {r.info.status for r in lost} == {"FAILED"}


def test_two_drivers_at_once_run_each_key_once(cluster, tmp_path):
    address, _ = cluster
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ResultsStore(uri)  # created once, before the drivers race
    task_file = tmp_path / "synthetic.yaml"
    task_file.write_text(yaml.safe_dump(TASK.model_dump(mode="json", exclude_none=True)))
    command = [sys.executable, "-m", "benchmark.cli", "run", "--task", str(task_file), "--tracking-uri", uri,
               "--executor", "ray", "--ray-address", address,
               *[a for s in MATRIX for a in ("--submission", str(s))]]
    drivers = [subprocess.Popen(command, cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for _ in range(2)]
    outputs = [driver.communicate(timeout=600) for driver in drivers]
    for driver, (stdout, stderr) in zip(drivers, outputs):
        assert driver.returncode == 0, stderr[-3000:]
    finished = _keys(uri)
    assert len(finished) == 4 and set(finished.values()) == {1}, finished
    # Each driver's summary line ("runs: 4 (2 finished, 2 reused, 0 failed); ..."): every cell was
    # run by one driver and reused by the other, however they split the matrix.
    counts = Counter()
    for stdout, _ in outputs:
        summary = next(line for line in stdout.splitlines() if line.startswith("runs: 4 ("))
        for part in summary.split("(")[1].split(")")[0].split(", "):
            number, status = part.split()
            counts[status] += int(number)
    assert counts["finished"] == 4 and counts["reused"] == 4 and counts["failed"] == 0, counts


def test_a_card_asking_for_a_gpu_no_node_has_fails_at_once(cluster, tmp_path, make_submission):
    address, _ = cluster
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    needs_gpu = make_submission("needs-gpu", CRASHES, resources={"gpus": 1})
    started = time.perf_counter()
    runs = evaluate([needs_gpu], synthetic_task(seeds=[0]), store=ResultsStore(uri), executor="ray",
                    ray_address=address)
    assert time.perf_counter() - started < 120  # it was not queued forever
    assert list(runs.status) == ["FAILED"]
    assert "asks for 1 CPUs, 1 GPUs" in runs.reason[0] and "no node" in runs.reason[0]


def test_submission_files_are_unpacked_where_the_folder_is_missing(tmp_path, make_submission):
    folder = make_submission("shipped-model", CRASHES)
    original = Submission(folder).variant("n64", train_samples=64)
    files = SubmissionFiles.of(original)
    moved = Submission(tmp_path / "elsewhere" / "shipped-model")  # as seen from a node without the folder
    moved.__dict__["card"] = original.card
    here = files.on_this_node(moved)
    assert here.folder != folder and (here.folder / "model.py").read_text() == (folder / "model.py").read_text()
    assert here.card.name == "shipped-model-n64" and here.card.hyperparameters["train_samples"] == 64
    assert Submission(here.folder).digest == original.digest
    assert files.on_this_node(original) is original  # the folder is there with the same files

    hostile = SubmissionFiles("0" * 64, "x", {"../../escape.py": b"print('out')"})
    with pytest.raises(ValueError, match="outside its folder"):
        hostile.on_this_node(moved)
