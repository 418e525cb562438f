"""In-context pointwise ranking: the zero-shot pointwise scorer with `demonstrations`
worked examples from other users' training sequences put before each user's prompt."""
from __future__ import annotations

import numpy as np

from benchmark.api import FitContext, ScoreRequest, TrainData
from benchmark.kits.llm.adapters import PointwiseLLM
from benchmark.kits.llm.prompts import (
    DEMONSTRATION_BLOCK,
    DEMONSTRATION_HEADER,
    OWN_PROMPT_HEADER,
    demonstrations_text,
    sample_demonstrations,
)


class SmolLM2InContext(PointwiseLLM):
    """Demonstrations are drawn once in fit with the run's seed (one spare, used in place
    of a demonstration drawn from the very user being scored); they are the same for
    every user, so their KV cache is computed once per run (pointwise.py)."""

    def __init__(self, demonstrations: int = 3, demo_history: int = 20, demo_candidates: int = 20,
                 **hyperparameters) -> None:
        super().__init__(demonstrations=demonstrations, demo_history=demo_history,
                         demo_candidates=demo_candidates, **hyperparameters)
        self.n_demonstrations = int(demonstrations)
        self.demo_history = int(demo_history)
        self.demo_candidates = int(demo_candidates)

    def fit(self, train: TrainData, ctx: FitContext) -> None:
        super().fit(train, ctx)
        rng = np.random.default_rng(ctx.seed)
        self.demos = sample_demonstrations(train, self.n_demonstrations + 1, rng,
                                           n_candidates=self.demo_candidates, history_len=self.demo_history)

    def prompt_parts(self) -> tuple[str, ...]:
        # The prompt's format; the examples themselves change with the seed.
        return (self.answer_lead, DEMONSTRATION_HEADER, DEMONSTRATION_BLOCK, OWN_PROMPT_HEADER)

    def decoding(self) -> str:
        return (super().decoding() + f", {self.n_demonstrations} in-context demonstrations "
                f"(history <= {self.demo_history}, {self.demo_candidates} candidates)")

    def shared_text(self, request: ScoreRequest, row: int, template: str) -> str:
        user = int(request.users[row])
        chosen = [d for d in self.demos if d.user != user][:self.n_demonstrations]
        return demonstrations_text(template, chosen)
