"""A small generated dataset for contract checks and tests."""
from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.data.dataset import RawDataset


def synthetic_dataset(name: str, n_users: int, n_items: int, interactions_per_user: int,
                      seed: int) -> RawDataset:
    """Each user starts at a random item and mostly steps to the next item id (80%),
    otherwise jumps at random; timestamps advance with occasional ties. Users belong to
    one of 3 groups and items to one of 3 genres; a user mostly rates its group's genre
    high (4-5) and other genres low (1-3), so CTR models have a signal to learn."""
    rng = np.random.default_rng(seed)
    steps = np.where(rng.random((n_users, interactions_per_user)) < 0.8, 1,
                     rng.integers(2, n_items, (n_users, interactions_per_user)))
    steps[:, 0] = rng.integers(0, n_items, n_users)
    items = np.cumsum(steps, axis=1) % n_items
    times = np.cumsum(rng.integers(0, 3, (n_users, interactions_per_user)), axis=1)
    users = np.repeat(np.arange(n_users), interactions_per_user)
    interactions = pd.DataFrame({
        "user": [f"u{u}" for u in users],
        "item": [f"i{i}" for i in items.ravel()],
        "timestamp": times.ravel().astype("float64"),
        "rating": _ratings(users % 3 == items.ravel() % 3, rng),
    }).sample(frac=1.0, random_state=seed)  # file order is not time order
    interactions["row"] = np.arange(len(interactions), dtype="int64")
    item_table = pd.DataFrame({"item": [f"i{i}" for i in range(n_items)],
                               "title": [f"Item {i}" for i in range(n_items)],
                               "genre": [f"g{i % 3}" for i in range(n_items)]})
    user_table = pd.DataFrame({"user": [f"u{u}" for u in range(n_users)],
                               "group": [f"g{u % 3}" for u in range(n_users)]})
    return RawDataset(name, interactions.reset_index(drop=True), item_table, user_table)


def _ratings(match: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """4-5 for a match 85% of the time, else 1-3 (and the reverse for a mismatch)."""
    noise = rng.random(match.size)
    high = np.where(match, noise < 0.85, noise < 0.15)
    return np.where(high, 4 + (noise * 100 % 2 >= 1), 1 + (noise * 100 % 3).astype(int)).astype("float64")
