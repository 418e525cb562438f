"""The paradigm baselines: text-sasrec (pre-train + fine-tune), tallrec-lite (LoRA
instruction tuning) and softprompt (prompt tuning), on small generated tasks with a tiny
random BERT and a tiny random Llama (no network, no packaged weights)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

from benchmark.api import Catalog, FitContext, ScoreRequest, TrainData, find_submission
from benchmark.runner import evaluate
from benchmark.kits.tuning.yesno import YesNoLM, select_training_rows
from paradigm_fixtures import ctr_task, make_tiny_encoder, make_tiny_llama, sequential_task, zeroshot_task


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> str:
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> str:
    return make_tiny_encoder(tmp_path_factory.mktemp("tiny-bert"))


# --- text-sasrec ---------------------------------------------------------------------------

def _train_data(n_items: int = 45, n_trained: int = 40, duplicate: tuple[int, int] = (44, 3)) -> TrainData:
    """Users step through items 0..n_trained-1 (item i is followed by i + 1); items
    n_trained.. never occur in training, and item `duplicate[0]` has the title of
    `duplicate[1]`."""
    rng = np.random.default_rng(0)
    rows = []
    for user in range(30):
        start = rng.integers(0, n_trained)
        for t in range(12):
            rows.append((user, int((start + t) % n_trained), float(t), 4.0, len(rows)))
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating", "row"])
    titles = [f"Item {i}" for i in range(n_items)]
    titles[duplicate[0]] = titles[duplicate[1]]
    items = pd.DataFrame({"item_id": range(n_items), "original_id": [str(i) for i in range(n_items)],
                          "title": titles})
    return TrainData(interactions, 30, Catalog(n_items, items))


@pytest.mark.parametrize("id_residual", [False, True])
def test_text_sasrec_scores_items_it_never_saw(tiny_encoder, id_residual):
    train = _train_data()
    model = find_submission("text-sasrec").build(text_encoder=tiny_encoder, epochs=3, id_residual=id_residual,
                                                 hidden=32, exclude_history=False)
    model.fit(train, FitContext(seed=0))
    request = ScoreRequest(users=np.array([0, 1]), histories=[np.array([5, 6, 7]), np.array([20, 21])],
                           candidates=np.array([[3, 44, 41, 42], [3, 44, 43, 10]]), catalog=train.catalog)
    scores = model.score(request)
    assert scores.shape == (2, 4) and np.isfinite(scores).all()
    # Unseen items get scores from their text: different items, different scores.
    assert len(np.unique(np.round(scores[0, 1:], 6))) == 3
    embedding = model.network.item_embedding
    if id_residual:
        # ID residuals exist for trained items only; unseen ones stay exactly zero.
        assert torch.count_nonzero(embedding.residual.weight[41:46] * embedding.seen[41:46]) == 0
        assert embedding.seen[1:41].all() and not embedding.seen[41:].any()
    else:
        # Same title, same representation, same score: the item is known by its text alone.
        assert scores[0, 0] == pytest.approx(scores[0, 1], rel=1e-5)
    report = model.report()
    assert report.trainable_parameters == sum(p.numel() for p in model.network.parameters() if p.requires_grad)
    assert report.tokens > 0 and report.total_parameters > sum(p.numel() for p in model.network.parameters())
    assert report.llm["llm.model"].endswith(tiny_encoder.rstrip("/").split("/")[-1])


def test_text_sasrec_learns_the_synthetic_sequences(tiny_encoder):
    text_sasrec = find_submission("text-sasrec").variant(None, text_encoder=tiny_encoder, epochs=12, patience=12)
    runs = evaluate([text_sasrec, "pop"], sequential_task(), store=False).set_index("submission")
    assert (runs["status"] == "FINISHED").all(), runs["reason"]
    assert runs.loc["text-sasrec", "NDCG@5"] > runs.loc["pop", "NDCG@5"] + 0.1


# --- Yes/No tuning machinery ---------------------------------------------------------------

def test_training_rows_are_balanced_and_seeded():
    liked = np.array([1] * 80 + [0] * 20)
    eligible = np.arange(100)
    rows = select_training_rows(eligible, liked, 16, np.random.default_rng(0))
    assert len(set(rows)) == 16 and liked[rows].sum() == 8
    assert (rows == select_training_rows(eligible, liked, 16, np.random.default_rng(0))).all()
    # One class short: the other tops it up.
    rows = select_training_rows(eligible, liked, 60, np.random.default_rng(1))
    assert len(rows) == 60 and (liked[rows] == 0).sum() == 20
    assert len(select_training_rows(eligible[:5], liked, 16, np.random.default_rng(0))) == 5


def _lm(tiny_llama, soft_tokens: int = 0) -> YesNoLM:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    network = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    soft = None
    if soft_tokens:
        torch.manual_seed(1)
        soft = torch.nn.Parameter(torch.randn(soft_tokens, network.config.hidden_size) * 0.5)
    return YesNoLM(network, tokenizer, soft)


@pytest.mark.parametrize("soft_tokens", [0, 4])
def test_cached_prefix_scoring_equals_full_forward(tiny_llama, soft_tokens):
    lm = _lm(tiny_llama, soft_tokens)
    prefix = lm.prefix_ids("Given the user's history of movies below\n1. Item 3\n2. Item 7\n")
    suffixes = [lm.suffix_ids(f"Target movie: Item {i}") for i in (1, 12, 25, 33)]
    suffixes.append(lm.suffix_ids("Target movie: Item 5 Item 6 Item 7"))  # a longer one: padding in the batch
    cached = lm.yes_minus_no(prefix, suffixes, batch=3)
    with torch.no_grad():
        full = lm.last_logits([prefix + s for s in suffixes], full=False)
    np.testing.assert_allclose(cached, (full[:, 0] - full[:, 1]).numpy(), rtol=1e-4, atol=1e-5)


def test_soft_prompt_forward_matches_peft(tiny_llama):
    """Our forward with the soft prompt prepended gives peft's prompt-tuning logits."""
    from peft import PromptTuningConfig, TaskType, get_peft_model

    lm = _lm(tiny_llama, soft_tokens=4)
    ids = lm.prefix_ids("User's history, oldest first:\n1. Item 4\n") + lm.suffix_ids("Target movie: Item 9")
    with torch.no_grad():
        ours = lm.last_logits([ids], full=True)[0]
    config = PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=4)
    peft_model = get_peft_model(_lm(tiny_llama).network, config).eval()
    with torch.no_grad():
        peft_model.prompt_encoder["default"].embedding.weight.copy_(lm.soft_prompt)
        theirs = peft_model(input_ids=torch.tensor([ids])).logits[0, -1]
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


# --- tallrec-lite and softprompt through the runner --------------------------------------

@pytest.mark.parametrize("name, trainable", [("tallrec-lite", "lora"), ("softprompt", "prompt tuning")])
def test_tuned_llms_fit_predict_score_and_log_their_cost(tiny_llama, tracking_uri, name, trainable):
    budget, epochs = 12, 2
    submission = find_submission(name).variant("n12", train_samples=budget, model=tiny_llama, dtype="float32",
                                               epochs=epochs)
    runs = evaluate(submission, [ctr_task(), zeroshot_task()], tracking_uri=tracking_uri)
    assert (runs["status"] == "FINISHED").all(), runs["reason"].tolist()
    assert runs.loc[0, "AUC"] == runs.loc[0, "AUC"]  # a number
    client = MlflowClient(tracking_uri)
    for run_id in runs["run_id"]:
        run = client.get_run(run_id)
        metrics, tags, params = run.data.metrics, run.data.tags, run.data.params
        assert params["hp.train_samples"] == str(budget)
        assert metrics["cost.train_samples"] == budget * epochs
        assert 0 < metrics["cost.trainable_parameters"] < metrics["cost.total_parameters"]
        assert metrics["cost.tokens"] > 0 and metrics["cost.fit_seconds"] > 0 and metrics["cost.score_seconds"] > 0
        assert trainable in tags["llm.adapter"]
        assert tags["llm.model"].endswith(tiny_llama.rstrip("/").split("/")[-1])
        assert len(tags["llm.prompt_hash"]) == 64 and len(tags["llm.weights_sha256"]) == 64
        assert tags["llm.dtype"] == "float32" and "P(Yes)" in tags["llm.decoding"]
        history = client.get_metric_history(run_id, "train/loss")
        assert [m.step for m in history] == list(range(epochs))
    if name == "softprompt":
        assert client.get_run(runs.loc[0, "run_id"]).data.metrics["cost.trainable_parameters"] == 16 * 32


def test_training_moves_the_answers_and_budget_zero_trains_nothing(tiny_llama):
    task = ctr_task()
    from benchmark.data import prepare
    from benchmark.data.views import build_views

    views = build_views(task, prepare(task))
    rows = views.test.features.iloc[:20].reset_index(drop=True)
    from benchmark.api import PredictRequest

    request = PredictRequest(rows, views.train.feature_fields, views.train.catalog)
    untuned = find_submission("tallrec-lite").build(train_samples=0, model=tiny_llama, dtype="float32")
    untuned.fit(views.train, FitContext(seed=0))
    report = untuned.report()
    assert report.train_samples == 0 and report.tokens == 0 and report.trainable_parameters == 0
    assert report.llm["llm.adapter"] == "none (untuned)"
    tuned = find_submission("tallrec-lite").build(train_samples=16, model=tiny_llama, dtype="float32",
                                                  epochs=3, lr=0.01)
    losses = []
    tuned.fit(views.train, FitContext(seed=0, log_metric=lambda name, value, step: losses.append(value)
                                      if name == "loss" else None))
    before, after = untuned.predict(request), tuned.predict(request)
    assert ((before >= 0) & (before <= 1)).all() and ((after >= 0) & (after <= 1)).all()
    assert np.abs(before - after).max() > 1e-3
    assert losses[-1] < losses[0]
    # The shared, cached base model is untouched by the fit (LoRA went into a copy).
    from benchmark.kits.llm import load_causal_lm

    base = load_causal_lm(tiny_llama, device="cpu", dtype="float32").model
    assert not any("lora" in name for name, _ in base.named_modules())
