"""Run-key claims through leases (benchmark.tracking.leases), the claims of a store
without a lock folder, here a real SQLite store made to claim as a server does: one of
two contenders holds a key while the other waits and then reuses its run; the lease of
a holder killed with SIGKILL, or of a silent holder on another machine, is taken over;
a holder whose lease was taken over cannot release the new holder's; readers never see
the claims. (tests/test_server.py claims against a real MLflow server.)"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from benchmark.tracking.leases import CLAIM_PREFIX, TAG_HEARTBEAT, TAG_LEASE_TOKEN, claim_name, lease
from benchmark.tracking.owner import TAG_HOST, owner_tags
from benchmark.tracking.results import read_runs
from benchmark.tracking.store import ResultsStore, end_stale_runs

EXPERIMENT = "sequential/synthetic@v1"

# Claims a key through a lease, starts its run, says so, and waits to be killed.
HOLDER = r"""
import sys, time
from benchmark.tracking.store import ResultsStore

uri, key = sys.argv[1:]
store = ResultsStore(uri)
store.lock_dir = None  # claim as on a server
with store.claim("sequential/synthetic@v1", key) as claim:
    run_id = store.start("sequential/synthetic@v1", "doomed", {"run_key": key}, {})
    print(run_id, flush=True)
    time.sleep(600)
"""


def leasing_store(uri: str, said: list[str] | None = None) -> ResultsStore:
    """A store that claims through leases, as a server store does."""
    store = ResultsStore(uri, log=(said.append if said is not None else lambda _: None))
    store.lock_dir = None
    return store


@pytest.fixture(scope="module")
def template_store(tmp_path_factory) -> Path:
    """One migrated store with the task's experiment (MLflow takes seconds to create one)."""
    db = tmp_path_factory.mktemp("template") / "store.db"
    ResultsStore(f"sqlite:///{db}").experiment_id(EXPERIMENT)
    return db


@pytest.fixture
def uri(tmp_path, template_store) -> str:
    """A fresh copy of the template store."""
    shutil.copy(template_store, tmp_path / "store.db")
    return f"sqlite:///{tmp_path / 'store.db'}"


def try_claim(store: ResultsStore, key: str) -> bool:
    with store.claim(EXPERIMENT, key, wait=False) as claim:
        return claim.held


def claim_experiments(store: ResultsStore) -> list:
    from mlflow.entities import ViewType

    return [e for e in store.client.search_experiments(view_type=ViewType.ALL) if e.name.startswith(CLAIM_PREFIX)]


def test_one_contender_holds_the_key_the_other_waits_then_reuses_its_run(uri):
    holder, waiter = leasing_store(uri), leasing_store(uri, said := [])
    held, go = threading.Event(), threading.Event()
    finished: list[str] = []

    def hold() -> None:
        with holder.claim(EXPERIMENT, "k1", log=lambda _: None) as claim:
            assert claim.must_run and claim.exclusive
            held.set()
            go.wait(60)
            run_id = holder.start(EXPERIMENT, "mine", {"run_key": "k1"}, {})
            holder.end(run_id)
            finished.append(run_id)

    first = threading.Thread(target=hold)
    first.start()
    assert held.wait(60)
    outcome: list = []
    second = threading.Thread(target=lambda: outcome.append(_claim_and_look(waiter, "k1")))
    second.start()
    deadline = time.time() + 60
    while not any("waiting for it" in line for line in said) and time.time() < deadline:
        time.sleep(0.02)
    assert outcome == [] and any(f"(pid {os.getpid()} on" in line for line in said), said  # waiting, not through
    go.set()
    first.join(60)
    second.join(60)
    assert outcome == [(True, finished[0])]
    assert any(f"the other process finished it (run {finished[0]})" in line for line in said), said
    claims = claim_experiments(holder)  # both released: renamed away, then deleted
    assert len(claims) == 2 and all(e.lifecycle_stage == "deleted" for e in claims)
    assert all(e.name.startswith(claim_name("k1") + "/released-") for e in claims)


def _claim_and_look(store: ResultsStore, key: str) -> tuple[bool, str | None]:
    with store.claim(EXPERIMENT, key) as claim:
        return claim.held, claim.finished_run.info.run_id if claim.finished_run is not None else None


def test_the_lease_of_a_holder_killed_with_sigkill_is_taken_over(uri, tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, uri, "k1"], cwd=tmp_path, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        doomed = holder.stdout.readline().strip()
        assert doomed, holder.stderr.read()
        store = leasing_store(uri, said := [])
        assert try_claim(store, "k1") is False  # alive: busy
        assert any(f"being run by another process (pid {holder.pid} on" in line for line in said), said
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    with store.claim(EXPERIMENT, "k1") as claim:
        assert claim.must_run
    assert any(f"the claim of pid {holder.pid} on" in line and "is stale (its process has ended); taking it over"
               in line for line in said), said
    killed = store.client.get_run(doomed)
    assert killed.info.status == "KILLED" and f"pid {holder.pid}" in killed.data.tags["failure_reason"]
    names = sorted(e.name.split("/")[-1].split("-")[0] for e in claim_experiments(store))
    assert names == ["released", "stale"]  # the dead holder's claim moved away, ours released


def test_a_silent_holder_on_another_machine_is_taken_over_and_a_beating_one_waited_for(uri):
    store = leasing_store(uri, said := [])
    elsewhere = owner_tags() | {TAG_HOST: "another-machine"}
    store.client.create_experiment(claim_name("k1"), tags=elsewhere | {TAG_HEARTBEAT: str(int(time.time()))})
    assert try_claim(store, "k1") is False  # a fresh heartbeat: alive as far as we can tell
    assert any("being run by another process (pid" in line and "on another-machine" in line for line in said)

    silent = store.client.get_experiment_by_name(claim_name("k1")).experiment_id
    store.client.set_experiment_tag(silent, TAG_HEARTBEAT, str(int(time.time()) - 600))
    assert try_claim(store, "k1") is True
    assert any("is stale (no heartbeat for 6" in line and "taking it over" in line for line in said), said
    assert store.client.get_experiment(silent).name.startswith(claim_name("k1") + "/stale-")


def test_a_holder_whose_lease_was_taken_over_does_not_release_the_new_holders(uri):
    store = leasing_store(uri)
    slow_held, slow_done = threading.Event(), threading.Event()

    def slow_holder() -> None:  # beats once, then goes silent
        with lease(store.client, "k1", every=3600):
            slow_held.set()
            slow_done.wait(60)

    slow = threading.Thread(target=slow_holder)
    slow.start()
    assert slow_held.wait(60)
    old = store.client.get_experiment_by_name(claim_name("k1")).experiment_id
    for key, value in {TAG_HOST: "another-machine", TAG_HEARTBEAT: str(int(time.time()) - 600)}.items():
        store.client.set_experiment_tag(old, key, value)  # as if silent on another machine
    with lease(store.client, "k1", wait=False) as held:
        assert held
        mine = store.client.get_experiment_by_name(claim_name("k1"))
        slow_done.set()
        slow.join(60)  # the slow holder releases on its way out: only its own, old experiment
        assert store.client.get_experiment(old).lifecycle_stage == "deleted"
        now = store.client.get_experiment_by_name(claim_name("k1"))
        assert now.experiment_id == mine.experiment_id and now.lifecycle_stage == "active"
        assert now.tags[TAG_LEASE_TOKEN] == mine.tags[TAG_LEASE_TOKEN]
        other = leasing_store(store.uri)
        assert in_a_thread(lambda: try_claim(other, "k1")) is False  # still held here
    assert try_claim(other, "k1") is True


def in_a_thread(call):
    """call() in another thread (a thread waiting for a lease it holds itself is refused)."""
    result: list = []
    thread = threading.Thread(target=lambda: result.append(call()))
    thread.start()
    thread.join(60)
    return result[0]


def test_a_claim_deleted_by_hand_under_its_name_counts_as_free(uri):
    store = leasing_store(uri, said := [])
    deleted = store.client.create_experiment(claim_name("k1"), tags=owner_tags())
    store.client.delete_experiment(deleted)  # the name stays reserved until `mlflow gc`
    assert try_claim(store, "k1") is True
    assert any("is stale (deleted); taking it over" in line for line in said), said
    assert store.client.get_experiment(deleted).name.startswith(claim_name("k1") + "/stale-")


def test_a_lease_within_a_lease_of_one_key_fails_instead_of_waiting_for_itself(uri):
    store = leasing_store(uri)
    with store.claim(EXPERIMENT, "k1"):
        with pytest.raises(RuntimeError, match="this thread holds this lease already"):
            with store.claim(EXPERIMENT, "k1"):
                pass
    assert try_claim(store, "k1") is True  # released on the way out
    with pytest.raises(ValueError, match="cannot name a claim"):
        with lease(store.client, "a/b"):
            pass


def test_readers_never_see_claims(uri, tmp_path, template_store):
    from benchmark.tracking.merge import merge_stores

    store = leasing_store(uri)
    run_id = store.start(EXPERIMENT, "mine", {"run_key": "k1"}, {})
    with store.claim(EXPERIMENT, "k1"):
        store.end(run_id)
        other = leasing_store(uri)
        with other.claim(EXPERIMENT, "k2"):  # a claim held while the readers read
            assert set(read_runs(store)["experiment"]) == {EXPERIMENT}
            assert end_stale_runs(store, 0.0) == []
            shutil.copy(template_store, tmp_path / "copy.db")
            copy = f"sqlite:///{tmp_path / 'copy.db'}"
            merge_stores(uri, copy, log=lambda _: None)
            experiments = {e.name for e in ResultsStore(copy).client.search_experiments()}
            assert experiments == {"Default", EXPERIMENT}
