"""The results store (MLflow) and its one reader (the runs table, which runs count,
per-user metrics, the results tables)."""
from benchmark.tracking.results import counted_runs, finished_runs, read_per_user, read_runs, summarize
from benchmark.tracking.store import ResultsStore, resolve_tracking_uri

__all__ = ["ResultsStore", "counted_runs", "finished_runs", "read_per_user", "read_runs", "resolve_tracking_uri",
           "summarize"]
