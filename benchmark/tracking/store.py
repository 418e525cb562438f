"""The results store: MLflow, SQLite by default, any tracking URI unchanged.

One experiment per task id and version; one run per (submission, version, task,
seed). A deterministic run key makes reruns idempotent: a FINISHED run with the same
key is reused, a FAILED or interrupted one is redone in a new run (the old one stays).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd

TAG_FAILURE = "failure_reason"
TAG_RUN_KEY = "run_key"
DEFAULT_DB = "mlflow.db"


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


def _artifact_root(uri: str) -> str | None:
    """For a SQLite store, artifacts go beside the database (MLflow 3 has no default
    that works there); servers choose their own."""
    db = sqlite_path(uri)
    return None if db is None else (db.parent / "mlartifacts").resolve().as_uri()


class ResultsStore:
    def __init__(self, tracking_uri: str | None = None) -> None:
        from mlflow.tracking import MlflowClient  # imported here: mlflow is slow to import

        self.uri = resolve_tracking_uri(tracking_uri)
        self.client = MlflowClient(tracking_uri=self.uri)

    def experiment_id(self, name: str, create: bool = True) -> str | None:
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        if not create:
            return None
        root = _artifact_root(self.uri)
        location = f"{root}/{name.replace('/', '__').replace('@', '_')}" if root else None
        return self.client.create_experiment(name, artifact_location=location)

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
        from mlflow.entities import Param, RunTag

        run = self.client.create_run(self.experiment_id(experiment), run_name=run_name,
                                     tags={k: str(v) for k, v in tags.items()})
        run_id = run.info.run_id
        self.client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])
        return run_id

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        if tags:
            self.client.log_batch(run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()])

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric
        import time

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


def end_stale_runs(store: ResultsStore, older_than_hours: float, dry_run: bool = False) -> list[str]:
    """End as KILLED, with a failure reason, the runs still RUNNING that started more
    than `older_than_hours` ago: their process died without closing them (a killed
    job, a lost machine). Returns '<experiment> · <run name>' for each."""
    import time

    cutoff = int((time.time() - older_than_hours * 3600) * 1000)
    ended = []
    for experiment in store.client.search_experiments():
        for run in store.client.search_runs([experiment.experiment_id], filter_string="attributes.status = 'RUNNING'",
                                            max_results=50000):
            if (run.info.start_time or 0) > cutoff:
                continue
            hours = (time.time() * 1000 - run.info.start_time) / 3.6e6
            ended.append(f"{experiment.name} · {run.info.run_name} (started {hours:.1f} h ago)")
            if not dry_run:
                store.end(run.info.run_id, "KILLED", f"ended by `llm4rec store end-stale`: still RUNNING {hours:.1f} h "
                                                     "after its start; its process ended without closing it")
    return ended
