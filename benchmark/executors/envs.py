"""Isolated virtualenvs for submissions that declare `requirements` in their card.

One environment per distinct requirement list, keyed by a hash of the requirement
lines, what the worker itself needs, the torch pin and the Python version. It lives in
`$LLM4REC_ENVS/<key>` (default: `<llm4rec cache>/envs/<key>`), is built once with uv for
the harness's own interpreter, and is reused by every later run:

1. `uv venv`;
2. `uv pip compile`: the requirements resolved into `requirements.lock`, every package
   at an exact version (Environment.lock_file; a bundle carries it);
3. `uv pip sync` of that lock: files hard-linked from uv's cache (shared by every
   environment: `$LLM4REC_UV_CACHE`, default `<llm4rec cache>/uv`), bytecode compiled.

uv does not read pip's configuration, so the sources pip is configured with (find-links,
indexes, constraint files: on these machines the local CPU torch wheel) are passed to
it explicitly. A `.complete` file written last marks a finished build; a half-built
folder (an interrupted or failed build) is removed and built again. A lock file makes
concurrent builds of the same environment wait for each other.

The harness itself is never installed there (its dependencies, numpy 2 and pandas 3
among them, would clash with what a submission pins): the worker imports `benchmark`
through PYTHONPATH and needs only WORKER_REQUIREMENTS.
"""
from __future__ import annotations

import ast
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from benchmark.paths import cache_dir

# What `python -m benchmark.executors.worker` imports: benchmark.api needs numpy,
# pandas, pydantic 2 and PyYAML. Unpinned, so that a submission's own pins decide.
WORKER_REQUIREMENTS = ("numpy", "pandas", "pydantic>=2", "pyyaml")
# torch from the local CPU wheel: an unpinned torch pulls a multi-GB CUDA build. Applied
# as a constraint, so it only matters when something needs torch; a card that pins
# torch itself (torch==X) keeps its own pin.
TORCH_PIN = "torch==2.13.0"
# Bump when the layout of an environment changes, so old ones are not reused
# (2: built by uv, requirements.lock instead of pip's freeze.txt).
ENV_FORMAT = 2
COMPLETE = ".complete"
LOCK_FILE = "requirements.lock"
# uv's progress lines worth a line on the console (it prints them on stderr).
_SHOWN = ("Resolved", "Downloading", "Prepared", "Installed", "Bytecode compiled", "warning")
_INSTALL_HINT = "`pip install uv` (a dependency of llm4rec-bench: `pip install -e .` installs it)"


class EnvironmentBuildError(RuntimeError):
    """uv could not build a submission's environment; the message carries uv's output."""


@dataclass(frozen=True)
class Environment:
    key: str
    folder: Path
    requirements: tuple[str, ...]
    built: bool  # True when this call built it, False when it was found in the cache
    build_seconds: float

    @property
    def python(self) -> Path:
        return self.folder / "bin" / "python"

    @property
    def lock_file(self) -> Path:
        """The exact versions installed (a bundle carries it: docs/submitting.md)."""
        return self.folder / LOCK_FILE


def envs_root() -> Path:
    """Where environments live: $LLM4REC_ENVS, else <llm4rec cache>/envs."""
    root = Path(os.environ["LLM4REC_ENVS"]) if os.environ.get("LLM4REC_ENVS") else cache_dir() / "envs"
    root.mkdir(parents=True, exist_ok=True)
    return root


def uv_cache_root() -> Path:
    """uv's cache, shared by every environment: $LLM4REC_UV_CACHE, else <llm4rec cache>/uv.
    Environments hard-link their files from it, which needs the same filesystem."""
    root = Path(os.environ["LLM4REC_UV_CACHE"]) if os.environ.get("LLM4REC_UV_CACHE") else cache_dir() / "uv"
    root.mkdir(parents=True, exist_ok=True)
    return root


def uv_binary() -> str:
    """The uv executable: the one the `uv` package installed, else uv on PATH."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):  # the package, or its binary, is missing
        pass
    if found := shutil.which("uv"):
        return found
    raise EnvironmentBuildError(f"uv is not installed; it builds the environments of cards with "
                                f"`requirements:`. Install it with {_INSTALL_HINT}")


def normalize(requirements: Sequence[str]) -> tuple[str, ...]:
    """Requirement lines without comments, blank lines and surrounding spaces."""
    lines = (line.split(" #")[0].strip() for line in requirements)
    return tuple(line for line in lines if line and not line.startswith("#"))


_TORCH_LINE = re.compile(r"^torch\s*(\[[^\]]*\])?\s*(==|===|@)", re.IGNORECASE)  # pinned by the card
_NAMES_TORCH = re.compile(r"^torch(?![-_.\w])", re.IGNORECASE)  # "torch", "torch>=2", not "torchvision"


def install_plan(requirements: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """(first, then, constraints): torch pinned and listed first when a line names it,
    then every line and what the worker needs; the torch pin is a constraint, so no
    dependency can pull another torch. uv resolves first + then together."""
    lines = list(normalize(requirements))
    own_torch = [line for line in lines if _TORCH_LINE.match(line)]
    mentions_torch = any(_NAMES_TORCH.match(line) for line in lines)
    constraints = [line for line in own_torch if "==" in line] or [TORCH_PIN]
    first = own_torch or ([TORCH_PIN] if mentions_torch else [])
    rest = [line for line in lines if line not in own_torch]
    return first, rest + list(WORKER_REQUIREMENTS), constraints


def env_key(requirements: Sequence[str]) -> str:
    payload = {
        "requirements": list(normalize(requirements)),
        "worker": list(WORKER_REQUIREMENTS),
        "torch": TORCH_PIN,
        "python": sys.implementation.cache_tag,  # e.g. cpython-311
        "format": ENV_FORMAT,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    return f"{sys.implementation.cache_tag}-{digest}"


def ensure_env(requirements: Sequence[str], name: str = "submission",
               log: Callable[[str], None] | None = None) -> Environment:
    """The environment for these requirements: from the cache, else built now (with
    progress). Raises EnvironmentBuildError with uv's message when uv fails."""
    if log is None:
        from benchmark.progress import log
    lines = normalize(requirements)
    key = env_key(lines)
    root = envs_root()
    folder = root / key
    with _locked(root / f"{key}.lock", log, name):
        marker = folder / COMPLETE
        if marker.is_file():
            info = json.loads(marker.read_text())
            log(f"{name}: environment {key} found in the cache ({folder})")
            return Environment(key, folder, lines, False, float(info.get("build_seconds", 0.0)))
        started = time.perf_counter()
        _build(folder, lines, name, log)
        seconds = time.perf_counter() - started
        marker.write_text(json.dumps({"requirements": list(lines), "build_seconds": seconds,
                                      "python": sys.version, "built_at": time.time()}, indent=2))
        log(f"{name}: environment {key} built in {seconds:.0f}s ({folder})")
        return Environment(key, folder, lines, True, seconds)


def pip_settings() -> dict[str, list[str]]:
    """pip's effective configuration (its files, then PIP_* variables, as `pip config
    list` shows them), each value split into its entries; {} without pip."""
    listed = _run([sys.executable, "-m", "pip", "config", "list"])
    found: dict[tuple[str, str], list[str]] = {}
    for line in listed.stdout.splitlines():  # e.g. global.find-links='/opt/wheels'
        name, _, value = line.partition("=")
        section, _, key = name.rpartition(".")
        try:
            found[section, key] = str(ast.literal_eval(value)).split()
        except (ValueError, SyntaxError):
            continue
    settings: dict[str, list[str]] = {}
    for section in ("global", "install", ":env:"):  # pip's precedence: later ones win
        settings |= {key: value for (where, key), value in found.items() if where == section}
    return settings


def uv_source_options(settings: dict[str, list[str]]) -> list[str]:
    """uv options for the package sources pip is configured with, and pip's rule for
    several indexes: the best version from any of them (uv's default takes the first
    index that has the package, which would hide PyPI's older releases)."""
    options = ["--index-strategy", "unsafe-best-match"]
    for key in ("index-url", "extra-index-url", "find-links"):
        for value in settings.get(key, []):
            options += [f"--{key}", value]
    if settings.get("no-index", ["no"])[0].lower() in ("1", "true", "yes", "on"):
        options.append("--no-index")
    return options


@contextmanager
def _locked(path: Path, log, name: str) -> Iterator[None]:
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"{name}: waiting for another process that is building the same environment")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_lock(requirements: Sequence[str], folder: Path, name: str = "submission",
               log: Callable[[str], None] | None = None) -> Path:
    """Resolve the requirements (with what the worker needs, under the torch pin and
    pip's constraint files) into `folder`/requirements.lock, without installing them."""
    if log is None:
        from benchmark.progress import log
    return _write_lock(_Uv.for_build(name, log), normalize(requirements), folder)


def _build(folder: Path, lines: tuple[str, ...], name: str, log) -> None:
    if folder.exists():
        log(f"{name}: removing an incomplete environment at {folder}")
        shutil.rmtree(folder)
    uv = _Uv.for_build(name, log)
    log(f"{name}: building its environment {folder.name} with uv ({len(lines)} requirements; "
        "first time only, later runs reuse it)")
    if uv.cache.stat().st_dev != folder.parent.stat().st_dev:
        log(f"{name}: uv's cache {uv.cache} is on another filesystem than {folder.parent}, so files are "
            "copied rather than hard-linked ($LLM4REC_UV_CACHE moves the cache)")
    try:
        uv("venv", ["--python", sys.executable, str(folder)], f"{name}: creating the virtualenv")
        lock = _write_lock(uv, lines, folder)
        packages = sum(1 for line in lock.read_text().splitlines() if line[:1].isalnum())
        log(f"{name}: installing {packages} packages from {LOCK_FILE} (hard-linked from uv's cache), "
            "then compiling their bytecode (a read-only environment cannot cache it later)")
        uv("pip sync", [str(lock), "--python", str(folder / "bin" / "python"), "--link-mode", "hardlink",
                        "--compile-bytecode", *uv.sources], f"{name}: installing")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _write_lock(uv: _Uv, lines: tuple[str, ...], folder: Path) -> Path:
    """`uv pip compile` for the harness's interpreter (the environment's base): one
    `name==version` line per package, no annotations (they would name this machine's
    paths in a bundle)."""
    first, rest, constraints = install_plan(lines)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "llm4rec-requirements.txt").write_text("\n".join(first + rest) + "\n")
    (folder / "llm4rec-constraints.txt").write_text("\n".join(constraints) + "\n")
    constraint_files = [str(folder / "llm4rec-constraints.txt"), *uv.settings.get("constraint", [])]
    uv("pip compile", [str(folder / "llm4rec-requirements.txt"), "--output-file", str(folder / LOCK_FILE),
                       "--python", sys.executable, "--no-header", "--no-annotate",
                       *(option for path in constraint_files for option in ("--constraint", path)),
                       *uv.sources], f"{uv.name}: resolving its requirements")
    return folder / LOCK_FILE


@dataclass(frozen=True)
class _Uv:
    """Runs uv subcommands for one build, with pip's package sources: uv's progress on
    the harness's console, a failure raised as EnvironmentBuildError with the tail of
    what uv printed."""
    binary: str
    cache: Path
    settings: dict[str, list[str]]  # pip's configuration (pip_settings)
    name: str
    log: Callable[[str], None]

    @classmethod
    def for_build(cls, name: str, log: Callable[[str], None]) -> _Uv:
        return cls(uv_binary(), uv_cache_root(), pip_settings(), name, log)

    @property
    def sources(self) -> list[str]:
        return uv_source_options(self.settings)

    def __call__(self, subcommand: str, arguments: list[str], description: str) -> None:
        from benchmark.progress import track

        # --no-config: pip's settings, passed explicitly, are the only configuration.
        command = [self.binary, *subcommand.split(), "--no-config", "--cache-dir", str(self.cache), *arguments]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                   stdin=subprocess.DEVNULL, env=_installer_environment(self.settings))
        printed: deque[str] = deque(maxlen=60)
        try:
            for line in track(process.stderr, description):  # uv reports on stderr
                printed.append(line)
                if line.startswith(_SHOWN):
                    self.log(f"  {line.rstrip()}")
        except BaseException:
            process.kill()
            raise
        code = process.wait()
        if code != 0:
            message = "".join(printed).strip() or "(uv printed nothing)"
            raise EnvironmentBuildError(
                f"{self.name}: building its environment failed: `uv {subcommand}` exited with code {code}:\n"
                f"{_tail(message)}")


def _installer_environment(settings: dict[str, list[str]] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    for variable in ("PYTHONPATH", "PYTHONHOME", "PIP_USER", "VIRTUAL_ENV"):
        env.pop(variable, None)
    env["PYTHONNOUSERSITE"] = "1"
    if settings and settings.get("cert") and "SSL_CERT_FILE" not in env:
        env["SSL_CERT_FILE"] = settings["cert"][0]  # pip's certificate bundle, for uv too
    return env


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env=_installer_environment())


def _tail(text: str, lines: int = 25, chars: int = 3000) -> str:
    tail = "\n".join(text.strip().splitlines()[-lines:])
    return tail[-chars:]
