"""Pointwise scoring: each candidate's log-likelihood as the continuation of a prompt.

    score(c) = sum_{j=1..|c|} log p(c_j | prompt, c_<j)      (mean over j if length-normalised)

The prompt but its last token is run through the model once, without the LM head;
its KV cache is then shared by all of the user's candidates, which are scored in one
forward pass after the prompt's last token (the root, whose output gives every
candidate's first token):

- "tree" (default): the root and the candidates' tokens are packed into one sequence
  after the prompt, each candidate token attending to the whole prompt, the root and
  its own earlier tokens only (a 4D attention mask, position ids restarting after the
  root for each candidate). No padding and no copies of the prompt's cache.
- "batch": rows [root, candidate] padded on the right to a common length, over the
  prompt's cache expanded to the batch (a 2D attention mask). For attention kernels
  that refuse a custom 4D mask.

`score_candidates_naive` runs one full forward per candidate (prompt + candidate) with
the same token ids; it is the reference of the equivalence test and of
perf/llm_scoring.py. A prompt given as several text segments is tokenized segment by
segment; the KV cache of the first segment (the chat header and, for in-context
prompting, the demonstrations: the same for every user of a run) is kept on the model
and reused by the next prompt that starts with the same segment.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from benchmark.kits.llm.models import CausalLM

METHODS = ("tree", "batch")


@dataclass
class Usage:
    """Token counts of a piece of work.

    prompt_tokens: the prompts' tokens, each prompt counted whole; continuation_tokens:
    candidate tokens scored (pointwise) or tokens generated (listwise); computed_tokens:
    the positions actually run through the model (prompts, cached parts excluded,
    candidates, padding included)."""

    prompt_tokens: int = 0
    continuation_tokens: int = 0
    computed_tokens: int = 0

    def __iadd__(self, other: "Usage") -> "Usage":
        self.prompt_tokens += other.prompt_tokens
        self.continuation_tokens += other.continuation_tokens
        self.computed_tokens += other.computed_tokens
        return self


# ------------------------------------------------------------------------ tokenization


def prompt_ids(lm: CausalLM, prompt: str | Sequence[str]) -> list[list[int]]:
    """Each segment's token ids (special tokens only on the first segment)."""
    segments = [prompt] if isinstance(prompt, str) else list(prompt)
    return [lm.encode(text, first=(i == 0)) if text else [] for i, text in enumerate(segments)]


def continuation_ids(lm: CausalLM, prompt: str | Sequence[str], text: str) -> list[int]:
    """The tokens of " " + `text` as they follow the prompt: the prompt's last line and
    the candidate are tokenized together and the line's own tokens are cut off (so a
    tokenizer that marks word starts sees the same boundary as in running text); when
    the line's tokens are not a prefix of the joint tokens, " " + text alone."""
    last = prompt if isinstance(prompt, str) else (list(prompt)[-1] if len(prompt) else "")
    anchor = last.rsplit("\n", 1)[-1]
    key = (anchor, text)
    cache = lm.prefix_cache.setdefault("continuations", {})
    if key not in cache:
        if len(cache) > 200_000:
            cache.clear()
        head = lm.encode(anchor) if anchor else []
        joint = lm.encode(anchor + " " + text)
        ids = joint[len(head):] if joint[:len(head)] == head else lm.encode(" " + text)
        if not ids:
            raise ValueError(f"candidate text {text!r} has no tokens")
        cache[key] = ids
    return cache[key]


# ---------------------------------------------------------------------------- helpers


def _log_probs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[targets], in float32, without a second [.., vocab] buffer."""
    logits = logits.float()
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def _snapshot(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(layer.keys, layer.values) for layer in cache.layers]


def _cache_from(snapshot, batch: int = 1):
    from transformers import DynamicCache

    if batch == 1:
        return DynamicCache(ddp_cache_data=snapshot)
    return DynamicCache(ddp_cache_data=[(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1))
                                        for k, v in snapshot])


def _decoder(lm: CausalLM):
    """The model without its LM head (the prompt needs no logits)."""
    decoder = lm.model.get_decoder() if hasattr(lm.model, "get_decoder") else None
    return decoder if decoder is not None and decoder is not lm.model else None


def _extend(lm: CausalLM, snapshot, ids: list[int]):
    """Run `ids` after the cached `snapshot` (None: from scratch); the new snapshot."""
    cache = _cache_from(snapshot) if snapshot is not None else None
    inputs = torch.tensor([ids], device=lm.device)
    decoder = _decoder(lm)
    if decoder is not None:
        out = decoder(input_ids=inputs, past_key_values=cache, use_cache=True)
    else:  # pragma: no cover - models without a separable decoder
        out = lm.model(input_ids=inputs, past_key_values=cache, use_cache=True, logits_to_keep=1)
    return _snapshot(out.past_key_values)


def _run_prompt(lm: CausalLM, segments: list[list[int]], usage: Usage, min_shared_tokens: int):
    """Run the prompt but its last token (the root of the candidates' tree, run with
    them); returns (KV snapshot or None, the root token id, the prompt's length). The
    first segment's KV cache is reused from the previous call when it is the same and
    has at least `min_shared_tokens` tokens (a short one, such as a chat header alone,
    costs less to recompute than the masked attention over a cache costs)."""
    flat = [t for segment in segments for t in segment]
    if not flat:
        raise ValueError("empty prompt")
    shared = segments[0][:len(flat) - 1] if len(segments) > 1 else []
    if len(shared) < max(min_shared_tokens, 1):
        shared = []
    rest = flat[len(shared):-1]
    snapshot = None
    if shared:
        entry = lm.prefix_cache.get("shared")
        if entry is None or entry[0] != tuple(shared):
            entry = (tuple(shared), _extend(lm, None, shared))
            lm.prefix_cache["shared"] = entry
            usage.computed_tokens += len(shared)
        snapshot = entry[1]
    if rest:
        snapshot = _extend(lm, snapshot, rest)
        usage.computed_tokens += len(rest)
    usage.prompt_tokens += len(flat)
    return snapshot, flat[-1], len(flat)


def _chunks(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Candidate indices grouped so each group's token count stays within `budget`."""
    groups, current, used = [], [], 0
    for i, n in enumerate(lengths):
        if current and used + n > budget:
            groups.append(current)
            current, used = [], 0
        current.append(i)
        used += n
    if current:
        groups.append(current)
    return groups


def _score_tree(lm: CausalLM, snapshot, root: int, P: int, conts: list[list[int]], group: list[int],
                usage: Usage) -> dict[int, torch.Tensor]:
    """Log-probs of the tokens of the candidates in `group`: the prompt's last token (the
    root) and each candidate's tokens but its last, packed in one sequence after the
    prompt's cache."""
    inputs, owner, offset = [root], [-1], [0]
    for g, i in enumerate(group):
        body = conts[i][:-1]
        inputs += body
        owner += [g] * len(body)
        offset += range(1, len(body) + 1)
    T = len(inputs)
    device, past = lm.device, P - 1
    owner_t = torch.tensor(owner, device=device)
    index = torch.arange(T, device=device)
    allowed = ((owner_t[:, None] == owner_t[None, :]) | (owner_t[None, :] == -1)) & (index[None, :] <= index[:, None])
    mask = torch.zeros((1, 1, T, past + T), dtype=lm.dtype, device=device)
    mask[0, 0, :, past:].masked_fill_(~allowed, torch.finfo(lm.dtype).min)
    positions = (past + torch.tensor(offset, device=device))[None]
    out = lm.model(input_ids=torch.tensor([inputs], device=device), attention_mask=mask, position_ids=positions,
                   past_key_values=_cache_from(snapshot) if snapshot is not None else None, use_cache=True)
    logits = out.logits[0]
    usage.computed_tokens += T
    # the row whose output predicts each candidate token: the root for its first token
    rows, targets, start = [], [], 1
    for i in group:
        n = len(conts[i])
        rows += [0] + list(range(start, start + n - 1))
        targets += conts[i]
        start += n - 1
    rows_t = torch.tensor(rows, device=device)
    lse = torch.logsumexp(logits.float(), dim=-1)
    logp = logits[rows_t, torch.tensor(targets, device=device)].float() - lse[rows_t]
    result, start = {}, 0
    for i in group:
        n = len(conts[i])
        result[i] = logp[start:start + n]
        start += n
    return result


def _score_batch(lm: CausalLM, snapshot, root: int, P: int, conts: list[list[int]], group: list[int],
                 usage: Usage) -> dict[int, torch.Tensor]:
    """Log-probs of the tokens of the candidates in `group`, as a right-padded batch of
    rows [root, candidate but its last token] over the prompt's cache expanded to the
    batch."""
    width = max(len(conts[i]) for i in group)
    device, C, past = lm.device, len(group), P - 1
    ids = torch.full((C, width), lm.pad_token_id, dtype=torch.long)
    targets = torch.zeros((C, width), dtype=torch.long)
    valid = torch.zeros((C, width), dtype=torch.bool)
    for row, i in enumerate(group):
        n = len(conts[i])
        ids[row, :n] = torch.tensor([root] + conts[i][:-1])
        targets[row, :n] = torch.tensor(conts[i])
        valid[row, :n] = True
    mask = torch.cat([torch.ones((C, past), dtype=torch.long), valid.long()], dim=1)
    positions = (past + torch.arange(width)).expand(C, -1)
    cache = _cache_from(snapshot, C) if snapshot is not None else None
    out = lm.model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                   past_key_values=cache, use_cache=True)
    logp = _log_probs(out.logits, targets.to(device))
    usage.computed_tokens += C * width
    return {i: logp[row, :len(conts[i])] for row, i in enumerate(group)}


# ------------------------------------------------------------------------------- API


def score_candidates(lm: CausalLM, prompt: str | Sequence[str], candidate_texts: Sequence[str],
                     length_normalize: bool = False, method: str = "tree", max_batch_tokens: int = 2048,
                     usage: Usage | None = None, min_shared_tokens: int = 64) -> np.ndarray:
    """Log-likelihood of each candidate's text after the prompt, float64 [n_candidates]:
    the sum over its tokens, or their mean with `length_normalize`. The prompt runs once
    and its KV cache serves all candidates (`method` "tree" or "batch", see the module's
    doc); candidates are scored in groups of at most `max_batch_tokens` tokens. A first
    segment of `min_shared_tokens` or more tokens keeps its KV cache for the next call."""
    if method not in METHODS:
        raise ValueError(f"method {method!r}: expected one of {METHODS}")
    usage = usage if usage is not None else Usage()
    conts = [continuation_ids(lm, prompt, text) for text in candidate_texts]
    if not conts:
        return np.zeros(0)
    with torch.inference_mode():
        snapshot, root, P = _run_prompt(lm, prompt_ids(lm, prompt), usage, min_shared_tokens)
        lengths = [len(c) for c in conts]
        if method == "batch":  # group similar lengths, so padding stays small
            order = sorted(range(len(conts)), key=lambda i: lengths[i])
            groups = [[order[j] for j in g] for g in _chunks([lengths[i] for i in order], max_batch_tokens)]
        else:
            groups = _chunks(lengths, max_batch_tokens)
        step = _score_tree if method == "tree" else _score_batch
        totals = np.zeros(len(conts))
        for group in groups:
            for i, values in step(lm, snapshot, root, P, conts, group, usage).items():
                totals[i] = float(values.double().sum())
    usage.continuation_tokens += sum(len(c) for c in conts)
    if length_normalize:
        totals = totals / np.array([len(c) for c in conts], dtype=np.float64)
    return totals


def score_candidates_naive(lm: CausalLM, prompt: str | Sequence[str], candidate_texts: Sequence[str],
                           length_normalize: bool = False, usage: Usage | None = None) -> np.ndarray:
    """The reference: one full forward pass over prompt + candidate per candidate, with the
    same token ids as `score_candidates`."""
    usage = usage if usage is not None else Usage()
    ids = [t for segment in prompt_ids(lm, prompt) for t in segment]
    totals = np.zeros(len(candidate_texts))
    with torch.inference_mode():
        for i, text in enumerate(candidate_texts):
            cont = continuation_ids(lm, prompt, text)
            out = lm.model(input_ids=torch.tensor([ids + cont], device=lm.device), use_cache=False,
                           logits_to_keep=len(cont) + 1)
            logp = _log_probs(out.logits[0, :-1], torch.tensor(cont, device=lm.device))
            totals[i] = float(logp.double().sum())
            if length_normalize:
                totals[i] /= len(cont)
            usage.prompt_tokens += len(ids)
            usage.continuation_tokens += len(cont)
            usage.computed_tokens += len(ids) + len(cont)
    return totals
