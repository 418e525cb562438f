"""Building RecBole's environment with uv against pip, in one command.

The requirements of the RecBole cards (submissions/recbole/*: all share one list) are
built twice, each from nothing (an empty cache and an empty target folder, both inside
one temporary folder, so on one filesystem):

1. uv, as the harness builds every environment (benchmark.executors.envs.ensure_env:
   `uv venv`, `uv pip compile` into requirements.lock, `uv pip sync` hard-linked from
   uv's cache, bytecode compiled);
2. pip, as the harness built them before uv, kept here only as the reference:
   `python -m venv`, then `pip install` of torch's line on its own and of the rest, under
   the torch pin as a constraint (pip reads its own configuration, so both take torch
   from the same local CPU wheel).

uv runs first, so pip, second, finds the local wheels in the page cache. Both fetch from
the network what this machine does not hold (RecBole, Ray...). Printed: each build's
seconds, torch's version in each environment (2.13.0+cpu is the local CPU wheel), and
each environment's size on disk as `du` reports it (a hard-linked file counted once); for
uv also how much of it lies in uv's cache, shared with every other environment.

    PYTHONPATH=. python perf/envs.py [--card recbole-sasrec] [--dir /tmp]

Ends with one line: uv_vs_pip_speedup=X env_mb_uv=Y env_mb_pip=Z
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmark.api import find_submission
from benchmark.executors.envs import ensure_env, install_plan

# pip's lines worth showing while it works (it prints one per package).
PIP_SHOWN = ("Collecting", "Installing collected", "Successfully installed", "ERROR")


def build_with_uv(requirements: list[str], root: Path) -> Path:
    """The harness's builder, into root/uv-envs with an empty uv cache root/uv-cache."""
    os.environ["LLM4REC_ENVS"] = str(root / "uv-envs")
    os.environ["LLM4REC_UV_CACHE"] = str(root / "uv-cache")
    environment = ensure_env(requirements, name="uv")
    assert environment.built, "the uv environment came from a cache: the comparison needs a cold build"
    return environment.folder


def build_with_pip(requirements: list[str], root: Path) -> Path:
    """The builder before uv, into root/pip-env with an empty pip cache root/pip-cache."""
    folder = root / "pip-env"
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    first, rest, constraints = install_plan(requirements)
    (folder / "constraints.txt").write_text("\n".join(constraints) + "\n")
    pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
           "--progress-bar", "off", "-c", str(folder / "constraints.txt")]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_CACHE_DIR"] = str(root / "pip-cache")
    for part in (first, rest):
        if part:
            pip_install(pip + part, env)
    return folder


def pip_install(command: list[str], env: dict[str, str]) -> None:
    print(f"pip: installing {' '.join(command[command.index('-c') + 2:])}", file=sys.stderr)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    for line in process.stdout:
        if line.startswith(PIP_SHOWN):
            print(f"  {line.rstrip()[:200]}", file=sys.stderr)
    if process.wait() != 0:
        raise SystemExit(f"pip failed with code {process.returncode}")


def timed(build, *args) -> tuple[Path, float]:
    """(what the build returned, its seconds); the machine's load around it on stderr,
    since other work on the machine slows either build."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    folder = build(*args)
    seconds = time.perf_counter() - started
    print(f"{build.__name__}: {seconds:.1f} s (load average {load:.1f} before, {os.getloadavg()[0]:.1f} after)",
          file=sys.stderr)
    return folder, seconds


def du_mb(*folders: Path) -> list[float]:
    """`du -sk` of the folders in one call (a file linked from several counts once, in
    the first folder that holds it), in MB (MiB)."""
    shown = subprocess.run(["du", "-sk", *map(str, folders)], capture_output=True, text=True, check=True).stdout
    return [int(line.split()[0]) / 1024 for line in shown.splitlines()]


def torch_version(environment: Path) -> str:
    found = list(environment.glob("lib/python3.*/site-packages/torch-*.dist-info"))
    return found[0].name.removeprefix("torch-").removesuffix(".dist-info") if found else "none"


def linked_share(environment: Path) -> tuple[int, int]:
    """(files with more than one link, files) in the environment."""
    files = [path for path in environment.rglob("*") if path.is_file() and not path.is_symlink()]
    return sum(path.stat().st_nlink > 1 for path in files), len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--card", default="recbole-sasrec", help="the card whose requirements are built")
    parser.add_argument("--dir", default=None, help="where the temporary folder goes (default: the system's)")
    args = parser.parse_args()

    requirements = list(find_submission(args.card).card.requirements)
    print(f"requirements of {args.card}: {', '.join(requirements)}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="llm4rec-perf-envs-", dir=args.dir) as tmp:
        root = Path(tmp)
        uv_env, uv_seconds = timed(build_with_uv, requirements, root)
        print(f"uv: torch {torch_version(uv_env)}", file=sys.stderr)
        pip_env, pip_seconds = timed(build_with_pip, requirements, root)
        print(f"pip: torch {torch_version(pip_env)}", file=sys.stderr)

        (uv_mb,), (pip_mb,) = du_mb(uv_env), du_mb(pip_env)
        cache_mb, added_mb = du_mb(root / "uv-cache", uv_env)
        linked, files = linked_share(uv_env)
        print(f"uv env: {uv_mb:.0f} MB by du; {linked} of its {files} files are hard links into uv's cache "
              f"({cache_mb:.0f} MB, shared by every environment); beyond the cache it adds {added_mb:.0f} MB "
              f"(bytecode, the virtualenv)", file=sys.stderr)
        print(f"pip env: {pip_mb:.0f} MB by du", file=sys.stderr)
    print(f"uv_vs_pip_speedup={pip_seconds / uv_seconds:.2f} env_mb_uv={uv_mb:.0f} env_mb_pip={pip_mb:.0f}")


if __name__ == "__main__":
    main()
