"""Canonical tables, fingerprints, filtering and dense ids.

A `RawDataset` holds the tables as read (original ids as text, the original row order
kept in `row`, which breaks timestamp ties). `densify` filters it and assigns dense
ids 0..n-1 in order of first appearance in the interaction file, so the same file
always yields the same ids.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class RawDataset:
    name: str
    interactions: pd.DataFrame  # user, item (original ids, text), timestamp, [rating], row
    items: pd.DataFrame | None  # item (original id), attributes...
    users: pd.DataFrame | None  # user (original id), attributes...

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.interactions, self.items, self.users)


@dataclass(frozen=True)
class Dataset:
    """Filtered tables with dense ids: interactions(user_id, item_id, timestamp, [rating],
    row), items(item_id, original_id, ...), users(user_id, original_id, ...)."""

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)


def fingerprint(*tables: pd.DataFrame | None) -> str:
    """sha256 over column names and cell values (not dtype spellings, which vary
    between pandas versions)."""
    digest = hashlib.sha256()
    for table in tables:
        if table is None:
            digest.update(b"<none>")
            continue
        digest.update(repr(list(table.columns)).encode())
        digest.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def from_atomic_tables(name: str, tables: dict[str, pd.DataFrame]) -> RawDataset:
    """Canonical raw tables from the frames of an atomic-file folder."""
    inter = tables["interactions"].rename(columns={"user_id": "user", "item_id": "item"})
    if "timestamp" not in inter:
        inter["timestamp"] = np.arange(len(inter), dtype="float64")  # file order is time order
    inter = inter.assign(row=np.arange(len(inter), dtype="int64"))
    items = tables.get("items")
    users = tables.get("users")
    return RawDataset(
        name=name,
        interactions=inter.reset_index(drop=True),
        items=None if items is None else items.rename(columns={"item_id": "item"}),
        users=None if users is None else users.rename(columns={"user_id": "user"}),
    )


def keep_positive(inter: pd.DataFrame, min_rating: float, source: str) -> pd.DataFrame:
    """Implicit feedback: keep interactions rated at least `min_rating`."""
    if "rating" not in inter:
        raise ValueError(f"{source}: dataset.implicit.min_rating needs a 'rating' field, which it lacks")
    return inter[inter["rating"] >= min_rating]


def k_core(inter: pd.DataFrame, min_user: int, min_item: int) -> pd.DataFrame:
    """Drop users and items with too few interactions, repeatedly, until stable."""
    users, items = pd.factorize(inter["user"])[0], pd.factorize(inter["item"])[0]
    keep = np.ones(len(inter), dtype=bool)
    while True:
        # Counts over the rows still kept (integer codes: far faster than mapping
        # value_counts over string ids).
        user_counts = np.bincount(users[keep], minlength=users.max(initial=-1) + 1)
        item_counts = np.bincount(items[keep], minlength=items.max(initial=-1) + 1)
        still = keep & (user_counts[users] >= min_user) & (item_counts[items] >= min_item)
        if (still == keep).all():
            return inter if keep.all() else inter[keep]
        keep = still


def densify(raw: RawDataset, inter: pd.DataFrame) -> Dataset:
    """Dense ids in order of first appearance; the item and user tables keep only the
    ids that remain, with the original ids in `original_id`."""
    user_codes, user_index = pd.factorize(inter["user"])
    item_codes, item_index = pd.factorize(inter["item"])
    interactions = inter.drop(columns=["user", "item"]).assign(
        user_id=user_codes.astype("int64"), item_id=item_codes.astype("int64")
    )
    columns = ["user_id", "item_id", "timestamp"] + [
        c for c in interactions.columns if c not in ("user_id", "item_id", "timestamp")
    ]
    return Dataset(
        name=raw.name,
        interactions=interactions[columns].reset_index(drop=True),
        items=_side_table(raw.items, "item", item_index),
        users=_side_table(raw.users, "user", user_index),
    )


def _side_table(table: pd.DataFrame | None, key: str, index: pd.Index) -> pd.DataFrame:
    dense = pd.DataFrame({f"{key}_id": np.arange(len(index), dtype="int64"), "original_id": index.astype(str)})
    if table is None:
        return dense
    attributes = table.drop_duplicates(key).rename(columns={key: "original_id"})
    attributes["original_id"] = attributes["original_id"].astype(str)
    return dense.merge(attributes, on="original_id", how="left")
