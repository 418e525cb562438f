"""Multi-target top-K metrics against a brute force that enumerates every tie-break order."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark.eval import RankingEvaluator, TopKEvaluator, metric_names, parse_metric
from benchmark.eval import multi as MT

KS = (1, 2, 3, 5)
BASES = ("Recall", "Precision", "NDCG", "HR", "MRR", "MAP", "ItemCoverage", "ARP")
ALL = [f"{b}@{k}" for b in BASES for k in KS]
PER_USER = [name for name in ALL if not name.startswith("ItemCoverage")]


def orderings(row: np.ndarray, cands: list[int]) -> list[list[int]]:
    """Every ranking of the candidates consistent with the scores: all orders within each tie group."""
    levels = sorted({row[j] for j in cands}, reverse=True)
    groups = [[j for j in cands if row[j] == v] for v in levels]
    return [[j for grp in combo for j in grp] for combo in itertools.product(*map(itertools.permutations, groups))]


def ranking_metrics(ranking: list[int], relevant: set[int], k: int, pop: np.ndarray) -> dict[str, float]:
    """Textbook definitions on one explicit ranking."""
    top = ranking[:k]
    hits = [pos for pos, j in enumerate(top, start=1) if j in relevant]
    idcg = sum(1 / math.log2(i + 1) for i in range(1, min(len(relevant), k) + 1))
    return {
        "Recall": len(hits) / len(relevant),
        "Precision": len(hits) / k,
        "NDCG": sum(1 / math.log2(p + 1) for p in hits) / idcg,
        "HR": float(bool(hits)),
        "MRR": 1 / hits[0] if hits else 0.0,
        "MAP": sum((c + 1) / p for c, p in enumerate(hits)) / min(len(relevant), k),
        "ARP": float(np.mean(pop[top])),
    }


def reference(scores, targets, exclude, pop):
    """Per-user expected metrics and per-user P(item in top K), by enumerating every ranking."""
    n, m = scores.shape
    per_user, p_top = [], {k: np.zeros((n, m)) for k in KS}
    for u in range(n):
        relevant = set(targets[u].tolist())
        cands = [j for j in range(m) if j in relevant or j not in set(exclude[u].tolist())]
        ranks = orderings(scores[u], cands)
        sums = dict.fromkeys(PER_USER, 0.0)
        for ranking in ranks:
            for k in KS:
                for base, v in ranking_metrics(ranking, relevant, k, pop).items():
                    sums[f"{base}@{k}"] += v
                p_top[k][u, ranking[:k]] += 1
        per_user.append({name: v / len(ranks) for name, v in sums.items()})
        for k in KS:
            p_top[k][u] /= len(ranks)
    return per_user, p_top


@st.composite
def cases(draw, max_users=3, max_items=7):
    n = draw(st.integers(1, max_users))
    m = draw(st.integers(1, max_items))
    values = (-math.inf, 0.0, 1.0, 2.0, 3.0, math.inf)
    flat = draw(st.lists(st.sampled_from(values), min_size=n * m, max_size=n * m))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    scores = np.array(flat, dtype=dtype).reshape(n, m)
    targets, exclude = [], []
    for _ in range(n):
        rel = draw(st.lists(st.integers(0, m - 1), min_size=1, max_size=min(4, m), unique=True))
        targets.append(np.array(rel, dtype=np.int64))
        # May name relevant items (they stay) and repeat columns (counted once).
        exclude.append(np.array(draw(st.lists(st.integers(0, m - 1), max_size=m)), dtype=np.int64))
    pop = np.array(draw(st.lists(st.integers(0, 20), min_size=m, max_size=m)), dtype=np.float64)
    return scores, targets, exclude, pop


@settings(max_examples=120, deadline=None)
@given(cases())
def test_all_metrics_match_enumeration_of_tie_orders(case):
    scores, targets, exclude, pop = case
    n, m = scores.shape
    before = scores.copy(), [t.copy() for t in targets], [e.copy() for e in exclude]
    for a in (scores, *targets, *exclude):
        a.setflags(write=False)  # read-only inputs must work and stay untouched
    ev = TopKEvaluator(ALL, m, pop)
    ev.add(np.arange(n), scores, targets, exclude)
    np.testing.assert_array_equal(scores, before[0])
    assert all(np.array_equal(a, b) for a, b in zip(targets + exclude, before[1] + before[2]))

    want, p_top = reference(scores, targets, exclude, pop)
    frame = ev.per_user()
    assert list(frame.columns) == ["user", "n_relevant", "n_candidates", *PER_USER]
    for u in range(n):
        for name in PER_USER:
            assert abs(frame[name][u] - want[u][name]) <= 1e-9, (name, scores[u], targets[u], exclude[u])
    summary = ev.summary()
    for k in KS:
        # Users are independent: P(item covered) = 1 - prod_u P(not in u's top K).
        coverage = np.mean(1 - np.prod(1 - p_top[k], axis=0))
        assert abs(summary[f"ItemCoverage@{k}"] - coverage) <= 1e-9
        arp = np.mean([want[u][f"ARP@{k}"] for u in range(n)])
        assert abs(summary[f"ARP@{k}"] - arp) <= 1e-9


def test_coverage_matches_joint_enumeration_over_users():
    # Enumerate the joint rankings of three users, so the independence formula is checked too.
    scores = np.array([[1, 1, 1, 0, 0], [2, 2, 1, 1, 1], [0, 0, 0, 0, 3]], dtype=np.float64)
    targets = [np.array([0]), np.array([3, 4]), np.array([4])]
    exclude = [np.array([4]), np.array([], dtype=np.int64), np.array([0])]
    per_user = [orderings(scores[u], [j for j in range(5) if j not in exclude[u]]) for u in range(3)]
    for k in (1, 2, 3):
        ev = TopKEvaluator([f"ItemCoverage@{k}"], 5)
        ev.add(np.arange(3), scores, targets, exclude)
        joint = [len(set().union(*(r[:k] for r in combo))) / 5 for combo in itertools.product(*per_user)]
        assert ev.summary()[f"ItemCoverage@{k}"] == pytest.approx(math.fsum(joint) / len(joint), abs=1e-12)


def test_hand_example():
    # Candidates after excluding column 4: 0 and 1 tie at 3, then 5, then 2 and 3 tie at 1.
    scores = np.array([[3.0, 3.0, 1.0, 1.0, 9.0, 2.0]])
    ev = TopKEvaluator(["Recall@1", "HR@1", "MRR@5", "MAP@5", "NDCG@2", "ARP@2", "ItemCoverage@2"], 6, np.arange(6.0))
    ev.add(np.array([7]), scores, [np.array([0, 2])], [np.array([4])])
    row = ev.per_user().iloc[0]
    assert (row["user"], row["n_relevant"], row["n_candidates"]) == (7, 2, 5)
    assert row["Recall@1"] == 0.25 and row["HR@1"] == 0.5
    assert row["MRR@5"] == pytest.approx((1 + 1 / 2) / 2)
    # Item 0 at 1 or 2 (precision 1 or 1/2), item 2 at 4 or 5 (precision 2/4 or 2/5).
    assert row["MAP@5"] == pytest.approx(((1 + 0.5) / 2 + (0.5 + 0.4) / 2) / 2)
    assert row["NDCG@2"] == pytest.approx((1 + 1 / math.log2(3)) / 2 / (1 + 1 / math.log2(3)))
    assert row["ARP@2"] == 0.5  # items 0 and 1 fill the top 2
    assert ev.summary()["ItemCoverage@2"] == pytest.approx(2 / 6)


def comb_ratio(a: int, b: int, t: int) -> Fraction:
    return Fraction(math.comb(a, t), math.comb(b, t))


@pytest.mark.parametrize("m,n_excl,n_rel", [(1, 0, 1), (7, 2, 3), (1000, 0, 1), (1000, 37, 12), (3000, 10, 60)])
def test_constant_scores_give_exactly_chance(m, n_excl, n_rel):
    users = 5
    ks = (1, 10, 50)
    names = [f"{b}@{k}" for b in BASES for k in ks]
    rng = np.random.default_rng(m)
    pop = rng.integers(0, 100, m).astype(np.float64)
    ev = TopKEvaluator(names, m, pop)
    scores = np.full((users, m), 0.5, dtype=np.float32)
    targets = [np.arange(n_rel) for _ in range(users)]
    exclude = [np.arange(m - n_excl, m) for _ in range(users)]
    ev.add(np.arange(users), scores, targets, exclude)
    got = ev.summary()
    c, r = m - n_excl, n_rel  # candidates left, relevant
    for k in ks:
        kk = min(k, c)
        d = [0.0] + list(itertools.accumulate(1 / math.log2(i + 1) for i in range(1, kk + 1)))
        # Position-based derivations, independent of the item-based ones in multi.py.
        first_at = [comb_ratio(c - i, c, r - 1) * Fraction(math.comb(c, r - 1), math.comb(c, r)) for i in range(1, kk + 1)]
        expected = {
            "Recall": kk / c,
            "Precision": r / c * kk / k,
            "NDCG": r / c * d[kk] / d[min(r, kk)],
            "HR": float(1 - comb_ratio(c - r, c, kk)),
            "MRR": float(sum(p / i for i, p in enumerate(first_at, start=1))),
            "MAP": math.fsum(r / c * (1 + (j - 1) * (r - 1) / max(c - 1, 1)) / j for j in range(1, kk + 1)) / min(r, k),
            "ItemCoverage": float(Fraction(c, m) * (1 - (1 - Fraction(kk, c)) ** users)),
            "ARP": math.fsum(pop[:c]) / c,
        }
        for base, value in expected.items():
            assert got[f"{base}@{k}"] == pytest.approx(value, rel=1e-12, abs=1e-15), (base, k)


def test_one_relevant_item_agrees_with_the_single_target_evaluator():
    # With |R| = 1: Recall = HR, MAP = MRR, NDCG's IDCG is 1. Checks the counts on a big, tie-heavy catalogue.
    rng = np.random.default_rng(3)
    n, m = 60, 20_000
    scores = (np.round(rng.standard_normal((n, m)) * 4) / 4).astype(np.float32)
    scores[:, 5] = np.inf
    scores[:, 6] = -np.inf
    target = rng.integers(0, m, n)
    target[:3] = [5, 6, 7]
    exclude = [rng.integers(0, m, rng.integers(0, 3000)) for _ in range(n)]
    exclude[1] = np.arange(100)  # masks some columns to -inf around a -inf target
    ks = (1, 10, 100)
    multi = TopKEvaluator([f"{b}@{k}" for b in ("Recall", "HR", "NDCG", "MRR", "MAP") for k in ks], m)
    multi.add(np.arange(n), scores, [np.array([t]) for t in target], exclude)
    single = RankingEvaluator([f"{b}@{k}" for b in ("HR", "NDCG", "MRR") for k in ks])
    single.add(np.arange(n), scores, target, exclude)
    got, want = multi.per_user(), single.per_user()
    assert (want["ties"] > 100).mean() > 0.5  # the data really is full of ties
    np.testing.assert_array_equal(got["n_candidates"], [m - len(set(e.tolist()) - {t}) for e, t in zip(exclude, target)])
    for k in ks:
        for mine, theirs in [("Recall", "HR"), ("HR", "HR"), ("NDCG", "NDCG"), ("MRR", "MRR"), ("MAP", "MRR")]:
            np.testing.assert_allclose(got[f"{mine}@{k}"], want[f"{theirs}@{k}"], rtol=1e-12, atol=1e-15)


def direct_top_k_probabilities(scores, targets, exclude, k):
    """P(item in top K) per user and item, by counting with NumPy (no sort-and-search)."""
    p = np.zeros(scores.shape)
    for u, row in enumerate(scores.astype(np.float64)):
        cand = np.ones(row.size, bool)
        cand[exclude[u]] = False
        cand[targets[u]] = True  # relevant items are never excluded
        vals = row[cand]
        kk = min(k, vals.size)
        kth = np.sort(vals)[::-1][kk - 1]
        above, tied = (vals > kth).sum(), (vals == kth).sum()
        p[u, cand & (row > kth)] = 1
        p[u, cand & (row == kth)] = (kk - above) / tied
    return p


def test_chunks_blocks_and_buffer_reuse_equal_one_call(monkeypatch):
    monkeypatch.setattr(MT, "_BLOCK_ELEMS", 3 * 57)  # many tiny blocks: edges and reused scratch
    rng = np.random.default_rng(0)
    n, m = 300, 57
    scores = np.round(rng.standard_normal((n, m)), 1).astype(np.float32)
    scores[rng.random((n, m)) < 0.05] = -np.inf
    targets = [rng.choice(m, rng.integers(1, 6), replace=False) for _ in range(n)]
    exclude = [rng.integers(0, m, rng.integers(0, 8)) for _ in range(n)]
    users = rng.permutation(n) + 1000
    pop = rng.integers(0, 50, m).astype(np.float64)
    names = ["Recall@10", "NDCG@10", "MAP@5", "HR@3", "MRR@20", "Precision@1", "ItemCoverage@10", "ARP@10"]
    whole = TopKEvaluator(names, m, pop)
    whole.add(users, scores, targets, exclude)
    chunked = TopKEvaluator(names, m, pop)
    for a, b in itertools.pairwise([0, 1, 50, 51, 199, n]):
        chunked.add(users[a:b], scores[a:b], targets[a:b], exclude[a:b])
    pd.testing.assert_frame_equal(whole.per_user(), chunked.per_user(), check_exact=False, rtol=1e-13)
    # One user per call: no padding of the relevant lists, and every user has a row block to itself.
    single = TopKEvaluator(names, m, pop)
    for i in range(60):
        single.add(users[i : i + 1], scores[i : i + 1], targets[i : i + 1], exclude[i : i + 1])
    pd.testing.assert_frame_equal(whole.per_user()[:60], single.per_user(), check_exact=False, rtol=1e-13)
    assert whole.per_user()["user"].tolist() == users.tolist()
    assert whole.summary() == pytest.approx(chunked.summary(), rel=1e-13)

    p = direct_top_k_probabilities(scores, targets, exclude, 10)
    assert whole.summary()["ItemCoverage@10"] == pytest.approx(np.mean(1 - np.prod(1 - p, axis=0)), rel=1e-12)
    np.testing.assert_allclose(whole.per_user()["ARP@10"], p @ pop / 10, rtol=1e-12)


def test_fewer_candidates_than_k_lists_them_all():
    ev = TopKEvaluator(["Recall@5", "Precision@5", "ARP@5", "ItemCoverage@5"], 4, np.array([1.0, 2, 3, 6]))
    ev.add(np.array([0]), np.array([[0.1, 0.2, 0.3, 0.4]]), [np.array([0])], [np.array([3])])
    row = ev.per_user().iloc[0]
    assert (row["Recall@5"], row["Precision@5"], row["ARP@5"]) == (1.0, 0.2, 2.0)  # mean over the 3 listed
    assert ev.summary()["ItemCoverage@5"] == 0.75


def test_nan_scores_are_rejected_and_leave_nothing_behind():
    ev = TopKEvaluator(["HR@1", "ItemCoverage@1"], 3)
    ev.add(np.array([0]), np.array([[1.0, 0.0, 0.0]]), [np.array([1])])
    for bad_col in (0, 2):  # a candidate, and a column the user excludes
        scores = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        scores[1, bad_col] = np.nan
        with pytest.raises(ValueError, match=r"NaN.*\[6\]"):
            ev.add(np.array([5, 6]), scores, [np.array([0]), np.array([1])], [np.array([], int), np.array([2])])
    assert ev.per_user()["user"].tolist() == [0]
    assert ev.summary()["ItemCoverage@1"] == pytest.approx(1 / 3)


def test_add_validates_inputs():
    ev = TopKEvaluator(["HR@1"], 3)
    with pytest.raises(ValueError, match="n_items=3"):
        ev.add(np.array([0]), np.zeros((1, 4)), [np.array([0])])
    with pytest.raises(ValueError, match=r"targets are empty for users \[9\]"):
        ev.add(np.array([9]), np.zeros((1, 3)), [np.array([], dtype=np.int64)])
    with pytest.raises(ValueError, match=r"targets has column indices outside \[0, 3\)"):
        ev.add(np.array([0]), np.zeros((1, 3)), [np.array([3])])
    with pytest.raises(ValueError, match=r"exclude has column indices outside"):
        ev.add(np.array([0]), np.zeros((1, 3)), [np.array([0])], [np.array([-1])])
    with pytest.raises(TypeError, match="integer"):
        ev.add(np.array([0]), np.zeros((1, 3)), [np.array([0.0])])
    with pytest.raises(TypeError, match="floating"):
        ev.add(np.array([0]), np.zeros((1, 3), dtype=np.int64), [np.array([0])])
    with pytest.raises(ValueError, match="2 entries for 1 users"):
        ev.add(np.array([0]), np.zeros((1, 3)), [np.array([0]), np.array([1])])
    with pytest.raises(ValueError, match="no users"):
        ev.summary()
    with pytest.raises(ValueError, match="item_popularity"):
        TopKEvaluator(["ARP@10"], 3)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        TopKEvaluator(["ARP@10"], 3, np.ones(2))
    with pytest.raises(ValueError, match="more than once"):
        TopKEvaluator(["HR@1", "HR@1"], 3)
    with pytest.raises(ValueError, match="needs a cutoff"):
        TopKEvaluator(["MRR"], 3)


def test_metric_names_per_family():
    assert metric_names("sequential") == ("HR", "NDCG", "MRR", "Recall")
    assert metric_names("topk") == BASES
    assert metric_names("ctr") == ("AUC", "GAUC", "LogLoss")
    assert parse_metric("MAP@10", "topk") == ("MAP", 10)
    assert parse_metric("ItemCoverage@20", "topk") == ("ItemCoverage", 20)
    assert parse_metric("GAUC", "ctr") == ("GAUC", None)
    assert parse_metric("MRR") == ("MRR", None)  # the sequential default is unchanged
    with pytest.raises(ValueError, match=r"'MAP@10' for a sequential task \(MAP is a topk metric\)"):
        parse_metric("MAP@10")
    with pytest.raises(ValueError, match=r"'Presicion@5'.*did you mean 'Precision@5'"):
        parse_metric("Presicion@5", "topk")
    with pytest.raises(ValueError, match=r"'AUC@5' takes no cutoff"):
        parse_metric("AUC@5", "ctr")
    with pytest.raises(ValueError, match=r"'auc'.*did you mean 'AUC'"):
        parse_metric("auc", "ctr")
    with pytest.raises(ValueError, match="unknown task family 'rating'"):
        metric_names("rating")
