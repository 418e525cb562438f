"""Chronological leave-one-out: each user's interactions ordered by time, timestamp
ties broken by the original row order (never by item id); the last is the test
target, the one before it the validation target, the rest training."""
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


def split_summary(seq: pd.DataFrame, n_users: int, n_items: int) -> dict[str, int | float]:
    """Counts a researcher checks before trusting a split."""
    last_two = seq.groupby("user_id", sort=False).tail(2)
    tied = last_two.groupby("user_id", sort=False)["timestamp"].agg(["nunique", "size"])
    tied_users = int(((tied["nunique"] == 1) & (tied["size"] == 2)).sum())
    part = seq["part"].to_numpy()
    return {
        "n_users": n_users,
        "n_items": n_items,
        "n_interactions": len(seq),
        "density": round(len(seq) / (n_users * n_items), 6),
        "n_train_interactions": int((part == TRAIN).sum()),
        "n_valid_users": int((part == VALID).sum()),
        "n_test_users": int((part == TEST).sum()),
        "n_train_only_users": n_users - int((part == TEST).sum()),
        "users_with_tied_last_two_timestamps": tied_users,
    }
