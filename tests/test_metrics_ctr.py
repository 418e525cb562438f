"""CTR metrics against brute-force pair counts and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from benchmark.eval import CTREvaluator, auc, ctr_metrics, ctr_per_user, log_loss


def pair_auc(labels, predictions) -> float:
    """Every (positive, negative) pair: 1 if the positive is higher, ½ on a tie."""
    pos = [p for p, y in zip(predictions, labels) if y == 1]
    neg = [p for p, y in zip(predictions, labels) if y == 0]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    return wins / (len(pos) * len(neg))


impressions = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 1), st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 1.0])),
    min_size=1,
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(impressions)
def test_auc_and_gauc_match_pair_counts(rows):
    users = np.array([u for u, _, _ in rows])
    labels = np.array([y for _, y, _ in rows])
    preds = np.array([p for _, _, p in rows])
    assume(0 < labels.sum() < len(labels))
    assert auc(labels, preds) == pytest.approx(pair_auc(labels, preds), abs=1e-15)

    weighted, weights, excluded = 0.0, 0, 0
    for u in np.unique(users):
        y, p = labels[users == u], preds[users == u]
        if 0 < y.sum() < len(y):
            weighted += len(y) * pair_auc(y, p)
            weights += len(y)
        else:
            excluded += 1
    table = ctr_per_user(labels, preds, users)
    assert table["user"].tolist() == np.unique(users).tolist()
    assert table["impressions"].tolist() == [int((users == u).sum()) for u in table["user"]]
    assert table["positives"].tolist() == [int(labels[users == u].sum()) for u in table["user"]]
    if weights == 0:
        with pytest.raises(ValueError, match="no user has both"):
            ctr_metrics(labels, preds, users, ["GAUC"])
        return
    got = ctr_metrics(labels, preds, users, ["AUC", "GAUC", "LogLoss"])
    assert got["GAUC"] == pytest.approx(weighted / weights, abs=1e-14)
    assert got["GAUC.excluded_users"] == excluded
    assert got["GAUC.users"] == len(table) - excluded
    assert table["auc"].isna().sum() == excluded


def test_auc_known_values():
    assert auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    # Positives {0.5, 0.9} vs negatives {0.5, 0.2}: 1/2 + 1 + 1 + 1 of 4 pairs.
    assert auc(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.2, 0.9])) == 0.875
    assert auc(np.array([True, False, True]), np.full(3, 0.3)) == 0.5  # constant predictions: chance
    assert auc(np.array([1, 0]), np.array([-3.0, np.inf])) == 0.0  # any real scores rank
    with pytest.raises(ValueError, match="both positive and negative"):
        auc(np.array([1, 1]), np.array([0.2, 0.3]))


def test_auc_is_exact_on_many_impressions():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200_000)
    preds = np.round(rng.random(200_000), 2)  # ~100 distinct values: heavy ties
    pos, neg = np.bincount((preds[labels == 1] * 100).round().astype(int), minlength=101), np.bincount(
        (preds[labels == 0] * 100).round().astype(int), minlength=101)
    below = np.cumsum(neg) - neg
    expected = (pos * below).sum() + 0.5 * (pos * neg).sum()
    assert auc(labels, preds) == expected / (pos.sum() * neg.sum())


def test_gauc_weights_by_impressions_and_reports_exclusions():
    users = np.array(["a", "a", "a", "a", "b", "b", "c", "c", "c"])
    labels = np.array([1, 0, 0, 0, 1, 0, 1, 1, 1])
    preds = np.array([0.9, 0.1, 0.2, 0.95, 0.1, 0.6, 0.5, 0.5, 0.5])
    got = ctr_metrics(labels, preds, users, ["GAUC"])
    # a: the positive beats 2 of 3 negatives (AUC 2/3, 4 impressions); b: AUC 0 (2); c: single-class.
    assert got == {"GAUC": pytest.approx((4 * 2 / 3 + 2 * 0) / 6), "GAUC.users": 2.0, "GAUC.excluded_users": 1.0}
    table = ctr_per_user(labels, preds, users)
    assert table["auc"].tolist()[:2] == pytest.approx([2 / 3, 0.0]) and math.isnan(table["auc"][2])
    with pytest.raises(ValueError, match="needs the user"):
        ctr_metrics(labels, preds, None, ["GAUC"])


def test_log_loss_values_and_clipping():
    labels = np.array([1, 0, 1, 0])
    preds = np.array([0.8, 0.3, 0.5, 0.5])
    assert log_loss(labels, preds) == pytest.approx(-(math.log(0.8) + math.log(0.7) + 2 * math.log(0.5)) / 4)
    assert log_loss(np.array([1]), np.array([0.0])) == pytest.approx(-math.log(1e-7), rel=1e-12)
    assert log_loss(np.array([0]), np.array([1.0])) == pytest.approx(-math.log(1e-7), rel=1e-6)
    assert log_loss(np.array([1]), np.array([1.0])) == pytest.approx(-math.log1p(-1e-7), rel=1e-9)
    assert log_loss(np.array([1, 0]), np.array([1.0, 0.0], dtype=np.float32)) > 0  # clipping applies to float32 too
    assert ctr_metrics(labels, preds, metrics=["LogLoss"]) == {"LogLoss": log_loss(labels, preds)}


@pytest.mark.parametrize("bad", [np.nan, 1.5, -0.1, np.inf])
def test_log_loss_rejects_nan_and_out_of_range(bad):
    preds = np.array([0.2, bad, 0.4])
    with pytest.raises(ValueError, match=r"rows \[1\].*finite numbers in \[0, 1\]"):
        log_loss(np.array([0, 1, 1]), preds)
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        ctr_metrics(np.array([0, 1, 1]), preds, np.zeros(3), ["AUC", "LogLoss"])


def test_inputs_are_validated():
    with pytest.raises(ValueError, match="NaN"):
        auc(np.array([0, 1]), np.array([np.nan, 0.5]))
    with pytest.raises(ValueError, match="binary"):
        auc(np.array([0, 2]), np.array([0.1, 0.5]))
    with pytest.raises(ValueError, match="equal length"):
        auc(np.array([0, 1]), np.array([0.1]))
    with pytest.raises(ValueError, match="no impressions"):
        log_loss(np.array([]), np.array([]))
    with pytest.raises(ValueError, match="takes no cutoff"):
        ctr_metrics(np.array([0, 1]), np.array([0.1, 0.5]), None, ["AUC@10"])
    with pytest.raises(ValueError, match="unknown metric 'NDCG@10'"):
        ctr_metrics(np.array([0, 1]), np.array([0.1, 0.5]), None, ["NDCG@10"])


def test_evaluator_over_chunks_equals_one_call():
    rng = np.random.default_rng(1)
    users = rng.integers(0, 30, 500)
    labels = rng.integers(0, 2, 500)
    preds = np.round(rng.random(500), 1)
    ev = CTREvaluator(["AUC", "GAUC", "LogLoss"])
    for a, b in [(0, 1), (1, 200), (200, 500)]:
        ev.add(users[a:b], labels[a:b], preds[a:b])
    assert ev.summary() == ctr_metrics(labels, preds, users, ["AUC", "GAUC", "LogLoss"])
    assert ev.per_user().equals(ctr_per_user(labels, preds, users))
    with pytest.raises(ValueError, match="outside"):
        ev.add(users[:2], labels[:2], np.array([0.5, 2.0]))
    assert ev.summary() == ctr_metrics(labels, preds, users, ["AUC", "GAUC", "LogLoss"])  # the bad chunk left nothing
    with pytest.raises(ValueError, match="no impressions"):
        CTREvaluator(["AUC"]).summary()
    with pytest.raises(ValueError, match="more than once"):
        CTREvaluator(["AUC", "AUC"])
