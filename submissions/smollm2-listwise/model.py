"""Zero-shot listwise ranking with a causal LM: the model writes the ranked list of the
candidates' titles, which is parsed back into candidates (benchmark.kits.llm.listwise)."""
from __future__ import annotations

import numpy as np

from benchmark.api import FitContext
from benchmark.kits.llm.adapters import TextModel, per_user
from benchmark.kits.llm.listwise import TitleIndex, empty_stats, generate, parse_ranking, ranking_scores
from benchmark.kits.llm.models import load_causal_lm
from benchmark.kits.llm.pointwise import Usage
from benchmark.kits.llm.prompts import model_prompt, render

# LLMRank's output instructions (Hou et al., ECIR 2024).
INSTRUCTION = ("\nPlease show me your ranking results with order numbers. Split your output with line "
               "break. You MUST rank the given candidate movies. You can not generate movies that are "
               "not in the given candidate list.")


class SmolLM2Listwise(TextModel):
    """Ranked candidates score n, n-1, ... in the order the model wrote them; candidates
    it did not name share the lowest score. Per-run counters in `llm_stats`."""

    def __init__(self, model: str = "smollm2", dtype: str = "auto", max_new_tokens: int = 128,
                 batch_size: int = 32, instruction: str = INSTRUCTION, answer_prefix: str = "",
                 stop: str = "\n\n", fuzzy_cutoff: float = 0.85, repetition_penalty: float = 1.0,
                 **hyperparameters) -> None:
        super().__init__(model=model, dtype=dtype, max_new_tokens=max_new_tokens, batch_size=batch_size,
                         instruction=instruction, answer_prefix=answer_prefix, stop=stop,
                         fuzzy_cutoff=fuzzy_cutoff, repetition_penalty=repetition_penalty, **hyperparameters)
        self.dtype = dtype
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = int(batch_size)
        self.instruction = str(instruction)
        self.answer_prefix = str(answer_prefix)
        self.stop = str(stop)
        self.fuzzy_cutoff = float(fuzzy_cutoff)
        self.repetition_penalty = float(repetition_penalty)
        self.llm_stats = empty_stats()
        self.outputs: list[str] = []  # the last request's raw outputs (for inspection)

    def load(self, ctx: FitContext) -> dict[str, str]:
        self.lm = load_causal_lm(self.model_name, self.device, self.dtype)
        self.network = self.lm.model  # frozen: 0 trainable parameters
        return self.lm.identity

    def decoding(self) -> str:
        return (f"listwise greedy generation, max_new_tokens={self.max_new_tokens}, "
                f"stop={self.stop!r}, answer_prefix={self.answer_prefix!r}, "
                f"repetition_penalty={self.repetition_penalty:g}, fuzzy_cutoff={self.fuzzy_cutoff:g}")

    def prompt_parts(self) -> tuple[str, ...]:
        return (self.instruction, self.answer_prefix)

    def _remember_catalog(self, catalog) -> None:
        super()._remember_catalog(catalog)
        self._catalogue_index = TitleIndex(self._texts)

    def score_users(self, request, histories, candidates, template) -> np.ndarray:
        prompts = [model_prompt(self.lm.tokenizer, render(template, h, c) + self.instruction, self.answer_prefix)
                   for h, c in zip(histories, candidates)]
        usage = Usage()
        extra = {"repetition_penalty": self.repetition_penalty} if self.repetition_penalty != 1.0 else {}
        outputs = generate(self.lm, prompts, max_new_tokens=self.max_new_tokens, batch_size=self.batch_size,
                           stop_strings=[self.stop] if self.stop else [], usage=usage, **extra)
        self.outputs = [self.answer_prefix + out for out in outputs]
        rows = []
        for text, cands in zip(self.outputs, candidates):
            parsed = parse_ranking(text, cands, self._catalogue_index, fuzzy_cutoff=self.fuzzy_cutoff)
            for key, value in parsed.stats().items():
                self.llm_stats[key] += value
            rows.append(ranking_scores(parsed, len(cands)))
        self.llm_stats["tokens_in"] += usage.prompt_tokens
        self.llm_stats["tokens_out"] += usage.continuation_tokens
        self.count(usage)
        return per_user(rows, request.n_candidates).astype(np.float32)
