"""Pointwise scoring of several users per forward pass (benchmark.kits.llm.pointwise:
score_token_ids, score_users) against the naive reference (one full forward pass per
candidate), on tiny random Qwen2 models in float32: prompts of different lengths (so
the batch is padded), candidates of odd and one-token lengths, a single candidate,
rows split by max_batch_tokens, a shared first segment; and the GPU perf script's
random-architecture path on a CPU, which must not import the benchmark package."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.kits.llm.models import CausalLM, load_causal_lm
from benchmark.kits.llm.pointwise import (
    Usage,
    score_candidates,
    score_token_ids,
    score_token_ids_naive,
    score_users,
)
from test_llm import TEXTS, tiny_model, user_prompt  # noqa: F401  (tiny_model: a fixture)

REPO = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-4  # float32


def random_lm(model_class, config) -> CausalLM:
    """A model of `config` with random weights larger than the 0.02 initialisation, so the
    log-probabilities vary and a wrong mask or position shows (near-uniform outputs would
    hide it)."""
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = model_class(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.3)
    return CausalLM(None, model, torch.device("cpu"), {})


def random_qwen2(vocab: int, tied: bool, kv_heads: int, layers: int) -> CausalLM:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    return random_lm(Qwen2ForCausalLM, Qwen2Config(
        vocab_size=vocab, hidden_size=32, intermediate_size=56, num_hidden_layers=layers, num_attention_heads=4,
        num_key_value_heads=kv_heads, max_position_embeddings=1024, tie_word_embeddings=tied, rope_theta=1e6))


@pytest.fixture(scope="module", params=[(True, 2, 2), (False, 1, 3)], ids=["tied-gqa", "untied-mqa"])
def qwen2(request) -> CausalLM:
    tied, kv_heads, layers = request.param
    return random_qwen2(vocab=97, tied=tied, kv_heads=kv_heads, layers=layers)


def users(rng: np.random.Generator, prompt_lengths, candidate_lengths, vocab: int = 97):
    prompts = [rng.integers(0, vocab, n).tolist() for n in prompt_lengths]
    conts = [[rng.integers(0, vocab, n).tolist() for n in lengths] for lengths in candidate_lengths]
    return prompts, conts


def naive(lm, prompts, conts, shared=()):
    return [score_token_ids_naive(lm, list(shared) + p, c) for p, c in zip(prompts, conts)]


def assert_close(got, expected, atol=TOLERANCE):
    assert [len(g) for g in got] == [len(e) for e in expected]
    np.testing.assert_allclose(np.concatenate(got), np.concatenate(expected), atol=atol, rtol=0)


@pytest.mark.parametrize("users_per_batch", [1, 2, 5])
def test_batched_users_equal_naive(qwen2, users_per_batch):
    rng = np.random.default_rng(1)
    # prompts of different lengths (one of a single token: nothing before its root),
    # candidates of odd lengths, one-token candidates, a user with a single candidate
    prompts, conts = users(rng, [17, 1, 40, 9, 23],
                           [[3, 1, 7, 5], [2, 9], [1], [4, 4, 4, 11, 1, 6], [13, 2, 5]])
    usage = Usage()
    got = score_token_ids(qwen2, prompts, conts, users_per_batch=users_per_batch, usage=usage)
    expected = naive(qwen2, prompts, conts)
    assert_close(got, expected)
    assert np.all(np.concatenate(got) < 0) and np.ptp(np.concatenate(got)) > 1.0  # real, varied log-likelihoods
    assert usage.prompt_tokens == sum(map(len, prompts))
    assert usage.continuation_tokens == sum(len(c) for cs in conts for c in cs)
    needed = sum(len(p) + sum(len(c) - 1 for c in cs) for p, cs in zip(prompts, conts))
    if users_per_batch == 1:  # one user per pass: no padding, every position needed
        assert usage.computed_tokens == needed
    else:
        assert usage.computed_tokens > needed


def test_rows_split_by_token_budget_and_a_shared_prefix(qwen2):
    rng = np.random.default_rng(2)
    prompts, conts = users(rng, [6, 30, 12], [[5, 8, 2, 9, 3], [7, 7, 1], [10, 4, 6, 2]])
    shared = rng.integers(0, 97, 25).tolist()
    expected = naive(qwen2, prompts, conts, shared)
    qwen2.prefix_cache.pop("shared", None)
    cold, warm = Usage(), Usage()
    # max_batch_tokens 12: several tree rows per user, gathered from the batch's caches
    first = score_token_ids(qwen2, prompts, conts, shared=shared, users_per_batch=3, max_batch_tokens=12, usage=cold)
    again = score_token_ids(qwen2, prompts, conts, shared=shared, users_per_batch=2, max_batch_tokens=12, usage=warm)
    assert_close(first, expected)
    assert_close(again, expected)
    assert qwen2.prefix_cache["shared"][0] == tuple(shared)
    assert cold.computed_tokens - warm.computed_tokens >= len(shared)  # the shared cache was reused


def test_users_in_any_order_give_the_same_scores(qwen2):
    rng = np.random.default_rng(3)
    prompts, conts = users(rng, [33, 5, 18, 27], [[3, 6], [9, 1, 2], [4], [8, 8]])
    forward = score_token_ids(qwen2, prompts, conts, users_per_batch=4)
    backward = score_token_ids(qwen2, prompts[::-1], conts[::-1], users_per_batch=4)
    assert_close(forward, backward[::-1], atol=1e-5)


def test_bad_input_is_refused(qwen2):
    with pytest.raises(ValueError, match="user 1: empty prompt"):
        score_token_ids(qwen2, [[1, 2], []], [[[3]], [[4]]])
    with pytest.raises(ValueError, match="user 0: a candidate has no tokens"):
        score_token_ids(qwen2, [[1, 2]], [[[3], []]])
    with pytest.raises(ValueError, match="2 prompts but 1 candidate lists"):
        score_token_ids(qwen2, [[1], [2]], [[[3]]])
    with pytest.raises(ValueError, match="users_per_batch=0"):
        score_token_ids(qwen2, [[1]], [[[3]]], users_per_batch=0)
    assert score_token_ids(qwen2, [[1, 2]], [[]])[0].shape == (0,)


def test_text_users_batched_equal_one_by_one(tiny_model):
    lm = load_causal_lm(tiny_model, device="cpu", dtype="float32")
    prompts = [user_prompt(lm, history=range(0, n), candidates=range(8, 8 + k)) for n, k in ((2, 3), (7, 5), (4, 1))]
    texts = [TEXTS[8:11], TEXTS[8:13], TEXTS[8:9]]
    batched = score_users(lm, prompts, texts, users_per_batch=3, length_normalize=True)
    single = [score_candidates(lm, p, t, length_normalize=True) for p, t in zip(prompts, texts)]
    assert_close(batched, single)


def test_perf_script_on_a_tiny_architecture_without_the_harness():
    """The GPU path of perf/llm_scoring.py, run on the CPU: it scores, checks against naive
    and reports, importing only torch, transformers, numpy and two kit files."""
    code = ("import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__'); "
            "print('imported benchmark:', any(m == 'benchmark' or m.startswith('benchmark.') for m in sys.modules))")
    args = ["perf/llm_scoring.py", "--arch", "tiny", "--device", "cpu", "--users", "3", "--candidates", "4",
            "--users-per-batch", "1,3", "--check-users", "2", "--single-users", "1", "--threads", "1",
            "--check-float32"]
    env = {**os.environ, "PYTHONPATH": ""}
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "imported benchmark: False"
    fields = dict(item.split("=") for item in lines[-2].split())
    assert fields["arch"] == "tiny" and fields["best_users_per_batch"] in {"1", "3"}
    assert float(fields["max_abs_logprob_diff"]) <= 1e-2 and float(fields["tokens_per_s"]) > 0
    # per token: each candidate's difference over its token count, so never above the sum's
    assert float(fields["per_token_max_diff"]) <= float(fields["max_abs_logprob_diff"])
    # both bfloat16 paths against the float32 copy of the same weights: small, and the
    # batched one no worse than the naive one by more than batched and naive differ
    naive_err, batched_err = float(fields["bf16_err_naive"]), float(fields["bf16_err_batched"])
    assert 0 < naive_err <= 1e-1 and batched_err <= naive_err + float(fields["max_abs_logprob_diff"])
    assert float(fields["per_token_err_batched"]) <= batched_err
    assert any(line.strip().startswith("batched bfloat16 - naive float32") for line in lines)
    float32_line = next(line for line in lines if line.startswith("float32: max"))
    assert float(float32_line.split(": ")[-1]) <= TOLERANCE


@pytest.fixture(scope="module")
def gemma3() -> CausalLM:
    """A tiny random Gemma 3: three of its four layers attend within a 6-token window."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    return random_lm(Gemma3ForCausalLM, Gemma3TextConfig(
        vocab_size=97, hidden_size=32, intermediate_size=56, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, sliding_window=6, max_position_embeddings=512, query_pre_attn_scalar=8,
        layer_types=["sliding_attention", "sliding_attention", "full_attention", "sliding_attention"]))


@pytest.mark.parametrize("users_per_batch", [1, 3])
def test_a_sliding_window_model_scores_as_its_full_forward_pass(gemma3, users_per_batch):
    """Gemma 3's own cache crops its sliding layers to the window; the tree keeps every key
    and masks by the window instead: prompts far longer than the window score as the
    naive full forward pass does (this failed with a mask/key size mismatch before)."""
    rng = np.random.default_rng(0)
    prompts, conts = users(rng, (20, 9, 3), ((1, 4, 9), (3, 3), (12,)))
    assert_close(score_token_ids(gemma3, prompts, conts, users_per_batch=users_per_batch), naive(gemma3, prompts, conts))
    shared = rng.integers(0, 97, 10).tolist()
    assert_close(score_token_ids(gemma3, prompts, conts, shared=shared, users_per_batch=users_per_batch),
                 naive(gemma3, prompts, conts, shared))
