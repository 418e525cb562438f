"""benchmark.kits.llm: prompts, pointwise scoring with a shared KV cache (against the naive
one-forward-per-candidate reference), listwise generation, model loading and identity,
and the LLM/text submissions with their reports (the harness's reading of generated
rankings is tested in test_recommend.py). A tiny randomly initialised Llama with a
small BPE tokenizer stands in for SmolLM2 except in the tests marked as using the real
packaged weights."""
from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from benchmark.api import Catalog, FitContext, ScoreRequest, TrainData, find_submission
from benchmark.kits.llm import (
    ANSWER_LEAD,
    DEFAULT_TEMPLATE,
    Usage,
    load_causal_lm,
    load_text_encoder,
    model_prompt,
    prompt_hash,
    render,
    sample_demonstrations,
    score_candidates,
    score_candidates_naive,
)
from benchmark.kits.llm.listwise import generate
from benchmark.recommendations import RecommendationScorer, parse_ranking
from conftest import MOVIE_TITLES as TITLES, movie_catalog, shipped

CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                 "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def catalog() -> Catalog:
    return movie_catalog()


TEXTS = catalog().item_texts()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """A 2-layer random Llama and a 400-token byte-level BPE tokenizer with a chat
    template, saved like any transformers folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(TEXTS + [DEFAULT_TEMPLATE, ANSWER_LEAD] * 3, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        pad_token="<|im_end|>", unk_token="<unk>")
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer.save_pretrained(folder)
    LlamaForCausalLM(config).save_pretrained(folder)
    return str(folder)


@pytest.fixture
def tiny_lm(tiny_model):
    return load_causal_lm(tiny_model, device="cpu", dtype="float32")


def user_prompt(lm, history=range(0, 8), candidates=range(8, 20), shared=""):
    return model_prompt(lm.tokenizer, render(DEFAULT_TEMPLATE, [TEXTS[i] for i in history],
                                             [TEXTS[i] for i in candidates]), ANSWER_LEAD, shared=shared)


# ----------------------------------------------------------------------------- prompts


def test_render_is_strict_and_the_hash_stable():
    text = render("{% for h in history %}{{ h }};{% endfor %}|{{ candidates|length }}", ["A & B", "C"], ["x", "y"])
    assert text == "A & B;C;|2"  # no HTML escaping
    with pytest.raises(Exception, match="user"):
        render("{{ user }}", [], [])
    assert prompt_hash("abc") == hashlib.sha256(b"abc").hexdigest()
    assert prompt_hash(DEFAULT_TEMPLATE) == prompt_hash(DEFAULT_TEMPLATE)
    assert prompt_hash(DEFAULT_TEMPLATE, ANSWER_LEAD) != prompt_hash(DEFAULT_TEMPLATE)
    rendered = render(DEFAULT_TEMPLATE, TEXTS[:2], TEXTS[2:5])
    assert rendered.startswith("I've watched the following movies in the past in order:\n1. Toy Story (1995)\n"
                               "2. GoldenEye (1995)\n\nNow there are 3 candidate movies")
    assert "3. Copycat (1995)\nPlease rank these 3 movies" in rendered


def test_chat_framing(tiny_lm):
    head, rest = user_prompt(tiny_lm)
    assert head == "<|im_start|>user\n"
    assert rest.endswith("<|im_end|>\n<|im_start|>assistant\n" + ANSWER_LEAD)

    class Plain:
        chat_template = None

    assert model_prompt(Plain(), "P", "A") == ["", "P\nA"]


def train_data() -> TrainData:
    rows = [(u, (3 * u + k) % len(TITLES), k) for u in range(6) for k in range(5 + u)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return TrainData(frame, n_users=6, catalog=catalog())


def test_demonstrations_come_from_other_users():
    train = train_data()
    sequences = train.sequences()
    demos = sample_demonstrations(train, 3, np.random.default_rng(1), n_candidates=6, history_len=4,
                                  exclude_users=[2])
    again = sample_demonstrations(train, 3, np.random.default_rng(1), n_candidates=6, history_len=4,
                                  exclude_users=[2])
    assert demos == again  # seeded
    assert len({d.user for d in demos}) == 3 and all(d.user != 2 for d in demos)
    for d in demos:
        sequence = [TEXTS[i] for i in sequences[d.user]]
        assert d.answer == sequence[-1] and list(d.history) == sequence[-5:-1]
        assert d.answer in d.candidates and len(d.candidates) == 6
        assert not set(d.candidates) - {d.answer} & set(sequence)
    text = render(DEFAULT_TEMPLATE, TEXTS[:2], TEXTS[2:4], demonstrations=demos)
    assert text.count("Answer: " + ANSWER_LEAD) == 3 and text.endswith(render(DEFAULT_TEMPLATE, TEXTS[:2], TEXTS[2:4]))


# --------------------------------------------------------------------------- pointwise


@pytest.mark.parametrize("method", ["tree", "batch"])
def test_prefix_cache_equals_naive(tiny_lm, method):
    prompt = user_prompt(tiny_lm)
    candidates = [TEXTS[i] for i in range(8, 20)] + ["X"]  # lengths differ; "X" is short
    usage, naive_usage = Usage(), Usage()
    cached = score_candidates(tiny_lm, prompt, candidates, method=method, max_batch_tokens=40, usage=usage)
    naive = score_candidates_naive(tiny_lm, prompt, candidates, usage=naive_usage)
    np.testing.assert_allclose(cached, naive, atol=1e-4, rtol=0)
    assert np.all(cached < 0)
    assert usage.computed_tokens * 4 < naive_usage.computed_tokens
    # another user: the shared first segment's cache is reused, results still equal
    other = user_prompt(tiny_lm, history=range(3, 9))
    tiny_lm.prefix_cache.pop("shared", None)
    cold, warm = Usage(), Usage()
    score_candidates(tiny_lm, other, candidates, method=method, usage=cold, min_shared_tokens=1)
    again = score_candidates(tiny_lm, other, candidates, method=method, usage=warm, min_shared_tokens=1)
    assert cold.computed_tokens - warm.computed_tokens == len(tiny_lm.encode(other[0], first=True)) > 0
    np.testing.assert_allclose(again, score_candidates_naive(tiny_lm, other, candidates), atol=1e-4, rtol=0)


def test_in_context_shared_prefix_equals_naive(tiny_lm):
    shared = "Examples: " + ", ".join(TEXTS) + "\n"
    prompt = user_prompt(tiny_lm, shared=shared)
    candidates = TEXTS[10:16]
    assert len(tiny_lm.encode(prompt[0], first=True)) >= 64  # long enough to keep its cache
    tiny_lm.prefix_cache.pop("shared", None)
    first = score_candidates(tiny_lm, prompt, candidates)
    assert tiny_lm.prefix_cache["shared"][0] == tuple(tiny_lm.encode(prompt[0], first=True))
    np.testing.assert_allclose(first, score_candidates_naive(tiny_lm, prompt, candidates), atol=1e-4, rtol=0)
    np.testing.assert_allclose(score_candidates(tiny_lm, prompt, candidates), first, atol=1e-5, rtol=0)


def test_length_normalisation(tiny_lm):
    prompt = user_prompt(tiny_lm)
    candidates = TEXTS[8:14]
    total = score_candidates(tiny_lm, prompt, candidates)
    mean = score_candidates(tiny_lm, prompt, candidates, length_normalize=True)
    from benchmark.kits.llm.pointwise import continuation_ids

    lengths = np.array([len(continuation_ids(tiny_lm, prompt, c)) for c in candidates])
    assert len(set(lengths)) > 1
    np.testing.assert_allclose(mean, total / lengths, rtol=1e-6)
    np.testing.assert_allclose(score_candidates_naive(tiny_lm, prompt, candidates, length_normalize=True),
                               mean, atol=1e-4, rtol=0)


# ---------------------------------------------------------------------------- listwise


def test_batched_generation_matches_one_by_one(tiny_lm):
    prompts = [user_prompt(tiny_lm, history=range(0, n)) for n in (2, 6, 9)]
    usage = Usage()
    batched = generate(tiny_lm, prompts, max_new_tokens=6, batch_size=3, usage=usage)
    single = [generate(tiny_lm, [p], max_new_tokens=6, batch_size=1)[0] for p in prompts]
    assert batched == single
    assert usage.continuation_tokens <= 18 and usage.prompt_tokens > 0
    for text in batched:
        parsed = parse_ranking("1." + text, TEXTS[8:20], TEXTS)
        assert parsed.missing == 12 - len(parsed.order)


# --------------------------------------------------------------------- real weights


def test_real_smollm2_scores_and_identity():
    from benchmark.data.assets import fetch_asset, sha256_of

    lm = load_causal_lm("smollm2", device="cpu", dtype="float32")
    weights = fetch_asset("smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert lm.identity == {"llm.model": "asset:smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                           "llm.weights_sha256": sha256_of(weights), "llm.quantization": "gguf:Q4_1",
                           "llm.dtype": "float32", "llm.parameters": "134515008"}
    assert lm.has_chat_template
    prompt = model_prompt(lm.tokenizer, render(DEFAULT_TEMPLATE, TEXTS[:3], TEXTS[16:19]), ANSWER_LEAD)
    cached = score_candidates(lm, prompt, TEXTS[16:19])
    np.testing.assert_allclose(cached, score_candidates_naive(lm, prompt, TEXTS[16:19]), atol=1e-3, rtol=0)
    assert np.all(np.isfinite(cached)) and np.all(cached < 0)


def test_a_gguf_asset_loads_from_its_dense_copy_with_the_same_weights_and_tokenizer():
    """ready_asset_model writes the dense copy once; it loads in seconds and computes what
    the GGUF computes, under the GGUF's identity."""
    import torch

    from benchmark.kits.llm.models import _from_pretrained, locate, ready_asset_model

    folder = ready_asset_model("smollm2", log=lambda _: None)
    source = locate("smollm2")
    assert source.converted == str(folder / "transformers") and source.gguf_file.endswith(".gguf")
    tok_gguf, gguf = _from_pretrained(source.path, source.gguf_file, torch.float32)
    tok_dense, dense = _from_pretrained(source.converted, None, torch.float32)
    text = "I've watched the following movies in the past in order:\n1. Toy Story (1995)\n"
    ids = tok_gguf(text, return_tensors="pt").input_ids
    assert ids.tolist() == tok_dense(text, return_tensors="pt").input_ids.tolist()
    assert tok_gguf.chat_template == tok_dense.chat_template
    with torch.inference_mode():
        assert torch.equal(gguf(ids).logits, dense(ids).logits)


def test_real_minilm_embeddings():
    encoder = load_text_encoder("minilm", device="cpu")
    assert encoder.identity["llm.quantization"] == "none" and len(encoder.identity["llm.weights_sha256"]) == 64
    emb, tokens = encoder.encode(["Star Wars (1977)", "The Empire Strikes Back (1980)", "Sense and Sensibility (1995)"])
    assert emb.dtype == np.float32 and emb.shape == (3, 384) and tokens > 0
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert emb[0] @ emb[1] > emb[0] @ emb[2]


# ------------------------------------------------------------------------ submissions


def score_request(users=(0, 1, 2), prompt_template=None) -> ScoreRequest:
    histories = [np.array([0, 1, 2]), np.array([16, 18]), np.array([], dtype=np.int64)][:len(users)]
    candidates = np.array([[5, 6, 7, 19], [19, 18, 4, 3], [10, 11, 12, 13]])[:len(users)]
    return ScoreRequest(users=np.array(users), histories=histories, candidates=candidates, catalog=catalog(),
                        prompt_template=prompt_template)


def zero_shot_train() -> TrainData:
    empty = pd.DataFrame({"user_id": pd.Series([], dtype=np.int64), "item_id": pd.Series([], dtype=np.int64),
                          "timestamp": pd.Series([], dtype=np.int64)})
    return TrainData(empty, n_users=6, catalog=catalog())


def check_identity(model, decoding_word: str) -> None:
    report = model.report()
    identity = report.llm
    assert set(identity) == {"llm.model", "llm.weights_sha256", "llm.quantization", "llm.dtype",
                             "llm.parameters", "llm.decoding", "llm.prompt_hash"}
    assert int(identity["llm.parameters"]) == sum(p.numel() for p in model.network.parameters())
    assert decoding_word in identity["llm.decoding"]
    assert report.tokens > 0
    assert report.trainable_parameters == 0  # the networks are frozen


def test_pointwise_submission(tiny_model, tiny_lm):
    model = find_submission(shipped("smollm2-pointwise")).build(model=tiny_model, dtype="float32")
    model.fit(zero_shot_train(), FitContext(seed=0))
    request = score_request()
    scores = model.score(request)
    assert scores.shape == (3, 4) and np.all(np.isfinite(scores))
    prompt = model_prompt(tiny_lm.tokenizer, render(DEFAULT_TEMPLATE, TEXTS[:3], [TEXTS[i] for i in (5, 6, 7, 19)]),
                          ANSWER_LEAD)
    np.testing.assert_allclose(scores[0], score_candidates_naive(tiny_lm, prompt, [TEXTS[i] for i in (5, 6, 7, 19)]),
                               atol=1e-4)
    check_identity(model, "log-likelihood")
    assert model.report().llm["llm.prompt_hash"] == prompt_hash(DEFAULT_TEMPLATE, ANSWER_LEAD)
    custom = "{{ history|join(', ') }} -> {{ candidates|join(', ') }}"
    model.score(score_request(prompt_template=custom))
    assert model.report().llm["llm.prompt_hash"].endswith("," + prompt_hash(custom, ANSWER_LEAD))
    with pytest.raises(ValueError, match="full ranking"):
        model.score(ScoreRequest(users=np.array([0]), histories=[np.array([1])], candidates=None, catalog=catalog()))


def test_pointwise_submission_scores_users_in_batches_as_it_does_one_by_one(tiny_model):
    """`users_per_batch` > 1 (a GPU's default: 128) packs several users per forward pass
    (pointwise.score_users); the scores are those of one user at a time."""
    one = find_submission(shipped("smollm2-pointwise")).build(model=tiny_model, dtype="float32")
    batched = find_submission(shipped("smollm2-pointwise")).build(model=tiny_model, dtype="float32", users_per_batch=2)
    for model in (one, batched):
        model.fit(zero_shot_train(), FitContext(seed=0))
    request = score_request()
    np.testing.assert_allclose(batched.score(request), one.score(request), atol=1e-4, rtol=0)
    assert batched.report().tokens == one.report().tokens


def test_icl_submission_uses_other_users(tiny_model):
    model = find_submission(shipped("smollm2-icl")).build(model=tiny_model, dtype="float32", demo_candidates=4,
                                                          demo_history=3)
    model.fit(train_data(), FitContext(seed=3))
    assert len(model.demos) == 4 and len({d.user for d in model.demos}) == 4
    demo_user = model.demos[0].user
    request = score_request(users=(demo_user, (demo_user + 1) % 6))
    for row in range(2):
        used = model.shared_text(request, row, DEFAULT_TEMPLATE)
        assert used.count("Answer:") == 3
    own = model.shared_text(request, 0, DEFAULT_TEMPLATE)
    assert all(d.answer in own for d in model.demos[1:4])
    scores = model.score(request)
    assert scores.shape == (2, 4) and np.all(np.isfinite(scores))
    check_identity(model, "in-context")


def test_listwise_submission(tiny_model):
    model = find_submission(shipped("smollm2-listwise")).build(model=tiny_model, dtype="float32", max_new_tokens=8,
                                                               batch_size=2, answer_prefix="1.")
    assert model.implements("recommend") and not model.implements("score")
    model.fit(zero_shot_train(), FitContext(seed=0))
    request = score_request()
    outputs = model.recommend(request)
    assert len(outputs) == 3 and all(text.startswith("1.") for text in outputs)
    assert model.usage.prompt_tokens > 0 and 0 < model.usage.continuation_tokens <= 24
    scorer = RecommendationScorer(lambda _: outputs, request.catalog)  # the harness's reading
    scores = scorer(request)
    assert scores.shape == (3, 4) and scores.dtype == np.float32 and np.all(scores >= 0)
    assert scorer.counts.users == 3 and scorer.counts.malformed + scorer.counts.compliant <= 3
    check_identity(model, "greedy")


def test_minilm_submission():
    model = find_submission(shipped("minilm-zeroshot")).build(device="cpu")
    model.fit(zero_shot_train(), FitContext(seed=0))
    request = score_request()
    scores = model.score(request)
    assert scores.shape == (3, 4) and scores.dtype == np.float32
    assert np.all(scores[2] == 0)  # no history: ties
    assert model.embeddings.shape == (len(TITLES), 384)
    profile = model.embeddings[[16, 18]].mean(0)
    expected = model.embeddings[[19, 18, 4, 3]] @ (profile / np.linalg.norm(profile))
    np.testing.assert_allclose(scores[1], expected, rtol=1e-5)
    report = model.report()
    assert set(report.llm) >= {"llm.model", "llm.weights_sha256", "llm.dtype", "llm.decoding"}
    assert report.llm["llm.prompt_hash"] == "none (item texts only)"
    assert report.tokens > 0 and report.trainable_parameters == 0

    # Another catalogue with one title changed (the text attack's): only that text is embedded.
    tokens, before = report.tokens, model.embeddings.copy()
    items = request.catalog.items.copy()
    items.loc[items["item_id"] == 4, "title"] = items.loc[items["item_id"] == 4, "title"] + " — highly recommended"
    model.score(replace(request, catalog=Catalog(request.catalog.n_items, items)))
    changed = np.flatnonzero(np.any(model.embeddings != before, axis=1))
    assert changed.tolist() == [4] and 0 < model.report().tokens - tokens < 30
