"""Zero-shot listwise ranking with a causal LM: the model writes the ranked list of the
candidates' titles, and recommend() returns that text; the harness reads it into
candidates and counts what is invented, repeated or left out (benchmark.recommendations)."""
from __future__ import annotations

from benchmark.api import FitContext, ScoreRequest
from benchmark.kits.llm.adapters import TextModel
from benchmark.kits.llm.completion import Completes
from benchmark.kits.llm.listwise import generate
from benchmark.kits.llm.models import load_causal_lm
from benchmark.kits.llm.pointwise import Usage
from benchmark.kits.llm.prompts import model_prompt, render
from benchmark.kits.threads import torch_threads

# LLMRank's output instructions (Hou et al., ECIR 2024).
INSTRUCTION = ("\nPlease show me your ranking results with order numbers. Split your output with line "
               "break. You MUST rank the given candidate movies. You can not generate movies that are "
               "not in the given candidate list.")


class SmolLM2Listwise(Completes, TextModel):
    """One generated text per user: the answer prefix, then the model's continuation."""

    def __init__(self, model: str = "smollm2", dtype: str = "auto", max_new_tokens: int = 128,
                 batch_size: int = 32, instruction: str = INSTRUCTION, answer_prefix: str = "",
                 stop: str = "\n\n", repetition_penalty: float = 1.0, **hyperparameters) -> None:
        super().__init__(model=model, dtype=dtype, max_new_tokens=max_new_tokens, batch_size=batch_size,
                         instruction=instruction, answer_prefix=answer_prefix, stop=stop,
                         repetition_penalty=repetition_penalty, **hyperparameters)
        self.dtype = dtype
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = int(batch_size)
        self.instruction = str(instruction)
        self.answer_prefix = str(answer_prefix)
        self.stop = str(stop)
        self.repetition_penalty = float(repetition_penalty)

    def load(self, ctx: FitContext) -> dict[str, str]:
        self.lm = load_causal_lm(self.model_name, self.device, self.dtype)
        self.network = self.lm.model  # frozen: 0 trainable parameters
        return self.lm.identity

    def decoding(self) -> str:
        return (f"listwise greedy generation, max_new_tokens={self.max_new_tokens}, "
                f"stop={self.stop!r}, answer_prefix={self.answer_prefix!r}, "
                f"repetition_penalty={self.repetition_penalty:g}")

    def prompt_parts(self) -> tuple[str, ...]:
        return (self.instruction, self.answer_prefix)

    def recommend(self, request: ScoreRequest) -> list[str]:
        histories, candidates, template = self.as_text(request)
        prompts = [model_prompt(self.lm.tokenizer, render(template, h, c) + self.instruction, self.answer_prefix)
                   for h, c in zip(histories, candidates)]
        usage = Usage()
        extra = {"repetition_penalty": self.repetition_penalty} if self.repetition_penalty != 1.0 else {}
        with torch_threads(self.threads):
            outputs = generate(self.lm, prompts, max_new_tokens=self.max_new_tokens, batch_size=self.batch_size,
                               stop_strings=[self.stop] if self.stop else [], usage=usage, **extra)
        self.usage += usage
        return [self.answer_prefix + out for out in outputs]
