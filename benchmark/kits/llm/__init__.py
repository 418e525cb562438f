"""Shared machinery of the LLM and text-encoder submissions: model loading with an
identity for the run's tags, prompts, pointwise likelihood scoring with a shared KV
cache, listwise generation (the harness reads generated rankings:
benchmark.recommendations) and text completion (`Completes`: complete())."""
from benchmark.kits.llm.completion import Completes
from benchmark.kits.llm.models import CausalLM, TextEncoder, load_causal_lm, load_text_encoder
from benchmark.kits.llm.pointwise import Usage, score_candidates, score_candidates_naive
from benchmark.kits.llm.prompts import (
    ANSWER_LEAD,
    DEFAULT_TEMPLATE,
    Demonstration,
    model_prompt,
    prompt_hash,
    render,
    sample_demonstrations,
)

__all__ = [
    "ANSWER_LEAD",
    "DEFAULT_TEMPLATE",
    "CausalLM",
    "Completes",
    "Demonstration",
    "TextEncoder",
    "Usage",
    "load_causal_lm",
    "load_text_encoder",
    "model_prompt",
    "prompt_hash",
    "render",
    "sample_demonstrations",
    "score_candidates",
    "score_candidates_naive",
]
