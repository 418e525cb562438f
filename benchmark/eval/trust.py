"""The arithmetic of the trust measurements (benchmark.trust runs the passes that call
models): position bias, ranking consistency, popularity and exposure, fairness gaps,
ranking similarity, robustness, attacks and memorization. Definitions and references
are in docs/trust.md."""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np


def kendall_tau_b(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b between two score vectors over the same items (ties allowed);
    NaN when either vector is constant."""
    da = np.sign(a[:, None] - a[None, :])
    db = np.sign(b[:, None] - b[None, :])
    upper = np.triu_indices(len(a), k=1)
    da, db = da[upper], db[upper]
    denominator = np.sqrt(np.count_nonzero(da) * np.count_nonzero(db))
    return float((da * db).sum() / denominator) if denominator else float("nan")


def shuffle_consistency(candidate_sets: list[np.ndarray], score_sets: list[np.ndarray]) -> float:
    """Mean Kendall tau-b, over users and pairs of orderings, between the rankings a
    model gives the same candidates presented in different orders. Each score matrix
    is aligned with its candidate matrix (same users, columns in presentation order)."""
    aligned = []
    for candidates, scores in zip(candidate_sets, score_sets):
        order = np.argsort(candidates, axis=1)  # by item id: the same column order for every set
        aligned.append(np.take_along_axis(scores, order, axis=1))
    taus = [kendall_tau_b(x[row], y[row])
            for i, x in enumerate(aligned) for y in aligned[i + 1:] for row in range(len(x))]
    taus = [t for t in taus if not np.isnan(t)]
    return float(np.mean(taus)) if taus else float("nan")


def top_k_weights(scores: np.ndarray, k: int) -> np.ndarray:
    """[n_users, n_columns]: each column's probability of being in its row's top k when
    tied scores are ordered uniformly at random: 1 above the cutoff, the places left
    shared equally by a tie group that straddles it, 0 below. Rows sum to min(k, n_columns)."""
    scores = np.asarray(scores, dtype=np.float64)
    n, m = scores.shape
    k = min(k, m)
    if n == 0 or k == 0:
        return np.zeros((n, m))
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1:k]  # each row's k-th largest score
    above = scores > kth
    tied = scores == kth
    share = (k - above.sum(axis=1, keepdims=True)) / tied.sum(axis=1, keepdims=True)
    return above + tied * share


def top_k_popularity(scores: np.ndarray, candidates: np.ndarray, popularity: np.ndarray, k: int) -> np.ndarray:
    """Per user, the expected mean popularity of its top-k candidates (ARP@k), averaged
    over the orderings of tied scores (top_k_weights)."""
    weights = top_k_weights(scores, k)
    return (weights * popularity[candidates]).sum(axis=1) / min(k, weights.shape[1])


# Item popularity groups (Abdollahpouri et al. 2019, "The unfairness of popularity bias").
HEAD, MID, TAIL = 0, 1, 2
GROUP_NAMES = ("head", "mid", "tail")


def popularity_groups(popularity: np.ndarray, head_share: float, tail_share: float) -> np.ndarray:
    """Each item's group: head = the most popular items that together hold the first
    `head_share` of the interactions, tail = the least popular ones holding the last
    `tail_share` (every item never interacted with), mid = the rest. Equal counts are
    ordered by item id."""
    popularity = np.asarray(popularity, dtype=np.float64)
    groups = np.full(len(popularity), TAIL, dtype=np.int8)
    total = popularity.sum()
    if total <= 0:
        return groups
    order = np.lexsort((np.arange(len(popularity)), -popularity))
    starts = (np.cumsum(popularity[order]) - popularity[order]) / total  # share held by more popular items
    in_order = np.where(starts < head_share, HEAD, np.where(starts >= 1 - tail_share, TAIL, MID))
    groups[order] = in_order
    return groups


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0: equal, towards 1: concentrated)."""
    values = np.sort(np.asarray(values, dtype=np.float64))
    n, total = len(values), values.sum()
    if n == 0 or total <= 0:
        return float("nan")
    ranks = np.arange(1, n + 1)
    return float((2 * ranks - n - 1) @ values / (n * total))


def position_gap(per_position: dict[int, float]) -> float:
    """PosGap: the spread (max - min) of a metric over the target's positions."""
    values = list(per_position.values())
    return float(max(values) - min(values)) if values else float("nan")


def validity_rates(stats: dict[str, float], n_candidates: int) -> dict[str, float]:
    """Output validity from an LLM ranker's counters (see benchmark.kits.llm.listwise):
    hallucinated and duplicate items per item named, missing candidates per candidate,
    malformed outputs and compliant users (nothing hallucinated, nothing malformed)
    per user."""
    named = max(float(stats.get("items_named", 0)), 1.0)
    users = max(float(stats.get("users", 0)), 1.0)
    rates = {"trust.hallucination_rate": stats.get("hallucinated", 0) / named,
             "trust.duplicate_rate": stats.get("duplicates", 0) / named,
             "trust.missing_rate": stats.get("missing", 0) / (users * n_candidates),
             "trust.malformed_rate": stats.get("malformed", 0) / users}
    if "compliant" in stats:
        rates["trust.compliance"] = stats["compliant"] / users
    return rates


# --- counterfactual fairness (FaiRLLM, Zhang et al. RecSys 2023; CFaiRLLM, Deldjoo & Di Noia 2024) ---

def stable_rankings(scores: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Each row's candidates by score, highest first; tied scores keep the list's order,
    so a model whose scores do not change yields the very same ranking."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), axis=1, kind="stable")
    return np.take_along_axis(np.asarray(candidates), order, axis=1)


def jaccard_at_k(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """|A ∩ B| / |A ∪ B| of the two rankings' top-k item sets."""
    top_a, top_b = set(np.asarray(a)[:k].tolist()), set(np.asarray(b)[:k].tolist())
    union = top_a | top_b
    return len(top_a & top_b) / len(union) if union else 1.0


def rbo(a: np.ndarray, b: np.ndarray, p: float, depth: int) -> float:
    """Extrapolated rank-biased overlap (Webber et al. 2010, eq. 32) of two rankings
    seen to `depth`: with X_d the overlap of their first d items,
    X_k/k * p^k + (1-p)/p * sum_{d<=k} X_d/d * p^d; 1 for identical lists."""
    a, b = np.asarray(a)[:depth].tolist(), np.asarray(b)[:depth].tolist()
    k = min(len(a), len(b))
    if k == 0:
        return 1.0
    seen_a: set = set()
    seen_b: set = set()
    overlap, total = 0, 0.0
    for d in range(1, k + 1):
        x, y = a[d - 1], b[d - 1]
        overlap += (x in seen_b) + (y in seen_a) + (x == y)
        seen_a.add(x)
        seen_b.add(y)
        total += overlap / d * p ** d
    return float(overlap / k * p ** k + (1 - p) / p * total)


def snsr(similarities: list[float]) -> float:
    """FaiRLLM's SNSR: the range (max - min) of the similarity over a sensitive
    attribute's values."""
    return float(max(similarities) - min(similarities))


def snsv(similarities: list[float]) -> float:
    """FaiRLLM's SNSV: the (population) standard deviation of the similarity over the
    attribute's values."""
    return float(np.std(similarities))


# --- text attack ---

def expected_rank(scores: np.ndarray, column: int) -> float:
    """The tie-aware expected rank (1 = first) of `column` in a row of scores, ties
    ordered uniformly at random: 1 + #higher + (#tied others) / 2."""
    scores = np.asarray(scores, dtype=np.float64)
    own = scores[column]
    return float(1 + np.count_nonzero(scores > own) + (np.count_nonzero(scores == own) - 1) / 2)


# --- data poisoning (push attacks with popular or random filler: Lam & Riedl 2004,
# Mobasher et al. 2007) ---

def poisoning_targets(popularity: np.ndarray, groups: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` target items drawn from the popularity tail (all of it when it is smaller),
    among the tail items with a training interaction when there are `n` of them (an
    attacker promotes items that exist), else among the whole tail; in drawn order."""
    tail = np.flatnonzero(groups == TAIL)
    seen = tail[np.asarray(popularity)[tail] > 0]
    pool = seen if len(seen) >= n else tail
    return rng.choice(pool, size=min(n, len(pool)), replace=False).astype(np.int64)


def fake_user_items(popularity: np.ndarray, targets: np.ndarray, n_fake: int, filler: str, filler_size: int,
                    rng: np.random.Generator) -> list[np.ndarray]:
    """Each fake user's items: a filler of `filler_size` non-target items in random
    order — the most popular ones (equal counts by item id) for "popular", a uniform
    draw per user for "random" — then fake user j's target, targets[j % len(targets)]."""
    popularity = np.asarray(popularity)
    others = np.setdiff1d(np.arange(len(popularity)), targets)
    size = min(filler_size, len(others))
    popular = others[np.lexsort((others, -popularity[others]))[:size]]
    fakes = []
    for j in range(n_fake):
        chosen = rng.permutation(popular) if filler == "popular" else rng.choice(others, size=size, replace=False)
        fakes.append(np.append(chosen, targets[j % len(targets)]).astype(np.int64))
    return fakes


def target_hits(scores: np.ndarray, targets: np.ndarray, k: int,
                exclude: list[np.ndarray] | None = None) -> np.ndarray:
    """Per user (a row of full-catalogue scores), the mean over `targets` of the item's
    tie-aware chance to be in the top k (top_k_weights); `exclude` holds each user's
    items removed from its ranking. Its mean over users is the targets' exposure: the
    mean over targets of the share of users with it in their top k."""
    scores = np.array(scores, dtype=np.float64, copy=True)
    if exclude is not None:
        for row, items in enumerate(exclude):
            scores[row, np.asarray(items, dtype=np.int64)] = -np.inf
    return top_k_weights(scores, k)[:, np.asarray(targets, dtype=np.int64)].mean(axis=1)


# --- fairness (user side: the main score per group of a sensitive attribute) ---

def metric_label(value: object) -> str:
    """A value as a part of a metric name: each run of characters outside
    [A-Za-z0-9_-] becomes one "_" ("Film-Noir & Crime" -> "Film-Noir_Crime")."""
    label = re.sub(r"[^A-Za-z0-9_-]+", "_", str(value).strip()).strip("_")
    return label or "_"


def bin_labels(edges: Sequence[float]) -> list[str]:
    """The names of the groups that increasing `edges` cut the numbers into: below the
    first edge, each [a, b), from the last edge on. Whole-number edges name inclusive
    integer ranges, as ML-1M's age groups: [18, 25, 35] -> under_18, 18-24, 25-34,
    35_and_over."""
    edges = [float(e) for e in edges]
    if not edges or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"bin edges must be a non-empty increasing list, got {edges}")

    def between(a: float, b: float) -> str:
        if a.is_integer() and b.is_integer():
            return f"{a:g}" if b - 1 == a else f"{a:g}-{b - 1:g}"
        return f"{a:g}-{b:g}"

    inner = [between(a, b) for a, b in zip(edges, edges[1:])]
    return [metric_label(x) for x in [f"under_{edges[0]:g}", *inner, f"{edges[-1]:g}_and_over"]]


def binned(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Each number's group label (bin_labels); None where it is NaN."""
    values = np.asarray(values, dtype=np.float64)
    labels = np.array(bin_labels(edges), dtype=object)
    out = labels[np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right")]
    out[np.isnan(values)] = None
    return out


def group_codes(labels: Sequence[str | None], min_size: int) -> tuple[list[str], np.ndarray]:
    """The groups with at least `min_size` members (labels sorted) and each member's
    index among them: -1 for a missing label (None) or a smaller group."""
    labels = np.asarray(labels, dtype=object)
    known = np.array([label is not None for label in labels], dtype=bool)
    codes = np.full(len(labels), -1, dtype=np.int64)
    if not known.any():
        return [], codes
    names, inverse, counts = np.unique(labels[known].astype(str), return_inverse=True, return_counts=True)
    large = counts >= min_size
    renumbered = np.where(large, np.cumsum(large) - 1, -1)
    codes[known] = renumbered[inverse]
    return names[large].tolist(), codes


def group_means(scores: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """The mean score of each group (codes 0..n_groups-1, every group non-empty)."""
    return np.bincount(codes, weights=scores, minlength=n_groups) / np.bincount(codes, minlength=n_groups)


def gap_ratio(means: np.ndarray) -> tuple[float, float]:
    """The largest gap between group means (max - min) and their ratio (min / max; NaN
    when the largest is 0)."""
    high, low = float(np.max(means)), float(np.min(means))
    return high - low, (low / high if high != 0 else float("nan"))


def permutation_p(scores: np.ndarray, codes: np.ndarray, permutations: int, rng: np.random.Generator) -> float:
    """The permutation test of the gap between group means: the group labels shuffled
    over the users `permutations` times, p = (1 + #gaps at least the observed one) /
    (1 + permutations). Gaps equal up to rounding count as at least as large, so a
    constant score gives p = 1."""
    scores = np.asarray(scores, dtype=np.float64)
    codes = np.asarray(codes, dtype=np.int64)
    n, n_groups = len(codes), int(codes.max()) + 1
    counts = np.bincount(codes, minlength=n_groups)
    observed = gap_ratio(group_means(scores, codes, n_groups))[0]
    threshold = observed - 1e-12 * max(1.0, abs(observed))
    at_least = 0
    chunk = max(1, 1_000_000 // max(n, 1))  # permutations per step: bounded memory
    for start in range(0, permutations, chunk):
        size = min(chunk, permutations - start)
        shuffled = rng.permuted(np.tile(codes, (size, 1)), axis=1) + n_groups * np.arange(size)[:, None]
        sums = np.bincount(shuffled.ravel(), weights=np.tile(scores, size), minlength=size * n_groups)
        means = sums.reshape(size, n_groups) / counts
        at_least += int(np.count_nonzero(means.max(axis=1) - means.min(axis=1) >= threshold))
    return (1 + at_least) / (1 + permutations)


# --- robustness (test-time perturbations of what the model sees) ---

def drop_items(history: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """The history without round(share * length) random items (at least one when it
    holds two or more), the others in their order."""
    n = len(history)
    removed = min(n, max(round(share * n), 1 if n >= 2 else 0))
    return np.delete(history, rng.choice(n, size=removed, replace=False))


def shuffle_items(history: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The history's items in a random order."""
    return rng.permutation(history)


def insert_items(history: np.ndarray, count: int, n_items: int, rng: np.random.Generator) -> np.ndarray:
    """The history with `count` uniformly drawn catalogue items put at random places."""
    items = rng.integers(0, n_items, size=count)
    places = rng.integers(0, len(history) + 1, size=count)
    return np.insert(np.asarray(history), places, items.astype(np.asarray(history).dtype))


def _swappable(word: str) -> list[int]:
    """The places i where word[i] and word[i + 1] are two different letters."""
    return [i for i in range(len(word) - 1) if word[i].isalpha() and word[i + 1].isalpha()
            and word[i] != word[i + 1]]


def typo_title(title: str, share: float, rng: np.random.Generator) -> str:
    """The title with two adjacent letters swapped in round(share * words) of its words
    (at least one, among the words that have two different adjacent letters)."""
    words = title.split(" ")
    eligible = [i for i, word in enumerate(words) if _swappable(word)]
    if not eligible:
        return title
    count = min(len(eligible), max(1, round(share * len(words))))
    for i in rng.choice(eligible, size=count, replace=False):
        word = words[i]
        at = int(rng.choice(_swappable(word)))
        words[i] = word[:at] + word[at + 1] + word[at] + word[at + 2:]
    return " ".join(words)


def relative_drop(base: float, perturbed: float) -> float:
    """(base - perturbed) / base: the share of the score lost; NaN when base is 0."""
    return (base - perturbed) / base if base != 0 else float("nan")


# --- memorization (LLM-MemoryInspector-style completion probes) ---

def normalise_text(text: str) -> str:
    """How a reproduced text is compared: lower case, whitespace collapsed, stripped."""
    return " ".join(text.lower().split())


def text_similarity(a: str, b: str) -> float:
    """difflib's ratio of the normalised texts (2 * matching characters / total length;
    1 = equal)."""
    from difflib import SequenceMatcher

    return SequenceMatcher(None, normalise_text(a), normalise_text(b), autojunk=False).ratio()


def item_line(original_id: str, text: str) -> str:
    """A catalogue line, "<original id>::<text>"; with text "" the probe of that item."""
    return f"{original_id}::{text}"


def user_line(original_id: str, history: list[str], target: str | None) -> str:
    """A user's line, "<original id>::<history texts, ' | '> => <next item's text>";
    without a target the probe, up to and including "=> "."""
    head = f"{original_id}::{' | '.join(history)} => "
    return head if target is None else head + target


def probe_prompt(demonstrations: list[str], probe: str) -> str:
    """The demonstration lines, then the line to complete."""
    return "\n".join(demonstrations) + "\n" + probe


def reproduction_rates(completions: list[str], truths: list[str], threshold: float) -> tuple[float, float]:
    """(near, exact): the shares of completions whose first line, stripped, reproduces
    the true text nearly (similarity >= threshold) or exactly (once normalised)."""
    answers = [completion.split("\n", 1)[0].strip() for completion in completions]
    exact = [normalise_text(a) == normalise_text(t) for a, t in zip(answers, truths)]
    near = [e or text_similarity(a, t) >= threshold for e, a, t in zip(exact, answers, truths)]
    return float(np.mean(near)), float(np.mean(exact))
