"""The results store: MLflow, SQLite by default, any tracking URI unchanged.

One experiment per task id and version; one run per (submission, version, task,
seed). A deterministic run key makes reruns idempotent: a FINISHED run with the same
key is reused, a FAILED or interrupted one is redone in a new run (the old one stays).

Many processes may write one store at once:
- a fresh SQLite store is created and migrated by one process, under a lock file
  beside the database (`<db>.lock`); the others wait for it (MLflow's own migration
  is not safe to run twice at once);
- a run key is claimed (`ResultsStore.claim`) while it runs, so a key is run by one
  process at a time and has at most one FINISHED run: through a lock file per key in
  `<db>.locks/` for SQLite, or in $LLM4REC_LOCK_DIR when set (a folder every writer
  shares); else, on a server or any other database, through a lease: an experiment
  named after the key, which MLflow's unique names give to one process
  (`benchmark.tracking.leases`). Only MLflow's file store (`file:`) has neither, and
  there claims are not exclusive (it says so once);
- every run records its owner process (`benchmark.tracking.owner`) and, while it runs,
  a heartbeat (`ResultsStore.heartbeat`), so `end_stale_runs` never ends a live run.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlparse

import pandas as pd

# HEARTBEAT_SECONDS and TAG_HEARTBEAT live with the leases (which beat too); imported from here as well.
from benchmark.tracking.leases import HEARTBEAT_SECONDS, TAG_HEARTBEAT, beating, is_claim_experiment, lease
from benchmark.tracking.locks import file_lock, key_lock_path
from benchmark.tracking.owner import OwnerState, describe_owner, owner_state, owner_tags

TAG_FAILURE = "failure_reason"
TAG_RUN_KEY = "run_key"
DEFAULT_DB = "mlflow.db"
LOCK_DIR_VARIABLE = "LLM4REC_LOCK_DIR"

Log = Callable[[str], None]


def metric_key(metric: str) -> str:
    """MLflow metric names cannot hold '@': NDCG@10 -> NDCG_at_10."""
    return metric.replace("@", "_at_")


def metric_name(key: str) -> str:
    return key.replace("_at_", "@")


def resolve_tracking_uri(uri: str | None = None) -> str:
    """--tracking-uri, else $MLFLOW_TRACKING_URI, else ./mlflow.db (SQLite)."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    return uri or f"sqlite:///{(Path.cwd() / DEFAULT_DB).as_posix()}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a SQLite tracking URI (sqlite:////abs/mlflow.db ->
    /abs/mlflow.db); None for any other store."""
    if not uri.startswith("sqlite:"):
        return None
    return Path("/" + urlparse(uri).path.lstrip("/"))


def claim_lock_dir(uri: str) -> Path | None:
    """Where the run keys' lock files live: beside a SQLite database, else under
    $LLM4REC_LOCK_DIR (one folder per store); None when claims cannot be exclusive."""
    db = sqlite_path(uri)
    if db is not None:
        return db.with_name(db.name + ".locks")
    if os.environ.get(LOCK_DIR_VARIABLE):
        return Path(os.environ[LOCK_DIR_VARIABLE]) / hashlib.sha256(uri.encode()).hexdigest()[:16]
    return None


def leases_are_exclusive(uri: str) -> bool:
    """Whether the store enforces unique experiment names (a database, or a server in
    front of one), which leases need; MLflow's file store does not."""
    return not (uri.startswith("file:") or "://" not in uri)


def _artifact_root(uri: str) -> str | None:
    """For a SQLite store, artifacts go beside the database (MLflow 3 has no default
    that works there); servers choose their own."""
    db = sqlite_path(uri)
    return None if db is None else (db.parent / "mlartifacts").resolve().as_uri()


def _default_log(message: str) -> None:
    from benchmark.progress import log

    log(message)


@dataclass
class Claim:
    """What `ResultsStore.claim` found. `held`: this process holds the run key for the
    block (False only when another live process holds it and the caller would not
    wait). `finished_run`: a FINISHED run of the key (looked up once the key was held,
    or at once when not): reuse it. Run the key only when `must_run`. `exclusive`:
    False only for MLflow's file store (see the module doc)."""

    held: bool
    finished_run: Any | None = None
    exclusive: bool = True

    @property
    def must_run(self) -> bool:
        return self.held and self.finished_run is None


@dataclass(frozen=True)
class Verdict:
    """end_stale_runs' judgement of one RUNNING run: `summary` for the listing,
    `reason` for the failure_reason tag of a run it ends."""

    stale: bool
    summary: str
    reason: str = ""


class ResultsStore:
    def __init__(self, tracking_uri: str | None = None, log: Log | None = None) -> None:
        self.uri = resolve_tracking_uri(tracking_uri)
        self.lock_dir = claim_lock_dir(self.uri)
        self._log = log or _default_log
        self.client = _open_client(self.uri, self._log)
        self._warned_not_exclusive = False

    def experiment_id(self, name: str, create: bool = True) -> str | None:
        from mlflow.exceptions import MlflowException

        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        if not create:
            return None
        root = _artifact_root(self.uri)
        location = f"{root}/{name.replace('/', '__').replace('@', '_')}" if root else None
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except MlflowException:  # another process created it a moment ago
            experiment = self.client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id

    def finished_run(self, experiment: str, run_key: str):
        experiment_id = self.experiment_id(experiment, create=False)
        if experiment_id is None:
            return None
        runs = self.client.search_runs(
            [experiment_id],
            filter_string=f"tags.{TAG_RUN_KEY} = '{run_key}' and attributes.status = 'FINISHED'",
            max_results=1,
        )
        return runs[0] if runs else None

    def start(self, experiment: str, run_name: str, tags: dict[str, Any], params: dict[str, Any]) -> str:
        """Create a RUNNING run, tagged with this process as its owner."""
        from mlflow.entities import Param

        tags = tags | owner_tags()
        run = self.client.create_run(self.experiment_id(experiment), run_name=run_name,
                                     tags={k: str(v) for k, v in tags.items()})
        run_id = run.info.run_id
        self.client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])
        return run_id

    @contextmanager
    def claim(self, experiment: str, run_key: str, log: Log | None = None, wait: bool = True,
              label: str | None = None) -> Iterator[Claim]:
        """Hold `run_key` for the block, so that no other process runs it meanwhile.

        If another live process holds it: wait for it (then its FINISHED run is
        found and reused, or, if it failed, the key is run here), or with wait=False
        give up at once (Claim.held False). Each case is said in the log. Once held,
        RUNNING runs of the key whose owner process has provably ended (a `kill -9`)
        are ended as KILLED: nobody can finish them any more."""
        log = log or self._log
        label = label or f"{experiment} · run key {run_key}"
        holders: list[str] = []

        def announce(holder: str) -> None:
            holders.append(holder)
            if wait:  # said now: the wait may be long
                log(f"{label}: being run by another process ({holder}); waiting for it")

        if self.lock_dir is not None:
            guard = file_lock(key_lock_path(self.lock_dir, run_key), wait, announce)
        elif leases_are_exclusive(self.uri):
            guard = lease(self.client, run_key, wait, announce, lambda message: log(f"{label}: {message}"))
        else:
            yield self._unlocked_claim(experiment, run_key, log)
            return
        with guard as held:
            if held:
                self._end_orphans(experiment, run_key, log, label)
            claim = Claim(held=held, finished_run=self.finished_run(experiment, run_key))
            if holders:
                log(_after_busy(label, holders[0], claim))
            yield claim

    def _unlocked_claim(self, experiment: str, run_key: str, log: Log) -> Claim:
        if not self._warned_not_exclusive:
            self._warned_not_exclusive = True
            log(f"store {self.uri}: run keys cannot be claimed exclusively (MLflow's file store, and "
                f"${LOCK_DIR_VARIABLE} is not set): commands started at once may run one key twice")
        return Claim(held=True, finished_run=self.finished_run(experiment, run_key), exclusive=False)

    def _end_orphans(self, experiment: str, run_key: str, log: Log, label: str) -> None:
        experiment_id = self.experiment_id(experiment, create=False)
        if experiment_id is None:
            return
        running = self.client.search_runs(
            [experiment_id], filter_string=f"tags.{TAG_RUN_KEY} = '{run_key}' and attributes.status = 'RUNNING'")
        for run in running:
            state = owner_state(run.data.tags)
            if state in (OwnerState.GONE, OwnerState.REPLACED):
                owner = describe_owner(run.data.tags)
                log(f"{label}: run {run.info.run_id} was left RUNNING by {owner}, which has ended; marked KILLED")
                self.end(run.info.run_id, "KILLED", f"its process ({owner}) ended without closing it; "
                                                    "ended by the next claim of its run key")

    @contextmanager
    def heartbeat(self, run_id: str, every: float = HEARTBEAT_SECONDS) -> Iterator[None]:
        """While the block runs, a daemon thread sets the run's `heartbeat` tag (Unix
        seconds) every `every` seconds, so that `end_stale_runs` on another machine can
        tell a live run from an abandoned one."""
        with beating(lambda: self.client.set_tag(run_id, TAG_HEARTBEAT, str(int(time.time()))), every,
                     f"heartbeat of run {run_id}"):
            yield

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        if tags:
            self.client.log_batch(run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()])

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(metric_key(k), float(v), now, step) for k, v in metrics.items()]
        for start in range(0, len(batch), 1000):  # MLflow's batch limit
            self.client.log_batch(run_id, metrics=batch[start:start + 1000])

    def log_artifacts(self, run_id: str, files: dict[str, Any]) -> None:
        """files: artifact name -> DataFrame (Parquet), dict (JSON) or str (text)."""
        import json

        with tempfile.TemporaryDirectory() as tmp:
            for name, content in files.items():
                path = Path(tmp) / name
                if isinstance(content, pd.DataFrame):
                    content.to_parquet(path, index=False)
                elif isinstance(content, (dict, list)):
                    path.write_text(json.dumps(content, indent=2, sort_keys=True, default=str))
                else:
                    path.write_text(str(content))
            self.client.log_artifacts(run_id, tmp)

    def end(self, run_id: str, status: str = "FINISHED", reason: str | None = None) -> None:
        if reason is not None:
            self.client.set_tag(run_id, TAG_FAILURE, reason[:5000])
        self.client.set_terminated(run_id, status=status)

    def runs(self, experiment: str) -> pd.DataFrame:
        """Every run of an experiment: one row, with tags, params and metrics columns."""
        experiment_id = self.experiment_id(experiment, create=False)
        if experiment_id is None:
            return pd.DataFrame()
        rows = []
        for run in self.client.search_runs([experiment_id], max_results=50000):
            row = {"run_id": run.info.run_id, "status": run.info.status,
                   "start_time": run.info.start_time}
            row |= {f"tag.{k}": v for k, v in run.data.tags.items()}
            row |= {f"param.{k}": v for k, v in run.data.params.items()}
            row |= {metric_name(k): v for k, v in run.data.metrics.items()}
            rows.append(row)
        return pd.DataFrame(rows)


def _after_busy(label: str, holder: str, claim: Claim) -> str:
    """What became of a claim that found its key held by another process."""
    finished = f"run {claim.finished_run.info.run_id}" if claim.finished_run is not None else None
    if claim.held:
        return f"{label}: the other process " + (f"finished it ({finished})" if finished
                                                 else "did not finish it; running it here")
    return f"{label}: being run by another process ({holder}); not waiting: " + \
        (f"its finished {finished} stands" if finished else "skipped")


def _open_client(uri: str, log: Log):
    """An MlflowClient. A SQLite store is created and migrated by one process, under
    `<db>.lock`: MLflow migrates a database on its first open, and two processes
    migrating at once crash or leave it unusable. Once created, opening it needs no
    lock (and taking one would queue every process behind MLflow's slow start)."""
    from mlflow.tracking import MlflowClient  # imported here: mlflow is slow to import

    db = sqlite_path(uri)
    if db is None or _sqlite_store_ready(db):
        return MlflowClient(tracking_uri=uri)

    def on_busy(holder: str) -> None:
        log(f"store {db}: waiting for {holder} to create it")

    with file_lock(db.with_name(db.name + ".lock"), wait=True, on_busy=on_busy):
        if not _sqlite_store_ready(db):  # else the process we waited for created it
            return MlflowClient(tracking_uri=uri)
    return MlflowClient(tracking_uri=uri)


def _sqlite_store_ready(db: Path) -> bool:
    """Whether MLflow has finished creating the store: it writes the Default
    experiment (id 0) after its last migration step."""
    import sqlite3

    if not db.is_file() or db.stat().st_size == 0:
        return False
    try:
        with closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as connection:
            return connection.execute("SELECT 1 FROM experiments WHERE experiment_id = 0").fetchone() is not None
    except sqlite3.Error:  # no experiments table yet, or locked mid-migration
        return False


def end_stale_runs(store: ResultsStore, older_than_hours: float, dry_run: bool = False,
                   log: Log | None = None) -> list[str]:
    """End as KILLED, with the reason as a tag, the RUNNING runs whose process is gone:
    - owned by a process of this machine (same boot and pid space) that has ended, or
      whose pid now belongs to another process: at once;
    - owned elsewhere (or recorded before owners were): when their last sign of life
      (heartbeat, else start) is older than `older_than_hours`.
    A run whose owner is alive on this machine is never ended. Returns
    '<experiment> · <run name> (<why>)' for each run ended; `log` hears why each other
    RUNNING run was left alone."""
    now = time.time()
    ended = []
    for experiment in store.client.search_experiments():
        if is_claim_experiment(experiment.name):  # claims hold no runs
            continue
        for run in store.client.search_runs([experiment.experiment_id], filter_string="attributes.status = 'RUNNING'",
                                            max_results=50000):
            verdict = stale_verdict(run, now, older_than_hours)
            line = f"{experiment.name} · {run.info.run_name} ({verdict.summary})"
            if not verdict.stale:
                if log is not None:
                    log(f"left alone: {line}")
                continue
            ended.append(line)
            if not dry_run:
                store.end(run.info.run_id, "KILLED", f"ended by `llm4rec store end-stale`: {verdict.reason}")
    return ended


def stale_verdict(run, now: float, older_than_hours: float) -> Verdict:
    """Whether a RUNNING run is abandoned, and why (see end_stale_runs)."""
    tags = run.data.tags
    owner = describe_owner(tags)
    state = owner_state(tags)
    if state is OwnerState.ALIVE:
        return Verdict(False, f"live: its process, {owner}, is running")
    if state is OwnerState.GONE:
        return Verdict(True, f"its process, {owner}, has ended", f"its process ({owner}) ended without closing it")
    if state is OwnerState.REPLACED:
        return Verdict(True, f"its process, {owner}, has ended and the pid was reused",
                       f"its process ({owner}) ended without closing it (the pid now belongs to another process)")
    if TAG_HEARTBEAT in tags and tags[TAG_HEARTBEAT].isdigit():
        hours = (now - int(tags[TAG_HEARTBEAT])) / 3600
        summary = f"last heartbeat {hours:.1f} h ago, {owner}"
        reason = f"no heartbeat for {hours:.1f} h from its process ({owner})"
    else:
        hours = (now * 1000 - (run.info.start_time or 0)) / 3.6e6
        summary = f"started {hours:.1f} h ago"
        reason = f"still RUNNING {hours:.1f} h after its start; its process ended without closing it"
    return Verdict(hours > older_than_hours, summary, reason)
