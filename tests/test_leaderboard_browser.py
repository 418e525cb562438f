"""The leaderboard in a real browser: `llm4rec leaderboard serve` on 127.0.0.1 over the
fixture store's snapshot, headless Chromium loads it, waits for the rendered table and
finds every task's leader with its score. The screenshot is kept in tests/artifacts/.

Needs Chromium at /usr/bin/chromium (`make test` installs it) and the playwright
package (the `test` extra); without them the test is skipped, except under CI=true."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _require_browser():
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason, sync_playwright = "the playwright package is not installed (pip install -e '.[test]')", None
    if reason is None and not Path(CHROMIUM).is_file():
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium; `make test` does it)"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return sync_playwright


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


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Serve the fixture store's leaderboard; the server is always stopped."""
    from leaderboard.snapshot import build_snapshot, load_snapshot
    from leaderboard.tables import all_leaderboards, leaders
    from test_leaderboard import build_fixture_store

    root = tmp_path_factory.mktemp("browser-store")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LLM4REC_CACHE", str(root / "cache"))
        uri = build_fixture_store(root)
    folder = build_snapshot(uri, root / "snapshot")
    port = free_port()
    log = open(root / "serve.log", "w")
    env = os.environ | {"PYTHONPATH": str(REPO)}
    server = subprocess.Popen([sys.executable, "-m", "benchmark.cli", "leaderboard", "serve", "--port", str(port),
                               "--snapshot", str(folder)], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)  # its own process group: streamlit and all stop together
    try:
        wait_healthy(port, server)
        yield f"http://127.0.0.1:{port}/", leaders(all_leaderboards(load_snapshot(folder)))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def test_chromium_shows_the_leaders_and_their_scores(served, tmp_path):
    sync_playwright = _require_browser()
    from leaderboard.tables import mean_std

    url, leaders = served
    profile = tmp_path / "chromium-profile"  # a fresh user-data-dir
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "leaderboard-overview.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        try:
            page = browser.new_page()
            page.goto(url, wait_until="domcontentloaded", timeout=60_000)
            page.wait_for_selector('[data-testid="stDataFrame"]', timeout=90_000)  # the rendered table
            page.get_by_text("Leaders", exact=True).wait_for(timeout=30_000)
            page.wait_for_timeout(1500)  # let the canvas tables paint before the screenshot
            page.screenshot(path=str(shot), full_page=True)
            body = page.inner_text("body")
        finally:
            browser.close()
    shutil.copy(shot, tmp_path / shot.name)
    print(f"\nscreenshot: {shot}")
    assert len(leaders) == 3
    for leader in leaders.itertuples():
        assert leader.leader in body, leader.leader
        assert mean_std(leader.score, leader.score_std) in body
    assert "llm-zs@1" in body  # the zero-shot leader
