"""The first-party next-item models (sasrec, gru4rec) and their shared machinery in
benchmark.kits.nextitem: they learn a sequential pattern that popularity cannot see,
are deterministic per seed, and their scoring honours the contract."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import yaml

from benchmark.api import FitContext, ScoreRequest, find_submission
from benchmark.kits.nextitem import full_softmax_cross_entropy, repeat_share, sliding_windows
from benchmark.data import prepare
from benchmark.data.views import build_views
from benchmark.runner import evaluate
from conftest import shipped, synthetic_task

# Users mostly step to the next item id (see benchmark/data/synthetic.py): the next
# item follows from the last one, which a sequence model learns and popularity cannot.
TASK = dict(
    dataset={"name": "synthetic-steps",
             "synthetic": {"n_users": 200, "n_items": 60, "interactions_per_user": 25, "seed": 3}},
    history={"max_len": 12, "exclude_seen": False},
    metrics=["HR@10", "NDCG@10", "MRR@10"],
    main_score="NDCG@10",
    batch_size=64,
)
SMALL = {"max_len": 12, "batch_size": 64, "epochs": 40, "patience": 4, "lr": 0.005, "window_stride": 12,
         "threads": 1}  # one thread: as fast on tiny batches, far faster on a busy machine


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM4REC_CACHE", str(tmp_path / "cache"))


def small(tmp_path, shipped_name: str = "sasrec", name: str | None = None, **hyperparameters):
    """A shipped submission's code under a card with smaller settings for a tiny task."""
    name = name or f"{shipped_name}-small"
    folder = tmp_path / name
    shutil.copytree(shipped(shipped_name), folder, ignore=shutil.ignore_patterns("__pycache__"))
    card = yaml.safe_load((folder / "submission.yaml").read_text())
    card["name"] = name
    size = {"hidden": 32} if shipped_name == "sasrec" else {"embedding_size": 32, "hidden": 32}
    card["hyperparameters"] |= SMALL | size | hyperparameters
    (folder / "submission.yaml").write_text(yaml.safe_dump(card))
    return folder


@pytest.fixture
def views():
    task = synthetic_task(**TASK)
    return build_views(task, prepare(task, log=lambda _: None))


@pytest.mark.parametrize("name", ["sasrec", "gru4rec"])
def test_the_shipped_cards_match_their_constructors(name):
    submission = find_submission(shipped(name))
    card = submission.card
    assert card.paradigm == "id-from-scratch" and card.hyperparameters["loss"] == "ce"
    model = submission.build()
    assert model.hyperparameters == card.hyperparameters  # every default is on the card
    with pytest.raises(TypeError, match="unknown hyperparameters"):
        submission.build(hiden=32)
    with pytest.raises(ValueError, match="loss"):
        submission.build(loss="bpr")


def test_sasrec_beats_random_and_pop_and_is_deterministic(tmp_path):
    task = synthetic_task(**TASK)
    folder = small(tmp_path)
    runs = evaluate([shipped("random"), shipped("pop"), folder, folder], task, seeds=[0], store=False)
    assert runs["status"].tolist() == ["FINISHED"] * 4, runs["reason"].tolist()
    random_, pop, sasrec, again = runs["NDCG@10"].tolist()
    # Chance NDCG@10 with 60 items is ~0.08; stepping to the next id is right 80% of the time.
    assert sasrec > 0.5
    assert sasrec > 3 * max(random_, pop)
    metrics = runs.loc[:, task.metrics]
    assert metrics.iloc[2].tolist() == metrics.iloc[3].tolist()  # same seed, identical metrics


def test_gru4rec_beats_pop_and_is_deterministic(tmp_path):
    task = synthetic_task(**TASK)
    folder = small(tmp_path, "gru4rec")
    runs = evaluate([shipped("pop"), folder, folder], task, seeds=[0], store=False)
    assert runs["status"].tolist() == ["FINISHED"] * 3, runs["reason"].tolist()
    pop, gru, again = runs["NDCG@10"].tolist()
    assert gru > 0.5 and gru > 3 * pop
    assert runs.loc[1, task.metrics].tolist() == runs.loc[2, task.metrics].tolist()


def test_another_seed_gives_another_model(tmp_path):
    task = synthetic_task(**TASK)
    runs = evaluate(small(tmp_path, epochs=2), task, seeds=[0, 1], store=False)
    assert runs["status"].tolist() == ["FINISHED"] * 2
    assert runs.loc[0, "MRR@10"] != runs.loc[1, "MRR@10"]


def test_the_papers_bce_loss_also_learns(tmp_path):
    task = synthetic_task(**TASK)
    runs = evaluate([shipped("pop"), small(tmp_path, name="sasrec-bce", loss="bce", lr=0.01)], task,
                    seeds=[0], store=False)
    assert runs["status"].tolist() == ["FINISHED"] * 2
    assert runs.loc[1, "NDCG@10"] > 2 * runs.loc[0, "NDCG@10"]


@pytest.mark.parametrize("name", ["sasrec", "gru4rec"])
def test_scoring_contract_and_training_curves(tmp_path, views, name):
    model = find_submission(small(tmp_path, name)).build(epochs=3, patience=10, exclude_history=False)
    logged, loops = [], []

    def progress(iterable, description="", **_):
        loops.append(description)
        return iter(iterable)

    def evaluate_validation(score):
        scores = score(ScoreRequest(views.validation.users[:8], views.validation.histories[:8], None,
                                    views.train.catalog))
        assert scores.shape == (8, views.train.n_items)
        return float(len(logged))  # always "better": every epoch runs

    ctx = FitContext(seed=0, progress=progress, log_metric=lambda *point: logged.append(point),
                     evaluate_validation=evaluate_validation)
    before = torch.random.get_rng_state()
    model.fit(views.train, ctx)
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's generator is untouched
    assert loops == ["epochs"]
    assert [(n, step) for n, _, step in logged] == [
        (n, step) for step in range(3) for n in ("loss", "valid.main_score")]
    losses = [value for n, value, _ in logged if n == "loss"]
    assert losses[-1] < losses[0]
    assert isinstance(model.network, torch.nn.Module) and not model.network.training

    n_items = views.train.n_items
    catalog = views.train.catalog
    histories = [np.array([3, 4, 5]), np.array([], dtype=np.int64), np.arange(40) % n_items]
    users = np.arange(3)
    full = model.score(ScoreRequest(users, histories, None, catalog))
    assert full.shape == (3, n_items) and full.dtype == np.float32 and np.isfinite(full).all()
    candidates = np.array([[5, 6, 0], [1, 2, 3], [59, 0, 17]])
    picked = model.score(ScoreRequest(users, histories, candidates, catalog))
    np.testing.assert_allclose(picked, np.take_along_axis(full, candidates, axis=1), rtol=1e-5, atol=1e-5)
    # Only the last max_len items count: a longer history scores like its tail.
    tail = model.score(ScoreRequest(users[:1], [histories[2][-12:]], None, catalog))
    np.testing.assert_allclose(full[2:3], tail, rtol=1e-5, atol=1e-5)
    # One user at a time (other padding lengths) gives the same scores.
    model.score_batch = 1
    np.testing.assert_allclose(model.score(ScoreRequest(users, histories, None, catalog)), full,
                               rtol=1e-5, atol=1e-5)


def test_history_items_are_ranked_last_when_asked(tmp_path, views):
    model = find_submission(small(tmp_path)).build(epochs=1, exclude_history=True)
    model.fit(views.train, FitContext(seed=0))
    histories = [np.array([3, 4, 5]), np.array([], dtype=np.int64)]
    request = ScoreRequest(np.arange(2), histories, None, views.train.catalog)
    scores = model.score(request)
    model.mask_history = False
    plain = model.score(request)
    others = np.setdiff1d(np.arange(views.train.n_items), histories[0])
    assert scores[0, [3, 4, 5]].max() < scores[0, others].min()
    assert np.isfinite(scores).all()
    np.testing.assert_array_equal(scores[0, others], plain[0, others])
    np.testing.assert_array_equal(scores[1], plain[1])
    # With candidates: only the candidates that are in the history move.
    candidates = np.array([[4, 7, 3], [4, 7, 3]])
    model.mask_history = True
    picked = model.score(ScoreRequest(np.arange(2), histories, candidates, views.train.catalog))
    assert picked[0, 1] > max(picked[0, 0], picked[0, 2]) and picked[0, 0] == picked[0, 2]
    np.testing.assert_allclose(picked[1], plain[1, [4, 7, 3]], rtol=1e-5, atol=1e-5)


def test_exclude_history_auto_follows_the_training_data():
    assert repeat_share([np.array([1, 2, 3]), np.array([4, 5])]) == 0.0
    assert repeat_share([np.array([1, 2, 1, 1]), np.array([4])]) == pytest.approx(2 / 5)


def test_sliding_windows_count_every_transition_once():
    seq = np.arange(10, 17)  # 7 items: 6 transitions
    windows, first_target = sliding_windows([seq, np.array([5]), np.array([8, 9])], length=3, stride=2)
    # Shifted ids (item + 1), left-padded; windows end at 7, 5, 3 (which starts at 0).
    expected = [[14, 15, 16, 17], [12, 13, 14, 15], [0, 11, 12, 13], [0, 0, 9, 10]]
    np.testing.assert_array_equal(windows, expected)
    np.testing.assert_array_equal(first_target, [1, 1, 0, 0])
    counted = [(w[i], w[i + 1]) for w, first in zip(windows, first_target)
               for i in range(first, 3) if w[i] > 0]
    assert sorted(counted) == sorted([(a + 1, a + 2) for a in range(10, 16)] + [(9, 10)])
    # Each counts where it has the longest context: 12->13 is in windows 1 and 2, and
    # counts in window 2 (after 11, 12) rather than in window 1 (after 12 alone).
    assert (windows[1, 0], windows[1, 1]) == (12, 13) and first_target[1] == 1
    assert (windows[2, 2], windows[2, 3]) == (12, 13) and first_target[2] == 0
    # Without overlap every target of every window counts.
    _, first = sliding_windows([seq], length=3, stride=3)
    assert not first.any()


def test_full_softmax_cross_entropy_matches_torch():
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(7, 5, generator=generator, requires_grad=True)
    weight = torch.randn(11, 5, generator=generator, requires_grad=True)
    targets = torch.randint(0, 11, (7,), generator=generator)
    loss = full_softmax_cross_entropy(hidden, weight, targets, torch.empty(20, 11))
    loss.backward()
    grads = hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None
    reference = torch.nn.functional.cross_entropy(hidden @ weight.t(), targets)
    reference.backward()
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)
    torch.testing.assert_close(grads[0], hidden.grad)
    torch.testing.assert_close(grads[1], weight.grad)
