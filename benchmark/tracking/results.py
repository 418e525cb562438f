"""Results tables: mean ± std over seeds, one row per submission, ranked by the main
score. Only FINISHED, complete runs count (not partial `--limit-users` runs); a rerun's
latest finished run stands for its seed."""
from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.tasks.schema import TaskSpec
from benchmark.tracking.store import ResultsStore

IDENTITY = ["submission", "version", "paradigm"]


def finished_runs(store: ResultsStore, task: TaskSpec) -> pd.DataFrame:
    """The latest FINISHED run per (submission, version, seed), with identity columns."""
    runs = store.runs(task.experiment_name)
    if runs.empty:
        return runs
    complete = runs["tag.partial"].ne("true") if "tag.partial" in runs else True
    runs = runs[(runs["status"] == "FINISHED") & complete].rename(columns={
        "tag.submission": "submission", "tag.submission_version": "version",
        "tag.paradigm": "paradigm", "tag.seed": "seed"})
    runs = runs.sort_values("start_time").drop_duplicates(IDENTITY + ["seed"], keep="last")
    return runs.reset_index(drop=True)


def trust_metrics(runs: pd.DataFrame) -> list[str]:
    """The trust passes' metrics present in the runs or a summary (`trust.PosGap`, ...;
    not their ` std` columns), sorted."""
    return sorted(c for c in runs.columns if c.startswith("trust.") and not c.endswith(" std"))


def seed_spread(values, means: pd.DataFrame) -> pd.DataFrame:
    """Sample std over seeds of grouped metric `values`: 0 for a single seed, none where
    a group never logged the metric (`means` is NaN there)."""
    return values.std(ddof=1).fillna(0.0).mask(means.isna())


def summarize(runs: pd.DataFrame, task: TaskSpec) -> pd.DataFrame:
    """One row per submission: `<metric>` (mean), `<metric> std` (`seed_spread`),
    `seeds`, and `rank` by the main score; the task's metrics, then the trust metrics
    that any run logged."""
    names = list(task.metrics) + trust_metrics(runs)
    columns = IDENTITY + ["rank", "seeds"] + [c for m in names for c in (m, f"{m} std")]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    metrics = [m for m in names if m in runs]
    grouped = runs.groupby(IDENTITY, sort=False)
    table = grouped[metrics].mean()
    spread = seed_spread(grouped[metrics], table).add_suffix(" std")
    table = table.join(spread).assign(seeds=grouped.size())
    table = table.sort_values(task.main_score, ascending=False).reset_index()
    table["rank"] = table[task.main_score].rank(ascending=False, method="min").astype(int)
    return table[[c for c in columns if c in table]]


def format_mean_std(mean: float, std: float, digits: int = 4) -> str:
    return "—" if np.isnan(mean) else f"{mean:.{digits}f} ± {std:.{digits}f}"
