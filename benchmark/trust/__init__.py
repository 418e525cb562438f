"""Trust passes: measurements of how a fitted model behaves beside how well it ranks
(docs/trust.md). The test pass records what it ranked (recording.py); then each pass
that the task's `trust:` block sets and that applies to the family and the model runs
over the same fitted model (only poisoning fits again), and logs `trust.<pass>...`
metrics and its seconds as `cost.trust_seconds.<pass>`.

One module per pass, each with `applies(run) -> str | None` (None: it applies, else
why not) and `measure(run, spec) -> dict[str, float]`; passes() lists them in the order
they run. The metrics' arithmetic lives in benchmark.eval.trust.
"""
from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from benchmark.api import Recommender, TrainData
    from benchmark.data.views import EvalSet, TaskViews
    from benchmark.scoring import Evaluation
    from benchmark.tasks.schema import TaskSpec
    from benchmark.trust.recording import RecordingScorer

# Random streams of the passes: numpy generators seeded [eval_users.seed, run seed,
# stream]; 0 and 1 draw the zero-shot candidates, 2 is the position-bias pass.
STREAMS = {"position_bias": 2, "robustness": 3, "text_attack": 4, "poisoning": 5, "counterfactual": 6,
           "memorization": 7, "fairness": 8}


@dataclass
class TrustRun:
    """What a trust pass works from: the run's fitted model and its test pass."""

    task: "TaskSpec"
    views: "TaskViews"  # the run's views (this seed's candidates, --limit-users applied)
    seed: int
    name: str  # the submission's name, for messages
    paradigm: str
    model: "Recommender"  # fitted
    recorded: "RecordingScorer"  # what the test pass ranked, through the model's scorer
    per_user: pd.DataFrame  # the test pass's per-user metrics: user, then the task's metrics
    # A fresh model of the submission fitted on other training data, closed on exit
    # (poisoning); None where the run cannot fit another.
    fit_again: Callable[["TrainData"], AbstractContextManager["Recommender"]] | None = None

    @property
    def score(self) -> Callable:
        """The model as a score function (recommend() read into scores), unrecorded."""
        return self.recorded.score

    @property
    def family(self):
        from benchmark.families import family

        return family(self.task.family)

    @property
    def train(self) -> "TrainData":
        return self.views.train

    @property
    def test(self) -> "EvalSet":
        return self.views.test

    def rng(self, pass_name: str) -> np.random.Generator:
        return np.random.default_rng([self.task.eval_users.seed, self.seed, STREAMS[pass_name]])

    def first_users(self, n: int) -> "EvalSet":
        """The first `n` test users (the test sample is already a seeded draw)."""
        return self.test.subset(np.arange(min(n, len(self.test))))

    def visible_histories(self, part: "EvalSet") -> list[np.ndarray]:
        """Each user's history as the model sees it (cut to `history.max_len`)."""
        keep = self.task.history.max_len
        return [np.asarray(h[-keep:] if keep else h) for h in part.histories]

    def evaluate(self, part: "EvalSet", label: str, train: "TrainData | None" = None,
                 score: Callable | None = None, prompt: str | None = None) -> "Evaluation":
        """The family's evaluation of `part` (its metrics) with the run's model, or
        `score`; `train` replaces the training part (another catalogue), `prompt` the
        task's prompt template."""
        return self.family.evaluate_part(score or self.score, part, self._task(prompt), train or self.train,
                                         self.name, label)

    def _task(self, prompt: str | None) -> "TaskSpec":
        return self.task if prompt is None else self.task.model_copy(update={"prompt": prompt})

    def main_per_user(self, users: np.ndarray) -> np.ndarray:
        """The test pass's main score of these users (in this order)."""
        frame = self.per_user.drop_duplicates("user").set_index("user")
        return frame.loc[users, self.task.main_score].to_numpy(dtype=np.float64)

    def scores(self, part: "EvalSet", label: str, train: "TrainData | None" = None,
               score: Callable | None = None, prompt: str | None = None) -> np.ndarray:
        """The raw scores of `part` (checked like the test pass's), batch by batch."""
        from benchmark.scoring import score_batch

        out = []
        size = self.task.batch_size
        for start in range(0, len(part), size):
            rows = slice(start, start + size)
            candidates = None if part.candidates is None else part.candidates[rows]
            out.append(score_batch(score or self.score, self._task(prompt), train or self.train, part.users[rows],
                                   part.histories[rows], candidates,
                                   f"submission '{self.name}': score() on {label} batch {start // size}"))
        width = self.train.n_items if part.candidates is None else part.candidates.shape[1]
        return np.concatenate(out) if out else np.empty((0, width))


@dataclass(frozen=True)
class TrustPass:
    name: str  # the TrustSpec field that switches it on
    applies: Callable[[TrustRun], str | None]
    measure: Callable[[TrustRun, Any], dict[str, float]]


def passes() -> list[TrustPass]:
    from benchmark.trust import (counterfactual, exposure, fairness, memorization, poisoning, position,
                                 robustness, text_attack)

    modules = {"exposure": exposure, "fairness": fairness, "position_bias": position,
               "robustness": robustness, "counterfactual": counterfactual, "text_attack": text_attack,
               "memorization": memorization, "poisoning": poisoning}
    return [TrustPass(name, module.applies, module.measure) for name, module in modules.items()]


def run_passes(run: TrustRun, log: Callable[[str], None] | None = None) -> dict[str, float]:
    """Every pass that the task sets and that applies; its metrics and seconds."""
    if log is None:
        from benchmark.progress import log
    metrics: dict[str, float] = {}
    if run.task.trust is None:
        return metrics
    label = f"{run.task.task} · {run.name} seed {run.seed}"
    total = 0.0
    for trust_pass in passes():
        spec = getattr(run.task.trust, trust_pass.name)
        if spec is None:
            continue
        why_not = trust_pass.applies(run)
        if why_not is not None:
            log(f"{label}: {trust_pass.name} pass skipped ({why_not})")
            continue
        log(f"{label}: {trust_pass.name} pass")
        started = time.perf_counter()
        metrics |= trust_pass.measure(run, spec)
        seconds = time.perf_counter() - started
        metrics[f"cost.trust_seconds.{trust_pass.name}"] = seconds
        total += seconds
    metrics["cost.trust_seconds"] = total
    return metrics
