"""`llm4rec validate`: the adapter-contract checks on a tiny generated task."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmark.api import find_submission
from benchmark.data import prepare
from benchmark.data.views import build_views
from benchmark.specs import SpecError
from benchmark.tasks import load_task_file

CONTRACT_TASK = Path(__file__).parent / "tasks" / "contract.yaml"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


def validate_submission(ref: str) -> list[Check]:
    from benchmark.runner import run_one

    checks: list[Check] = []
    try:
        submission = find_submission(ref)
        card = submission.card
        checks.append(Check("card", True, f"{card.name} {card.version} ({card.paradigm})"))
        cls = submission.model_class()
        checks.append(Check("entrypoint", True, f"{card.entrypoint} -> {cls.__name__}"))
    except SpecError as error:
        return checks + [Check("card and entrypoint", False, str(error))]
    task = load_task_file(CONTRACT_TASK)
    prepared = prepare(task, log=lambda _: None)
    views = build_views(task, prepared)
    seed = task.seeds[0]
    first = run_one(submission, task, seed, prepared, views, store=None)
    if first.status != "FINISHED":
        return checks + [Check("fit and score", False, first.reason or "")]
    shown = ", ".join(f"{k}={v:.3f}" for k, v in first.metrics.items())
    checks.append(Check("fit and score (shape, dtype, finite on every batch)", True, shown))
    second = run_one(submission, task, seed, prepared, views, store=None)
    same = second.status == "FINISHED" and second.metrics == first.metrics
    checks.append(Check("same seed, same metrics", same, "" if same else
                        f"second run gave {second.metrics or second.reason}"))
    return checks
