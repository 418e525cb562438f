"""The sandbox a submission's worker runs in: bubblewrap (bwrap) with Linux namespaces.

What the worker sees (docs/sandbox.md has the threat model):
- its own empty network namespace (no network at all, loopback included), its own PID
  namespace (no other process of the machine), IPC and UTS namespaces, a new session
  (no terminal), no capabilities; it dies with the harness;
- a filesystem holding only /usr, the Python it runs with (its prefix and base prefix),
  the `benchmark` package, the submission's folder (its package root, when it is a
  subpackage), the offline assets its card declares, and its environment's folder when
  it has requirements, all read-only; /dev and /proc of its own; a tmpfs /tmp (bounded
  by the memory limit) holding its private scratch folder, gone when it ends.
Not in it: the harness's data cache, the raw dataset files, the results store, the rest
of the repository, $HOME, the harness's environment variables.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import benchmark

INSTALL_HINT = ("install it (Debian/Ubuntu, as root: `apt-get install bubblewrap`), or pass --no-sandbox "
                "(evaluate(..., sandbox=False)) to run submissions in the harness's own process, "
                "unsandboxed, to debug your own model")
# Inside the sandbox: the tmpfs and the scratch folder in it (the worker's cwd and $HOME).
SANDBOX_TMP = "/tmp"
SANDBOX_SCRATCH = "/tmp/scratch"
# Variables of the harness's environment a worker may inherit (threading and locale
# settings); everything else (tokens, store URIs, cache paths) stays outside.
INHERITED_PREFIXES = ("LANG", "LC_", "TZ", "OMP_", "KMP_", "GOMP_", "MKL_", "OPENBLAS_", "TORCH_", "PYTORCH_",
                      "CUDA_VISIBLE_", "TOKENIZERS_PARALLELISM")


class SandboxUnavailable(RuntimeError):
    """bubblewrap is not installed (or cannot create namespaces here)."""


class SandboxError(RuntimeError):
    """The sandbox cannot be set up for this submission (a bad `assets:` entry, a path
    that would expose the harness's data)."""


def bwrap_path() -> str:
    """The bwrap executable, or SandboxUnavailable saying how to get it."""
    found = shutil.which("bwrap")
    if found is None:
        raise SandboxUnavailable(f"the sandbox needs bubblewrap (`bwrap`), which is not installed: {INSTALL_HINT}")
    return found


@functools.cache
def _probe(bwrap: str) -> str | None:
    """bwrap's complaint when it cannot make the namespaces here (None: it can)."""
    command = [bwrap, *_namespaces(), *_system(), "--", "/usr/bin/true"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as error:
        return str(error)
    return None if done.returncode == 0 else (done.stderr.strip() or f"exit status {done.returncode}")


def check_sandbox() -> None:
    """Raise SandboxUnavailable unless bwrap is installed and works on this machine."""
    bwrap = bwrap_path()
    problem = _probe(bwrap)
    if problem is not None:
        raise SandboxUnavailable(f"bubblewrap cannot create the sandbox's namespaces here ({problem}): "
                                 f"{INSTALL_HINT}")


@dataclass
class SandboxView:
    """The folders a worker sees, all read-only."""

    python: Path  # the interpreter the worker runs (the harness's, or its environment's)
    read_only: list[Path] = field(default_factory=list)
    assets_root: Path | None = None  # where declared assets are (their parent folder)

    def add(self, path: Path) -> None:
        path = Path(path)
        if path not in self.read_only:
            self.read_only.append(path)


def python_paths(python: Path, env_folder: Path | None) -> list[Path]:
    """What an interpreter needs: its environment (the harness's sys.prefix, or the
    submission's own environment folder), the Python it was made from (sys.base_prefix)
    and the installation its executable links to."""
    environment = Path(env_folder).resolve() if env_folder is not None else Path(sys.prefix)
    paths = [environment, Path(sys.base_prefix), Path(python).resolve().parent.parent]
    return [p for p in dict.fromkeys(paths) if p != Path("/") and p.exists()]


def package_root(folder: Path) -> Path:
    """The outermost package folder holding `folder` (a submission that is a subpackage
    imports its parent package, e.g. submissions/recbole/<variant>), else the folder."""
    folder = Path(folder).resolve()
    while (folder.parent / "__init__.py").is_file():
        folder = folder.parent
    return folder


def benchmark_package() -> Path:
    return Path(benchmark.__file__).resolve().parent


def build_view(python: Path, submission_folder: Path, assets: list[str], env_folder: Path | None,
               granted: list[Path] = ()) -> SandboxView:
    """The read-only view of one submission's worker; `granted`: local paths the
    operator gave it (see granted_paths)."""
    view = SandboxView(python=Path(python))
    for path in python_paths(python, env_folder):
        view.add(path)
    view.add(benchmark_package())
    view.add(package_root(submission_folder))
    if assets:
        view.assets_root = _add_assets(view, assets)
    for path in granted:
        view.add(path)
    _refuse_harness_data(view)
    return view


def operator_values(submission) -> list[str]:
    """The text values of the hyperparameters a variant set away from the card's own
    (a study's `model: qwen2.5-coder-0.5b`, `model: /path/to/weights`): what the operator,
    not the submitter, chose. The card's own values never count: a submitter does not
    choose what its sandbox shows."""
    from benchmark.api import load_card

    own = load_card(Path(submission.folder)).hyperparameters
    return [value for name, value in submission.card.hyperparameters.items()
            if isinstance(value, str) and value != own.get(name)]


def granted_assets(submission) -> list[str]:
    """Offline assets the operator handed the model (see operator_values): mounted like
    declared ones."""
    from benchmark.data.assets import ASSETS

    return [value for value in operator_values(submission) if value in ASSETS]


def granted_paths(submission) -> list[Path]:
    """Local files and folders the operator handed the model (see operator_values): an
    existing absolute path."""
    paths = []
    for value in operator_values(submission):
        if value.startswith(("/", "~")):
            path = Path(value).expanduser()
            if path.exists():
                paths.append(path.resolve())
    return paths


def _add_assets(view: SandboxView, names: list[str]) -> Path:
    from benchmark.data.datasets import DATASETS, AssetSource
    from benchmark.kits.llm.models import ready_asset_model
    from benchmark.paths import assets_root
    from benchmark.progress import log

    datasets = {d.source.asset: d.name for d in DATASETS.values() if isinstance(d.source, AssetSource)}
    for name in names:
        if name in datasets:
            raise SandboxError(f"card field 'assets': '{name}' is the source of dataset '{datasets[name]}' "
                               "(raw data, test interactions included); a submission cannot mount it")
        view.add(ready_asset_model(name, log=log).resolve())
    return assets_root().resolve()


def _refuse_harness_data(view: SandboxView) -> None:
    """Fail closed: no read-only path may hold or lie in the harness's data cache
    (processed splits, raw tables: test targets among them), but for the assets and
    environments kept there."""
    from benchmark.executors.envs import envs_root
    from benchmark.paths import assets_root, cache_dir

    cache = cache_dir().resolve()
    allowed = (assets_root().resolve(), envs_root().resolve())
    for path in view.read_only:
        inside = cache in path.parents and not any(a == path or a in path.parents for a in allowed)
        if cache == path or path in cache.parents or inside:
            raise SandboxError(f"the sandbox would expose the harness's data cache {cache} through {path}; "
                               "move the cache ($LLM4REC_CACHE) or that path out of the other")


def worker_environment(view: SandboxView, pythonpath: Path, extra: dict[str, str]) -> dict[str, str]:
    """The worker's environment variables: a few inherited settings, then its own."""
    inherited = {k: v for k, v in os.environ.items() if k.startswith(INHERITED_PREFIXES)}
    env = inherited | {
        "PATH": f"{view.python.parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": SANDBOX_SCRATCH, "TMPDIR": SANDBOX_TMP, "PYTHONPATH": str(pythonpath),
        "PYTHONNOUSERSITE": "1", "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
        "LLM4REC_WORKER": "1", "LLM4REC_SANDBOX": "1", "LLM4REC_WORKER_SCRATCH": SANDBOX_SCRATCH,
        "LLM4REC_CACHE": f"{SANDBOX_SCRATCH}/cache",
        "HF_HOME": f"{SANDBOX_SCRATCH}/huggingface", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
    }
    if view.assets_root is not None:
        env["LLM4REC_ASSETS"] = str(view.assets_root)
    return env | extra


def bwrap_command(view: SandboxView, command: list[str], tmp_bytes: int, passwd_fd: int, group_fd: int) -> list[str]:
    """The bwrap command line running `command` in the view. `passwd_fd` and `group_fd`
    are readable pipes holding the sandbox's /etc/passwd and /etc/group."""
    args = [bwrap_path(), *_namespaces(), "--hostname", "sandbox", *_system(),
            "--size", str(tmp_bytes), "--tmpfs", SANDBOX_TMP, "--dir", SANDBOX_SCRATCH,
             "--ro-bind-data", str(passwd_fd), "/etc/passwd", "--ro-bind-data", str(group_fd), "/etc/group"]
    for path in view.read_only:
        if path.parts[:2] != ("/", "usr"):
            args += ["--ro-bind", str(path), str(path)]
    for device in sorted(Path("/dev").glob("nvidia*")):  # a GPU, where there is one
        args += ["--dev-bind", str(device), str(device)]
    args += ["--chdir", SANDBOX_SCRATCH, "--"]
    return args + command


def _namespaces() -> list[str]:
    """Every namespace of its own (network, PID, IPC, UTS, user, cgroup), a new session,
    no capabilities, and death with the harness."""
    return ["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]


def _system() -> list[str]:
    """/usr read-only (with the usual /bin, /lib... links into it), /proc and /dev of its own."""
    args = ["--ro-bind", "/usr", "/usr"]
    for link in ("lib", "lib32", "lib64", "libx32", "bin", "sbin"):
        if Path(f"/usr/{link}").exists():
            args += ["--symlink", f"usr/{link}", f"/{link}"]
    return args + ["--proc", "/proc", "--dev", "/dev"]


PASSWD = "root:x:0:0:sandbox:/tmp/scratch:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"
