"""The leaderboard's snapshot: the MLflow results store turned into a few Parquet files.

The app reads only the snapshot (under Streamlit caching), never MLflow per widget.
The store is read through the suite's one results reader (benchmark.tracking.results):
one paged `search_runs` per experiment plus one artifact read per counted run
(`per_user_metrics.parquet`, read straight from disk for local stores, in a thread pool
otherwise), so building is linear in the number of runs.

Files in the snapshot folder:
  runs.parquet      the runs table, one row per run of any status (see
                    benchmark.tracking.results): identity columns, `state`, `config`,
                    `metric:<name>` (NDCG@10, not NDCG_at_10), `param:<name>`, `tag:<name>`
  per_user.parquet  `run_id`, `user` and the per-user metric columns of every counted run
  cards.parquet     submission, version, card (the submission.json artifact, as JSON text)
  tasks.parquet     experiment, spec (the task.json artifact, as JSON text)
  meta.json         tracking URI, build time, counts; written last, its mtime keys caches
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from benchmark.tracking.results import counted_runs, read_json_artifacts, read_per_user, read_runs

SNAPSHOT_ENV = "LLM4REC_LEADERBOARD_SNAPSHOT"
DEFAULT_SNAPSHOT = "leaderboard-snapshot"


@dataclass
class Snapshot:
    runs: pd.DataFrame
    per_user: pd.DataFrame
    cards: pd.DataFrame
    tasks: pd.DataFrame
    meta: dict = field(default_factory=dict)


def default_snapshot_dir() -> Path:
    """$LLM4REC_LEADERBOARD_SNAPSHOT, else ./leaderboard-snapshot."""
    return Path(os.environ.get(SNAPSHOT_ENV) or DEFAULT_SNAPSHOT)


def snapshot_exists(folder: str | Path) -> bool:
    return (Path(folder) / "meta.json").is_file()


def snapshot_stamp(folder: str | Path) -> int:
    """Changes whenever the snapshot is rebuilt (meta.json is written last)."""
    return (Path(folder) / "meta.json").stat().st_mtime_ns


def read_cards(runs: pd.DataFrame, tracking_uri: str | None) -> pd.DataFrame:
    """The card (submission.json) of each (submission, version)."""
    cards = read_json_artifacts(runs, ["submission", "version"], "submission.json", tracking_uri)
    return cards.rename(columns={"json": "card"})


def read_task_specs(runs: pd.DataFrame, tracking_uri: str | None) -> pd.DataFrame:
    """The task spec (task.json) of each experiment."""
    return read_json_artifacts(runs, ["experiment"], "task.json", tracking_uri).rename(columns={"json": "spec"})


# ---------------------------------------------------------------- build and load


def build_snapshot(tracking_uri: str | None = None, out: str | Path | None = None,
                   log: Callable[[str], None] = lambda _: None) -> Path:
    """Read the MLflow store at `tracking_uri` (default: the harness's) into a snapshot
    folder (default: $LLM4REC_LEADERBOARD_SNAPSHOT or ./leaderboard-snapshot)."""
    from benchmark.tracking.store import ResultsStore

    started = time.perf_counter()
    store = ResultsStore(tracking_uri)
    runs = read_runs(store, log=log)
    ranked = counted_runs(runs)
    per_user = read_per_user(ranked, store.uri)
    cards = read_cards(runs, store.uri)
    specs = read_task_specs(runs, store.uri)
    meta = {"tracking_uri": store.uri, "built_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "n_runs": len(runs), "n_ranked_runs": len(ranked), "n_experiments": int(runs["experiment"].nunique()),
            "n_per_user_rows": len(per_user), "build_seconds": round(time.perf_counter() - started, 3)}
    folder = write_snapshot(Snapshot(runs, per_user, cards, specs, meta), out)
    log(f"snapshot: {len(runs):,} runs ({len(ranked):,} ranked) from {store.uri} -> {folder} "
        f"in {meta['build_seconds']:.1f} s")
    return folder


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Tag and param columns are text; mixed object columns would not round-trip."""
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].astype("string")
    return frame


def write_snapshot(snapshot: Snapshot, out: str | Path | None = None) -> Path:
    """Write into a fresh folder beside the target, then swap it in, so the app never
    reads a half-written snapshot."""
    folder = Path(out) if out is not None else default_snapshot_dir()
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    _parquet_safe(snapshot.runs).to_parquet(staging / "runs.parquet", index=False)
    snapshot.per_user.to_parquet(staging / "per_user.parquet", index=False)
    _parquet_safe(snapshot.cards).to_parquet(staging / "cards.parquet", index=False)
    _parquet_safe(snapshot.tasks).to_parquet(staging / "tasks.parquet", index=False)
    (staging / "meta.json").write_text(json.dumps(snapshot.meta, indent=2, default=str))
    if folder.exists():
        old = folder.with_name(f".{folder.name}-old-{os.getpid()}-{time.time_ns()}")
        folder.rename(old)
        staging.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(folder)
    os.utime(folder / "meta.json")  # a fresh stamp even within one mtime tick
    return folder


def load_snapshot(folder: str | Path | None = None) -> Snapshot:
    """Read a snapshot folder (see the module docstring)."""
    folder = Path(folder) if folder is not None else default_snapshot_dir()
    if not snapshot_exists(folder):
        raise FileNotFoundError(f"{folder}: no leaderboard snapshot (build one with `llm4rec leaderboard snapshot`)")
    runs = pd.read_parquet(folder / "runs.parquet")
    for column in ("seed", "start_time", "end_time"):
        runs[column] = pd.to_numeric(runs[column], errors="coerce")
    runs["partial"] = runs["partial"].astype(bool)
    return Snapshot(runs=runs, per_user=pd.read_parquet(folder / "per_user.parquet"),
                    cards=pd.read_parquet(folder / "cards.parquet"), tasks=pd.read_parquet(folder / "tasks.parquet"),
                    meta=json.loads((folder / "meta.json").read_text()))

