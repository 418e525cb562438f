"""`llm4rec validate`: the adapter-contract checks on tiny generated tasks, one per
capability the model implements (score: sequential and top-K; predict: CTR)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmark.api import Recommender, Submission, find_submission
from benchmark.data import prepare
from benchmark.data.views import build_views
from benchmark.specs import SpecError
from benchmark.tasks import TaskSpec, load_task_file

TASKS_DIR = Path(__file__).parent / "tasks"
CONTRACT_TASKS = {"score": ["contract-sequential.yaml", "contract-topk.yaml", "contract-zeroshot.yaml"],
                  "predict": ["contract-ctr.yaml"]}
FULL_RANKING = ("contract-sequential.yaml", "contract-topk.yaml")


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
    capabilities = [name for name in CONTRACT_TASKS if getattr(cls, name) is not getattr(Recommender, name)]
    if not capabilities:
        return checks + [Check("capabilities", False, "implements neither score() nor predict()")]
    for capability in capabilities:
        for file in CONTRACT_TASKS[capability]:
            if file in FULL_RANKING and not cls.ranks_full_catalogue:
                continue  # a candidate-set ranker (LLMs): checked on the sampled-candidate task
            checks += _contract_checks(submission, load_task_file(TASKS_DIR / file), capability)
    return checks


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
