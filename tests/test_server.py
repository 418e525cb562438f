"""The team results store, for real: a PostgreSQL + MLflow server started by the test on
127.0.0.1 (random ports, nothing bound elsewhere, stopped at the end and by a watchdog
should the test run be killed). Run keys are claimed exclusively against it; one matrix
run from two `llm4rec run` commands at once leaves exactly one FINISHED run per run
key, the other command reusing them; the leaderboard snapshot is built from it; and
`llm4rec server status|stop` work, the ports closing."""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

import psutil
import pytest
import yaml

from benchmark.tracking.server import ServerInfo, free_port, server_status, start_server, stop_server
from benchmark.tracking.store import ResultsStore
from conftest import shipped, synthetic_task

TASK = synthetic_task(seeds=[0, 1])


@pytest.fixture(scope="module")
def team_server() -> ServerInfo:
    # Not under pytest's tmp folders: those are closed to others, and PostgreSQL runs as
    # the postgres user when the tests run as root.
    home = Path(tempfile.mkdtemp(prefix="llm4rec-server-"))
    home.chmod(0o711)
    try:
        yield start_server(home, port=free_port(), pg_port=free_port(), workers=2, stop_with_pid=os.getpid(),
                           log=lambda line: print(line, file=sys.stderr))
    finally:
        if (home / "server.json").exists():
            stop_server(home, log=lambda _: None)
        shutil.rmtree(home, ignore_errors=True)


def listening(info: ServerInfo) -> set[tuple[str, int]]:
    """(address, port) of every socket the server's processes listen on."""
    found = set()
    for pid in (info.mlflow_pid, info.postgres_pid):
        root = psutil.Process(pid)
        for process in [root, *root.children(recursive=True)]:
            try:
                found |= {(c.laddr.ip, c.laddr.port) for c in process.net_connections("inet")
                          if c.status == psutil.CONN_LISTEN}
            except psutil.NoSuchProcess:
                continue
    return found


def test_the_server_listens_on_loopback_only(team_server):
    assert team_server.running and team_server.uri == f"http://127.0.0.1:{team_server.port}"
    sockets = listening(team_server)
    assert {port for _, port in sockets} == {team_server.port, team_server.pg_port}, sockets
    assert {address for address, _ in sockets} == {"127.0.0.1"}, sockets
    settings = team_server.home / "server.json"
    assert settings.stat().st_mode & 0o777 == 0o600  # it holds the passwords


def test_run_keys_are_claimed_exclusively_on_the_server(team_server):
    experiment = TASK.experiment_name
    store, other = ResultsStore(team_server.uri), ResultsStore(team_server.uri)
    refused: list[bool] = []
    with store.claim(experiment, "server-k1", log=lambda _: None) as claim:
        assert claim.must_run and claim.exclusive
        thread = threading.Thread(target=lambda: refused.append(_held(other, experiment)))
        thread.start()
        thread.join(60)
    assert refused == [False]  # busy while held
    assert _held(other, experiment) is True  # free once released


def _held(store: ResultsStore, experiment: str) -> bool:
    with store.claim(experiment, "server-k1", log=lambda _: None, wait=False) as claim:
        return claim.held


@pytest.fixture(scope="module")
def matrix_outputs(team_server, tmp_path_factory) -> list[str]:
    """The same matrix from two `llm4rec run` commands started at once; their stdouts."""
    folder = tmp_path_factory.mktemp("matrix")
    task = folder / "synthetic.yaml"
    task.write_text(yaml.safe_dump(TASK.model_dump(mode="json", exclude_none=True)))
    command = [sys.executable, "-m", "benchmark.cli", "run", "--task", str(task), "--submission", str(shipped("pop")),
               "--submission", str(shipped("random")), "--seed", "0", "--seed", "1", "--tracking-uri", team_server.uri]
    drivers = [subprocess.Popen(command, cwd=folder, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for _ in range(2)]
    outputs = []
    for driver in drivers:
        stdout, stderr = driver.communicate(timeout=600)
        assert driver.returncode == 0, (stdout[-2000:], stderr[-4000:])
        assert "Traceback" not in stderr, stderr[-4000:]
        outputs.append(stdout)
    return outputs


def test_two_drivers_at_once_leave_one_finished_run_per_key(team_server, matrix_outputs):
    said = Counter()
    for stdout in matrix_outputs:
        summary = re.search(r"runs: 4 \((.*)\); store: (\S+)", stdout)
        assert summary and summary.group(2) == team_server.uri, stdout[-2000:]
        said.update({status: int(n) for n, status in re.findall(r"(\d+) (\w+)", summary.group(1))})
    assert said["finished"] == 4 and said["reused"] == 4 and said["failed"] == 0, said
    store = ResultsStore(team_server.uri)
    runs = store.client.search_runs([store.experiment_id(TASK.experiment_name, create=False)])
    assert {r.info.status for r in runs} == {"FINISHED"}
    per_key = Counter(r.data.tags["run_key"] for r in runs)
    assert len(per_key) == 4 and set(per_key.values()) == {1}, per_key


def test_the_leaderboard_snapshot_is_built_from_the_server(team_server, matrix_outputs, tmp_path):
    from leaderboard.snapshot import load_snapshot

    done = subprocess.run([sys.executable, "-m", "benchmark.cli", "leaderboard", "snapshot", "--tracking-uri",
                           team_server.uri, "--out", str(tmp_path / "snapshot")], cwd=tmp_path, text=True,
                          capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    snapshot = load_snapshot(tmp_path / "snapshot")
    assert snapshot.meta["tracking_uri"] == team_server.uri
    assert set(snapshot.runs["experiment"]) == {TASK.experiment_name}  # no claims, no Default
    finished = snapshot.runs[snapshot.runs["state"] == "finished"]
    assert sorted(zip(finished["submission"], finished["seed"])) == [("pop", 0), ("pop", 1), ("random", 0),
                                                                       ("random", 1)]
    assert set(snapshot.per_user["run_id"]) == set(finished["run_id"])  # artifacts read back over HTTP
    assert set(snapshot.cards["submission"]) == {"pop", "random"}


def test_server_status_and_stop_close_every_port(team_server):
    from typer.testing import CliRunner

    from benchmark.server_cli import server_app

    def server(*arguments: str):
        return CliRunner().invoke(server_app, [*arguments, "--home", str(team_server.home)])

    status = server("status")
    assert status.exit_code == 0 and status.stdout.startswith(f"running: {team_server.uri} (MLflow pid "), status.stdout
    processes = [psutil.Process(team_server.mlflow_pid), psutil.Process(team_server.postgres_pid)]
    stop = server("stop")
    assert stop.exit_code == 0 and "stopped:" in stop.stdout, stop.stdout
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes)
    for port in (team_server.port, team_server.pg_port):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    again = server("status")
    assert again.exit_code == 1 and again.stdout.startswith("stopped:"), again.stdout
    assert not server_status(team_server.home).running
