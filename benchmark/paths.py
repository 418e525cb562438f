"""Where the harness looks for task files, submissions and its caches."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parents[1]


def search_dirs(env_var: str, folder: str) -> list[Path]:
    """Folders named by `env_var` (os.pathsep-separated), else ./folder and the repo's."""
    if os.environ.get(env_var):
        return [Path(p).resolve() for p in os.environ[env_var].split(os.pathsep) if p]
    dirs = [Path.cwd() / folder, REPO_ROOT / folder]
    unique = dict.fromkeys(d.resolve() for d in dirs if d.is_dir())
    return list(unique)


def cache_dir() -> Path:
    root = Path(os.environ.get("LLM4REC_CACHE", Path.home() / ".cache" / "llm4rec"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def assets_root() -> Path:
    """Unpacked offline assets: $LLM4REC_ASSETS, else <cache>/assets."""
    root = Path(os.environ["LLM4REC_ASSETS"]) if os.environ.get("LLM4REC_ASSETS") else cache_dir() / "assets"
    root.mkdir(parents=True, exist_ok=True)
    return root


def memo_in_cache(file_name: str, key: str, compute: Callable[[], Any]) -> Any:
    """`compute()` once per `key`: kept in `<cache>/<file_name>` (a JSON object, replaced
    atomically), so later processes read it instead."""
    path = cache_dir() / file_name
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        known[key] = compute()
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1, sort_keys=True))
        tmp.replace(path)
    return known[key]
