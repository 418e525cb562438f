"""Pointwise LLM scoring: the shared-prefix KV cache against naive scoring.

SmolLM2-135M-Instruct (the offline asset) scores 20 candidates for each of 20 ml-100k
users: history = the user's first 20 items in time order, candidates = the 21st item
and 19 items the user never rated (seeded), as "Title (year)"; the task's default
prompt (benchmark.kits.llm.prompts.DEFAULT_TEMPLATE) in the chat template, then the answer
lead-in. Each candidate's log-likelihood is computed

- cached: the prompt runs once, its KV cache serves all candidates, packed into one
  forward pass (benchmark.kits.llm.pointwise.score_candidates, method "tree"; "batch" is
  also timed, not in the last line);
- naive: one full forward pass over prompt + candidate per candidate
  (score_candidates_naive), with the very same token ids.

The methods alternate user by user (so a change of machine load hits both alike),
after one warm-up user each. Tokens computed = positions run through the model.

    PYTHONPATH=. python perf/llm_scoring.py [--users 20] [--candidates 20] [--dtype float32]

Last line: speedup=X tokens_ratio=Y max_abs_logprob_diff=Z (naive over cached; the
difference in float32 must be <= 1e-3). On a GPU the line adds the cached method's
throughput (gpu_tokens_per_s) and its utilisation of the GPU's peak
(gpu_util_of_peak: model FLOP/s, 2 x parameters per token computed, over the FLOP/s of
an 8192^3 matrix product in the model's dtype timed in the same command).
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from benchmark.api import Catalog
from benchmark.data.assets import fetch_asset
from benchmark.data.datasets.atomic import read_atomic_folder
from benchmark.kits.llm import (
    ANSWER_LEAD,
    DEFAULT_TEMPLATE,
    Usage,
    load_causal_lm,
    model_prompt,
    render,
    score_candidates,
    score_candidates_naive,
)
from benchmark.progress import track


def ml100k_users(n_users: int, n_candidates: int, history_len: int, seed: int):
    """[(history texts, candidate texts)] for the first users with enough ratings."""
    tables = read_atomic_folder(fetch_asset("ml-100k", log=lambda *_: None), "ml-100k")
    items = tables["items"].rename(columns={"item_id": "original_id"})
    texts = Catalog(len(items), items.reset_index(drop=True)).item_texts()
    dense = {original: i for i, original in enumerate(items["original_id"])}
    inter = tables["interactions"].sort_values(["user_id", "timestamp"], kind="stable")
    rng = np.random.default_rng(seed)
    out = []
    for _, rows in inter.groupby("user_id", sort=True):
        sequence = [dense[i] for i in rows["item_id"]]
        if len(sequence) <= history_len:
            continue
        history, target = sequence[:history_len], sequence[history_len]
        pool = np.setdiff1d(np.arange(len(texts)), sequence)
        candidates = rng.permutation(np.concatenate([[target], rng.choice(pool, n_candidates - 1, replace=False)]))
        out.append(([texts[i] for i in history], [texts[i] for i in candidates]))
        if len(out) == n_users:
            return out
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--history", type=int, default=20)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default=None, help="default: CUDA when available, else CPU")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    started = time.perf_counter()
    lm = load_causal_lm(args.model, args.device, args.dtype)
    print(f"model {lm.identity['llm.model']} ({lm.identity['llm.quantization']}, {lm.identity['llm.dtype']}) "
          f"on {lm.device}, {torch.get_num_threads()} threads, loaded in {time.perf_counter() - started:.1f}s; "
          f"load average {os.getloadavg()[0]:.1f}")
    users = ml100k_users(args.users + 1, args.candidates, args.history, args.seed)
    prompts = [(model_prompt(lm.tokenizer, render(DEFAULT_TEMPLATE, h, c), ANSWER_LEAD), c) for h, c in users]
    warmup, prompts = prompts[0], prompts[1:]
    for method in ("tree", "batch"):
        score_candidates(lm, warmup[0], warmup[1], method=method)
    score_candidates_naive(lm, warmup[0], warmup[1][:2])
    lm.prefix_cache.pop("shared", None)  # the timed runs compute the shared segment themselves

    usage = {m: Usage() for m in ("tree", "batch", "naive")}
    seconds = dict.fromkeys(usage, 0.0)
    scores = {m: [] for m in usage}
    for prompt, candidates in track(prompts, "users scored by tree, batch and naive"):
        for method in usage:
            t0 = time.perf_counter()
            if method == "naive":
                result = score_candidates_naive(lm, prompt, candidates, usage=usage[method])
            else:
                result = score_candidates(lm, prompt, candidates, method=method, usage=usage[method])
            seconds[method] += time.perf_counter() - t0
            scores[method].append(result)
    n = len(prompts)
    print(f"{n} users x {args.candidates} candidates; mean prompt {usage['naive'].prompt_tokens / n / args.candidates:.0f} "
          f"tokens, mean candidate {usage['tree'].continuation_tokens / n / args.candidates:.1f} tokens")
    for method in usage:
        diff = np.abs(np.concatenate(scores[method]) - np.concatenate(scores["naive"])).max()
        print(f"{method:>6}: {seconds[method]:8.2f}s ({seconds[method] / n:.3f}s per user)  "
              f"tokens computed {usage[method].computed_tokens:8d}  max |logprob - naive| {diff:.2e}")
    speedup = seconds["naive"] / seconds["tree"]
    tokens_ratio = usage["naive"].computed_tokens / usage["tree"].computed_tokens
    diff = np.abs(np.concatenate(scores["tree"]) - np.concatenate(scores["naive"])).max()
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    last = f"speedup={speedup:.2f} tokens_ratio={tokens_ratio:.2f} max_abs_logprob_diff={diff:.2e}"
    if lm.device.type == "cuda":
        last += " " + gpu_figures(lm, usage, seconds)
    print(last)


def gpu_figures(lm, usage: dict, seconds: dict) -> str:
    """Throughput of each method and the cached method's share of the peak FLOP/s."""
    params = sum(p.numel() for p in lm.model.parameters())
    dtype = next(lm.model.parameters()).dtype
    peak = matmul_flops(lm.device, dtype)
    print(f"GPU {torch.cuda.get_device_name(lm.device)}: {params / 1e6:.1f}M parameters in {dtype}; "
          f"reference {dtype} matrix product {peak / 1e12:.1f} TFLOP/s; "
          f"peak memory {torch.cuda.max_memory_allocated(lm.device) / 2**30:.2f} GiB")
    for method in usage:
        rate = usage[method].computed_tokens / seconds[method]
        print(f"{method:>6}: {rate:10.0f} tokens/s, {2 * params * rate / 1e12:7.3f} TFLOP/s "
              f"({2 * params * rate / peak:.2%} of the reference)")
    rate = usage["tree"].computed_tokens / seconds["tree"]
    return f"gpu_tokens_per_s={rate:.0f} gpu_util_of_peak={2 * params * rate / peak:.4f}"


def matmul_flops(device: torch.device, dtype: torch.dtype, n: int = 8192, repeats: int = 10) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize(device)
    return 2 * n**3 * repeats / (time.perf_counter() - t0)


if __name__ == "__main__":
    main()
