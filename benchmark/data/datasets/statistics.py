"""What `llm4rec datasets show` reports: the canonical tables' statistics before any task
filtering, and where the files came from (their sha256, and whether the publisher's
checksum vouched for them)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
import numpy as np
import pandas as pd

from benchmark.data.assets import sha256_of
from benchmark.data.dataset import RawDataset
from benchmark.data.datasets.registry import SourceFolder


def raw_statistics(raw: RawDataset) -> dict[str, int | float | str | None]:
    """Counts a researcher checks before choosing a protocol: size, text coverage, time
    span, density, popularity concentration, history length and timestamp ties."""
    inter = raw.interactions
    users, user_index = pd.factorize(inter["user"])
    items, item_index = pd.factorize(inter["item"])
    n_users, n_items, n = len(user_index), len(item_index), len(inter)
    per_user = np.bincount(users, minlength=n_users)
    times = inter["timestamp"].to_numpy(dtype="float64")
    timed = not np.isnan(times).all() if n else False
    return {
        "n_users": n_users,
        "n_items": n_items,
        "n_interactions": n,
        "n_items_with_title": _items_with_title(raw, item_index),
        "first_time": _iso(np.nanmin(times)) if timed else None,
        "last_time": _iso(np.nanmax(times)) if timed else None,
        "time_span_days": round(float(np.nanmax(times) - np.nanmin(times)) / 86400, 2) if timed else None,
        "n_interactions_without_time": int(np.isnan(times).sum()),
        "density": round(n / (n_users * n_items), 8) if n else 0.0,
        "gini_item_popularity": round(gini(np.bincount(items, minlength=n_items)), 4),
        "median_history_length": float(np.median(per_user)) if n else 0.0,
        "users_with_tied_last_two_timestamps": _tied_last_two(users, times, inter["row"].to_numpy()) if timed else None,
        "has_ratings": "rating" in inter,
        "item_fields": sorted(c for c in raw.items.columns if c != "item") if raw.items is not None else [],
        "user_fields": sorted(c for c in raw.users.columns if c != "user") if raw.users is not None else [],
    }


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts: 0 when every item is equally popular,
    near 1 when a few items take all interactions."""
    values = np.sort(counts.astype("float64"))
    total = values.sum()
    if len(values) == 0 or total == 0:
        return 0.0
    ranks = np.arange(1, len(values) + 1)
    return float((2 * (ranks * values).sum()) / (len(values) * total) - (len(values) + 1) / len(values))


def _items_with_title(raw: RawDataset, item_index: pd.Index) -> int:
    """Interacted items whose item row has a non-empty title."""
    if raw.items is None or "title" not in raw.items:
        return 0
    titles = raw.items[["item", "title"]].dropna()
    titled = titles.loc[titles["title"].astype(str).str.strip() != "", "item"].astype(str)
    return int(pd.Index(item_index.astype(str)).isin(titled).sum())


def _tied_last_two(users: np.ndarray, times: np.ndarray, rows: np.ndarray) -> int:
    """Users whose last two interactions (by time, then row) share a timestamp: their
    leave-one-out target is decided by file order, not by time."""
    order = np.lexsort((rows, times, users))
    u, t = users[order], times[order]
    last = np.r_[u[1:] != u[:-1], True]  # the last row of each user
    before_last = np.r_[last[1:], False] & ~last  # the row before it, same user
    same_user = np.r_[u[1:] == u[:-1], False]
    pairs = before_last & same_user
    return int((t[pairs] == t[np.flatnonzero(pairs) + 1]).sum())


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(float(seconds), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


NOT_CHECKSUMMED = "source not checksummed (the files' sha256 are their fingerprint)"


def provenance(source: SourceFolder, vouched_by: str | None = None) -> dict:
    """The files read (name and sha256) and how the download that brought them was
    checked (the `.checksum.json` a fetch leaves); a folder given by hand, or a source
    without a published checksum, is "source not checksummed": the sha256 are its
    fingerprint. `vouched_by` says how files that came without a record were checked
    (an offline asset's pinned wheel)."""
    record_file = source.folder / ".checksum.json"
    downloads = json.loads(record_file.read_text()) if record_file.is_file() else {}
    checks = sorted({entry["verified"] for entry in downloads.values()})
    verified = [c for c in checks if c != "source not checksummed"]
    return {
        "folder": str(source.folder),
        "format": source.format.name,
        "files": [{"file": path.name, "sha256": sha256_of(path)} for path in source.files()],
        "downloads": downloads,
        "checksum": "; ".join(verified) if verified else vouched_by or NOT_CHECKSUMMED,
    }
