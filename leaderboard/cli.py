"""`llm4rec leaderboard …`: snapshot the results store, serve the app, export pages.

Only Typer is imported at module level: `llm4rec --help` stays fast."""
from __future__ import annotations

import os
import subprocess
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

leaderboard_app = typer.Typer(
    help="The leaderboard: snapshot the MLflow results store, serve the Streamlit app, export static pages.",
    no_args_is_help=True)

APP = Path(__file__).resolve().parent / "app.py"
TrackingUri = Annotated[Optional[str], typer.Option(
    "--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db).")]
SnapshotDir = Annotated[Optional[Path], typer.Option(
    "--snapshot", help="Snapshot folder (default: $LLM4REC_LEADERBOARD_SNAPSHOT, else ./leaderboard-snapshot).")]
Rebuild = Annotated[bool, typer.Option("--rebuild", help="Rebuild the snapshot from the store first.")]


class ExportFormat(str, Enum):
    html = "html"
    md = "md"
    csv = "csv"
    trust = "trust"


def _log(message: str) -> None:
    typer.echo(message, err=True)


def _ensure_snapshot(folder: Path | None, tracking_uri: str | None, rebuild: bool) -> Path:
    """The snapshot folder, built from the store when missing (or when asked)."""
    from leaderboard.snapshot import build_snapshot, default_snapshot_dir, snapshot_exists

    folder = (folder or default_snapshot_dir()).resolve()
    if rebuild or not snapshot_exists(folder):
        build_snapshot(tracking_uri, folder, log=_log)
    return folder


@leaderboard_app.command()
def snapshot(
    tracking_uri: TrackingUri = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="Snapshot folder (default: $LLM4REC_LEADERBOARD_SNAPSHOT, else ./leaderboard-snapshot).")] = None,
) -> None:
    """Read the MLflow results store (any tracking URI) into a Parquet snapshot, which
    the app and the exports read: runs of every status, per-user metrics of the ranked
    runs, submission cards and task specs."""
    from leaderboard.snapshot import build_snapshot

    folder = build_snapshot(tracking_uri, out, log=_log)
    typer.echo(str(folder))


@leaderboard_app.command()
def serve(
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1.")] = 8501,
    snapshot: SnapshotDir = None,
    tracking_uri: TrackingUri = None,
    rebuild: Rebuild = False,
) -> None:
    """Serve the Streamlit leaderboard on 127.0.0.1 (builds the snapshot first if it is
    missing; --rebuild to refresh it). Stops with Ctrl-C."""
    folder = _ensure_snapshot(snapshot, tracking_uri, rebuild)
    command = [sys.executable, "-m", "streamlit", "run", str(APP),
               "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
               "--client.toolbarMode", "viewer"]
    env = os.environ | {"LLM4REC_LEADERBOARD_SNAPSHOT": str(folder)}
    _log(f"leaderboard on http://127.0.0.1:{port} (snapshot {folder})")
    try:
        raise typer.Exit(subprocess.call(command, env=env))
    except KeyboardInterrupt:
        raise typer.Exit(0)


@leaderboard_app.command()
def export(
    format: Annotated[list[ExportFormat], typer.Option(
        "--format", "-f", help="html (self-contained page with charts), md, csv or trust (a trust card per row "
                                "with trust metrics, linked from the html and md pages); repeatable.")] = [
        ExportFormat.html, ExportFormat.trust],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("leaderboard-export"),
    snapshot: SnapshotDir = None,
    tracking_uri: TrackingUri = None,
    rebuild: Rebuild = False,
) -> None:
    """Write the leaderboard as static files for publishing: leaderboard.html (tables
    and charts, no server needed), leaderboard.md, leaderboard.csv, and trust cards
    (trust-cards/<task>--<submission>.html)."""
    from leaderboard.export import export as write
    from leaderboard.snapshot import load_snapshot

    folder = _ensure_snapshot(snapshot, tracking_uri, rebuild)
    for path in write(load_snapshot(folder), out, [f.value for f in format]):
        typer.echo(str(path))
