"""What models and the evaluator see of a prepared task: the training part (with the
validation part for model selection) and the test set. Test targets and labels stay
here, on the harness side.

- sequential: one target per user (its next item), history = everything before it.
- topk: a set of targets per user (its items in the test period), history = its items
  before that period; its earlier items are excluded from the ranking when the task says.
- ctr: (user, item) rows with features; labels stay with the harness.
- zeroshot: as sequential, but each user ranks a sampled candidate set (the target and
  items it never rated), drawn per seed.

Each family (benchmark.families) chooses which of these it builds.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark.api.types import Catalog, TrainData, ValidationSet, readonly
from benchmark.data.pipeline import PreparedData
from benchmark.data.splits import TRAIN
from benchmark.tasks.schema import TaskSpec


@dataclass(frozen=True)
class EvalSet:
    """Users to rank for, each with its history (oldest first) and its target: one
    item id per user (sequential) or an array of item ids per user (top-K)."""

    users: np.ndarray
    histories: list[np.ndarray]
    targets: np.ndarray | list[np.ndarray]
    candidates: np.ndarray | None = None  # [n_users, n_candidates] item ids; None: full ranking

    def __len__(self) -> int:
        return len(self.users)

    def batches(self, size: int):
        """(users, histories, targets, candidates or None) per batch of `size` users."""
        for start in range(0, len(self.users), size):
            rows = slice(start, start + size)
            yield (self.users[rows], self.histories[rows], self.targets[rows],
                   None if self.candidates is None else self.candidates[rows])

    def subset(self, keep: np.ndarray) -> "EvalSet":
        targets = self.targets[keep] if isinstance(self.targets, np.ndarray) else [self.targets[i] for i in keep]
        candidates = None if self.candidates is None else self.candidates[keep]
        return EvalSet(self.users[keep], [self.histories[i] for i in keep], targets, candidates)


@dataclass(frozen=True)
class LabelledRows:
    """CTR rows: users, items and their feature columns; labels for the harness only."""

    features: pd.DataFrame  # user_id, item_id, then the task's feature fields
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, keep: np.ndarray) -> "LabelledRows":
        """The given rows, in that order (a partial `--limit-users N` run keeps the first N)."""
        return LabelledRows(self.features.iloc[keep].reset_index(drop=True), self.labels[keep])


@dataclass(frozen=True)
class TaskViews:
    train: TrainData
    validation: EvalSet | LabelledRows
    test: EvalSet | LabelledRows
    rated: list[np.ndarray] | None = None  # zeroshot: every item each user rated, any part


def build_views(task: TaskSpec, prepared: PreparedData) -> TaskViews:
    """The task's views, as its family builds them (benchmark.families)."""
    from benchmark.families import family

    return family(task.family).build_views(task, prepared)


def catalog_and_training(prepared: PreparedData) -> tuple[Catalog, pd.DataFrame, np.ndarray]:
    """(catalogue, training rows, each row's part) of a prepared task."""
    seq = prepared.sequence
    part = seq["part"].to_numpy()
    dataset = prepared.dataset
    catalog = Catalog(dataset.n_items, dataset.items.copy())
    return catalog, seq.loc[part == TRAIN].drop(columns="part").reset_index(drop=True), part


def validation_set(part: EvalSet) -> ValidationSet:
    return ValidationSet(part.users, part.histories, part.targets)


def _user_bounds(seq: pd.DataFrame) -> np.ndarray:
    """Row ranges per dense user id in a user-sorted sequence."""
    n_users = int(seq["user_id"].max()) + 1 if len(seq) else 0
    return np.searchsorted(seq["user_id"].to_numpy(), np.arange(n_users + 1))


def next_items(which: int, part: np.ndarray, seq: pd.DataFrame) -> EvalSet:
    """Users with a row of part `which`; history = everything before that row."""
    items = seq["item_id"].to_numpy()
    bounds = _user_bounds(seq)
    rows = np.flatnonzero(part == which)
    users = np.searchsorted(bounds, rows, side="right") - 1
    # Slices of a read-only view are read-only views; Python ints slice fastest.
    history_of = readonly(items)
    histories = [history_of[start:row] for start, row in zip(bounds[users].tolist(), rows.tolist())]
    return EvalSet(readonly(users.astype("int64")), histories, readonly(items[rows].astype("int64")))


def item_sets(which: int, part: np.ndarray, seq: pd.DataFrame, exclude_seen: bool) -> EvalSet:
    """Users with rows of part `which`; history = their rows of earlier parts (oldest
    first), targets = their distinct items in part `which` (without already-seen ones
    when those are excluded from the ranking: they could never be hit)."""
    users, histories, targets = [], [], []
    earlier = seq[part < which]
    earlier_items = dict(zip(*grouped_items(earlier)))
    for user, items in zip(*grouped_items(seq[part == which])):
        history = earlier_items.get(user, np.empty(0, dtype="int64"))
        wanted = np.unique(items)
        if exclude_seen:
            wanted = np.setdiff1d(wanted, history)
        if wanted.size:
            users.append(user)
            histories.append(readonly(history))
            targets.append(readonly(wanted))
    return EvalSet(readonly(np.asarray(users, dtype="int64")), histories, targets)


def grouped_items(rows: pd.DataFrame) -> tuple[np.ndarray, list[np.ndarray]]:
    """(user ids, their item arrays in row order) for a user-sorted frame."""
    user_ids = rows["user_id"].to_numpy()
    items = rows["item_id"].to_numpy().astype("int64")
    starts = np.flatnonzero(np.r_[True, user_ids[1:] != user_ids[:-1]]) if len(rows) else np.empty(0, int)
    return user_ids[starts], np.split(items, starts[1:])


def sample_users(test: EvalSet, task: TaskSpec) -> EvalSet:
    if task.eval_users.min_history:
        test = test.subset(np.flatnonzero([len(h) >= task.eval_users.min_history for h in test.histories]))
    if task.eval_users.sample is None or task.eval_users.sample >= len(test):
        return test
    rng = np.random.default_rng(task.eval_users.seed)
    return test.subset(np.sort(rng.choice(len(test), task.eval_users.sample, replace=False)))


def feature_table(task: TaskSpec, prepared: PreparedData) -> pd.DataFrame:
    """user_id, item_id and the task's feature fields for every interaction."""
    spec = task.ctr
    tables = {"user": prepared.dataset.users, "item": prepared.dataset.items}
    for kind, fields in (("user", spec.user_features), ("item", spec.item_features)):
        missing = [f for f in fields if f not in tables[kind]]
        if missing:
            raise ValueError(f"task {task.task}: field 'ctr.{kind}_features': {missing} not in the "
                             f"dataset's {kind} table (it has {sorted(tables[kind].columns)})")
    pairs = prepared.sequence[["user_id", "item_id"]].drop_duplicates()
    users = tables["user"][["user_id", *spec.user_features]]
    items = tables["item"][["item_id", *spec.item_features]]
    return pairs.merge(users, on="user_id", how="left").merge(items, on="item_id", how="left")


def sample_rows(test: LabelledRows, spec, train_users: np.ndarray, n_users: int) -> LabelledRows:
    """A seeded sample of test rows (kept in their order) among users with enough
    training rows."""
    train_rows_per_user = np.bincount(train_users, minlength=n_users)
    eligible = np.flatnonzero(train_rows_per_user[test.features["user_id"].to_numpy()] >= spec.min_train_rows)
    if spec.rows > len(eligible):
        raise ValueError(f"ctr.test_sample.rows = {spec.rows}, but only {len(eligible)} test rows have "
                         f"users with at least {spec.min_train_rows} training rows")
    keep = np.sort(np.random.default_rng(spec.seed).choice(eligible, spec.rows, replace=False))
    return LabelledRows(test.features.iloc[keep].reset_index(drop=True), test.labels[keep])


def rows_hash(rows: LabelledRows) -> str:
    """sha256 over the (user, item) pairs of CTR rows, in order."""
    pairs = rows.features[["user_id", "item_id"]].to_numpy(dtype=np.int64)
    return hashlib.sha256(np.ascontiguousarray(pairs).tobytes()).hexdigest()


def labelled(seq: pd.DataFrame, rows: np.ndarray, features: pd.DataFrame) -> LabelledRows:
    part = seq.loc[rows, ["user_id", "item_id", "label"]].reset_index(drop=True)
    table = part[["user_id", "item_id"]].merge(features, on=["user_id", "item_id"], how="left")
    return LabelledRows(table, part["label"].to_numpy().astype("int8"))
