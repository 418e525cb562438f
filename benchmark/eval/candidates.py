"""Sampled candidate sets (the LLMRank protocol): each test user's target plus items
sampled uniformly from those the user never rated, in a seeded order per user."""
from __future__ import annotations

import hashlib

import numpy as np


def sample_candidates(targets: np.ndarray, rated: list[np.ndarray], n_items: int, n_negatives: int,
                      rng: np.random.Generator) -> np.ndarray:
    """[n_users, 1 + n_negatives] item ids: column 0 the target, then negatives drawn
    without replacement from the items the user never rated."""
    out = np.empty((len(targets), 1 + n_negatives), dtype=np.int64)
    out[:, 0] = targets
    for row, items in enumerate(rated):
        allowed = np.ones(n_items, dtype=bool)
        allowed[items] = False
        allowed[targets[row]] = False
        pool = np.flatnonzero(allowed)
        if len(pool) < n_negatives:
            raise ValueError(f"user row {row}: only {len(pool)} unrated items for {n_negatives} negatives")
        out[row, 1:] = rng.choice(pool, n_negatives, replace=False)
    return out


def shuffle_rows(candidates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each row in its own random order."""
    order = np.argsort(rng.random(candidates.shape), axis=1)
    return np.take_along_axis(candidates, order, axis=1)


def place_target(candidates: np.ndarray, targets: np.ndarray, position: int) -> np.ndarray:
    """The same rows with each target moved to `position` (1-based); the other
    candidates keep their relative order."""
    out = np.empty_like(candidates)
    for row, (items, target) in enumerate(zip(candidates, targets)):
        others = items[items != target]
        out[row] = np.insert(others, position - 1, target)
    return out


def target_columns(candidates: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The column of each row's target."""
    hits = candidates == np.asarray(targets)[:, None]
    if not hits.any(axis=1).all():
        raise ValueError("a candidate row lacks its target")
    return hits.argmax(axis=1)


def candidate_hash(users: np.ndarray, candidates: np.ndarray) -> str:
    """sha256 over the users and their candidate rows, in order."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(users, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(candidates, dtype=np.int64).tobytes())
    return digest.hexdigest()
