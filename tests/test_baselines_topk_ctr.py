"""The shipped top-K baselines (itemknn, bpr) and CTR baselines (lr, deepfm, and pop and
random's predict) on small generated tasks whose signal makes the expected ordering
certain: they finish, beat random, and repeat their metrics exactly for the same seed."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from benchmark.runner import evaluate
from benchmark.tasks.schema import TaskSpec
from conftest import shipped, synthetic_task

TOPK_METRICS = ["NDCG@10", "Recall@10", "HR@10"]


def write_topk_dataset(folder, n_users: int = 150, n_items: int = 60, per_user: int = 16, seed: int = 0):
    """A RecBole atomic folder: users and items fall into 3 blocks; 90% of a user's items
    come from its own block (the rest from anywhere), at random times. Popularity is
    flat, so only a model that learns who likes what beats random."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    block = n_items // 3
    rows = []
    for user in range(n_users):
        own = (user % 3) * block + rng.permutation(block)
        others = rng.permutation(n_items)
        items = list(own[:int(per_user * 0.9)])
        items += [i for i in others if i not in items][:per_user - len(items)]
        times = rng.choice(100_000, per_user, replace=False)
        rows += [(user + 1, item + 1, 5.0, float(t)) for item, t in zip(items, times)]
    inter = pd.DataFrame(rows, columns=["user_id:token", "item_id:token", "rating:float", "timestamp:float"])
    inter.to_csv(folder / f"{folder.name}.inter", sep="\t", index=False)
    return folder


def topk_task(folder) -> TaskSpec:
    return synthetic_task(
        task="topk/generated", family="topk",
        dataset={"name": "generated-topk", "path": str(folder)},
        split={"method": "global_time", "valid_fraction": 0.15, "test_fraction": 0.15},
        history={"max_len": None, "exclude_seen": True},
        metrics=TOPK_METRICS, main_score="NDCG@10", batch_size=64)


def write_ctr_dataset(folder, n_users: int = 300, n_items: int = 60, per_user: int = 40, seed: int = 0):
    """A RecBole atomic folder. Each user has a group (a token) and an age (a number),
    each item a genre list (token_seq, one of g0/g1/g2 first) and a quality flag. The
    chance of a high rating adds up an item effect (good items +0.3, which a linear
    model can learn) and an interaction (user group == item's first genre: +0.6, which
    only a model with pairwise terms can learn)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    groups = np.arange(n_users) % 3
    genres = rng.integers(0, 3, n_items)
    good = rng.random(n_items) < 0.5
    users = np.repeat(np.arange(n_users), per_user)
    items = np.concatenate([rng.choice(n_items, per_user, replace=False) for _ in range(n_users)])
    p_high = 0.05 + 0.3 * good[items] + 0.6 * (groups[users] == genres[items])
    high = rng.random(len(users)) < p_high
    ratings = np.where(high, rng.integers(4, 6, len(users)), rng.integers(1, 4, len(users)))
    times = np.concatenate([np.sort(rng.choice(10_000, per_user, replace=False)) for _ in range(n_users)])
    inter = pd.DataFrame({"user_id:token": users + 1, "item_id:token": items + 1,
                          "rating:float": ratings, "timestamp:float": times})
    extra = rng.choice(["x", "y", "z w", ""], n_items)
    item = pd.DataFrame({"item_id:token": np.arange(n_items) + 1,
                         "class:token_seq": [f"g{g} {e}".strip() for g, e in zip(genres, extra)],
                         "quality:token": np.where(good, "good", "bad")})
    user = pd.DataFrame({"user_id:token": np.arange(n_users) + 1,
                         "group:token": [f"g{g}" for g in groups],
                         "age:token": rng.integers(18, 70, n_users)})
    name = folder.name
    for suffix, table in (("inter", inter), ("item", item), ("user", user)):
        table.to_csv(folder / f"{name}.{suffix}", sep="\t", index=False)
    return folder


def ctr_task(folder) -> TaskSpec:
    return TaskSpec.model_validate({
        "task": "ctr/generated", "family": "ctr", "version": 1,
        "dataset": {"name": "generated-ctr", "path": str(folder)},
        "ctr": {"label_min_rating": 4, "user_features": ["group", "age"], "item_features": ["class"]},
        "split": {"method": "global_time", "valid_fraction": 0.15, "test_fraction": 0.15},
        "metrics": ["AUC", "GAUC", "LogLoss"], "main_score": "AUC", "seeds": [0], "batch_size": 512,
    })


def by_name(runs: pd.DataFrame) -> dict[str, pd.Series]:
    assert runs["status"].tolist() == ["FINISHED"] * len(runs), runs[["submission", "reason"]].to_string()
    return {row["submission"]: row for _, row in runs.iterrows()}


def test_itemknn_and_bpr_beat_random_and_repeat_exactly(tmp_path):
    task = topk_task(write_topk_dataset(tmp_path / "blocks"))
    names = ["random", "pop", "itemknn", "bpr"]
    runs = by_name(evaluate([shipped(n) for n in names], task, seeds=[0], store=False))
    random_ndcg = runs["random"]["NDCG@10"]
    for name in ("itemknn", "bpr"):
        assert runs[name]["NDCG@10"] > random_ndcg + 0.15, (name, runs[name]["NDCG@10"], random_ndcg)
        assert runs[name]["NDCG@10"] > runs["pop"]["NDCG@10"] + 0.1, (name, runs[name]["NDCG@10"])
        assert runs[name]["Recall@10"] > runs["random"]["Recall@10"]
    again = by_name(evaluate([shipped("itemknn"), shipped("bpr")], task, seeds=[0], store=False))
    for name in ("itemknn", "bpr"):
        for metric in TOPK_METRICS:
            assert again[name][metric] == runs[name][metric], (name, metric)


def test_topk_models_score_candidate_arrays_and_users_without_training_rows(tmp_path):
    """score() takes an int candidate array too (columns = those items, as in the full
    ranking); a user without training rows is scored from its history, and with an empty
    history too gets the training popularity order rather than all ties."""
    import dataclasses

    from benchmark.api import FitContext, ScoreRequest, find_submission
    from benchmark.data import prepare
    from benchmark.data.views import build_views

    task = topk_task(write_topk_dataset(tmp_path / "blocks"))
    train = build_views(task, prepare(task, log=lambda *_: None)).train
    history = train.sequences()[0]
    train = dataclasses.replace(train, interactions=train.interactions[train.interactions["user_id"] != 0])
    counts = np.bincount(train.interactions["item_id"], minlength=train.n_items)
    by_popularity = np.argsort(-counts, kind="stable")
    for name, overrides in (("itemknn", {}), ("bpr", {"max_epochs": 4})):
        model = find_submission(shipped(name)).build(**overrides)
        model.fit(train, FitContext(seed=0))
        users = np.array([0, 0, 1])
        histories = [history, np.empty(0, dtype=np.int64), train.sequences()[1]]
        full = model.score(ScoreRequest(users, histories, None, train.catalog))
        assert full.shape == (3, train.n_items) and full.dtype == np.float32, name
        candidates = np.array([[5, 1, 7, 30], [0, 59, 3, 3], [2, 2, 9, 44]])
        subset = model.score(ScoreRequest(users, histories, candidates, train.catalog))
        np.testing.assert_array_equal(subset, np.take_along_axis(full, candidates, axis=1), err_msg=name)
        assert len(np.unique(full[0])) > 1, name  # scored from its history
        ordered = full[1][by_popularity]
        assert (np.diff(ordered) <= 0).all() and len(np.unique(full[1])) > 1, name  # popularity order


def test_ctr_baselines_learn_the_generated_signal(tmp_path):
    task = ctr_task(write_ctr_dataset(tmp_path / "generated"))
    names = ["random", "pop", "lr", "deepfm"]
    runs = by_name(evaluate([shipped(n) for n in names], task, seeds=[0], store=False))
    auc = {name: runs[name]["AUC"] for name in names}
    assert abs(auc["random"] - 0.5) < 0.1, auc
    # The item effect is additive: every model that sees item ids learns it.
    for name in ("pop", "lr", "deepfm"):
        assert auc[name] > auc["random"] + 0.1, (name, auc)
    # The group x genre effect needs pairwise terms: DeepFM's FM part has them, LR not.
    assert auc["deepfm"] > auc["lr"] + 0.1, auc
    for name in ("lr", "deepfm"):
        assert runs[name]["LogLoss"] < runs["random"]["LogLoss"], name
        assert 0 < runs[name]["LogLoss"] < np.log(2) + 0.05, (name, runs[name]["LogLoss"])
    again = by_name(evaluate([shipped("lr"), shipped("deepfm"), shipped("random")], task, seeds=[0],
                             store=False))
    for name in ("lr", "deepfm", "random"):
        for metric in ("AUC", "GAUC", "LogLoss"):
            assert again[name][metric] == runs[name][metric], (name, metric)


def test_ctr_encoding_handles_unseen_values_and_multi_valued_numeric_fields():
    """Values never seen in training (a new user, a new genre, an age outside the
    training range) encode to 0 or a valid bucket and predictions stay probabilities."""

    from benchmark.kits import ctr_fields as fields

    train = pd.DataFrame({"user_id": [0, 1, 2, 3], "item_id": [0, 1, 1, 2],
                          "class": ["a b", "b", "c a", None], "age": ["20", "30", "40", "50"]})
    encoder = fields.FieldEncoder(train, ["user_id", "item_id", "class", "age"], numeric_buckets=2)
    assert encoder.multi == [False, False, True, False]
    assert "age" in encoder.edges and len(encoder.vocab[3]) == 2  # 4 ages -> 2 buckets
    ids = encoder.encode(pd.DataFrame({"user_id": [9, 0], "item_id": [1, 7], "class": ["a zzz", None],
                                       "age": ["99", "20"]})).numpy()
    assert ids.shape == (2, 1 + 1 + 2 + 1)
    assert ids[0, 0] == 0 and ids[1, 0] == encoder.vocab[0]["0"]  # unknown user -> 0
    assert ids[1, 1] == 0  # unknown item
    assert ids[0, 2] == encoder.vocab[2]["a"] and ids[0, 3] == 0  # "zzz" unseen
    assert (ids[1, 2:4] == 0).all()  # missing genres
    assert ids[0, 4] == encoder.vocab[3]["1"] and ids[1, 4] == encoder.vocab[3]["0"]


def test_pop_predict_is_the_smoothed_positive_rate_and_random_is_uniform():
    from benchmark.api import Catalog, FitContext, PredictRequest, TrainData, find_submission

    inter = pd.DataFrame({"user_id": [0, 0, 1, 1, 2], "item_id": [0, 1, 0, 1, 0],
                          "label": np.array([1, 0, 1, 1, 0], dtype="int8")})
    catalog = Catalog(3, pd.DataFrame({"item_id": [0, 1, 2]}))
    train = TrainData(inter, 3, catalog)
    pop = find_submission(shipped("pop")).build()
    pop.fit(train, FitContext(seed=0))
    request = PredictRequest(pd.DataFrame({"user_id": [0, 1, 2], "item_id": [0, 1, 2]}), [], catalog)
    overall, prior = 3 / 5, 10.0
    expected = [(2 + prior * overall) / (3 + prior), (1 + prior * overall) / (2 + prior), overall]
    np.testing.assert_allclose(pop.predict(request), expected)
    rand = find_submission(shipped("random")).build()
    rand.fit(train, FitContext(seed=0))
    draws = rand.predict(PredictRequest(pd.DataFrame({"user_id": np.zeros(2000, int),
                                                      "item_id": np.zeros(2000, int)}), [], catalog))
    assert draws.shape == (2000,) and 0.45 < draws.mean() < 0.55 and draws.min() >= 0 and draws.max() < 1


def test_a_ctr_test_sample_is_fixed_hashed_and_among_known_users(tmp_path, tracking_uri):
    from mlflow.tracking import MlflowClient

    from benchmark.data import prepare
    from benchmark.data.views import build_views

    base = ctr_task(write_ctr_dataset(tmp_path / "ctr")).model_dump()
    base["ctr"]["test_sample"] = {"rows": 40, "seed": 3, "min_train_rows": 1}
    task = TaskSpec.model_validate(base | {"task": "ctr/generated-sample"})
    views = build_views(task, prepare(task))
    assert len(views.test) == 40
    train_users = set(views.train.interactions["user_id"])
    assert set(views.test.features["user_id"]) <= train_users
    runs = evaluate([shipped("pop"), shipped("lr")], task, seeds=[0], tracking_uri=tracking_uri)
    tags = [MlflowClient(tracking_uri).get_run(r).data.tags["test_rows_hash"] for r in runs.run_id]
    assert len(set(tags)) == 1 and len(tags[0]) == 64
    base["ctr"]["test_sample"]["rows"] = 10**6
    with pytest.raises(ValueError, match="ctr.test_sample.rows = 1000000, but only"):
        too_many = TaskSpec.model_validate(base | {"task": "ctr/generated-sample"})
        build_views(too_many, prepare(too_many))
