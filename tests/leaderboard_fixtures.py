"""Helpers shared by the leaderboard tests: a module's snapshot of its fixture store (the
snapshot loaded, and the Streamlit app over it under streamlit.testing), and `llm4rec
leaderboard serve` over a snapshot on 127.0.0.1."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import REPO

APP = REPO / "leaderboard" / "app.py"


def snapshot_fixtures(store: str, folder: str):
    """The module-scoped fixtures `snapshot_dir` (the snapshot of the store that the
    fixture named `store` returns the tracking URI of, built in a temporary folder named
    `folder`) and `snap` (that snapshot loaded), and the fixture `app` (the leaderboard
    app over that snapshot, an AppTest not yet run). A test module takes them as
    `snapshot_dir, snap, app = snapshot_fixtures(...)`."""

    @pytest.fixture(scope="module")
    def snapshot_dir(request, tmp_path_factory) -> Path:
        from leaderboard.snapshot import build_snapshot

        return build_snapshot(request.getfixturevalue(store), tmp_path_factory.mktemp(folder) / "snap")

    @pytest.fixture(scope="module")
    def snap(snapshot_dir):
        from leaderboard.snapshot import load_snapshot

        return load_snapshot(snapshot_dir)

    @pytest.fixture
    def app(snapshot_dir, monkeypatch):
        from streamlit.testing.v1 import AppTest

        monkeypatch.setenv("LLM4REC_LEADERBOARD_SNAPSHOT", str(snapshot_dir))
        return AppTest.from_file(str(APP), default_timeout=60)

    return snapshot_dir, snap, app


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_healthy(port: int, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"no answer from 127.0.0.1:{port} in {timeout:.0f} s")


@contextmanager
def serving(snapshot: Path, root: Path) -> Iterator[str]:
    """`llm4rec leaderboard serve` (streamlit run on 127.0.0.1) over `snapshot`, run in
    `root` (its log in root/serve.log): yields the app's URL once it answers; the server
    is always stopped."""
    port = free_port()
    log = open(root / "serve.log", "w")
    env = os.environ | {"PYTHONPATH": str(REPO)}
    server = subprocess.Popen([sys.executable, "-m", "benchmark.cli", "leaderboard", "serve", "--port", str(port),
                               "--snapshot", str(snapshot)], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)  # its own process group: streamlit and all stop together
    try:
        wait_healthy(port, server)
        yield f"http://127.0.0.1:{port}/"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
