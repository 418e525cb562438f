"""The leaderboard's snapshot: the MLflow results store turned into a few Parquet files.

The app reads only the snapshot (under Streamlit caching), never MLflow per widget.
Building it costs one paged `search_runs` per experiment plus one artifact read per
ranked run (`per_user_metrics.parquet`, read straight from disk for local stores, in a
thread pool otherwise), so it is linear in the number of runs.

Files in the snapshot folder:
  runs.parquet      one row per run, any status: identity columns, `state`,
                    `metric:<name>` (NDCG@10, not NDCG_at_10), `param:<name>`, `tag:<name>`
  per_user.parquet  `run_id`, `user` and the per-user metric columns of every ranked run
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import unquote, urlparse

import pandas as pd

SNAPSHOT_ENV = "LLM4REC_LEADERBOARD_SNAPSHOT"
DEFAULT_SNAPSHOT = "leaderboard-snapshot"
PER_USER_ARTIFACT = "per_user_metrics.parquet"

# Tags that become plain columns (the run's identity); the rest stay as `tag:<name>`.
IDENTITY_TAGS = {
    "task": "task", "task_version": "task_version", "family": "family", "dataset": "dataset",
    "submission": "submission", "submission_version": "version", "paradigm": "paradigm",
    "seed": "seed", "main_score": "main_score", "failure_reason": "failure_reason",
}
STATES = {"FINISHED": "finished", "FAILED": "failed", "RUNNING": "running",
          "SCHEDULED": "running", "KILLED": "killed"}


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


def metric_name(key: str) -> str:
    """MLflow key back to the metric's name: NDCG_at_10 -> NDCG@10."""
    return key.replace("_at_", "@")


# ---------------------------------------------------------------- reading MLflow


def _search_all_runs(client, experiment_id: str) -> list:
    """Every run of one experiment: one paged search (MLflow's page limit is 50,000)."""
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], max_results=50000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _experiments(client) -> list:
    experiments, token = [], None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        experiments.extend(page)
        token = page.token
        if not token:
            return experiments


def run_row(run, experiment: str) -> dict:
    info, data = run.info, run.data
    row = {"run_id": info.run_id, "experiment": experiment, "status": info.status,
           "start_time": info.start_time, "end_time": info.end_time,
           "run_name": info.run_name, "artifact_uri": info.artifact_uri}
    for key, value in data.tags.items():
        if key in IDENTITY_TAGS:
            row[IDENTITY_TAGS[key]] = value
        elif not key.startswith("mlflow."):
            row[f"tag:{key}"] = value
    row |= {f"param:{k}": v for k, v in data.params.items()}
    row |= {f"metric:{metric_name(k)}": v for k, v in data.metrics.items()}
    return row


def read_runs(client, log: Callable[[str], None] = lambda _: None) -> pd.DataFrame:
    """One row per run of every active experiment."""
    rows = []
    for experiment in _experiments(client):
        if experiment.name == "Default" and experiment.experiment_id == "0":
            continue  # MLflow's own empty experiment
        runs = _search_all_runs(client, experiment.experiment_id)
        log(f"{experiment.name}: {len(runs):,} runs")
        rows.extend(run_row(run, experiment.name) for run in runs)
    return normalize_runs(pd.DataFrame(rows))


# ---------------------------------------------------------------- the run table


def _is_partial(runs: pd.DataFrame) -> pd.Series:
    """`partial` tag "true", or a `limit_users` param (a `--limit-users` run)."""
    tag = runs.get("tag:partial", pd.Series(None, index=runs.index)).astype("string").str.lower()
    limit = runs.get("param:limit_users", pd.Series(None, index=runs.index)).astype("string")
    limited = limit.notna() & ~limit.str.lower().isin(["", "none", "0", "false"])
    return (tag == "true").fillna(False) | limited.fillna(False)


def _config(runs: pd.DataFrame) -> pd.Series:
    """The run's hyperparameters (`param:hp.*`) as one sorted JSON text: runs of the
    same submission version with different hyperparameters (a budget study) are
    different leaderboard rows."""
    hp = sorted(c for c in runs.columns if c.startswith("param:hp."))
    if not hp:
        return pd.Series("{}", index=runs.index)
    values = runs[hp].astype("string")
    names = [c[len("param:hp."):] for c in hp]
    return pd.Series([json.dumps({k: v for k, v in zip(names, row) if not pd.isna(v)}, sort_keys=True)
                      for row in values.itertuples(index=False)], index=runs.index)


def normalize_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Fill identity columns (falling back on the experiment name), derive `state`
    (finished, partial, failed, running, killed) and `config`."""
    if runs.empty:
        columns = ["run_id", "experiment", "status", "start_time", "end_time", "task", "task_version", "family",
                   "dataset", "submission", "version", "paradigm", "seed", "main_score", "failure_reason",
                   "run_name", "artifact_uri", "partial", "state", "config"]
        return pd.DataFrame({c: pd.Series(dtype="float64" if c in ("seed", "start_time", "end_time") else
                                          bool if c == "partial" else object) for c in columns})
    for column in ("task", "task_version", "family", "dataset", "submission", "version", "paradigm",
                   "seed", "main_score", "failure_reason", "run_name", "artifact_uri"):
        if column not in runs:
            runs[column] = None
    from_name = runs["experiment"].astype("string").str.rpartition("@v")
    runs["task"] = runs["task"].fillna(from_name[0].where(from_name[1] != "", runs["experiment"]))
    runs["task_version"] = runs["task_version"].fillna(from_name[2].where(from_name[1] != "", None))
    runs["family"] = runs["family"].fillna(runs["task"].astype("string").str.partition("/")[0])
    runs["submission"] = runs["submission"].fillna(runs["run_name"]).fillna("?")
    runs["version"] = runs["version"].fillna("?")
    runs["paradigm"] = runs["paradigm"].fillna("unknown")
    runs["seed"] = pd.to_numeric(runs["seed"], errors="coerce")
    runs["partial"] = _is_partial(runs)
    state = runs["status"].map(STATES).fillna("unknown")
    runs["state"] = state.where(~(runs["partial"] & (state == "finished")), "partial")
    runs["config"] = _config(runs)
    return runs.reset_index(drop=True)


def ranked_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that count: finished and complete; for each (experiment, submission,
    version, config, seed) the latest such run."""
    done = runs[runs["state"] == "finished"]
    keys = ["experiment", "submission", "version", "config", "seed"]
    return done.sort_values("start_time").drop_duplicates(keys, keep="last").reset_index(drop=True)


# ---------------------------------------------------------------- artifacts


def local_artifact_path(artifact_uri: str | None, name: str) -> Path | None:
    if not artifact_uri:
        return None
    parsed = urlparse(artifact_uri)
    if parsed.scheme in ("file", ""):
        return Path(unquote(parsed.path)) / name
    return None


def _fetch_artifact(artifact_uri: str, name: str, tracking_uri: str | None) -> Path | None:
    """A local path to one artifact: the file itself for local stores, else a download."""
    local = local_artifact_path(artifact_uri, name)
    if local is not None:
        return local if local.is_file() else None
    import mlflow.artifacts

    try:
        target = tempfile.mkdtemp(prefix="llm4rec-snapshot-")
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=f"{artifact_uri}/{name}", dst_path=target,
                                                        tracking_uri=tracking_uri))
    except Exception:  # a run without that artifact (older runs, failures)
        return None


def _read_per_user(run_id: str, artifact_uri: str, tracking_uri: str | None):
    """One run's per-user table (Arrow), with its run id in front."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = _fetch_artifact(artifact_uri, PER_USER_ARTIFACT, tracking_uri)
    if path is None:
        return None
    table = pq.ParquetFile(path).read()  # ~10x less overhead per small file than pandas.read_parquet
    return table.add_column(0, "run_id", pa.array([run_id] * table.num_rows, pa.string()))


def _read_json(artifact_uri: str, name: str, tracking_uri: str | None) -> str | None:
    path = _fetch_artifact(artifact_uri, name, tracking_uri)
    return path.read_text() if path is not None else None


def _parallel(function, items: Iterable[tuple], workers: int = 8) -> list:
    """Downloads from a server overlap in a thread pool; local reads are cheaper serially
    (Python-bound, the GIL)."""
    items = list(items)
    if len(items) < 16:
        return [function(*item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda item: function(*item), items))


def _all_local(artifact_uris) -> bool:
    return all(local_artifact_path(uri, "") is not None for uri in artifact_uris)


def read_per_user(ranked: pd.DataFrame, tracking_uri: str | None) -> pd.DataFrame:
    """The per-user metrics of the given runs, one table (run_id categorical)."""
    import pyarrow as pa

    items = [(r, a, tracking_uri) for r, a in zip(ranked["run_id"], ranked["artifact_uri"])]
    read = [_read_per_user(*item) for item in items] if _all_local(ranked["artifact_uri"]) else \
        _parallel(_read_per_user, items)
    tables = [t for t in read if t is not None and t.num_rows]
    if not tables:
        return pd.DataFrame({"run_id": pd.Series(dtype="category"), "user": pd.Series(dtype="int64")})
    table = pa.concat_tables(tables, promote_options="permissive")  # tasks log different columns
    table = table.set_column(0, "run_id", table.column("run_id").dictionary_encode())
    return table.to_pandas()  # the dictionary column becomes a categorical: a few ids, many users


def _newest_artifact(runs: pd.DataFrame, keys: list[str], name: str, tracking_uri: str | None,
                     tries: int = 3) -> pd.DataFrame:
    """For each `keys` group, the JSON artifact `name` of its newest run that has one
    (runs logged outside the harness may lack it: up to `tries` runs are asked)."""
    logged = runs[runs["state"].isin(["finished", "partial"])].sort_values("start_time", ascending=False)
    groups = [(key, list(group["artifact_uri"][:tries])) for key, group in logged.groupby(keys, sort=False)]

    def first(uris: list[str]) -> str | None:
        return next((text for uri in uris if (text := _read_json(uri, name, tracking_uri)) is not None), None)

    texts = _parallel(first, ((uris,) for _, uris in groups))
    rows = [dict(zip(keys, key if isinstance(key, tuple) else (key,))) | {"json": text}
            for (key, _), text in zip(groups, texts) if text is not None]
    return pd.DataFrame(rows, columns=keys + ["json"])


def read_cards(runs: pd.DataFrame, tracking_uri: str | None) -> pd.DataFrame:
    """The card (submission.json) of each (submission, version)."""
    cards = _newest_artifact(runs, ["submission", "version"], "submission.json", tracking_uri)
    return cards.rename(columns={"json": "card"})


def read_task_specs(runs: pd.DataFrame, tracking_uri: str | None) -> pd.DataFrame:
    """The task spec (task.json) of each experiment."""
    return _newest_artifact(runs, ["experiment"], "task.json", tracking_uri).rename(columns={"json": "spec"})


# ---------------------------------------------------------------- build and load


def build_snapshot(tracking_uri: str | None = None, out: str | Path | None = None,
                   log: Callable[[str], None] = lambda _: None) -> Path:
    """Read the MLflow store at `tracking_uri` (default: the harness's) into a snapshot
    folder (default: $LLM4REC_LEADERBOARD_SNAPSHOT or ./leaderboard-snapshot)."""
    from benchmark.tracking.store import ResultsStore

    started = time.perf_counter()
    store = ResultsStore(tracking_uri)
    runs = read_runs(store.client, log)
    ranked = ranked_runs(runs)
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


def metric_columns(runs: pd.DataFrame) -> list[str]:
    """The metric names present in a run table (without the `metric:` prefix)."""
    return [c[len("metric:"):] for c in runs.columns if c.startswith("metric:")]
