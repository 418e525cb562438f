"""Splits. Every split returns the interactions sorted by user, then time (timestamp
ties broken by the original row order, never by item id), with a `part` column.

- leave_one_out: per user, the last item is the test target, the one before it the
  validation target, the rest training (sequential track).
- global_time: two global cutoff times; everything before the first is training,
  between them validation, after the second test (top-K and CTR tracks).
- ratio: per user, interactions in random (or time) order cut 8:1:1 (RecBole's
  default; a comparability track only).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

TRAIN, VALID, TEST = 0, 1, 2


def chronological(interactions: pd.DataFrame) -> pd.DataFrame:
    """Sorted by user, then timestamp, then original row."""
    order = np.lexsort((interactions["row"].to_numpy(), interactions["timestamp"].to_numpy(),
                        interactions["user_id"].to_numpy()))
    return interactions.iloc[order].reset_index(drop=True)


def leave_one_out(interactions: pd.DataFrame, min_user_interactions: int) -> pd.DataFrame:
    """The interactions in chronological order with a `part` column (TRAIN/VALID/TEST).
    Users with fewer than `min_user_interactions` interactions are training only."""
    seq = chronological(interactions)
    from_end = seq.groupby("user_id", sort=False).cumcount(ascending=False).to_numpy()
    counts = seq.groupby("user_id", sort=False)["user_id"].transform("size").to_numpy()
    part = np.select([from_end == 0, from_end == 1], [TEST, VALID], TRAIN)
    part[counts < min_user_interactions] = TRAIN
    return seq.assign(part=part.astype("int8"))


def global_time(interactions: pd.DataFrame, valid_fraction: float, test_fraction: float
                ) -> tuple[pd.DataFrame, dict[str, float]]:
    """Cutoff times at the quantiles of all timestamps; an interaction at a cutoff time
    belongs to the later part, so one timestamp never straddles two parts."""
    seq = chronological(interactions)
    times = np.sort(seq["timestamp"].to_numpy())
    n = len(times)
    valid_from = times[min(n - 1, int(np.ceil(n * (1 - valid_fraction - test_fraction))))]
    test_from = times[min(n - 1, int(np.ceil(n * (1 - test_fraction))))]
    stamp = seq["timestamp"].to_numpy()
    part = np.select([stamp >= test_from, stamp >= valid_from], [TEST, VALID], TRAIN)
    return seq.assign(part=part.astype("int8")), {"valid_from": float(valid_from), "test_from": float(test_from)}


def ratio_split(interactions: pd.DataFrame, ratios: tuple[float, float, float], order: str,
                seed: int) -> pd.DataFrame:
    """Per user: shuffle (seeded) or keep time order, then cut at the ratios with
    RecBole's rounding (validation and test get floor(ratio * n), at least one each
    while training keeps more than one; training the rest). Rows stay time-sorted."""
    seq = chronological(interactions)
    if order == "random":
        rank = np.random.default_rng(seed).permutation(len(seq))
        position = pd.Series(rank).groupby(seq["user_id"].to_numpy()).rank(method="first").to_numpy() - 1
    else:
        position = seq.groupby("user_id", sort=False).cumcount().to_numpy()
    counts = seq.groupby("user_id", sort=False)["user_id"].transform("size").to_numpy()
    sizes = [np.floor(counts * r).astype(int) for r in ratios[1:]]
    train_size = counts - sizes[0] - sizes[1]
    for size, ratio in ((sizes[1], ratios[2]), (sizes[0], ratios[1])):
        bump = (train_size > 1) & (counts * ratio > 0) & (counts * ratio < 1)
        size += bump
        train_size -= bump
    part = np.select([position < train_size, position < train_size + sizes[0]], [TRAIN, VALID], TEST)
    return seq.assign(part=part.astype("int8"))


def split_summary(seq: pd.DataFrame, n_users: int, n_items: int) -> dict[str, int | float]:
    """Counts a researcher checks before trusting a split."""
    last_two = seq.groupby("user_id", sort=False).tail(2)
    tied = last_two.groupby("user_id", sort=False)["timestamp"].agg(["nunique", "size"])
    tied_users = int(((tied["nunique"] == 1) & (tied["size"] == 2)).sum())
    part = seq["part"].to_numpy()
    users_with_test = seq.loc[part == TEST, "user_id"].nunique()
    users_with_history = seq.loc[part != TEST, "user_id"].unique()
    test_users = seq.loc[part == TEST, "user_id"].unique()
    return {
        "n_users": n_users,
        "n_items": n_items,
        "n_interactions": len(seq),
        "density": round(len(seq) / (n_users * n_items), 6),
        "n_train_interactions": int((part == TRAIN).sum()),
        "n_valid_interactions": int((part == VALID).sum()),
        "n_test_interactions": int((part == TEST).sum()),
        "n_valid_users": int(seq.loc[part == VALID, "user_id"].nunique()),
        "n_test_users": int(users_with_test),
        "n_users_without_test": n_users - int(users_with_test),
        "n_test_users_without_history": int(np.isin(test_users, users_with_history, invert=True).sum()),
        "users_with_tied_last_two_timestamps": tied_users,
    }
