"""What every task family provides. A family decides which split protocols it takes,
which views of a prepared dataset its models and evaluator see, which model method
serves it, how a part of the task is evaluated and which trust passes it runs."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar

if TYPE_CHECKING:
    from benchmark.api import Recommender, TrainData
    from benchmark.data import PreparedData
    from benchmark.data.views import EvalSet, LabelledRows, TaskViews
    from benchmark.scoring import Evaluation
    from benchmark.tasks.schema import TaskSpec
    from benchmark.trust import TrustRun


class TaskFamily:
    name: ClassVar[str]
    title: ClassVar[str]  # how reports head the family's tables
    unit: ClassVar[str] = "users"  # what one evaluated case is (a partial run counts these)
    split_methods: ClassVar[tuple[str, ...]]
    # The model methods that can serve the family, the first one implemented is used.
    capabilities: ClassVar[tuple[str, ...]]
    # A tiny generated task (benchmark/tasks/) on which `llm4rec validate` checks a model.
    contract_task: ClassVar[str]
    # Whether models must rank the whole catalogue (candidate-set rankers cannot).
    full_ranking: ClassVar[bool] = False
    needs_ctr_section: ClassVar[bool] = False
    sampled_candidates: ClassVar[bool] = False
    needs_prompt: ClassVar[bool] = False

    # ---------------------------------------------------------------- the task spec

    def check(self, task: "TaskSpec") -> None:
        """Raise ValueError where the spec does not fit the family (run by the schema)."""
        from benchmark.families.registry import FAMILIES

        if task.split.method not in self.split_methods:
            raise ValueError(f"split.method '{task.split.method}' does not fit family '{self.name}' "
                             f"(it takes {', '.join(self.split_methods)})")
        if self.needs_ctr_section != (task.ctr is not None):
            raise ValueError("a ctr task needs a 'ctr' section (label and feature fields), and only it")
        if self.sampled_candidates != (task.candidates.mode == "sampled"):
            sampling = " / ".join(f"'{f.name}'" for f in FAMILIES.values() if f.sampled_candidates)
            raise ValueError(f"candidates.mode 'sampled' is for (and required by) family {sampling}")
        if self.needs_prompt and not task.prompt:
            raise ValueError(f"a {self.name} task needs a 'prompt' (a Jinja template)")

    # ---------------------------------------------------------------- models

    def serves(self, model_class: type["Recommender"]) -> bool:
        """Whether a model class can be evaluated on this family (`llm4rec validate`)."""
        if self.full_ranking and not model_class.ranks_full_catalogue:
            return False
        return any(model_class.implements(capability) for capability in self.capabilities)

    # ---------------------------------------------------------------- data

    def build_views(self, task: "TaskSpec", prepared: "PreparedData") -> "TaskViews":
        raise NotImplementedError

    def for_seed(self, views: "TaskViews", task: "TaskSpec", seed: int) -> "TaskViews":
        """The views of one run (families that draw per seed override this)."""
        return views

    def run_tags(self, task: "TaskSpec", views: "TaskViews") -> dict[str, str]:
        """Tags that identify what the run was evaluated on (hashes of sampled sets)."""
        return {}

    def artifacts(self, views: "TaskViews") -> dict[str, Any]:
        """Files stored with the run besides the per-user metrics."""
        return {}

    # ---------------------------------------------------------------- evaluation

    def evaluate_part(self, call: Callable, part: "EvalSet | LabelledRows", task: "TaskSpec",
                      train: "TrainData", name: str, label: str, show_progress: bool = False) -> "Evaluation":
        """Call the model (`call`: what `test_call` gave) over a task part; its metrics."""
        raise NotImplementedError

    def test_call(self, model: "Recommender", train: "TrainData", task: "TaskSpec") -> Callable:
        """The callable that the test pass uses (the model's method, maybe recorded)."""
        raise NotImplementedError

    def trust_metrics(self, run: "TrustRun") -> dict[str, float]:
        """The task's trust passes over the fitted model, after the test pass."""
        return {}
