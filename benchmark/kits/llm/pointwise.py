"""Pointwise scoring: each candidate's log-likelihood as the continuation of a prompt.

    score(c) = sum_{j=1..|c|} log p(c_j | prompt, c_<j)      (mean over j if length-normalised)

The prompt but its last token is run through the model once, without the LM head (the
prefix pass); its KV cache is then shared by all of the user's candidates, which are
scored after the prompt's last token (the root, whose output gives every candidate's
first token):

- "tree" (default): the root and the candidates' tokens are packed into one sequence
  after the prompt, each candidate token attending to the whole prompt, the root and
  its own earlier tokens only (a 4D attention mask, position ids restarting after the
  root for each candidate). No copies of the prompt's cache. Several users are scored
  together (`score_users`, `score_token_ids`): their prompts run as one right-padded
  batch (a plain causal pass: a right-padded row's real tokens never see its padding),
  then one tree row per user over the batch's caches, the padding masked out. The LM
  head runs only on the positions whose output predicts a candidate token.
- "batch": rows [root, candidate] padded on the right to a common length, over the
  prompt's cache expanded to the batch (a 2D attention mask), one user at a time. For
  attention kernels that refuse a custom 4D mask.

`score_token_ids` is the token-level entry point (the text functions tokenize and call
it; perf/llm_scoring.py feeds it synthetic token ids). `score_candidates_naive` runs one
full forward per candidate (prompt + candidate) with the same token ids; it is the
reference of the equivalence tests and of perf/llm_scoring.py. A prompt given as
several text segments is tokenized segment by segment; the KV cache of the first
segment (the chat header and, for in-context prompting, the demonstrations: the same
for every user of a run) is kept on the model and reused by the next prompt that starts
with the same segment.

This module imports only torch and numpy at load time (transformers lazily), so the perf
script can load it on a machine without the harness's other dependencies.
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

if TYPE_CHECKING:  # models.py is imported by the package; not needed at run time here
    from benchmark.kits.llm.models import CausalLM

METHODS = ("tree", "batch")
HEAD_ROWS_PER_CHUNK = 1024  # LM-head rows per matrix product: bounds the [rows, vocab] float32 buffer


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


def split_shared(segments: list[list[int]], min_shared_tokens: int) -> tuple[list[int], list[int]]:
    """(shared, own): the first segment is shared (its KV cache kept for the next prompt)
    when the prompt has several segments, the first has at least `min_shared_tokens`
    tokens (a short one, such as a chat header alone, costs less to recompute than the
    masked attention over a cache costs) and tokens follow it; else nothing is."""
    flat = [t for segment in segments for t in segment]
    if not flat:
        raise ValueError("empty prompt")
    first = segments[0]
    if len(segments) > 1 and len(first) >= max(min_shared_tokens, 1) and len(flat) > len(first):
        return list(first), flat[len(first):]
    return [], flat


# ---------------------------------------------------------------------------- helpers


def _log_probs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[targets], in float32, without a second [.., vocab] buffer."""
    logits = logits.float()
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def _snapshot(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(layer.keys, layer.values) for layer in cache.layers]


def _full_cache():
    """An empty KV cache that keeps every position of every layer. A model's own cache
    crops the keys of its sliding-window layers (Gemma 3: a 512-token window) to the
    window, which the tree's explicit masks, sized to the whole prompt, cannot address;
    with every key kept, the window is applied by the masks instead (`_tree_mask`)."""
    from transformers import DynamicCache

    return DynamicCache()


def _sliding_window(lm: CausalLM) -> int | None:
    """The window of the model's sliding-window attention layers, None without any."""
    config = _decoder(lm).config
    window = getattr(config, "sliding_window", None)
    return int(window) if window and "sliding_attention" in (getattr(config, "layer_types", None) or ()) else None


def _cache_from(snapshot, batch: int = 1):
    from transformers import DynamicCache

    if batch == 1:
        return DynamicCache(ddp_cache_data=snapshot)
    return DynamicCache(ddp_cache_data=[(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1))
                                        for k, v in snapshot])


@functools.lru_cache(maxsize=None)
def _cache_argument(forward_owner: type) -> str:
    """The name under which a forward takes the KV cache: `cache` from transformers 5.2x
    (`past_key_values` is deprecated there), `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(forward_owner.forward).parameters else "past_key_values"


def _forward(module: torch.nn.Module, cache, **inputs):
    """module(**inputs) with `cache` as the KV cache, under the name the module takes."""
    return module(**inputs, **{_cache_argument(type(module)): cache}, use_cache=True)


def _out_cache(out):
    """The cache a forward pass returned (`cache` from transformers 5.2x, else `past_key_values`)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def _decoder(lm: CausalLM) -> torch.nn.Module:
    """The model without its LM head (the prompt needs no logits, the candidates few)."""
    decoder = lm.model.get_decoder() if hasattr(lm.model, "get_decoder") else None
    if decoder is None or decoder is lm.model:
        raise ValueError(f"model {type(lm.model).__name__}: no separable decoder (get_decoder) to score with")
    return decoder


def _head_log_probs(lm: CausalLM, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) from final hidden states [n, hidden]: the LM head (and the final logit
    soft-capping of the models that have one, Gemma's) in chunks of rows, float32 [n]."""
    head = lm.model.get_output_embeddings()
    softcap = getattr(lm.model.config, "final_logit_softcapping", None)
    parts = []
    for start in range(0, hidden.shape[0], HEAD_ROWS_PER_CHUNK):
        logits = head(hidden[start:start + HEAD_ROWS_PER_CHUNK])
        if softcap is not None:
            logits = torch.tanh(logits / softcap) * softcap
        parts.append(_log_probs(logits, targets[start:start + HEAD_ROWS_PER_CHUNK]))
    return torch.cat(parts) if parts else hidden.new_zeros(0, dtype=torch.float32)


def _extend(lm: CausalLM, snapshot, ids: list[int]):
    """Run `ids` after the cached `snapshot` (None: from scratch); the new snapshot."""
    cache = _cache_from(snapshot) if snapshot is not None else _full_cache()
    out = _forward(_decoder(lm), cache, input_ids=torch.tensor([ids], device=lm.device))
    return _snapshot(_out_cache(out))


def _shared_snapshot(lm: CausalLM, shared: Sequence[int], usage: Usage):
    """The KV snapshot of `shared`, reused from the previous call when it is the same."""
    if not shared:
        return None
    key = tuple(shared)
    entry = lm.prefix_cache.get("shared")
    if entry is None or entry[0] != key:
        entry = (key, _extend(lm, None, list(key)))
        lm.prefix_cache["shared"] = entry
        usage.computed_tokens += len(key)
    return entry[1]


def _prefix_pass(lm: CausalLM, snapshot, bodies: list[list[int]], usage: Usage):
    """Run each user's prompt body after the shared `snapshot`, as one batch right-padded
    to the longest body, through the decoder with a plain causal mask: a real token only
    sees earlier positions, all of them real, so the padding needs no mask here (its
    keys are masked in the candidates' pass). Returns (cache with one row per body, or
    None when there is nothing to attend to; the cache's length)."""
    shared_len = snapshot[0][0].shape[2] if snapshot is not None else 0
    width = max(len(b) for b in bodies)
    cache = _cache_from(snapshot, len(bodies)) if snapshot is not None else None
    if width == 0:
        return cache, shared_len
    cache = cache if cache is not None else _full_cache()
    ids = torch.zeros((len(bodies), width), dtype=torch.long)
    for row, body in enumerate(bodies):
        ids[row, :len(body)] = torch.tensor(body, dtype=torch.long)
    out = _forward(_decoder(lm), cache, input_ids=ids.to(lm.device))
    usage.computed_tokens += ids.numel()
    return _out_cache(out), shared_len + width


@dataclass
class _TreeRows:
    """The candidates' pass of a batch of users, laid out on the host: one row per (user,
    candidate group), [root, every candidate's tokens but its last], right-padded."""

    ids: np.ndarray  # [rows, T] token ids (padding 0)
    owner: np.ndarray  # [rows, T] candidate slot in the row; -1 root; -2 padding
    positions: np.ndarray  # [rows, T] position ids
    past_len: np.ndarray  # [rows] real positions of the row's user in the cache
    cache_row: np.ndarray  # [rows] the user's row in the prefix cache
    flat_rows: np.ndarray  # [n scored tokens] index into rows x T of the output predicting the token
    targets: np.ndarray  # [n scored tokens] the token
    candidate: np.ndarray  # [n scored tokens] index of its candidate in `keys`
    keys: list[tuple[int, int]]  # (user, candidate) of each candidate index


def _tree_rows(rows: list[tuple[int, list[int]]], roots: dict[int, int], starts: dict[int, int],
               conts: Sequence[Sequence[Sequence[int]]], cache_rows: dict[int, int]) -> _TreeRows:
    """Lay out `rows`, each (user, candidate indices); `starts[u]` is the position of user
    u's root, which is also the number of real positions before it in the cache."""
    width = max(1 + sum(len(conts[u][i]) - 1 for i in group) for u, group in rows)
    n_rows = len(rows)
    ids = np.zeros((n_rows, width), dtype=np.int64)
    owner = np.full((n_rows, width), -2, dtype=np.int64)
    positions = np.zeros((n_rows, width), dtype=np.int64)
    flat_rows, targets, candidate, keys = [], [], [], []
    for r, (u, group) in enumerate(rows):
        ids[r, 0], owner[r, 0], positions[r, :] = roots[u], -1, starts[u]
        at = 1
        for slot, i in enumerate(group):
            tokens = conts[u][i]
            body = len(tokens) - 1
            ids[r, at:at + body] = tokens[:-1]
            owner[r, at:at + body] = slot
            positions[r, at:at + body] = starts[u] + np.arange(1, body + 1)
            # the root's output predicts the first token, each body token's the next one
            flat_rows.append(r * width + np.concatenate([[0], np.arange(at, at + body)]))
            targets.append(tokens)
            candidate.append(np.full(len(tokens), len(keys)))
            keys.append((u, i))
            at += body
    return _TreeRows(ids, owner, positions,
                     np.array([starts[u] for u, _ in rows]), np.array([cache_rows[u] for u, _ in rows]),
                     np.concatenate(flat_rows), np.concatenate([np.asarray(t) for t in targets]),
                     np.concatenate(candidate), keys)


def _tree_mask(layout: _TreeRows, cache_len: int, dtype: torch.dtype, device: torch.device,
               window: int | None = None) -> torch.Tensor | dict[str, torch.Tensor]:
    """Additive 4D mask [rows, 1, T, cache_len + T]: a row's tokens see its user's real
    cache positions; each candidate token the root and its own candidate's earlier tokens
    (padding only padding and the root, so no row is fully masked). With a sliding
    `window`, one mask per layer type: the sliding layers' also hides keys `window` or
    more positions back (the model's own rule, q - k < window)."""
    owner = torch.from_numpy(layout.owner).to(device)
    index = torch.arange(owner.shape[1], device=device)
    causal = index[None, :] <= index[:, None]
    own = (owner[:, None, :] == owner[:, :, None]) | (owner[:, None, :] == -1)
    past = torch.arange(cache_len, device=device)[None, :] < torch.from_numpy(layout.past_len).to(device)[:, None]
    allowed = torch.cat([past[:, None, :].expand(-1, owner.shape[1], -1), own & causal[None]], dim=-1)
    if window is None:
        return _additive(allowed, dtype)
    positions = torch.from_numpy(layout.positions).to(device)  # the cache's index is its position
    keys = torch.cat([torch.arange(cache_len, device=device).expand(len(positions), -1), positions], dim=1)
    near = positions[:, :, None] - keys[:, None, :] < window
    return {"full_attention": _additive(allowed, dtype), "sliding_attention": _additive(allowed & near, dtype)}


def _additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]


def _rows_cache(cache, single_pass: bool, n_users: int, cache_row: np.ndarray):
    """The prefix cache with one row per tree row of a pass: the cache itself when the
    rows are the users in order and no other pass follows (a pass appends to the cache
    it is given), else a fresh cache over the prefix's tensors, expanded (one user) or
    gathered."""
    if cache is None:
        return None
    if single_pass and np.array_equal(cache_row, np.arange(n_users)):
        return cache
    snapshot = _snapshot(cache)
    if np.array_equal(cache_row, np.arange(n_users)):
        return _cache_from(snapshot)
    if n_users == 1:
        return _cache_from(snapshot, len(cache_row))
    index = torch.from_numpy(cache_row).to(snapshot[0][0].device)
    return _cache_from([(k.index_select(0, index), v.index_select(0, index)) for k, v in snapshot])


def _score_tree_rows(lm: CausalLM, cache, cache_len: int, layout: _TreeRows, usage: Usage) -> torch.Tensor:
    """Run the candidates' pass over `cache` (one row per tree row); each candidate's
    summed log-likelihood (float64, on the device) in the order of `layout.keys`."""
    device = lm.device
    mask = _tree_mask(layout, cache_len, lm.dtype, device, _sliding_window(lm))
    out = _forward(_decoder(lm), cache, input_ids=torch.from_numpy(layout.ids).to(device), attention_mask=mask,
                   position_ids=torch.from_numpy(layout.positions).to(device))
    usage.computed_tokens += layout.ids.size
    hidden = out.last_hidden_state.reshape(-1, out.last_hidden_state.shape[-1])
    hidden = hidden.index_select(0, torch.from_numpy(layout.flat_rows).to(device))
    logp = _head_log_probs(lm, hidden, torch.from_numpy(layout.targets).to(device))
    totals = torch.zeros(len(layout.keys), dtype=torch.float64, device=device)
    return totals.index_add_(0, torch.from_numpy(layout.candidate).to(device), logp.double())


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
    out = _forward(lm.model, cache, input_ids=ids.to(device), attention_mask=mask.to(device),
                   position_ids=positions.to(device))
    logp = _log_probs(out.logits, targets.to(device))
    usage.computed_tokens += C * width
    return {i: logp[row, :len(conts[i])] for row, i in enumerate(group)}


# ------------------------------------------------------------------------------- API


def score_token_ids(lm: CausalLM, prompts: Sequence[Sequence[int]], continuations: Sequence[Sequence[Sequence[int]]],
                    shared: Sequence[int] = (), users_per_batch: int = 1, max_batch_tokens: int = 2048,
                    usage: Usage | None = None) -> list[np.ndarray]:
    """Summed log-likelihood of each user's candidates (float64 [n_candidates] per user),
    by the "tree" method: `prompts[u]` is user u's prompt after the `shared` tokens
    common to all users (whose KV cache is kept on `lm` for the next call), at least one
    token; `continuations[u]` its candidates' token ids. Users run `users_per_batch` at
    a time, sorted by prompt length so a batch pads little; a user's candidates are
    packed in rows of at most `max_batch_tokens` tokens."""
    if len(prompts) != len(continuations):
        raise ValueError(f"{len(prompts)} prompts but {len(continuations)} candidate lists")
    if users_per_batch < 1:
        raise ValueError(f"users_per_batch={users_per_batch}: must be at least 1")
    for u, (prompt, conts) in enumerate(zip(prompts, continuations)):
        if not len(prompt):
            raise ValueError(f"user {u}: empty prompt (it needs at least one token after the shared part)")
        if any(len(c) == 0 for c in conts):
            raise ValueError(f"user {u}: a candidate has no tokens")
    usage = usage if usage is not None else Usage()
    results = [np.zeros(len(c)) for c in continuations]
    order = sorted((u for u in range(len(prompts)) if len(continuations[u])), key=lambda u: len(prompts[u]))
    with torch.inference_mode():
        snapshot = _shared_snapshot(lm, shared, usage)
        for start in range(0, len(order), users_per_batch):
            batch = order[start:start + users_per_batch]
            cache, cache_len = _prefix_pass(lm, snapshot, [list(prompts[u][:-1]) for u in batch], usage)
            cache_rows = {u: row for row, u in enumerate(batch)}
            starts = {u: len(shared) + len(prompts[u]) - 1 for u in batch}
            roots = {u: int(prompts[u][-1]) for u in batch}
            rows = [(u, group) for u in batch
                    for group in _chunks([len(c) for c in continuations[u]], max_batch_tokens)]
            # as many tree rows per pass as users per batch (memory stays that of the batch)
            passes = [rows[first:first + len(batch)] for first in range(0, len(rows), len(batch))]
            for rows_of_pass in passes:
                layout = _tree_rows(rows_of_pass, roots, starts, continuations, cache_rows)
                pass_cache = _rows_cache(cache, len(passes) == 1, len(batch), layout.cache_row)
                totals = _score_tree_rows(lm, pass_cache, cache_len, layout, usage).cpu().numpy()
                for (u, i), value in zip(layout.keys, totals):
                    results[u][i] = value
    for prompt, conts in zip(prompts, continuations):
        usage.prompt_tokens += len(shared) + len(prompt)
        usage.continuation_tokens += sum(len(c) for c in conts)
    return results


def score_token_ids_naive(lm: CausalLM, prompt: Sequence[int], continuations: Sequence[Sequence[int]],
                          usage: Usage | None = None) -> np.ndarray:
    """The reference: one full forward pass over prompt + candidate per candidate; summed
    log-likelihoods, float64 [n_candidates]."""
    usage = usage if usage is not None else Usage()
    ids = list(prompt)
    totals = np.zeros(len(continuations))
    with torch.inference_mode():
        for i, cont in enumerate(continuations):
            out = lm.model(input_ids=torch.tensor([ids + list(cont)], device=lm.device), use_cache=False,
                           logits_to_keep=len(cont) + 1)
            logp = _log_probs(out.logits[0, :-1], torch.tensor(list(cont), device=lm.device))
            totals[i] = float(logp.double().sum())
            usage.prompt_tokens += len(ids)
            usage.continuation_tokens += len(cont)
            usage.computed_tokens += len(ids) + len(cont)
    return totals


def default_users_per_batch(lm: CausalLM) -> int:
    """128 users per forward pass on a GPU (the fastest of 16-128 for random Qwen2-0.5B
    and -1.5B on an H200, perf/llm_scoring.py), 1 on a CPU (where one prompt already
    fills the matrix products and padding would only add work)."""
    return 128 if lm.device.type == "cuda" else 1


def score_users(lm: CausalLM, prompts: Sequence[str | Sequence[str]], candidate_texts: Sequence[Sequence[str]],
                length_normalize: bool = False, users_per_batch: int | None = None, max_batch_tokens: int = 2048,
                usage: Usage | None = None, min_shared_tokens: int = 64) -> list[np.ndarray]:
    """Log-likelihood of each user's candidates after the user's prompt (float64
    [n_candidates] per user; sum over tokens, or mean with `length_normalize`), several
    users per forward pass ("tree"). `users_per_batch` None: `default_users_per_batch`
    (128 on a GPU: 10.8 GiB at 1.5B). Users whose prompts share the first segment share
    its KV cache."""
    users_per_batch = users_per_batch or default_users_per_batch(lm)
    usage = usage if usage is not None else Usage()
    conts = [[continuation_ids(lm, p, text) for text in texts] for p, texts in zip(prompts, candidate_texts)]
    by_shared: dict[tuple[int, ...], list[tuple[int, list[int]]]] = {}
    for u, prompt in enumerate(prompts):
        shared, own = split_shared(prompt_ids(lm, prompt), min_shared_tokens)
        by_shared.setdefault(tuple(shared), []).append((u, own))
    results: list[np.ndarray] = [np.zeros(0)] * len(prompts)
    for shared, users in by_shared.items():
        scores = score_token_ids(lm, [own for _, own in users], [conts[u] for u, _ in users], shared=shared,
                                 users_per_batch=users_per_batch, max_batch_tokens=max_batch_tokens, usage=usage)
        for (u, _), values in zip(users, scores):
            results[u] = values / np.array([len(c) for c in conts[u]], dtype=np.float64) if length_normalize \
                else values
    return results


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
    if not candidate_texts:
        return np.zeros(0)
    if method == "tree":
        return score_users(lm, [prompt], [candidate_texts], length_normalize, 1, max_batch_tokens, usage,
                           min_shared_tokens)[0]
    usage = usage if usage is not None else Usage()
    conts = [continuation_ids(lm, prompt, text) for text in candidate_texts]
    shared, own = split_shared(prompt_ids(lm, prompt), min_shared_tokens)
    totals = np.zeros(len(conts))
    with torch.inference_mode():
        cache, _ = _prefix_pass(lm, _shared_snapshot(lm, shared, usage), [own[:-1]], usage)
        snapshot = _snapshot(cache) if cache is not None else None
        lengths = [len(c) for c in conts]
        order = sorted(range(len(conts)), key=lambda i: lengths[i])  # similar lengths: little padding
        for group in ([order[j] for j in g] for g in _chunks([lengths[i] for i in order], max_batch_tokens)):
            for i, values in _score_batch(lm, snapshot, own[-1], len(shared) + len(own), conts, group,
                                          usage).items():
                totals[i] = float(values.double().sum())
    usage.prompt_tokens += len(shared) + len(own)
    usage.continuation_tokens += sum(lengths)
    return totals / np.array(lengths, dtype=np.float64) if length_normalize else totals


def score_candidates_naive(lm: CausalLM, prompt: str | Sequence[str], candidate_texts: Sequence[str],
                           length_normalize: bool = False, usage: Usage | None = None) -> np.ndarray:
    """The reference: one full forward pass over prompt + candidate per candidate, with the
    same token ids as `score_candidates`."""
    ids = [t for segment in prompt_ids(lm, prompt) for t in segment]
    conts = [continuation_ids(lm, prompt, text) for text in candidate_texts]
    totals = score_token_ids_naive(lm, ids, conts, usage)
    return totals / np.array([len(c) for c in conts], dtype=np.float64) if length_normalize else totals
