"""`llm4rec validate`: the adapter-contract checks on tiny generated tasks, one per task
family that can evaluate the model (benchmark.families: which capability serves each
family, and whether it needs full ranking over the catalogue)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmark.api import Submission, find_submission
from benchmark.data import prepare
from benchmark.data.views import build_views
from benchmark.families import FAMILIES
from benchmark.specs import SpecError
from benchmark.tasks import TaskSpec, load_task_file

TASKS_DIR = Path(__file__).parent / "tasks"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


def validate_submission(ref: str) -> list[Check]:
    checks: list[Check] = []
    try:
        submission = find_submission(ref)
        card = submission.card
        checks.append(Check("card", True, f"{card.name} {card.version} ({card.paradigm})"))
        cls = submission.model_class()
        checks.append(Check("entrypoint", True, f"{card.entrypoint} -> {cls.__name__}"))
    except SpecError as error:
        return checks + [Check("card and entrypoint", False, str(error))]
    except SyntaxError as error:  # the submission's code, not the harness: name its file and line
        return checks + [Check("entrypoint", False, _syntax_error(error))]
    families = [f for f in FAMILIES.values() if f.serves(cls)]
    if not families:
        return checks + [Check("capabilities", False, "implements none of score(), recommend(), predict() "
                                                      "in a way some task family can evaluate")]
    for task_family in families:
        capability = next(c for c in task_family.capabilities if cls.implements(c))
        checks += _contract_checks(submission, load_task_file(TASKS_DIR / task_family.contract_task), capability)
    return checks


def _syntax_error(error: SyntaxError) -> str:
    """`file line N: SyntaxError: message in `the line``."""
    code = (error.text or "").strip()
    return f"{error.filename} line {error.lineno}: SyntaxError: {error.msg}" + (f" in `{code}`" if code else "")


def _contract_checks(submission: Submission, task: TaskSpec, capability: str) -> list[Check]:
    from benchmark.runner import run_one

    prepared = prepare(task, log=lambda _: None)
    views = build_views(task, prepared)
    seed = task.seeds[0]
    first = run_one(submission, task, seed, prepared, views, store=None)
    label = f"{task.family}: fit and {capability}"
    if first.status != "FINISHED":
        return [Check(label, False, first.reason or "")]
    shown = ", ".join(f"{k}={v:.3f}" for k, v in first.metrics.items())
    second = run_one(submission, task, seed, prepared, views, store=None)
    same = second.status == "FINISHED" and second.metrics == first.metrics
    return [Check(f"{label} (type, dtype, shape, range on every batch)", True, shown),
            Check(f"{task.family}: same seed, same metrics", same,
                  "" if same else f"second run gave {second.metrics or second.reason}")]
