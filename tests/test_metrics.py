"""Tie-aware ranking metrics against a brute-force reference that ranks explicitly."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark.eval import metrics as M
from benchmark.eval import (
    RankingEvaluator,
    chance_level,
    metrics_from_counts,
    parse_metric,
    target_rank_counts,
)

ALL_METRICS = [f"{b}@{k}" for b in ("HR", "NDCG", "MRR", "Recall") for k in (1, 2, 5, 10)] + ["MRR"]


def metric_at_rank(name: str, rank: int) -> float:
    base, k = parse_metric(name)
    if k is not None and rank > k:
        return 0.0
    return {"HR": 1.0, "Recall": 1.0, "NDCG": 1.0 / math.log2(rank + 1), "MRR": 1.0 / rank}[base]


def reference(row: np.ndarray, target: int, name: str) -> float:
    """Average the metric over every tie-break order of the target's tie group, ranking by sort."""
    group = [j for j in range(len(row)) if row[j] == row[target]]
    if len(group) <= 6:
        orders = list(itertools.permutations(group))  # every order of the tied items
    else:  # too many permutations: every placement of the target within its group
        others = [j for j in group if j != target]
        orders = [others[:p] + [target] + others[p:] for p in range(len(group))]
    values = []
    for order in orders:
        tiebreak = {j: i for i, j in enumerate(order)}
        ranking = sorted(range(len(row)), key=lambda j: (-row[j], tiebreak.get(j, 0)))
        values.append(metric_at_rank(name, ranking.index(target) + 1))
    return math.fsum(values) / len(values)


@st.composite
def score_matrices(draw, values=(0.0, 1.0, 2.0, 3.0)):
    n = draw(st.integers(1, 8))
    m = draw(st.integers(1, 12))
    flat = draw(st.lists(st.sampled_from(values), min_size=n * m, max_size=n * m))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    scores = np.array(flat, dtype=dtype).reshape(n, m)
    targets = np.array(draw(st.lists(st.integers(0, m - 1), min_size=n, max_size=n)), dtype=np.int64)
    return scores, targets


@settings(max_examples=150, deadline=None)
@given(score_matrices(values=(float("-inf"), 0.0, 1.0, 2.0, 3.0)))
def test_metrics_match_bruteforce_with_many_ties(case):
    scores, targets = case
    greater, ties = target_rank_counts(torch.from_numpy(scores), torch.from_numpy(targets))
    got = metrics_from_counts(greater, ties, ALL_METRICS)
    ev = RankingEvaluator(ALL_METRICS)
    ev.add(np.arange(len(scores)), scores, targets)
    frame = ev.per_user()
    for i, row in enumerate(scores):
        assert greater[i] == int((row > row[targets[i]]).sum())
        for name in ALL_METRICS:
            want = reference(row, targets[i], name)
            assert abs(float(got[name][i]) - want) <= 1e-12, (name, row, targets[i])
            assert abs(frame[name].iloc[i] - want) <= 1e-12


def test_reference_itself_on_a_known_case():
    # Target tied with one other item below one better item: rank 2 or 3 with prob 1/2.
    row = np.array([5.0, 3.0, 3.0, 1.0])
    assert reference(row, 1, "HR@2") == 0.5
    assert reference(row, 1, "MRR") == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert reference(row, 1, "NDCG@10") == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / 2)


@pytest.mark.parametrize("n_cands", [1, 7, 100, 1000])
def test_constant_scores_give_exactly_chance(n_cands):
    names = ["HR@1", "HR@10", "Recall@10", "NDCG@10", "MRR@10", "MRR"]
    scores = np.full((13, n_cands), 0.25, dtype=np.float32)
    targets = np.arange(13) % n_cands
    ev = RankingEvaluator(names)
    ev.add(np.arange(13), scores, targets)
    summary = ev.summary()
    k = min(10, n_cands)
    expected = {
        "HR@1": 1 / n_cands,
        "HR@10": k / n_cands,
        "Recall@10": k / n_cands,
        "NDCG@10": math.fsum(1 / math.log2(r + 1) for r in range(1, k + 1)) / n_cands,
        "MRR@10": math.fsum(1 / r for r in range(1, k + 1)) / n_cands,
        "MRR": math.fsum(1 / r for r in range(1, n_cands + 1)) / n_cands,
    }
    for name in names:
        assert summary[name] == pytest.approx(expected[name], abs=1e-15, rel=1e-13), name
        assert chance_level(n_cands, name) == pytest.approx(expected[name], abs=1e-15, rel=1e-13), name


def test_constant_scores_with_exclusions_are_chance_over_remaining_candidates():
    scores = np.zeros((2, 20))
    ev = RankingEvaluator(["HR@5"])
    ev.add(np.array([0, 1]), scores, np.array([0, 3]), exclude=[np.arange(10), np.array([], dtype=np.int64)])
    # user 0: columns 1..9 removed (the target column 0 stays) -> 11 candidates.
    assert ev.per_user()["HR@5"].tolist() == [5 / 11, 5 / 20]


@settings(max_examples=100, deadline=None)
@given(score_matrices(), st.data())
def test_exclusion_equals_dropping_the_columns(case, data):
    scores, targets = case
    n, m = scores.shape
    # Exclusion lists may repeat columns and may name the target.
    exclude = [np.array(data.draw(st.lists(st.integers(0, m - 1), max_size=2 * m)), dtype=np.int64) for _ in range(n)]
    before = scores.copy()
    scores.setflags(write=False)  # read-only inputs must work and must stay untouched
    targets.setflags(write=False)
    ev = RankingEvaluator(["HR@2", "NDCG@5", "MRR"])
    ev.add(np.arange(n), scores, targets, exclude=exclude)
    np.testing.assert_array_equal(scores, before)
    frame = ev.per_user()
    for i in range(n):
        keep = [j for j in range(m) if j == targets[i] or j not in set(exclude[i].tolist())]
        row = scores[i, keep]
        target = keep.index(targets[i])
        assert frame["greater"][i] == (row > row[target]).sum()
        assert frame["ties"][i] == (row == row[target]).sum() - 1
        for name in ev.metrics:
            assert abs(frame[name][i] - reference(row, target, name)) <= 1e-12
        # For a finite target, dropping columns equals the -inf masking that target_rank_counts expects.
        masked = scores[i].astype(np.float64)
        masked[[j for j in range(m) if j not in keep]] = -np.inf
        g, t = target_rank_counts(torch.from_numpy(masked[None]), torch.tensor([targets[i]]))
        assert (int(g[0]), int(t[0])) == (frame["greater"][i], frame["ties"][i])


def test_exclusion_never_masks_the_target_and_rejects_bad_columns():
    scores = np.array([[3.0, 2.0, 1.0]])
    ev = RankingEvaluator(["HR@1"])
    ev.add(np.array([0]), scores, np.array([1]), exclude=[np.array([0, 1])])
    assert ev.per_user()["HR@1"].tolist() == [1.0]  # item 0 removed, target 1 kept and now first
    with pytest.raises(ValueError, match="outside"):
        ev.add(np.array([1]), scores, np.array([1]), exclude=[np.array([3])])
    with pytest.raises(ValueError, match="outside"):
        ev.add(np.array([1]), scores, np.array([1]), exclude=[np.array([-1])])


def test_chunked_accumulation_equals_one_call():
    rng = np.random.default_rng(0)
    n, m = 300, 57
    scores = np.round(rng.standard_normal((n, m)), 1).astype(np.float32)
    targets = rng.integers(0, m, n)
    exclude = [rng.integers(0, m, rng.integers(0, 5)) for _ in range(n)]
    users = rng.permutation(n) + 1000
    names = ["HR@10", "NDCG@10", "MRR@5", "MRR", "Recall@20"]
    whole = RankingEvaluator(names)
    whole.add(users, scores, targets, exclude)
    chunked = RankingEvaluator(names)
    bounds = [0, 1, 50, 51, 199, n]
    for a, b in itertools.pairwise(bounds):
        chunked.add(users[a:b], scores[a:b], targets[a:b], exclude[a:b])
    assert whole.per_user().equals(chunked.per_user())
    assert whole.summary() == chunked.summary()
    assert list(whole.per_user().columns) == ["user", "greater", "ties", *names]
    assert whole.per_user()["user"].tolist() == users.tolist()


def test_row_blocks_and_buffer_reuse_match_direct_comparison(monkeypatch):
    # Force many tiny blocks so block edges and the reused scratch buffer are exercised.
    monkeypatch.setattr(M, "_BLOCK_ELEMS", 3 * 64)
    rng = np.random.default_rng(1)
    ev = RankingEvaluator(["HR@10"])
    expected = []
    for n, m in [(10, 64), (7, 64), (5, 200)]:
        scores = rng.integers(0, 4, (n, m)).astype(np.float32)
        targets = rng.integers(0, m, n)
        ev.add(np.arange(n), scores, targets)
        t = scores[np.arange(n), targets][:, None]
        expected += list(zip((scores > t).sum(1), (scores == t).sum(1) - 1))
    frame = ev.per_user()
    assert list(zip(frame["greater"], frame["ties"])) == expected


def test_large_catalogue_counts_are_exact():
    rng = np.random.default_rng(2)
    scores = (np.round(rng.standard_normal((40, 50_000)) * 16) / 16).astype(np.float32)
    scores[:, 7] = np.inf
    scores[:, 8] = -np.inf
    targets = rng.integers(0, 50_000, 40)
    targets[:3] = [7, 8, 9]  # +inf and -inf targets take the comparison fallback
    greater, ties = target_rank_counts(torch.from_numpy(scores), torch.from_numpy(targets))
    t = scores[np.arange(40), targets][:, None]
    np.testing.assert_array_equal(greater.numpy(), (scores > t).sum(1))
    np.testing.assert_array_equal(ties.numpy(), (scores == t).sum(1) - 1)
    assert ties.max() > 100  # the data really is full of ties


def test_subnormal_differences_are_not_ties():
    tiny = np.float32(1e-45)  # the smallest float32 subnormal
    scores = np.array([[0.0, tiny, 2 * tiny, tiny]], dtype=np.float32)
    g, t = target_rank_counts(torch.from_numpy(scores), torch.tensor([1]))
    assert (int(g[0]), int(t[0])) == (1, 1)


def test_nan_scores_are_rejected():
    ev = RankingEvaluator(["HR@1"])
    scores = np.array([[1.0, np.nan, 0.0], [1.0, 2.0, 0.0]])
    with pytest.raises(ValueError, match=r"NaN.*\[5\]"):
        ev.add(np.array([5, 6]), scores, np.array([0, 0]))
    with pytest.raises(ValueError, match="NaN"):
        ev.add(np.array([5, 6]), scores, np.array([1, 0]))
    with pytest.raises(ValueError, match="NaN"):
        target_rank_counts(torch.from_numpy(scores), torch.tensor([0, 0]))
    assert ev.per_user().empty  # failed chunks leave nothing behind
    wide = np.zeros((3, 50_000), dtype=np.float32)
    for pos in (0, 12_345, 49_999):  # vectorised kernels have head, body and tail paths
        wide[1, pos] = np.nan
        with pytest.raises(ValueError, match=r"NaN.*\[1\]"):
            ev.add(np.arange(3), wide, np.array([5, 5, 5]))
        wide[1, pos] = 0


def test_torch_thread_setting_is_restored():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ev = RankingEvaluator(["HR@1"])
        ev.add(np.arange(2), np.zeros((2, 5)), np.array([0, 1]))  # counting runs single-threaded
        assert torch.get_num_threads() == 2
        with pytest.raises(ValueError, match="NaN"):
            ev.add(np.arange(2), np.full((2, 5), np.nan), np.array([0, 1]))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_add_validates_shapes():
    ev = RankingEvaluator(["HR@1"])
    with pytest.raises(ValueError, match="target column out of range"):
        ev.add(np.array([0]), np.zeros((1, 3)), np.array([3]))
    with pytest.raises(ValueError, match="shape"):
        ev.add(np.array([0, 1]), np.zeros((1, 3)), np.array([0]))
    with pytest.raises(TypeError, match="floating"):
        ev.add(np.array([0]), np.zeros((1, 3), dtype=np.int64), np.array([0]))
    with pytest.raises(ValueError, match="no users"):
        ev.summary()


def test_parse_metric():
    assert parse_metric("NDCG@10") == ("NDCG", 10)
    assert parse_metric("MRR") == ("MRR", None)
    assert parse_metric("Recall@20") == ("Recall", 20)
    with pytest.raises(ValueError, match=r"'NDGC@10'.*did you mean 'NDCG@10'"):
        parse_metric("NDGC@10")
    with pytest.raises(ValueError, match=r"'hr@5'.*did you mean 'HR@5'"):
        parse_metric("hr@5")
    with pytest.raises(ValueError, match="K must be an integer >= 1"):
        parse_metric("HR@0")
    with pytest.raises(ValueError, match="K must be an integer >= 1"):
        parse_metric("HR@ten")
    with pytest.raises(ValueError, match="needs a cutoff"):
        parse_metric("NDCG")
    with pytest.raises(ValueError, match="'NDGC@10'"):
        RankingEvaluator(["HR@10", "NDGC@10"])
    with pytest.raises(ValueError, match="more than once"):
        RankingEvaluator(["HR@10", "HR@10"])
