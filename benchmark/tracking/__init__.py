"""The results store (MLflow) and its one reader (the runs table, which runs count,
per-user metrics, the results tables)."""
import os

# MLflow draws a bar per artifact it downloads (from a server: every per-user file the
# readers fetch), which would bury the harness's own progress.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from benchmark.tracking.results import counted_runs, finished_runs, read_per_user, read_runs, summarize  # noqa: E402
from benchmark.tracking.store import ResultsStore, resolve_tracking_uri  # noqa: E402

__all__ = ["ResultsStore", "counted_runs", "finished_runs", "read_per_user", "read_runs", "resolve_tracking_uri",
           "summarize"]
