"""Zero-shot pointwise ranking with a causal LM: each candidate is scored by the model's
log-likelihood of its text after the task's prompt and an answer lead-in. The scoring
(one prompt forward pass per user, its KV cache shared by the candidates) lives in
benchmark.kits.llm, shared with smollm2-icl."""
from benchmark.kits.llm.adapters import PointwiseLLM


class SmolLM2Pointwise(PointwiseLLM):
    """Hyperparameters: model, dtype, device, threads, length_normalize, method,
    max_batch_tokens, answer_lead (see benchmark.kits.llm.adapters.PointwiseLLM)."""
