"""A team results store: an MLflow tracking server on a local PostgreSQL, started,
stopped and inspected by `llm4rec server start|stop|status`.

Everything lives in one home folder (default ./llm4rec-server):
  server.json   the settings, passwords and process ids (mode 0600)
  pgdata/       the PostgreSQL cluster (initdb on the first start; database `mlflow`,
                owned by the role `mlflow`, scram-sha-256 passwords)
  run/          PostgreSQL's unix socket (never /var/run)
  artifacts/    the runs' artifacts: the server takes uploads over HTTP
                (`--artifacts-destination`), so clients share nothing on disk
  logs/         postgresql.log, mlflow.log

PostgreSQL listens on 127.0.0.1 only, whatever the server's host: its one client is the
MLflow server beside it. The MLflow server listens on the given host (127.0.0.1 by
default); on another host (0.0.0.0 for a lab) anyone who reaches the port can read and
write the store, which the log says. Both run detached (their own sessions) and
outlive the command; `stop` ends them by the pids recorded, checked against each
process's start time so that a reused pid is never signalled.

PostgreSQL refuses to run as root: as root, its programs run as the `postgres` system
user (made by Debian's package), who then owns pgdata/ and must be able to reach the
home folder.
"""
from __future__ import annotations

import ipaddress
import json
import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from benchmark.tracking.owner import OwnerState, owner_state, owner_tags, stat_fields

DEFAULT_HOME = Path("llm4rec-server")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
SERVER_FILE = "server.json"
SUPERUSER = "postgres"
DATABASE = ROLE = "mlflow"
PG_SYSTEM_USER = "postgres"  # who runs PostgreSQL when we are root
START_TIMEOUT_SECONDS = 180.0  # the first start migrates MLflow's schema: tens of seconds
STOP_TIMEOUT_SECONDS = 20.0
NOT_INSTALLED = "PostgreSQL is not installed: apt-get install postgresql"

Log = Callable[[str], None]


class ServerError(RuntimeError):
    """The server could not be started or stopped; the message says why and where to look."""


@dataclass
class ServerInfo:
    """What `server_status` finds. `uri` is the tracking URI clients use."""

    home: Path
    uri: str | None
    running: bool
    mlflow_pid: int | None = None
    postgres_pid: int | None = None
    port: int | None = None
    pg_port: int | None = None

    def describe(self) -> str:
        if self.uri is None:
            return f"no server in {self.home}"
        state = "running" if self.running else "stopped"
        pids = f" (MLflow pid {self.mlflow_pid}, PostgreSQL pid {self.postgres_pid})" if self.running else ""
        return f"{state}: {self.uri}{pids}, home {self.home}"


def _default_log(message: str) -> None:
    from benchmark.progress import log

    log(message)


# ---------------------------------------------------------------- start


def start_server(home: str | Path = DEFAULT_HOME, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 pg_port: int | None = None, workers: int = 4, allowed_hosts: str | None = None,
                 timeout: float = START_TIMEOUT_SECONDS, stop_with_pid: int | None = None,
                 log: Log | None = None) -> ServerInfo:
    """Start PostgreSQL and the MLflow server of `home` (creating the cluster and the
    database on the first start) and wait until MLflow answers /health. An already
    running server is left as it is. `pg_port`: PostgreSQL's port (default: the last
    one, else a free one). `allowed_hosts`: MLflow's --allowed-hosts (default on a
    non-loopback host: MLflow's own list plus this machine's names). `stop_with_pid`:
    a watchdog stops the server once that process ends (for tests and scripts)."""
    log = log or _default_log
    home = Path(home).resolve()
    current = server_status(home)
    if current.running:
        log(f"llm4rec server: already running in {home}")
        return current
    if current.mlflow_pid or current.postgres_pid or _postmaster_pid(home):  # half running: start afresh
        stop_server(home, log=log)
    binaries = postgres_binaries()
    _prepare_home(home)
    settings = _read_settings(home)
    settings |= {"host": host, "port": port, "pg_port": pg_port or settings.get("pg_port") or free_port()}
    if not (home / "pgdata" / "PG_VERSION").is_file():
        settings |= {"superuser_password": secrets.token_urlsafe(24), "mlflow_password": secrets.token_urlsafe(24),
                     "database_ready": False}
        _write_settings(home, settings)
        _init_cluster(home, binaries, settings["superuser_password"], log)
    _write_settings(home, settings)
    try:
        settings["postgres"] = _start_postgres(home, binaries, settings["pg_port"], log)
        _write_settings(home, settings)
        if not settings.get("database_ready"):
            _create_database(settings)
            settings["database_ready"] = True
        settings["mlflow"] = _start_mlflow(home, settings, workers, allowed_hosts, log)
        _write_settings(home, settings)
        _wait_for_health(home, settings, timeout)
    except BaseException:
        stop_server(home, log=lambda _: None)
        raise
    if stop_with_pid is not None:
        _start_watchdog(home, stop_with_pid)
    info = server_status(home)
    log(f"llm4rec server: {info.describe()}")
    return info


def postgres_binaries() -> Path:
    """The folder of PostgreSQL's programs: on PATH, else Debian's
    /usr/lib/postgresql/<highest version>/bin (its package does not put them on PATH)."""
    on_path = shutil.which("pg_ctl")
    if on_path and (Path(on_path).resolve().parent / "initdb").exists():
        return Path(on_path).resolve().parent
    versions = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "pg_ctl").exists()]
    versions.sort(key=lambda p: float(p.parent.name) if p.parent.name.replace(".", "", 1).isdigit() else -1)
    if not versions:
        raise ServerError(NOT_INSTALLED)
    return versions[-1]


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _prepare_home(home: Path) -> None:
    for folder in ("logs", "artifacts", "run"):
        (home / folder).mkdir(parents=True, exist_ok=True)
    (home / "run").chmod(0o700)
    if os.geteuid() != 0:
        return
    home.chmod(home.stat().st_mode | 0o711)  # the postgres user passes through to pgdata/ and run/
    for folder in [home, *home.parents]:
        if not folder.stat().st_mode & 0o001:
            raise ServerError(f"{home}: the {PG_SYSTEM_USER} user, who runs PostgreSQL for root, cannot reach this "
                              f"folder: {folder} is closed to others (chmod o+x {folder}, or choose another --home)")
    user = _postgres_user()
    (home / "pgdata").mkdir(exist_ok=True)
    (home / "logs" / "postgresql.log").touch(exist_ok=True)
    for path, mode in ((home / "pgdata", 0o700), (home / "run", 0o700), (home / "logs" / "postgresql.log", 0o600)):
        os.chown(path, user.pw_uid, user.pw_gid)
        path.chmod(mode)


def _postgres_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        raise ServerError(f"PostgreSQL refuses to run as root, and there is no {PG_SYSTEM_USER!r} user to run it "
                          f"as ({NOT_INSTALLED} creates it); or run `llm4rec server` as another user") from None


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL's programs run as the postgres user when we are root."""
    return ["runuser", "-u", PG_SYSTEM_USER, "--", *command] if os.geteuid() == 0 else command


def _init_cluster(home: Path, binaries: Path, password: str, log: Log) -> None:
    pgdata = home / "pgdata"
    log(f"llm4rec server: creating the PostgreSQL cluster in {pgdata}")
    password_file = home / "run" / "initdb-password"  # in run/ (0700), for initdb only
    with os.fdopen(os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as output:
        output.write(password)
    if os.geteuid() == 0:
        owner = _postgres_user()
        os.chown(password_file, owner.pw_uid, owner.pw_gid)
    try:
        _run(_as_postgres([str(binaries / "initdb"), "-D", str(pgdata), "-U", SUPERUSER, f"--pwfile={password_file}",
                           "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"]), "initdb", home / "logs")
    except ServerError:
        for leftover in pgdata.iterdir():  # so that the next start can try again
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
        raise
    finally:
        password_file.unlink(missing_ok=True)


def _start_postgres(home: Path, binaries: Path, pg_port: int, log: Log) -> dict[str, Any]:
    """Start PostgreSQL (pg_ctl detaches it); returns its pid and identity."""
    log(f"llm4rec server: starting PostgreSQL on 127.0.0.1:{pg_port}")
    options = f"-c listen_addresses=127.0.0.1 -p {pg_port} -k {shlex.quote(str(home / 'run'))}"  # through a shell
    log_file = home / "logs" / "postgresql.log"
    _run(_as_postgres([str(binaries / "pg_ctl"), "-D", str(home / "pgdata"), "-l", str(log_file), "-o", options,
                       "-w", "-t", "60", "start"]), "PostgreSQL", home / "logs", log_file=log_file)
    pid = _postmaster_pid(home)
    if pid is None:
        raise ServerError(f"PostgreSQL said it started but wrote no pid; see {log_file}")
    return {"pid": pid, "owner": owner_tags(pid)}


def _create_database(settings: dict[str, Any]) -> None:
    """The role and database MLflow uses, created once through the superuser."""
    import psycopg2
    from psycopg2 import sql

    connection = psycopg2.connect(host="127.0.0.1", port=settings["pg_port"], user=SUPERUSER, dbname="postgres",
                                  password=settings["superuser_password"])
    try:
        connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(ROLE)),
                           [settings["mlflow_password"]])
            cursor.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DATABASE),
                                                                         sql.Identifier(ROLE)))
    finally:
        connection.close()


def _start_mlflow(home: Path, settings: dict[str, Any], workers: int, allowed_hosts: str | None,
                  log: Log) -> dict[str, Any]:
    """Start `mlflow server` in its own session (its workers in its process group)."""
    host, port = settings["host"], settings["port"]
    command = [sys.executable, "-m", "mlflow", "server",
               "--backend-store-uri", f"postgresql+psycopg2://{ROLE}@127.0.0.1:{settings['pg_port']}/{DATABASE}",
               "--artifacts-destination", str(home / "artifacts"), "--host", host, "--port", str(port),
               "--workers", str(workers)]
    if not is_loopback(host):
        log(f"llm4rec server: WARNING: MLflow listens on {host}:{port}: anyone who can reach this machine on that "
            "port can read and write the results store (no login); keep it behind a firewall or a VPN")
        command += ["--allowed-hosts", allowed_hosts or _default_allowed_hosts()]
    elif allowed_hosts:
        command += ["--allowed-hosts", allowed_hosts]
    # The password goes through the environment (readable by this user and root only),
    # never the command line, which `ps` shows to everyone; MLflow's job runners
    # (GenAI jobs) are not needed by the harness.
    environment = os.environ | {"PGPASSWORD": settings["mlflow_password"],
                                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log(f"llm4rec server: starting MLflow on {host}:{port} (log: {home / 'logs' / 'mlflow.log'})")
    with open(home / "logs" / "mlflow.log", "ab") as output:
        process = subprocess.Popen(command, cwd=home, env=environment, stdin=subprocess.DEVNULL, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    process.returncode = 0  # detached on purpose: no "still running" warning when this object goes
    return {"pid": process.pid, "owner": owner_tags(process.pid)}


def _wait_for_health(home: Path, settings: dict[str, Any], timeout: float) -> None:
    url = f"http://{_url_host(_local_host(settings['host']))}:{settings['port']}/health"
    log_file = home / "logs" / "mlflow.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if owner_state(settings["mlflow"]["owner"]) is not OwnerState.ALIVE:
            raise ServerError(f"the MLflow server exited while starting; see {log_file}:\n{_tail(log_file)}")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise ServerError(f"the MLflow server did not answer {url} within {timeout:.0f} s; see {log_file}:\n"
                      f"{_tail(log_file)}")


def _default_allowed_hosts() -> str:
    """MLflow's default Host headers (localhost, private addresses) plus this machine's names."""
    from mlflow.server.security_utils import get_default_allowed_hosts

    names = {socket.gethostname(), _machine_name()}
    return ",".join(get_default_allowed_hosts() + sorted(names) + sorted(f"{n}:*" for n in names))


def _start_watchdog(home: Path, pid: int) -> None:
    code = "import sys; from benchmark.tracking.server import stop_when_gone; stop_when_gone(*sys.argv[1:])"
    with open(home / "logs" / "watchdog.log", "ab") as output:
        process = subprocess.Popen([sys.executable, "-c", code, str(home), str(pid)], stdin=subprocess.DEVNULL,
                                   stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    process.returncode = 0  # detached on purpose


def stop_when_gone(home: str | Path, pid: int | str, every: float = 1.0) -> None:
    """Stop the server of `home` once process `pid` has ended; return early if the
    server is stopped by someone else."""
    watched = owner_tags(int(pid))
    while owner_state(watched) is OwnerState.ALIVE:
        if not server_status(home).running:
            return
        time.sleep(every)
    stop_server(home)


# ---------------------------------------------------------------- stop and status


def stop_server(home: str | Path = DEFAULT_HOME, timeout: float = STOP_TIMEOUT_SECONDS,
                log: Log | None = None) -> ServerInfo:
    """Stop the MLflow server (SIGTERM to its process group, SIGKILL after `timeout`
    seconds) and PostgreSQL (`pg_ctl stop -m fast`). A part already stopped is skipped."""
    log = log or _default_log
    home = Path(home).resolve()
    settings = _read_settings(home)
    if not settings:
        raise ServerError(f"{home}: no server here (no {SERVER_FILE})")
    mlflow = settings.pop("mlflow", None)
    if mlflow and owner_state(mlflow["owner"]) is OwnerState.ALIVE:  # never a reused pid
        log(f"llm4rec server: stopping MLflow (pid {mlflow['pid']})")
        _stop_group(mlflow["pid"], timeout)
    if _postmaster_pid(home) is not None:
        log("llm4rec server: stopping PostgreSQL")
        _run(_as_postgres([str(postgres_binaries() / "pg_ctl"), "-D", str(home / "pgdata"), "-m", "fast", "-w",
                           "-t", "60", "stop"]), "pg_ctl stop", home / "logs")
    settings.pop("postgres", None)
    _write_settings(home, settings)
    return server_status(home)


def server_status(home: str | Path = DEFAULT_HOME) -> ServerInfo:
    """Whether the server of `home` runs (both its processes alive), its URI and pids."""
    home = Path(home).resolve()
    settings = _read_settings(home)
    if not settings.get("port"):
        return ServerInfo(home=home, uri=None, running=False)
    mlflow, postgres = settings.get("mlflow"), settings.get("postgres")
    alive = [part is not None and owner_state(part["owner"]) is OwnerState.ALIVE for part in (mlflow, postgres)]
    return ServerInfo(home=home, uri=tracking_uri(settings["host"], settings["port"]), running=all(alive),
                      mlflow_pid=mlflow["pid"] if alive[0] else None,
                      postgres_pid=postgres["pid"] if alive[1] else None,
                      port=settings["port"], pg_port=settings.get("pg_port"))


def tracking_uri(host: str, port: int) -> str:
    """The URI clients use: a wildcard host is reached through this machine's name."""
    reachable = _machine_name() if host in ("0.0.0.0", "::", "") else host
    return f"http://{_url_host(reachable)}:{port}"


def _stop_group(pgid: int, timeout: float) -> None:
    """SIGTERM to a process group, SIGKILL to what is left after `timeout` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _group_alive(pgid):
                return
            time.sleep(0.2)


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs. Zombies do not count: the leader stays
    one until its parent (the process that started the server, maybe this one) reaps it."""
    for entry in Path("/proc").glob("[0-9]*"):
        fields = stat_fields(int(entry.name))  # None: ended meanwhile
        if fields and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


# ---------------------------------------------------------------- helpers


def _read_settings(home: Path) -> dict[str, Any]:
    path = home / SERVER_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ServerError(f"{path}: not valid JSON ({error}); fix or remove it") from None


def _write_settings(home: Path, settings: dict[str, Any]) -> None:
    """server.json, mode 0600 from its creation (it holds the passwords), replaced whole."""
    path = home / SERVER_FILE
    staging = path.with_name(f".{SERVER_FILE}.{os.getpid()}")
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as output:
        json.dump(settings, output, indent=2, sort_keys=True)
    staging.replace(path)


def _postmaster_pid(home: Path) -> int | None:
    """PostgreSQL's pid from pgdata/postmaster.pid while it runs (the file's first line)."""
    try:
        first = (home / "pgdata" / "postmaster.pid").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    pid = int(first) if first.strip().isdigit() else None
    return pid if pid is not None and owner_state(owner_tags(pid)) is OwnerState.ALIVE else None


def _run(command: list[str], what: str, logs: Path, log_file: Path | None = None) -> None:
    """Run a PostgreSQL program; a failure is a ServerError with its output and log."""
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          start_new_session=True)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-2000:]
        where = f"; see {log_file}:\n{_tail(log_file)}" if log_file else f" (logs in {logs})"
        raise ServerError(f"{what} failed (exit {done.returncode}): {output}{where}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def is_loopback(host: str) -> bool:
    """Whether a host name or address is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _machine_name() -> str:
    """This machine's name as others know it: its FQDN, unless that resolves to localhost."""
    fqdn = socket.getfqdn()
    return socket.gethostname() if fqdn.startswith("localhost") else fqdn


def _local_host(host: str) -> str:
    """Where this machine reaches a server listening on `host`."""
    return "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
