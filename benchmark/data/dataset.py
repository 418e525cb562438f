"""Canonical tables, fingerprints, filtering and dense ids.

A `RawDataset` holds the tables as read (original ids as text, the original row order
kept in `row`, which breaks timestamp ties). `densify` filters it and assigns dense
ids 0..n-1 in order of first appearance in the interaction file, so the same file
always yields the same ids.
"""
from __future__ import annotations

import ctypes
import hashlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from benchmark.data.splits import chronological_order


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
        hashes = pd.util.hash_pandas_object(_integer_ids_as_categories(table), index=False).to_numpy()
        digest.update(memoryview(np.ascontiguousarray(hashes)).cast("B"))  # the bytes of tobytes(), uncopied
    return digest.hexdigest()


def _integer_ids_as_categories(table: pd.DataFrame) -> pd.DataFrame:
    """The table with its text columns of whole numbers (ids, mostly) as categoricals of
    the same text: pandas hashes a categorical's categories and takes them by code, the
    same values as hashing the text, and integer codes come far faster than hashing the
    text of millions of rows (see factorize_ids)."""
    if not table.columns.is_unique:
        return table
    replaced = table
    for name, values in table.items():
        numbers = _whole_numbers(values)
        if numbers is not None:
            codes, uniques = _factorize_numbers(numbers, values.dtype)
            del numbers
            if replaced is table:
                replaced = table.copy(deep=False)  # (copy-on-write: the caller's table stays as it is)
            replaced[name] = pd.Categorical.from_codes(codes, categories=uniques, validate=False)
    return replaced


def factorize_ids(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """pd.factorize(values): codes (int64) and the distinct values in order of first
    appearance. Ids held as Arrow text that all spell whole numbers the canonical way
    ("0", "17"; never "017", "+17" or "-17") are factorized as those numbers and the
    distinct values spelled back: the same result, several times faster at scale (a hash
    table of integers instead of one of strings)."""
    numbers = _whole_numbers(values)
    if numbers is None:
        return pd.factorize(values)
    return _factorize_numbers(numbers, values.dtype)


_DIGITS = np.zeros(256, dtype=bool)
_DIGITS[list(b"0123456789")] = True


def _whole_numbers(values: pd.Series) -> np.ndarray | None:
    """The int64 each cell of an Arrow text column spells, when every cell is 1 to 18
    digits without a leading zero (so that the number spells back to the same text)."""
    dtype = values.dtype
    if not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow") or not len(values):
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    text = values.array.__arrow_array__()  # the Arrow ChunkedArray, not a copy
    if text.null_count:
        return None
    for chunk in text.chunks:
        if not len(chunk):
            continue
        _, offsets, data = chunk.buffers()
        width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        bounds = np.frombuffer(offsets, dtype=width)[chunk.offset:chunk.offset + len(chunk) + 1]
        lengths = np.diff(bounds)
        if lengths.min() < 1 or lengths.max() > 18:
            return None
        chars = np.frombuffer(data, dtype=np.uint8)[bounds[0]:bounds[-1]]
        leading = chars[bounds[:-1] - bounds[0]]
        if not _DIGITS[chars].all() or ((leading == ord("0")) & (lengths > 1)).any():
            return None
    return pc.cast(text, pa.int64()).to_numpy()


def _factorize_numbers(numbers: np.ndarray, dtype) -> tuple[np.ndarray, pd.Index]:
    import pyarrow as pa

    codes, uniques = pd.factorize(numbers)
    return codes, pd.Index(pd.array(pa.array(uniques).cast(pa.large_string()), dtype=dtype))


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
    return inter[_rated_at_least(inter, min_rating, source)]


def _rated_at_least(inter: pd.DataFrame, min_rating: float, source: str) -> pd.Series:
    if "rating" not in inter:
        raise ValueError(f"{source}: dataset.implicit.min_rating needs a 'rating' field, which it lacks")
    return inter["rating"] >= min_rating


def k_core(inter: pd.DataFrame, min_user: int, min_item: int) -> pd.DataFrame:
    """Drop users and items with too few interactions, repeatedly, until stable."""
    users, items = pd.factorize(inter["user"])[0], pd.factorize(inter["item"])[0]
    keep = k_core_rows(users, items, np.ones(len(inter), dtype=bool), min_user, min_item)
    return inter if keep.all() else inter[keep]


def k_core_rows(users: np.ndarray, items: np.ndarray, keep: np.ndarray, min_user: int, min_item: int) -> np.ndarray:
    """k_core on integer codes of the user and item of each row: the mask of the rows
    that remain of those in `keep` (which is not changed)."""
    # Counts over the rows still kept (integer codes: far faster than mapping
    # value_counts over string ids), updated by what each round drops.
    user_counts = np.bincount(users[keep], minlength=users.max(initial=-1) + 1)
    item_counts = np.bincount(items[keep], minlength=items.max(initial=-1) + 1)
    while True:
        # Ids with too few rows (but some: a kept row never has an id without rows).
        few_users = (user_counts < min_user) & (user_counts > 0)
        few_items = (item_counts < min_item) & (item_counts > 0)
        if not (few_users.any() or few_items.any()):
            return keep
        drop = keep & (few_users[users] | few_items[items])  # small lookup tables: cache-friendly
        keep = keep & ~drop
        user_counts -= np.bincount(users[drop], minlength=len(user_counts))
        item_counts -= np.bincount(items[drop], minlength=len(item_counts))


def densify(raw: RawDataset, inter: pd.DataFrame) -> Dataset:
    """Dense ids in order of first appearance; the item and user tables keep only the
    ids that remain, with the original ids in `original_id`."""
    user_codes, user_index = pd.factorize(inter["user"])
    item_codes, item_index = pd.factorize(inter["item"])
    interactions = inter.drop(columns=["user", "item"]).assign(
        user_id=user_codes.astype("int64"), item_id=item_codes.astype("int64")
    )
    return _dense_dataset(raw, interactions, user_index, item_index)


def filtered(raw: RawDataset, min_rating: float | None, min_user: int, min_item: int,
             source: str) -> Dataset | None:
    """densify(raw, k_core(...)) of the raw interactions (first those rated at least
    `min_rating` when it is given), in chronological order (benchmark.data.splits), or
    None when no interaction remains. The same tables, with less time and memory at
    scale: each id column is factorized once, and the raw table is never copied (only
    the kept rows of its other columns are taken, once, in their final order)."""
    inter = raw.interactions
    rated = None if min_rating is None else _rated_at_least(inter, min_rating, source)
    users, user_index = factorize_ids(inter["user"])
    items, item_index = factorize_ids(inter["item"])
    if (users < 0).any() or (items < 0).any() or (rated is not None and rated.dtype != bool):
        # A missing id or rating: as the separate steps do it.
        kept = k_core(inter if rated is None else inter[rated], min_user, min_item)
        return None if kept.empty else densify(raw, kept)
    keep = np.ones(len(inter), dtype=bool) if rated is None else rated.to_numpy()
    del rated
    release_unused_memory()  # what factorizing the text ids took
    rows = np.flatnonzero(k_core_rows(users, items, keep, min_user, min_item))
    if not rows.size:
        return None
    # Dense ids in order of first appearance among the kept rows, as densify numbers them.
    user_ids, user_first = pd.factorize(users[rows])
    item_ids, item_first = pd.factorize(items[rows])
    del users, items, keep
    if "timestamp" in inter and "row" in inter:  # else chronological() names what is missing
        # The order benchmark.data.splits.chronological puts these rows in; it then finds them sorted.
        order = chronological_order(user_ids, inter["timestamp"].to_numpy()[rows], inter["row"].to_numpy()[rows])
        rows, user_ids, item_ids = rows[order], user_ids[order], item_ids[order]
        del order
    # One new frame from the kept rows of each column (DataFrame.take and assign copy more).
    columns = {"user_id": user_ids.astype("int64", copy=False), "item_id": item_ids.astype("int64", copy=False)}
    del user_ids, item_ids
    for name in inter.columns:
        if name not in ("user", "item", "user_id", "item_id"):
            values = inter[name]
            columns[name] = values.to_numpy()[rows] if isinstance(values.dtype, np.dtype) else values.array.take(rows)
    return _dense_dataset(raw, pd.DataFrame(columns, copy=False), user_index.take(user_first),
                          item_index.take(item_first))


def release_unused_memory() -> None:
    """Hand memory the allocators kept after frees back to the system: Arrow's pool
    (NumPy does not allocate from it) and, with glibc, free pages of the C heap (arrays
    freed between the large steps of a preparation). Kept, it only raises the peak of
    what follows."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    if _malloc_trim is not None:
        _malloc_trim(0)


def _glibc_malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc only; elsewhere nothing to do
    except (AttributeError, OSError):
        return None


_malloc_trim = _glibc_malloc_trim()


def _dense_dataset(raw: RawDataset, interactions: pd.DataFrame, user_index: pd.Index,
                   item_index: pd.Index) -> Dataset:
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
