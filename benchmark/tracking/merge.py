"""Merging one results store into another: runs made on another machine (a GPU box, a
cluster node) join the main store with their params, tags, metrics, artifacts, status
and times, so `results`, the study and the leaderboard see them as their own.

Idempotent: a copied run carries the tag `merged_from` (its id in the source store), and
a source run already copied, or whose run key already has a FINISHED run in the
destination, is skipped. Nothing in the destination is changed or removed.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import Callable

from benchmark.tracking.leases import is_claim_experiment
from benchmark.tracking.store import TAG_RUN_KEY, ResultsStore, sqlite_path

TAG_MERGED_FROM = "merged_from"
# Runs still RUNNING in the source are copied only when asked: they may be live.
MERGED_STATUSES = ("FINISHED", "FAILED", "KILLED")


@dataclass
class MergeReport:
    copied: list[str] = field(default_factory=list)   # "<experiment> · <run name>"
    skipped: list[str] = field(default_factory=list)  # the same, with the reason


def merge_stores(source_uri: str, dest_uri: str | None = None,
                 log: Callable[[str], None] = print) -> MergeReport:
    """Copy every finished, failed or killed run of `source_uri` into `dest_uri`."""
    from mlflow.entities import Metric, Param

    path = sqlite_path(source_uri)
    if path is not None and not path.is_file():
        raise ValueError(f"merge: no store at {path} (from the source URI {source_uri})")
    source, dest = ResultsStore(source_uri), ResultsStore(dest_uri)
    if source.uri == dest.uri:
        raise ValueError(f"merge: the source and the destination are the same store ({dest.uri})")
    report = MergeReport()
    for experiment in source.client.search_experiments():
        if is_claim_experiment(experiment.name):  # a claim of the source's own writers, never results
            continue
        runs = source.client.search_runs([experiment.experiment_id], max_results=50000)
        if not runs:
            continue
        dest_id = dest.experiment_id(experiment.name)
        merged, finished_keys = _destination_index(dest, dest_id)
        for run in sorted(runs, key=lambda r: r.info.start_time or 0):
            label = f"{experiment.name} · {run.info.run_name}"
            reason = _skip_reason(run, merged, finished_keys)
            if reason:
                report.skipped.append(f"{label}: {reason}")
                continue
            tags = {k: v for k, v in run.data.tags.items() if k != "mlflow.runName"}  # run_name sets it
            copy = dest.client.create_run(dest_id, start_time=run.info.start_time, run_name=run.info.run_name,
                                          tags=tags | {TAG_MERGED_FROM: run.info.run_id})
            run_id = copy.info.run_id
            dest.client.log_batch(run_id, params=[Param(k, v) for k, v in run.data.params.items()])
            metrics = [Metric(m.key, m.value, m.timestamp, m.step)
                       for key in run.data.metrics for m in source.client.get_metric_history(run.info.run_id, key)]
            for start in range(0, len(metrics), 1000):  # MLflow's batch limit
                dest.client.log_batch(run_id, metrics=metrics[start:start + 1000])
            with tempfile.TemporaryDirectory() as tmp:
                if source.client.list_artifacts(run.info.run_id):
                    local = source.client.download_artifacts(run.info.run_id, "", tmp)
                    dest.client.log_artifacts(run_id, local)
            dest.client.set_terminated(run_id, status=run.info.status, end_time=run.info.end_time)
            if run.info.status == "FINISHED":
                finished_keys.add(run.data.tags.get(TAG_RUN_KEY))
            report.copied.append(label)
            log(f"merge: copied {label} ({run.info.status.lower()})")
    log(f"merge: {len(report.copied)} runs copied, {len(report.skipped)} skipped, into {dest.uri}")
    return report


def _destination_index(dest: ResultsStore, experiment_id: str) -> tuple[set[str], set[str]]:
    """One read of the destination's experiment: the source run ids copied before, and
    the run keys that have a FINISHED run."""
    runs = dest.client.search_runs([experiment_id], max_results=50000)
    merged = {r.data.tags[TAG_MERGED_FROM] for r in runs if TAG_MERGED_FROM in r.data.tags}
    finished = {r.data.tags.get(TAG_RUN_KEY) for r in runs if r.info.status == "FINISHED"}
    return merged, finished


def _skip_reason(run, merged: set[str], finished_keys: set[str]) -> str | None:
    if run.info.status not in MERGED_STATUSES:
        return f"status {run.info.status} (still running, or never ended)"
    if run.info.run_id in merged:
        return "copied before"
    key = run.data.tags.get(TAG_RUN_KEY)
    if key and run.info.status == "FINISHED" and key in finished_keys:
        return "the destination has a finished run with the same run key"
    return None
