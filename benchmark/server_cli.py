"""`llm4rec server start|stop|status`: the team results store, an MLflow tracking
server on a local PostgreSQL (benchmark.tracking.server). Every other command reaches
it through --tracking-uri or $MLFLOW_TRACKING_URI, which `start` prints last.

Only Typer is imported at module level: `llm4rec --help` stays fast."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

server_app = typer.Typer(
    help="The team results store: an MLflow tracking server on PostgreSQL, started, stopped and inspected here.",
    no_args_is_help=True, add_completion=False)

Home = Annotated[Path, typer.Option(
    "--home", help="The server's folder: PostgreSQL's data, artifacts, logs, server.json.")]


def _log(message: str) -> None:
    typer.echo(message, err=True)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@server_app.command()
def start(
    home: Home = Path("llm4rec-server"),
    host: Annotated[str, typer.Option(
        "--host", help="Where MLflow listens. 127.0.0.1: this machine only; 0.0.0.0: every machine that can reach "
                       "this one (a lab; no login: keep it behind a firewall).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="MLflow's port.")] = 5000,
    pg_port: Annotated[Optional[int], typer.Option(
        "--pg-port", min=1, max=65535, help="PostgreSQL's port, on 127.0.0.1 (default: the last one, else a free "
                                            "one).")] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="MLflow's worker processes.")] = 4,
    allowed_hosts: Annotated[Optional[str], typer.Option(
        "--allowed-hosts", help="Host names clients may use (MLflow's --allowed-hosts; default beyond 127.0.0.1: "
                                "localhost, private addresses and this machine's names).")] = None,
) -> None:
    """Start the server (creating its PostgreSQL cluster and database on the first
    start) and wait until it answers; print the tracking URI as the last line. A server
    already running is left as it is."""
    from benchmark.tracking.server import ServerError, start_server

    try:
        info = start_server(home, host=host, port=port, pg_port=pg_port, workers=workers,
                            allowed_hosts=allowed_hosts, log=_log)
    except ServerError as error:
        _fail(str(error))
    typer.echo(f"MLFLOW_TRACKING_URI={info.uri}")


@server_app.command()
def stop(home: Home = Path("llm4rec-server")) -> None:
    """Stop the server: MLflow (SIGTERM, then SIGKILL after a while) and PostgreSQL.
    The data stays in the home folder for the next start."""
    from benchmark.tracking.server import ServerError, stop_server

    try:
        info = stop_server(home, log=_log)
    except ServerError as error:
        _fail(str(error))
    typer.echo(info.describe())


@server_app.command()
def status(home: Home = Path("llm4rec-server")) -> None:
    """Say whether the server runs, its tracking URI and its processes' pids; exit 1
    when it is not running."""
    from benchmark.tracking.server import ServerError, server_status

    try:
        info = server_status(home)
    except ServerError as error:
        _fail(str(error))
    typer.echo(info.describe())
    if not info.running:
        raise typer.Exit(1)


if __name__ == "__main__":
    server_app()
