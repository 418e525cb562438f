"""Command-line options shared by several commands (Typer only: imports nothing heavy)."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

TrackingUri = Annotated[Optional[str], typer.Option(
    "--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db).")]
Executor = Annotated[str, typer.Option(
    "--executor",
    help="local: the runs one after another from this process; ray: every (task, submission, seed) as a Ray "
         "task with its card's resources, recorded under the same run keys (docs/scaling.md).")]
RayAddress = Annotated[Optional[str], typer.Option(
    "--ray-address",
    help="With --executor ray: the cluster to join (auto or HOST:PORT; ray://HOST:PORT needs ray[client]); default: a private "
         "cluster on 127.0.0.1, stopped at the end.")]
RayWorkers = Annotated[Optional[int], typer.Option(
    "--ray-workers", min=1, help="With --executor ray and no --ray-address: the private cluster's CPUs "
                                 "(default: this machine's).")]
