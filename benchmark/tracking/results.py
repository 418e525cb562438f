"""The one reader of the results store: the runs table, the rule for which runs count,
per-user metrics and artifacts, and the results table of `llm4rec results`. The
leaderboard's snapshot and the paradigm study read the store through here too.

The runs table has one row per run: identity columns (`experiment`, `task`,
`task_version`, `family`, `dataset`, `submission`, `version`, `paradigm`, `seed`,
`main_score`, `failure_reason`), `run_id`, `status`, `state` (finished, partial,
failed, running, killed), `partial`, `config` (the run's `hp.*` hyperparameters as
sorted JSON), `metric:<name>` (NDCG@10, not MLflow's NDCG_at_10), `param:<name>` and
`tag:<name>` (among them `tag:candidate_set_hash`).

Which runs count (`counted_runs`): finished and complete (not `--limit-users`), of the
newest code of each (experiment, submission, version, config) (its `submission_digest`:
runs of code changed since never mix with the new code's), and for each seed the latest
such run. A row of a
results table is (submission, version, config): runs of one submission version with
different hyperparameters (a budget study) are different rows, labelled by `variant`.
"""
from __future__ import annotations

import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd

from benchmark.eval.registry import display_digits, higher_is_better
from benchmark.tracking.leases import is_claim_experiment

if TYPE_CHECKING:
    from benchmark.tasks.schema import TaskSpec
    from benchmark.tracking.store import ResultsStore

PER_USER_ARTIFACT = "per_user_metrics.parquet"
# Tags that become plain columns (the run's identity); the rest stay as `tag:<name>`.
IDENTITY_TAGS = {
    "task": "task", "task_version": "task_version", "family": "family", "dataset": "dataset",
    "submission": "submission", "submission_version": "version", "paradigm": "paradigm",
    "seed": "seed", "main_score": "main_score", "failure_reason": "failure_reason",
}
STATES = {"FINISHED": "finished", "FAILED": "failed", "RUNNING": "running",
          "SCHEDULED": "running", "KILLED": "killed"}
ROW_KEYS = ["submission", "version", "config"]  # one row of a results table
COUNTED_KEYS = ["experiment", *ROW_KEYS, "seed"]  # one counted run
# Hashes of what a run was evaluated on where the task draws it per seed: two runs are
# paired in a significance test only when these agree.
DRAW_TAGS = ("tag:candidate_set_hash", "tag:test_rows_hash")
CANDIDATE_HASH = "tag:candidate_set_hash"
DIGEST_TAG = "tag:submission_digest"  # the hash of the submission's files (its code)
REDRAW_NOTE = "± std over seeds (includes candidate re-draws)"


# ---------------------------------------------------------------- the runs table


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
    """Every experiment of the store but the run-key claims (benchmark.tracking.leases)."""
    experiments, token = [], None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        experiments.extend(e for e in page if not is_claim_experiment(e.name))
        token = page.token
        if not token:
            return experiments


def run_row(run, experiment: str) -> dict:
    """One MLflow run as a row of the runs table (before `normalize_runs`)."""
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
    row |= {f"metric:{k.replace('_at_', '@')}": v for k, v in data.metrics.items()}
    return row


def read_runs(store: "ResultsStore", experiment: str | None = None,
              log: Callable[[str], None] = lambda _: None) -> pd.DataFrame:
    """The runs table of one experiment (a task id and version), or of every experiment."""
    client = store.client
    if experiment is not None:
        found = client.get_experiment_by_name(experiment)
        experiments = [found] if found is not None else []
    else:  # MLflow's own empty "Default" experiment is left out
        experiments = [e for e in _experiments(client) if not (e.name == "Default" and e.experiment_id == "0")]
    rows = []
    for each in experiments:
        runs = _search_all_runs(client, each.experiment_id)
        log(f"{each.name}: {len(runs):,} runs")
        rows.extend(run_row(run, each.name) for run in runs)
    return normalize_runs(pd.DataFrame(rows))


def is_partial(runs: pd.DataFrame) -> pd.Series:
    """`partial` tag "true", or a `limit_users` param (a `--limit-users` run)."""
    tag = runs.get("tag:partial", pd.Series(None, index=runs.index)).astype("string").str.lower()
    limit = runs.get("param:limit_users", pd.Series(None, index=runs.index)).astype("string")
    limited = limit.notna() & ~limit.str.lower().isin(["", "none", "0", "false"])
    return (tag == "true").fillna(False) | limited.fillna(False)


def hyperparameter_config(runs: pd.DataFrame) -> pd.Series:
    """The run's hyperparameters (`param:hp.*`) as one sorted JSON text."""
    hp = sorted(c for c in runs.columns if c.startswith("param:hp."))
    if not hp:
        return pd.Series("{}", index=runs.index)
    values = runs[hp].astype("string")
    names = [c[len("param:hp."):] for c in hp]
    return pd.Series([json.dumps({k: v for k, v in zip(names, row) if not pd.isna(v)}, sort_keys=True)
                      for row in values.itertuples(index=False)], index=runs.index)


_FILLED = ["task", "task_version", "family", "dataset", "submission", "version", "paradigm", "seed", "main_score",
           "failure_reason", "run_name", "artifact_uri"]  # None where a run lacks the tag
_COLUMNS = ["run_id", "experiment", "status", "start_time", "end_time", *_FILLED, "partial", "state", "config"]


def normalize_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Fill identity columns (falling back on the experiment name), derive `state`
    (finished, partial, failed, running, killed), `partial` and `config`."""
    if runs.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c in ("seed", "start_time", "end_time") else
                                          bool if c == "partial" else object) for c in _COLUMNS})
    for column in _FILLED:
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
    runs["partial"] = is_partial(runs)
    state = runs["status"].map(STATES).fillna("unknown")
    runs["state"] = state.where(~(runs["partial"] & (state == "finished")), "partial")
    runs["config"] = hyperparameter_config(runs)
    return runs.reset_index(drop=True)


def counted_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that count: finished and complete; of each (experiment, submission,
    version, config), only those of its newest code (the digest of its latest run);
    for each seed the latest such run."""
    done = runs[runs["state"] == "finished"].sort_values("start_time")
    if DIGEST_TAG in done:
        digest = done[DIGEST_TAG].fillna("")  # runs recorded before digests: one code
        newest = digest.groupby([done[k] for k in COUNTED_KEYS[:-1]], dropna=False).transform("last")
        done = done[digest == newest]
    return done.drop_duplicates(COUNTED_KEYS, keep="last").reset_index(drop=True)


def metric_columns(runs: pd.DataFrame) -> list[str]:
    """The metric names present in a runs table (without the `metric:` prefix)."""
    return [c[len("metric:"):] for c in runs.columns if c.startswith("metric:")]


def evaluation_draw(runs: pd.DataFrame) -> pd.Series:
    """Per run, the hashes of what it was evaluated on where the task draws that per
    seed (candidate sets, sampled test rows), joined; NaN where it logged none."""
    tags = [runs[c].astype("string") for c in DRAW_TAGS if c in runs]
    if not tags:
        return pd.Series(pd.NA, index=runs.index, dtype="string")
    joined = tags[0].fillna("")
    for tag in tags[1:]:
        joined = joined + "/" + tag.fillna("")
    return joined.mask(joined.str.strip("/") == "")


def candidate_redraws(runs: pd.DataFrame) -> bool:
    """Whether the runs were evaluated on candidate sets drawn anew per seed (more than
    one `candidate_set_hash`): then a std over seeds mixes the re-draws with the model's
    own randomness (a deterministic model shows a spread too)."""
    return CANDIDATE_HASH in runs and runs[CANDIDATE_HASH].dropna().nunique() > 1


def variant_labels(table: pd.DataFrame) -> pd.Series:
    """For submission versions with several hyperparameter sets (`config`), the
    hyperparameters that differ ("train_samples=1000"); empty otherwise."""
    labels = pd.Series("", index=table.index, dtype=object)
    shared = table[table.duplicated(["submission", "version"], keep=False)]
    for _, group in shared.groupby(["submission", "version"], sort=False):
        configs = [json.loads(c) for c in group["config"]]
        keys = sorted({k for c in configs for k in c if len({str(o.get(k)) for o in configs}) > 1})
        for index, config in zip(group.index, configs):
            labels[index] = ", ".join(f"{k}={config.get(k, '—')}" for k in keys)
    return labels


# ---------------------------------------------------------------- artifacts


def local_artifact_path(artifact_uri: str | None, name: str) -> Path | None:
    if not artifact_uri:
        return None
    parsed = urlparse(artifact_uri)
    if parsed.scheme in ("file", ""):
        return Path(unquote(parsed.path)) / name
    return None


def fetch_artifact(artifact_uri: str, name: str, tracking_uri: str | None) -> Path | None:
    """A local path to one artifact: the file itself for local stores, else a download;
    None when the run has no such artifact."""
    local = local_artifact_path(artifact_uri, name)
    if local is not None:
        return local if local.is_file() else None
    import mlflow.artifacts

    try:
        target = tempfile.mkdtemp(prefix="llm4rec-artifact-")
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=f"{artifact_uri}/{name}", dst_path=target,
                                                        tracking_uri=tracking_uri))
    except Exception:  # a run without that artifact (older runs, failures)
        return None


def _parallel(function, items: Iterable[tuple], workers: int = 8) -> list:
    """Downloads from a server overlap in a thread pool; local reads are cheaper serially
    (Python-bound, the GIL)."""
    items = list(items)
    if len(items) < 16:
        return [function(*item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda item: function(*item), items))


def _read_per_user(run_id: str, artifact_uri: str, tracking_uri: str | None):
    """One run's per-user table (Arrow), with its run id in front."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = fetch_artifact(artifact_uri, PER_USER_ARTIFACT, tracking_uri)
    if path is None:
        return None
    table = pq.ParquetFile(path).read()  # ~10x less overhead per small file than pandas.read_parquet
    return table.add_column(0, "run_id", pa.array([run_id] * table.num_rows, pa.string()))


def read_per_user(runs: pd.DataFrame, tracking_uri: str | None) -> pd.DataFrame:
    """The per-user metrics (per_user_metrics.parquet) of the given runs (`run_id`,
    `artifact_uri`), one table: `run_id` (categorical), `user`, the metric columns."""
    import pyarrow as pa

    items = [(r, a, tracking_uri) for r, a in zip(runs["run_id"], runs["artifact_uri"])]
    local = all(local_artifact_path(uri, "") is not None for uri in runs["artifact_uri"])
    read = [_read_per_user(*item) for item in items] if local else _parallel(_read_per_user, items)
    tables = [t for t in read if t is not None and t.num_rows]
    if not tables:
        return pd.DataFrame({"run_id": pd.Series(dtype="category"), "user": pd.Series(dtype="int64")})
    table = pa.concat_tables(tables, promote_options="permissive")  # tasks log different columns
    table = table.set_column(0, "run_id", table.column("run_id").dictionary_encode())
    return table.to_pandas()  # the dictionary column becomes a categorical: a few ids, many users


def read_json_artifacts(runs: pd.DataFrame, keys: list[str], name: str, tracking_uri: str | None,
                        tries: int = 3) -> pd.DataFrame:
    """For each `keys` group of finished or partial runs, the JSON artifact `name` of
    its newest run that has one (runs logged outside the harness may lack it: up to
    `tries` runs are asked). Columns: the keys, `json` (the text)."""
    logged = runs[runs["state"].isin(["finished", "partial"])].sort_values("start_time", ascending=False)
    groups = [(key, list(group["artifact_uri"][:tries])) for key, group in logged.groupby(keys, sort=False)]

    def first(uris: list[str]) -> str | None:
        for uri in uris:
            path = fetch_artifact(uri, name, tracking_uri)
            if path is not None:
                return path.read_text()
        return None

    texts = _parallel(first, ((uris,) for _, uris in groups))
    rows = [dict(zip(keys, key if isinstance(key, tuple) else (key,))) | {"json": text}
            for (key, _), text in zip(groups, texts) if text is not None]
    return pd.DataFrame(rows, columns=keys + ["json"])


# ---------------------------------------------------------------- `llm4rec results`

IDENTITY = ["submission", "version", "paradigm"]


def finished_runs(store: "ResultsStore", task: "TaskSpec") -> pd.DataFrame:
    """The counted runs of one task (see `counted_runs`), metric columns by their names
    (NDCG@10, not metric:NDCG@10)."""
    runs = counted_runs(read_runs(store, task.experiment_name))
    return runs.rename(columns=lambda c: c.removeprefix("metric:"))


def trust_metrics(runs: pd.DataFrame) -> list[str]:
    """The trust passes' metrics present in the runs or a summary (`trust.PosGap`, ...;
    not their ` std` columns), sorted."""
    return sorted(c for c in runs.columns if c.startswith("trust.") and not c.endswith(" std"))


def seed_spread(values, means: pd.DataFrame) -> pd.DataFrame:
    """Sample std over seeds of grouped metric `values`: 0 for a single seed, none where
    a group never logged the metric (`means` is NaN there)."""
    return values.std(ddof=1).fillna(0.0).mask(means.isna())


def summarize(runs: pd.DataFrame, task: "TaskSpec") -> pd.DataFrame:
    """One row per (submission, version, config): `<metric>` (mean), `<metric> std`
    (`seed_spread`), `seeds`, `variant`, `std_includes_candidate_redraws` (see
    `candidate_redraws`) and `rank` by the main score; the task's metrics, then the
    trust metrics that any run logged."""
    names = list(task.metrics) + trust_metrics(runs)
    columns = (IDENTITY + ["rank", "seeds", "variant", "std_includes_candidate_redraws"]
               + [c for m in names for c in (m, f"{m} std")])
    if runs.empty:
        return pd.DataFrame(columns=columns)
    runs = runs if "config" in runs else runs.assign(config="{}")
    metrics = [m for m in names if m in runs]
    grouped = runs.groupby(ROW_KEYS, sort=False)
    table = grouped[metrics].mean()
    spread = seed_spread(grouped[metrics], table).add_suffix(" std")
    table = table.join(spread).assign(seeds=grouped.size(), paradigm=grouped["paradigm"].last()).reset_index()
    table["variant"] = variant_labels(table)
    table["std_includes_candidate_redraws"] = candidate_redraws(runs)
    ascending = not higher_is_better(task.main_score)
    table = table.sort_values(task.main_score, ascending=ascending, kind="stable").reset_index(drop=True)
    table["rank"] = table[task.main_score].rank(ascending=ascending, method="min").astype(int)
    return table[[c for c in columns if c in table]]


def format_mean_std(mean: float, std: float, digits: int | None = None, metric: str | None = None) -> str:
    """"0.1234 ± 0.0056", with the metric's digits (registry) unless `digits` is given."""
    if digits is None:
        digits = display_digits(metric) if metric else 4
    return "—" if np.isnan(mean) else f"{mean:.{digits}f} ± {std:.{digits}f}"
