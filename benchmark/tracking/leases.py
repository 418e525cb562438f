"""Exclusive run-key claims for stores without a lock folder (an MLflow server, any
database), through the MLflow API alone; and the heartbeat thread that runs and claims
share.

A claim of run key K is an experiment named `llm4rec.claims/K`. Experiment names are
unique in MLflow's database (a unique constraint), so of many processes creating it at
once exactly one succeeds: it holds the lease, and tags the experiment with its owner
process (`benchmark.tracking.owner`) and a heartbeat it renews every HEARTBEAT_SECONDS.

The others read those tags. A live holder (its process alive on this machine, or a
heartbeat fresher than STALE_AFTER_SECONDS) is waited for, polling. A stale one (its
process ended, or silent that long) is taken over: its experiment is renamed by id to
`llm4rec.claims/K/stale-<uuid>` and the create retried. Renaming by id makes a takeover
safe: two processes renaming the same stale experiment touch only it, and only one of
them then creates the new claim. Releasing renames one's own experiment (by id) to
`llm4rec.claims/K/released-<uuid>` and deletes it; a holder whose lease was taken over
only renames its own old experiment, never the new holder's.

Names are moved away before deleting because MLflow keeps a deleted experiment's name
reserved until `mlflow gc`. A takeover does not delete (another stealer may be renaming
the same experiment at that moment, and renaming a deleted experiment is a server error
that MLflow's client retries for minutes): stale claims stay, under their stale name.
Readers of the store skip every experiment whose name starts with CLAIM_PREFIX.

Exclusive where the store enforces unique experiment names: SQL databases and MLflow
servers backed by one (not MLflow's file store). Heartbeats compare clocks across
machines: keep them in sync (NTP) to well within STALE_AFTER_SECONDS.
"""
from __future__ import annotations

import random
import threading
import time
import uuid
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from benchmark.tracking.locks import SAFE_LOCK_NAME
from benchmark.tracking.owner import OwnerState, describe_owner, owner_state, owner_tags

CLAIM_PREFIX = "llm4rec.claims/"
TAG_HEARTBEAT = "heartbeat"  # Unix seconds of the owner's last sign of life
TAG_LEASE_TOKEN = "lease_token"  # tells our own claim from another's when a create's reply was lost
HEARTBEAT_SECONDS = 30.0
STALE_AFTER_SECONDS = 4 * HEARTBEAT_SECONDS
MAX_POLL_SECONDS = 2.0
_HELD = threading.local()  # the (store, key) leases each thread holds


def is_claim_experiment(name: str) -> bool:
    """Whether an experiment is a run-key claim (never a task's results)."""
    return name.startswith(CLAIM_PREFIX)


def claim_name(key: str) -> str:
    """The experiment of one run key's claim; the key becomes part of a name, so it is checked."""
    if not SAFE_LOCK_NAME.match(key) or key.startswith("."):
        raise ValueError(f"run key {key!r} cannot name a claim (letters, digits, '_', '-', '.' only)")
    return CLAIM_PREFIX + key


@contextmanager
def beating(action: Callable[[], Any], every: float, name: str) -> Iterator[None]:
    """While the block runs, a daemon thread calls `action` at once and then every
    `every` seconds. A failed beat (a busy store) is retried at the next tick and never
    fails the block; a beat stuck on the store does not hold the block's end for long."""
    stop = threading.Event()

    def beat() -> None:
        while True:
            try:
                action()
            except Exception:
                pass
            if stop.wait(every):
                return

    thread = threading.Thread(target=beat, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)


@contextmanager
def lease(client, key: str, wait: bool = True, on_busy: Callable[[str], None] | None = None,
          log: Callable[[str], None] | None = None, every: float = HEARTBEAT_SECONDS,
          stale_after: float = STALE_AFTER_SECONDS) -> Iterator[bool]:
    """Hold the lease of run key `key` in the store of MlflowClient `client` for the
    block; yields True when held. When a live process holds it: waits (wait=True) or
    yields False at once. `on_busy` hears once who holds it; `log` hears of a stale
    claim taken over. The heartbeat is renewed every `every` seconds while held."""
    name = claim_name(key)
    mine = (client.tracking_uri, key)
    held_here = _held_by_this_thread()
    if mine in held_here:  # waiting for ourselves would never end
        raise RuntimeError(f"run key {key}: this thread holds this lease already")
    experiment_id = _acquire(client, name, wait, on_busy, log or (lambda _: None), stale_after)
    if experiment_id is None:
        yield False
        return
    held_here.add(mine)
    try:
        with beating(lambda: client.set_experiment_tag(experiment_id, TAG_HEARTBEAT, _now()), every,
                     f"heartbeat of the claim of {key}"):
            yield True
    finally:
        held_here.discard(mine)
        _release(client, experiment_id, name, log or (lambda _: None))


def _acquire(client, name: str, wait: bool, on_busy: Callable[[str], None] | None, log: Callable[[str], None],
             stale_after: float) -> str | None:
    """The id of our claim experiment once created; None when busy and not waiting."""
    from mlflow.exceptions import MlflowException

    token = uuid.uuid4().hex
    announced = False
    pause = 0.05
    moved: set[str] = set()  # stale claims we renamed away: one seen again could not be moved
    while True:
        try:
            return client.create_experiment(name, tags=owner_tags() | {TAG_HEARTBEAT: _now(), TAG_LEASE_TOKEN: token})
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        current = client.get_experiment_by_name(name)
        if current is None:  # released between our create and our read
            continue
        if current.tags.get(TAG_LEASE_TOKEN) == token:  # ours: the create's first reply was lost, a retry said "exists"
            return current.experiment_id
        stale = "deleted" if current.lifecycle_stage != "active" else _stale_reason(current, stale_after)
        if stale:
            if current.experiment_id in moved:
                raise RuntimeError(f"{name}: cannot move the stale claim (experiment {current.experiment_id}) "
                                   "out of the way; rename or delete it in the store")
            log(f"the claim of {describe_owner(current.tags)} is stale ({stale}); taking it over")
            _move_away(client, current, name)
            moved.add(current.experiment_id)
            continue
        if not announced and on_busy is not None:
            on_busy(describe_owner(current.tags))
        announced = True
        if not wait:
            return None
        time.sleep(pause * random.uniform(0.5, 1.5))  # jitter: waiters do not poll in step
        pause = min(pause * 1.5, MAX_POLL_SECONDS)


def _stale_reason(experiment, stale_after: float) -> str | None:
    """Why a claim's holder is gone, or None while it may be alive: its process is
    alive on this machine, or (elsewhere) its heartbeat is fresh."""
    tags = experiment.tags
    state = owner_state(tags)
    if state is OwnerState.ALIVE:
        return None
    if state in (OwnerState.GONE, OwnerState.REPLACED):
        return "its process has ended"
    beat = tags.get(TAG_HEARTBEAT, "")
    last = int(beat) if beat.isdigit() else (experiment.creation_time or 0) / 1000
    silent = time.time() - last
    return f"no heartbeat for {silent:.0f} s" if silent > stale_after else None


def _move_away(client, experiment, name: str) -> None:
    """Rename a stale claim (by id) to a stale name. A deleted one under the claim's
    exact name (deleted by hand: a release renames first) is restored first, as a
    deleted experiment keeps its name reserved and cannot be renamed."""
    from mlflow.exceptions import MlflowException

    try:
        if experiment.lifecycle_stage != "active":
            client.restore_experiment(experiment.experiment_id)
        client.rename_experiment(experiment.experiment_id, f"{name}/stale-{uuid.uuid4().hex}")
    except MlflowException:  # another claimant moved it first; the create decides
        pass


def _release(client, experiment_id: str, name: str, log: Callable[[str], None]) -> None:
    """Rename our own claim experiment away and delete it. If it was taken over (we
    were silent too long), it is no longer under the claim's name: renaming it again
    is harmless, and the new holder's experiment is never touched. A release that
    fails (the store unreachable) leaves the claim to be taken over once we are gone."""
    try:
        if client.get_experiment(experiment_id).lifecycle_stage != "active":
            return
        client.rename_experiment(experiment_id, f"{name}/released-{uuid.uuid4().hex}")
        client.delete_experiment(experiment_id)
    except Exception as error:  # never hides the block's own outcome
        log(f"could not release its claim ({error}); others take it over once this process ends")


def _held_by_this_thread() -> set[tuple[str, str]]:
    if not hasattr(_HELD, "keys"):
        _HELD.keys = set()
    return _HELD.keys


def _now() -> str:
    return str(int(time.time()))
