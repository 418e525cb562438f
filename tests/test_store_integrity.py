"""Store integrity under concurrency: real processes open and write one SQLite store
at once (fresh or existing) without a crash or a lost run, and with exactly one
FINISHED run per run key; a claimed key is waited for or skipped, and said so; a
holder killed with SIGKILL releases its key; end-stale never ends a live run."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from benchmark.tracking.locks import file_lock, key_lock_path
from benchmark.tracking.owner import TAG_HOST, TAG_PID_START, OwnerState, owner_state, owner_tags
from benchmark.tracking.store import (
    LOCK_DIR_VARIABLE,
    TAG_HEARTBEAT,
    ResultsStore,
    claim_lock_dir,
    end_stale_runs,
)

EXPERIMENT = "sequential/synthetic@v1"

# One writer: waits at the start gate, then for each key claims it and, when it must,
# runs it (FINISHED; or, in mode fail-first, FAILED when no attempt failed before).
# Prints one JSON line per key: {"key", "outcome": ran | failed | reused | skipped}.
WRITER = r"""
import json, sys, time
from pathlib import Path
from benchmark.tracking.store import ResultsStore

uri, gate, mode, *keys = sys.argv[1:]
EXPERIMENT = "sequential/synthetic@v1"
print("ready", flush=True)
while not Path(gate).exists():
    time.sleep(0.005)
store = ResultsStore(uri, log=lambda message: print(message, file=sys.stderr, flush=True))
for key in keys:
    with store.claim(EXPERIMENT, key, wait=mode != "no-wait") as claim:
        if claim.finished_run is not None:
            outcome = "reused"
        elif not claim.held:
            outcome = "skipped"
        else:
            run_id = store.start(EXPERIMENT, f"run {key}", {"run_key": key}, {})
            with store.heartbeat(run_id):
                failed = store.client.search_runs(
                    [store.experiment_id(EXPERIMENT)],
                    filter_string=f"tags.run_key = '{key}' and attributes.status = 'FAILED'")
                time.sleep(0.2)  # some work, so that the others find the key held
                if mode == "fail-first" and not failed:
                    store.end(run_id, "FAILED", "the first attempt fails")
                    outcome = "failed"
                else:
                    store.log_metrics(run_id, {"NDCG@10": 0.5})
                    store.end(run_id)
                    outcome = "ran"
    print(json.dumps({"key": key, "outcome": outcome}), flush=True)
"""

# Claims a key, starts its run, says so, and waits to be killed.
HOLDER = r"""
import sys, time
from benchmark.tracking.store import ResultsStore

uri, key = sys.argv[1:]
store = ResultsStore(uri)
with store.claim("sequential/synthetic@v1", key) as claim:
    run_id = store.start("sequential/synthetic@v1", "doomed", {"run_key": key}, {})
    print(run_id, flush=True)
    time.sleep(600)
"""

OPENER = r"""
import sys
from benchmark.tracking.store import ResultsStore

store = ResultsStore(sys.argv[1], log=lambda message: print(message, file=sys.stderr, flush=True))
print("opened", len(store.client.search_experiments()), flush=True)
"""


def spawn(script: str, *args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def read_until(stream, text: str) -> str:
    """Lines of `stream` up to the first holding `text` (blocking: no timing)."""
    seen = ""
    for line in stream:
        seen += line
        if text in line:
            return seen
    raise AssertionError(f"the process ended without saying {text!r}:\n{seen}")


def outcomes(process: subprocess.Popen) -> tuple[list[dict], str]:
    stdout, stderr = process.communicate()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")], stderr


def run_writers(uri: str, tmp_path: Path, mode: str, keys: list[str], n: int = 4) -> list[list[dict]]:
    """n writers started at once (a start gate opened once all have imported mlflow),
    each taking the keys in a different order."""
    gate = tmp_path / "gate"
    writers = [spawn(WRITER, uri, str(gate), mode, *(keys[i:] + keys[:i]), cwd=tmp_path) for i in range(n)]
    for writer in writers:
        assert writer.stdout.readline().strip() == "ready"
    gate.touch()
    return [outcomes(writer)[0] for writer in writers]


def runs_by_status(uri: str, key: str) -> dict[str, int]:
    store = ResultsStore(uri)
    counts: dict[str, int] = {}
    for run in store.client.search_runs([store.experiment_id(EXPERIMENT)], filter_string=f"tags.run_key = '{key}'"):
        counts[run.info.status] = counts.get(run.info.status, 0) + 1
    return counts


def test_four_writers_on_a_fresh_store_one_finished_run_per_key(tmp_path):
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    keys = ["k1", "k2", "k3"]
    results = run_writers(uri, tmp_path, "plain", keys)
    for key in keys:
        said = [r["outcome"] for writer in results for r in writer if r["key"] == key]
        assert sorted(said) == ["ran", "reused", "reused", "reused"]
        assert runs_by_status(uri, key) == {"FINISHED": 1}


def test_four_writers_on_an_existing_store_redo_a_failed_key_once(tmp_path):
    uri = f"sqlite:///{tmp_path / 'existing.db'}"
    store = ResultsStore(uri)
    earlier = store.start(EXPERIMENT, "earlier", {"run_key": "k0"}, {})
    store.end(earlier)
    keys = ["k1", "k2"]
    results = run_writers(uri, tmp_path, "fail-first", keys)
    for key in keys:
        said = [r["outcome"] for writer in results for r in writer if r["key"] == key]
        assert sorted(said) == ["failed", "ran", "reused", "reused"]  # the failed attempt is redone, once
        assert runs_by_status(uri, key) == {"FAILED": 1, "FINISHED": 1}
    assert runs_by_status(uri, "k0") == {"FINISHED": 1}  # nothing recorded before is lost


def test_a_held_key_is_skipped_without_waiting_or_waited_for_and_reused(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    store = ResultsStore(uri)
    gate = tmp_path / "gate"
    gate.touch()
    with store.claim(EXPERIMENT, "k1", log=lambda _: None) as claim:
        assert claim.must_run
        skipper = spawn(WRITER, uri, str(gate), "no-wait", "k1", cwd=tmp_path)
        said, stderr = outcomes(skipper)
        assert said == [{"key": "k1", "outcome": "skipped"}]
        assert f"run key k1: being run by another process (pid {os.getpid()} on" in stderr
        assert "not waiting: skipped" in stderr
        waiter = spawn(WRITER, uri, str(gate), "plain", "k1", cwd=tmp_path)
        read_until(waiter.stderr, "waiting for it")
        run_id = store.start(EXPERIMENT, "mine", {"run_key": "k1"}, {})
        store.end(run_id)
    said, stderr = outcomes(waiter)
    assert said == [{"key": "k1", "outcome": "reused"}]
    assert f"the other process finished it (run {run_id})" in stderr
    assert runs_by_status(uri, "k1") == {"FINISHED": 1}


def test_a_holder_killed_with_sigkill_releases_its_key_to_the_next_claimant(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    ResultsStore(uri)
    holder = spawn(HOLDER, uri, "k1", cwd=tmp_path)
    doomed = holder.stdout.readline().strip()
    gate = tmp_path / "gate"
    gate.touch()
    waiter = spawn(WRITER, uri, str(gate), "plain", "k1", cwd=tmp_path)
    read_until(waiter.stderr, "waiting for it")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    said, stderr = outcomes(waiter)
    assert said == [{"key": "k1", "outcome": "ran"}]
    assert "did not finish it; running it here" in stderr
    killed = ResultsStore(uri).client.get_run(doomed)
    assert killed.info.status == "KILLED"
    assert f"pid {holder.pid}" in killed.data.tags["failure_reason"]
    assert "ended without closing it" in killed.data.tags["failure_reason"]
    assert runs_by_status(uri, "k1") == {"FINISHED": 1, "KILLED": 1}


def test_a_fresh_store_is_created_by_one_process_while_the_others_wait(tmp_path):
    db = tmp_path / "fresh.db"
    with file_lock(db.with_name(db.name + ".lock")):
        opener = spawn(OPENER, f"sqlite:///{db}", cwd=tmp_path)
        read_until(opener.stderr, f"store {db}: waiting for pid {os.getpid()} on")
        assert not db.exists() or db.stat().st_size == 0  # nothing migrated while the lock is held
    stdout, stderr = opener.communicate()
    assert opener.returncode == 0 and stdout.startswith("opened 1"), stderr


def test_end_stale_leaves_live_runs_and_ends_those_whose_owner_is_gone(tmp_path):
    store = ResultsStore(f"sqlite:///{tmp_path / 'store.db'}")
    experiment_id = store.experiment_id(EXPERIMENT)

    def run_owned_by(name: str, tags: dict[str, str]) -> str:
        return store.client.create_run(experiment_id, run_name=name, tags=tags).info.run_id

    mine = store.start(EXPERIMENT, "mine", {}, {})  # this live process
    child = subprocess.Popen(["sleep", "600"])
    child_tags = owner_tags(child.pid)
    child.kill()
    child.wait()
    dead = run_owned_by("dead", child_tags)
    replaced = run_owned_by("replaced", owner_tags() | {TAG_PID_START: "1"})  # this pid, an earlier process
    elsewhere = owner_tags() | {TAG_HOST: "another-machine"}
    silent = run_owned_by("silent", elsewhere | {TAG_HEARTBEAT: str(int(time.time() - 3 * 3600))})
    beating = run_owned_by("beating", elsewhere | {TAG_HEARTBEAT: str(int(time.time()))})
    kept: list[str] = []

    assert len(end_stale_runs(store, 2.0, dry_run=True)) == 3
    assert store.client.get_run(dead).info.status == "RUNNING"  # a dry run changes nothing
    ended = end_stale_runs(store, 2.0, log=kept.append)
    assert sorted(ended) == sorted([
        f"{EXPERIMENT} · dead (its process, pid {child.pid} on {socket.gethostname()}, has ended)",
        f"{EXPERIMENT} · replaced (its process, pid {os.getpid()} on {socket.gethostname()}, has ended and "
        "the pid was reused)",
        f"{EXPERIMENT} · silent (last heartbeat 3.0 h ago, pid {os.getpid()} on another-machine)"])
    status = {run_id: store.client.get_run(run_id) for run_id in (mine, dead, replaced, silent, beating)}
    assert [status[r].info.status for r in (mine, dead, replaced, silent, beating)] == \
        ["RUNNING", "KILLED", "KILLED", "KILLED", "RUNNING"]
    assert "no heartbeat for 3.0 h" in status[silent].data.tags["failure_reason"]
    assert any(f"mine (live: its process, pid {os.getpid()}" in line for line in kept)
    at_zero = end_stale_runs(store, 0.0)  # any age counts: only the other machine's run goes
    assert [line.split(" (")[0] for line in at_zero] == [f"{EXPERIMENT} · beating"]
    assert store.client.get_run(mine).info.status == "RUNNING"  # a live owner, whatever the threshold


def test_the_owner_of_a_run_is_alive_gone_or_unknown():
    assert owner_state(owner_tags()) is OwnerState.ALIVE
    assert owner_state({}) is OwnerState.UNKNOWN
    assert owner_state(owner_tags() | {TAG_HOST: "elsewhere"}) is OwnerState.UNKNOWN
    assert owner_state(owner_tags() | {TAG_PID_START: "1"}) is OwnerState.REPLACED


def test_the_heartbeat_is_set_while_the_block_runs_and_stops_after(tmp_path):
    store = ResultsStore(f"sqlite:///{tmp_path / 'store.db'}")
    run_id = store.start(EXPERIMENT, "beating", {}, {})
    started = int(time.time())
    with store.heartbeat(run_id, every=3600):
        pass
    assert int(store.client.get_run(run_id).data.tags[TAG_HEARTBEAT]) >= started
    assert not [t for t in threading.enumerate() if t.name == f"heartbeat of run {run_id}"]


def test_claims_need_a_lock_folder_and_a_safe_key(tmp_path, monkeypatch):
    assert claim_lock_dir(f"sqlite:///{tmp_path / 'a.db'}") == tmp_path / "a.db.locks"
    monkeypatch.delenv(LOCK_DIR_VARIABLE, raising=False)
    assert claim_lock_dir("postgresql://db.example/mlflow") is None
    monkeypatch.setenv(LOCK_DIR_VARIABLE, str(tmp_path / "shared"))
    assert claim_lock_dir("postgresql://db.example/mlflow").parent == tmp_path / "shared"
    for hostile in ("../../etc/passwd", "a/b", "", ".hidden"):
        with pytest.raises(ValueError, match="cannot name a lock file"):
            key_lock_path(tmp_path, hostile)


def test_a_claim_within_a_claim_of_one_key_fails_instead_of_waiting_for_itself(tmp_path):
    store = ResultsStore(f"sqlite:///{tmp_path / 'store.db'}")
    with store.claim(EXPERIMENT, "k1", log=lambda _: None):
        with pytest.raises(RuntimeError, match="this thread holds this lock already"):
            with store.claim(EXPERIMENT, "k1", log=lambda _: None):
                pass
    with store.claim(EXPERIMENT, "k1", log=lambda _: None) as again:  # released on the way out
        assert again.must_run


def test_a_store_without_a_file_claims_through_the_lock_dir_or_says_it_cannot(tmp_path, monkeypatch):
    # MLflow's file store stands in for a server: no database file to put locks beside.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.delenv(LOCK_DIR_VARIABLE, raising=False)
    said: list[str] = []
    store = ResultsStore((tmp_path / "mlruns").as_uri(), log=said.append)
    with store.claim(EXPERIMENT, "k1") as claim:
        assert claim.must_run and not claim.exclusive
    assert any("cannot be claimed exclusively" in line and LOCK_DIR_VARIABLE in line for line in said)

    monkeypatch.setenv(LOCK_DIR_VARIABLE, str(tmp_path / "locks"))
    store = ResultsStore((tmp_path / "mlruns").as_uri(), log=said.append)
    outcome: list[bool] = []
    with store.claim(EXPERIMENT, "k1") as claim:
        assert claim.exclusive
        other = threading.Thread(target=lambda: outcome.append(_try_claim(store, "k1")))
        other.start()
        other.join()
    assert outcome == [False]  # held by the first claim: the other gave up at once
    assert _try_claim(store, "k1") is True


def _try_claim(store: ResultsStore, key: str) -> bool:
    with store.claim(EXPERIMENT, key, log=lambda _: None, wait=False) as claim:
        return claim.held


def test_a_lock_file_planted_as_a_link_is_refused_and_its_target_untouched(tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    lock = key_lock_path(tmp_path / "locks", "k1")
    lock.parent.mkdir()
    lock.symlink_to(victim)
    with pytest.raises(OSError, match="cannot open this lock file"):
        with file_lock(lock):
            pass
    assert victim.read_text() == "keep me"
