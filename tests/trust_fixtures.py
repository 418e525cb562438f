"""Helpers shared by the trust pass tests: a model fitted in process with its test pass,
as a run hands them to the passes, and one trust pass run alone on zeroshot/ml-100k."""
from __future__ import annotations

from pathlib import Path

from benchmark.api import FitContext, Recommender, find_submission
from benchmark.data import prepare
from benchmark.data.views import TaskViews, build_views
from benchmark.executors.inprocess import InProcessRecommender
from benchmark.families import family
from benchmark.runner import run_one
from benchmark.tasks import load_task
from benchmark.tasks.schema import TaskSpec, TrustSpec
from benchmark.trust import TrustRun

# Every trust pass that a task's `trust:` block can switch on or off by name.
TRUST_PASSES = ("position_bias", "exposure", "fairness", "counterfactual", "robustness", "poisoning",
                "text_attack", "memorization")


def trust_run(model: Recommender, task: TaskSpec, views: TaskViews, seed: int = 0) -> TrustRun:
    """The model fitted in this process and its test pass, as a run hands them to the passes."""
    task_family = family(task.family)
    views = task_family.for_seed(views, task, seed)
    model = InProcessRecommender(model)
    model.fit(views.train, FitContext(seed=seed))
    call = task_family.test_call(model, views.train, task)
    evaluation = task_family.evaluate_part(call, views.test, task, views.train, "test-model", "test")
    return TrustRun(task, views, seed, "test-model", "id-from-scratch", model, call,
                    evaluation.per_user())


def zeroshot_pass_metrics(folder: Path, trust_pass: str, spec: dict, users: int, prefix: str) -> dict[str, float]:
    """The `trust_pass` pass alone (set to `spec`, every other pass off), on the first
    `users` users of zeroshot/ml-100k, in process: the run's metrics named `prefix...`."""
    task = load_task("zeroshot/ml-100k")
    trust = {name: None for name in TRUST_PASSES if name != trust_pass} | {trust_pass: spec}
    task = task.model_copy(update={"trust": TrustSpec.model_validate(trust)})
    prepared = prepare(task, log=lambda _: None)
    views = build_views(task, prepared)
    result = run_one(find_submission(folder), task, 0, prepared, views, None, limit_users=users, sandbox=False)
    assert result.status == "FINISHED", result.reason
    return {k: v for k, v in result.costs.items() if k.startswith(prefix)}
