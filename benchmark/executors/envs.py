"""Isolated virtualenvs for submissions that declare `requirements` in their card.

One environment per distinct requirement list, keyed by a hash of the requirement
lines, what the worker itself needs, the torch pin and the Python version. It lives in
`$LLM4REC_ENVS/<key>` (default: `<llm4rec cache>/envs/<key>`), is built once with the
harness's own interpreter (`python -m venv`, then `pip install`), and is reused by every
later run. A `.complete` file written last marks a finished build; a half-built folder
(an interrupted or failed build) is removed and built again. A lock file makes
concurrent builds of the same environment wait for each other.

The harness itself is never pip-installed there (its dependencies, numpy 2 and
pandas 3 among them, would clash with what a submission pins): the worker imports
`benchmark` through PYTHONPATH and needs only WORKER_REQUIREMENTS.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
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
# as a pip constraint, so it only matters when something needs torch, and installed
# first; a card that pins torch itself (torch==X) keeps its own pin.
TORCH_PIN = "torch==2.13.0"
# Bump when the layout of an environment changes, so old ones are not reused.
ENV_FORMAT = 1
COMPLETE = ".complete"


class EnvironmentBuildError(RuntimeError):
    """pip could not build a submission's environment; the message carries pip's output."""


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


def envs_root() -> Path:
    """Where environments live: $LLM4REC_ENVS, else <llm4rec cache>/envs."""
    root = Path(os.environ["LLM4REC_ENVS"]) if os.environ.get("LLM4REC_ENVS") else cache_dir() / "envs"
    root.mkdir(parents=True, exist_ok=True)
    return root


def normalize(requirements: Sequence[str]) -> tuple[str, ...]:
    """Requirement lines without comments, blank lines and surrounding spaces."""
    lines = (line.split(" #")[0].strip() for line in requirements)
    return tuple(line for line in lines if line and not line.startswith("#"))


_TORCH_LINE = re.compile(r"^torch\s*(\[[^\]]*\])?\s*(==|===|@)", re.IGNORECASE)  # pinned by the card
_NAMES_TORCH = re.compile(r"^torch(?![-_.\w])", re.IGNORECASE)  # "torch", "torch>=2", not "torchvision"


def install_plan(requirements: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """(first, then, constraints): torch pinned and installed on its own first when a
    line names it, then every line together with what the worker needs, under the
    torch pin as a constraint (so no dependency can pull another torch)."""
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
    progress). Raises EnvironmentBuildError with pip's message when pip fails."""
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
        freeze = _run([str(folder / "bin" / "python"), "-m", "pip", "freeze", "--all"]).stdout
        (folder / "freeze.txt").write_text(freeze)
        marker.write_text(json.dumps({"requirements": list(lines), "build_seconds": seconds,
                                      "python": sys.version, "built_at": time.time()}, indent=2))
        log(f"{name}: environment {key} built in {seconds:.0f}s ({folder})")
        return Environment(key, folder, lines, True, seconds)


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


def _build(folder: Path, lines: tuple[str, ...], name: str, log) -> None:
    if folder.exists():
        log(f"{name}: removing an incomplete environment at {folder}")
        shutil.rmtree(folder)
    log(f"{name}: building its environment {folder.name} ({len(lines)} requirements; "
        "first time only, later runs reuse it)")
    try:
        venv = _run([sys.executable, "-m", "venv", str(folder)])
        if venv.returncode != 0:
            raise EnvironmentBuildError(f"{name}: `python -m venv {folder}` failed:\n{_tail(venv.stderr)}")
        first, rest, constraints = install_plan(lines)
        (folder / "llm4rec-requirements.txt").write_text("\n".join(first + rest) + "\n")
        (folder / "llm4rec-constraints.txt").write_text("\n".join(constraints) + "\n")
        python = str(folder / "bin" / "python")
        base = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
                "--progress-bar", "off"]
        if constraints:
            base += ["-c", str(folder / "llm4rec-constraints.txt")]
        if first:
            _pip(base + first, f"{name}: installing {' '.join(first)}", name, log)
        _pip(base + rest, f"{name}: installing requirements", name, log)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _pip(command: list[str], description: str, name: str, log) -> None:
    """Run pip with its progress on the harness's console; fail with its stderr."""
    from benchmark.progress import track

    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL, env=_pip_environment())
    errors: deque[str] = deque(maxlen=60)
    reader = threading.Thread(target=lambda: errors.extend(process.stderr), daemon=True)
    reader.start()
    interesting = ("Collecting", "Installing collected", "Successfully installed", "ERROR")
    try:
        for line in track(process.stdout, description):
            if line.startswith(interesting):
                log(f"  {line.rstrip()}")
    except BaseException:
        process.kill()
        raise
    code = process.wait()
    reader.join()
    if code != 0:
        message = "".join(errors).strip() or "(pip printed nothing on stderr)"
        raise EnvironmentBuildError(
            f"{name}: building its environment failed: `pip install` exited with code {code}:\n"
            f"{_tail(message)}")


def _pip_environment() -> dict[str, str]:
    env = dict(os.environ)
    for variable in ("PYTHONPATH", "PYTHONHOME", "PIP_USER", "VIRTUAL_ENV"):
        env.pop(variable, None)
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env=_pip_environment())


def _tail(text: str, lines: int = 25, chars: int = 3000) -> str:
    tail = "\n".join(text.strip().splitlines()[-lines:])
    return tail[-chars:]
