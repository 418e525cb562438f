"""The results store (MLflow) and the results tables read from it."""
from benchmark.tracking.results import finished_runs, summarize
from benchmark.tracking.store import ResultsStore, resolve_tracking_uri

__all__ = ["ResultsStore", "finished_runs", "resolve_tracking_uri", "summarize"]
