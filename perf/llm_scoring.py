"""Pointwise LLM scoring: the shared-prefix KV cache against naive scoring, and the GPU
throughput of scoring many users per forward pass.

Two modes.

**SmolLM2 on ml-100k** (default, `--model smollm2`): SmolLM2-135M-Instruct (the offline
asset) scores 20 candidates for each of 20 ml-100k users: history = the user's first 20
items in time order, candidates = the 21st item and 19 items the user never rated
(seeded), as "Title (year)"; the task's default prompt
(benchmark.kits.llm.prompts.DEFAULT_TEMPLATE) in the chat template, then the answer
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

**A random model of a real architecture** (`--arch qwen2-0.5b|qwen2-1.5b|tiny`): real
weights cannot travel to a lent GPU, so the model is built from its configuration
(hard-coded below) with random weights, in `--dtype` (bfloat16 by default), and scores
synthetic token-id users (seeded: a prompt of 300-500 tokens, 20 candidates of 8-16
tokens) with pointwise.score_token_ids, `--users-per-batch` users per forward pass
(each value timed over all `--users`, after one warm-up batch), and with one user per
pass for contrast. The first `--check-users` users are also scored naively (one full
forward per candidate) and compared. `--check-float32` adds a float32 reference: a copy
of the very same weights cast up to float32 (exact, so only the arithmetic differs),
scored naively (and batched, to check the batched path in float32 too), then freed;
against it the naive and the batched --dtype scores are each measured (max and mean
over candidates of |difference| in the summed log-likelihood and per scored token, the
difference over the candidate's token count), so the batched path's rounding error can
be judged against the naive path's own (in bfloat16 both are ~0.1 nats per sum of ~12
token log-probabilities, far over the 1e-2 that batched and naive agree to in float32).
Tokens/s counts the
positions a scorer needs (each prompt once, each candidate's tokens but its last, one
root per user), not padding. FLOP/s = 2 x non-embedding parameters x tokens/s
(attention and the LM head excluded; the line "with LM head" adds 2 x hidden x vocab per
scored candidate token), over the FLOP/s of an 8192^3 matrix product in the model's
dtype timed in the same command (on a CPU a 1024^3 one). This mode imports only torch,
transformers, numpy and the files pointwise.py and models.py (not the benchmark
package), so it runs where the harness's other dependencies are missing.

    python perf/llm_scoring.py --arch qwen2-1.5b --device cuda [--users 256] [--users-per-batch 16,32,64,128]

Last line: arch=... best_users_per_batch=B tokens_per_s=X util_of_peak=U
util_with_head=V max_abs_logprob_diff=D (batched against naive, in --dtype)
per_token_max_diff=P (the same per scored token), with --check-float32 also
bf16_err_naive=E bf16_err_batched=F (max |naive or batched in --dtype - naive float32|,
summed log-likelihoods; "bf16" is --dtype, bfloat16 by default) and
per_token_err_naive, per_token_err_batched (the same per scored token).
"""
from __future__ import annotations

import argparse
import copy
import gc
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

# Qwen2 configurations (the released config.json of Qwen/Qwen2-0.5B and Qwen/Qwen2-1.5B);
# "tiny" exercises the same code on a CPU.
ARCHS = {
    "qwen2-0.5b": dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                       intermediate_size=4864, vocab_size=151936, tie_word_embeddings=True),
    "qwen2-1.5b": dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                       intermediate_size=8960, vocab_size=151936, tie_word_embeddings=True),
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=128, vocab_size=1000, tie_word_embeddings=True),
}
QWEN2_COMMON = dict(hidden_act="silu", max_position_embeddings=32768, rms_norm_eps=1e-6, rope_theta=1e6,
                    use_sliding_window=False, attention_dropout=0.0)
LLM_KIT = Path(__file__).resolve().parents[1] / "benchmark" / "kits" / "llm"


def ml100k_users(n_users: int, n_candidates: int, history_len: int, seed: int):
    """[(history texts, candidate texts)] for the first users with enough ratings."""
    from benchmark.api import Catalog
    from benchmark.data.assets import fetch_asset
    from benchmark.data.datasets.atomic import read_atomic_folder

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
    parser.add_argument("--users", type=int, default=None, help="default: 20 (smollm2), 256 (--arch)")
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--history", type=int, default=20)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--arch", choices=sorted(ARCHS), default=None,
                        help="a random model of this architecture on synthetic token ids, instead of --model")
    parser.add_argument("--users-per-batch", default="16,32,64,128", help="--arch: comma-separated values to time")
    parser.add_argument("--check-users", type=int, default=3, help="--arch: users also scored naively")
    parser.add_argument("--check-float32", action="store_true",
                        help="--arch: also score the check users with a float32 copy of the weights, the reference")
    parser.add_argument("--single-users", type=int, default=32, help="--arch: users timed one per forward pass")
    parser.add_argument("--dtype", default=None, help="default: float32 (smollm2), bfloat16 (--arch)")
    parser.add_argument("--device", default=None, help="default: CUDA when available, else CPU")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.arch:
        run_architecture(args)
    else:
        run_smollm2(args)


# ----------------------------------------------------------------- SmolLM2 on ml-100k


def run_smollm2(args: argparse.Namespace) -> None:
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

    n_users = args.users or 20
    started = time.perf_counter()
    lm = load_causal_lm(args.model, args.device, args.dtype or "float32")
    print(f"model {lm.identity['llm.model']} ({lm.identity['llm.quantization']}, {lm.identity['llm.dtype']}) "
          f"on {lm.device}, {torch.get_num_threads()} threads, loaded in {time.perf_counter() - started:.1f}s; "
          f"load average {os.getloadavg()[0]:.1f}")
    users = ml100k_users(n_users + 1, args.candidates, args.history, args.seed)
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
    """FLOP/s of an n^3 matrix product in `dtype` on `device`, after 3 warm-up products."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    synchronize(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize(device)
    return 2 * n**3 * repeats / (time.perf_counter() - t0)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------- a random model of a real architecture


def load_kit_file(name: str):
    """benchmark/kits/llm/<name>.py as a module of its own: the package's __init__ imports
    the harness (pydantic, pandas, ...), absent where only torch and transformers are."""
    module_name = f"llm_kit_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, LLM_KIT / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses look their module up while building
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def random_model(arch: str, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """A Qwen2 causal LM of the architecture `arch` with random weights (transformers'
    initialisation, seeded), built on `device` in `dtype`, SDPA attention, eval mode."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**ARCHS[arch], **QWEN2_COMMON)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(config)
    model = model.to(dtype).eval()
    model.requires_grad_(False)
    return model


def synthetic_users(n_users: int, n_candidates: int, vocab: int, seed: int):
    """[(prompt token ids, [candidate token ids])]: prompts of 300-500 tokens, candidates
    of 8-16 tokens, ids uniform over the vocabulary (seeded)."""
    rng = np.random.default_rng(seed)
    users = []
    for _ in range(n_users):
        prompt = rng.integers(0, vocab, rng.integers(300, 501)).tolist()
        candidates = [rng.integers(0, vocab, rng.integers(8, 17)).tolist() for _ in range(n_candidates)]
        users.append((prompt, candidates))
    return users


def non_embedding_parameters(model: torch.nn.Module) -> int:
    """Parameters but the token embedding and the LM head (the same tensor when tied)."""
    skip = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    return sum(p.numel() for p in model.parameters() if id(p) not in skip)


def needed_tokens(users) -> tuple[int, int]:
    """(positions a tree scorer must run: each prompt, a root's worth included, and each
    candidate's tokens but its last; candidate tokens scored, i.e. LM-head rows)."""
    run = sum(len(prompt) + sum(len(c) - 1 for c in cands) for prompt, cands in users)
    scored = sum(len(c) for _, cands in users for c in cands)
    return run, scored


def batched_and_naive(pointwise, lm, users) -> tuple[np.ndarray, np.ndarray]:
    """Summed log-likelihoods of all `users`' candidates, flat: (batched, all users in one
    pass; naive, one full forward per candidate)."""
    batched = pointwise.score_token_ids(lm, [p for p, _ in users], [c for _, c in users],
                                        users_per_batch=len(users))
    naive = [pointwise.score_token_ids_naive(lm, p, c) for p, c in users]
    return np.concatenate(batched), np.concatenate(naive)


def float32_reference(pointwise, lm, users) -> tuple[np.ndarray, np.ndarray]:
    """batched_and_naive with a float32 copy of `lm`'s weights (cast up: exactly the same
    values), freed before returning so the timed runs have the device to themselves."""
    reference = copy.deepcopy(lm.model).to(torch.float32)
    try:
        scores = batched_and_naive(pointwise, type(lm)(None, reference, lm.device, {}), users)
    finally:
        del reference
        gc.collect()
        if lm.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(lm.device)
    return scores


def difference_stats(scores: np.ndarray, reference: np.ndarray, lengths: np.ndarray) -> dict[str, float]:
    """|scores - reference| over candidates: max and mean of the summed log-likelihood's,
    and of the same divided by each candidate's token count."""
    diff = np.abs(scores - reference)
    per_token = diff / lengths
    return {"max": float(diff.max()), "mean": float(diff.mean()),
            "token_max": float(per_token.max()), "token_mean": float(per_token.mean())}


def accuracy_table(pairs: dict[str, dict[str, float]], n_candidates: int) -> str:
    """One line per compared pair: the difference_stats figures, in nats."""
    lines = [f"accuracy over {n_candidates} candidates, |difference| in nats:  sum max   sum mean"
             f"  per-token max  per-token mean"]
    for name, stats in pairs.items():
        lines.append(f"  {name:<34} {stats['max']:9.2e} {stats['mean']:9.2e} {stats['token_max']:14.2e} "
                     f"{stats['token_mean']:15.2e}")
    return "\n".join(lines)


def time_scoring(pointwise, lm, users, users_per_batch: int) -> tuple[float, int]:
    """(seconds, positions computed with padding) to score all `users`, after one
    warm-up batch."""
    prompts, conts = [p for p, _ in users], [c for _, c in users]
    pointwise.score_token_ids(lm, prompts[:users_per_batch], conts[:users_per_batch], users_per_batch=users_per_batch)
    usage = pointwise.Usage()
    synchronize(lm.device)
    t0 = time.perf_counter()
    pointwise.score_token_ids(lm, prompts, conts, users_per_batch=users_per_batch, usage=usage)
    synchronize(lm.device)
    return time.perf_counter() - t0, usage.computed_tokens


def time_split(pointwise, lm, users, users_per_batch: int) -> str:
    """Where a scoring run's time goes: the prompts' pass and the candidates' pass, each
    timed between device synchronisations (one more run of all `users`)."""
    spent = {"_prefix_pass": 0.0, "_score_tree_rows": 0.0}
    originals = {name: getattr(pointwise, name) for name in spent}

    def timed(name):
        def run(*args, **kwargs):
            synchronize(lm.device)
            t0 = time.perf_counter()
            result = originals[name](*args, **kwargs)
            synchronize(lm.device)
            spent[name] += time.perf_counter() - t0
            return result
        return run

    for name in spent:
        setattr(pointwise, name, timed(name))
    try:
        t0 = time.perf_counter()
        pointwise.score_token_ids(lm, [p for p, _ in users], [c for _, c in users], users_per_batch=users_per_batch)
        total = time.perf_counter() - t0
    finally:
        for name, function in originals.items():
            setattr(pointwise, name, function)
    prompts, candidates = spent["_prefix_pass"], spent["_score_tree_rows"]
    return (f"time split at {users_per_batch} users per pass: prompts' pass {prompts / total:.0%}, candidates' pass "
            f"(with LM head) {candidates / total:.0%}, host and the rest {1 - (prompts + candidates) / total:.0%}")


def run_architecture(args: argparse.Namespace) -> None:
    models, pointwise = load_kit_file("models"), load_kit_file("pointwise")
    device = models.resolve_device(args.device)
    dtype = models.resolve_dtype(args.dtype or "bfloat16", device)
    import transformers

    started = time.perf_counter()
    model = random_model(args.arch, device, dtype)
    lm = models.CausalLM(None, model, device, {"llm.model": f"random {args.arch}"})
    n_users = args.users or 256
    users = synthetic_users(n_users, args.candidates, model.config.vocab_size, args.seed)
    params, non_embedding = sum(p.numel() for p in model.parameters()), non_embedding_parameters(model)
    run, scored = needed_tokens(users)
    print(f"random {args.arch}: {params / 1e6:.0f}M parameters ({non_embedding / 1e6:.0f}M non-embedding), "
          f"attention {model.config._attn_implementation}, on {device} (torch {torch.__version__}, "
          f"transformers {transformers.__version__}), built in {time.perf_counter() - started:.1f}s")
    print(f"{n_users} synthetic users x {args.candidates} candidates: mean prompt "
          f"{np.mean([len(p) for p, _ in users]):.0f} tokens, mean candidate "
          f"{np.mean([len(c) for _, cs in users for c in cs]):.1f} tokens; {run} positions to run, {scored} scored")

    check = users[:args.check_users]
    lengths = np.array([len(c) for _, cs in check for c in cs], dtype=float)
    name = str(dtype).removeprefix("torch.")
    if args.check_float32:
        batched32, naive32 = float32_reference(pointwise, lm, check)
        print(f"float32: max |batched - naive| over {len(check)} users: {np.abs(batched32 - naive32).max():.2e}")
    batched, naive = batched_and_naive(pointwise, lm, check)
    pairs = {f"batched {name} - naive {name}": difference_stats(batched, naive, lengths)}
    diff = pairs[f"batched {name} - naive {name}"]["max"]
    tolerance = 1e-2 if dtype in (torch.bfloat16, torch.float16) else 1e-4
    print(f"{name}: max |batched - naive| over {len(check)} users: {diff:.2e} "
          f"({'within' if diff <= tolerance else 'OVER'} {tolerance:g})")
    summary_errors = f"per_token_max_diff={pairs[f'batched {name} - naive {name}']['token_max']:.2e}"
    if args.check_float32:
        naive_err = difference_stats(naive, naive32, lengths)
        batched_err = difference_stats(batched, naive32, lengths)
        pairs = {f"naive {name} - naive float32": naive_err, f"batched {name} - naive float32": batched_err, **pairs}
        summary_errors += (f" bf16_err_naive={naive_err['max']:.2e} bf16_err_batched={batched_err['max']:.2e}"
                           f" per_token_err_naive={naive_err['token_max']:.2e}"
                           f" per_token_err_batched={batched_err['token_max']:.2e}")
    print(accuracy_table(pairs, len(lengths)))

    peak = matmul_flops(device, dtype, n=8192 if device.type == "cuda" else 1024)
    print(f"reference {dtype} matrix product: {peak / 1e12:.1f} TFLOP/s"
          + (f" on {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""))
    single = users[:args.single_users]
    seconds, _ = time_scoring(pointwise, lm, single, 1)
    single_rate = needed_tokens(single)[0] / seconds
    print(f"one user per pass: {len(single)} users in {seconds:.2f}s, {single_rate:,.0f} tokens/s, "
          f"{2 * non_embedding * single_rate / peak:.1%} of the reference")
    best = None
    for users_per_batch in [int(b) for b in args.users_per_batch.split(",")]:
        seconds, computed = time_scoring(pointwise, lm, users, users_per_batch)
        rate, flops = run / seconds, 2 * non_embedding * run / seconds
        with_head = flops + 2 * model.config.hidden_size * model.config.vocab_size * scored / seconds
        print(f"{users_per_batch:3d} users per pass: {seconds:6.2f}s, {rate:10,.0f} tokens/s "
              f"({computed / seconds:,.0f} with padding), {flops / 1e12:6.1f} TFLOP/s = {flops / peak:.1%} of the "
              f"reference; with LM head {with_head / 1e12:6.1f} TFLOP/s = {with_head / peak:.1%}")
        if best is None or rate > best[1]:
            best = (users_per_batch, rate, flops / peak, with_head / peak)
    print(time_split(pointwise, lm, users, best[0]))
    if device.type == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB")
    print(f"arch={args.arch} dtype={str(dtype).removeprefix('torch.')} best_users_per_batch={best[0]} "
          f"tokens_per_s={best[1]:.0f} util_of_peak={best[2]:.4f} util_with_head={best[3]:.4f} "
          f"max_abs_logprob_diff={diff:.2e} {summary_errors}")


if __name__ == "__main__":
    main()
