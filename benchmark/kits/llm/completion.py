"""complete() for the submissions that hold a causal LM: each prompt's greedy
continuation, as raw text (no chat template: the harness's memorization probes are
plain `id::text` lines to continue), batched with listwise.generate. One mixin,
`Completes`, serves them all (PointwiseLLM: smollm2-pointwise, smollm2-icl;
YesNoTuned: tallrec-lite, softprompt); a text encoder has no such method."""
from __future__ import annotations

import torch

from benchmark.api import CompletionRequest
from benchmark.kits.llm.listwise import generate
from benchmark.kits.llm.models import CausalLM
from benchmark.kits.llm.pointwise import Usage
from benchmark.kits.threads import torch_threads


class Completes:
    """Mixin of a Recommender holding a causal LM (`self.lm`, set by fit) and `threads`.
    The generated and prompt tokens are counted in `self.usage` (count_tokens)."""

    completion_batch_size = 16  # prompts per generate() batch

    def completion_lm(self) -> CausalLM:
        """The causal LM that completes (after fit)."""
        lm = getattr(self, "lm", None)
        if lm is None:
            raise RuntimeError(f"{type(self).__name__}: complete() called before fit()")
        return lm

    def completion_soft_prompt(self) -> torch.Tensor | None:
        """Embeddings put before every prompt (a tuned soft prompt), if any."""
        return None

    def count_tokens(self, usage: Usage) -> None:
        self.usage += usage

    def complete(self, request: CompletionRequest) -> list[str]:
        usage = Usage()
        with torch_threads(self.threads):
            texts = generate(self.completion_lm(), list(request.prompts), max_new_tokens=request.max_new_tokens,
                             batch_size=self.completion_batch_size, usage=usage,
                             stop_strings=request.stop, soft_prompt=self.completion_soft_prompt())
        self.count_tokens(usage)
        return texts
