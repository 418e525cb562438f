"""Task specs (YAML files under tasks/) and finding them by id."""
from __future__ import annotations

from pathlib import Path

from benchmark.paths import search_dirs
from benchmark.specs import SpecError, load_spec, unknown_name_error
from benchmark.tasks.schema import TaskSpec

__all__ = ["TaskSpec", "available_tasks", "load_task", "load_task_file"]


TEMPLATES = "templates"  # tasks/templates/: family templates that task files `include:`


def available_tasks() -> dict[str, Path]:
    """task id -> file, for tasks/<family>/<dataset>.yaml in every task folder."""
    found: dict[str, Path] = {}
    for root in search_dirs("LLM4REC_TASKS", "tasks"):
        for path in sorted(root.glob("*/*.yaml")):
            if path.parent.name != TEMPLATES:
                found.setdefault(f"{path.parent.name}/{path.stem}", path)
    return found


def load_task_file(path: Path, expected_id: str | None = None) -> TaskSpec:
    spec = load_spec(TaskSpec, path)
    if expected_id is not None and spec.task != expected_id:
        raise SpecError(f"{path}: field 'task': '{spec.task}' must match the file's place '{expected_id}'")
    spec._source_file = Path(path)
    return spec


def load_task(ref: str | Path) -> TaskSpec:
    """A task by id (`sequential/ml-100k`) or by YAML path."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return load_task_file(path)
    known = available_tasks()
    if str(ref) not in known:
        raise unknown_name_error("task", str(ref), known)
    return load_task_file(known[str(ref)], expected_id=str(ref))
