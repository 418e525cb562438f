"""What models and the evaluator see of a prepared task: the training part (with the
validation targets for model selection) and the test users with their histories.
Test targets stay here, on the harness side."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.api.types import Catalog, TrainData, ValidationSet, readonly
from benchmark.data.pipeline import PreparedData
from benchmark.data.splits import TEST, TRAIN, VALID
from benchmark.tasks.schema import TaskSpec


@dataclass(frozen=True)
class EvalSet:
    """Users to rank for, each with its full history (oldest first) and its target."""

    users: np.ndarray
    histories: list[np.ndarray]
    targets: np.ndarray

    def batches(self, size: int):
        for start in range(0, len(self.users), size):
            stop = start + size
            yield self.users[start:stop], self.histories[start:stop], self.targets[start:stop]


@dataclass(frozen=True)
class TaskViews:
    train: TrainData
    validation: EvalSet
    test: EvalSet


def build_views(task: TaskSpec, prepared: PreparedData) -> TaskViews:
    seq = prepared.sequence
    items = seq["item_id"].to_numpy()
    part = seq["part"].to_numpy()
    n_users = prepared.dataset.n_users
    bounds = np.searchsorted(seq["user_id"].to_numpy(), np.arange(n_users + 1))
    validation = _targets_at(VALID, part, items, bounds)
    test = _targets_at(TEST, part, items, bounds)
    if task.eval_users.sample is not None and task.eval_users.sample < len(test.users):
        rng = np.random.default_rng(task.eval_users.seed)
        keep = np.sort(rng.choice(len(test.users), task.eval_users.sample, replace=False))
        test = EvalSet(test.users[keep], [test.histories[i] for i in keep], test.targets[keep])
    catalog = Catalog(prepared.dataset.n_items, prepared.dataset.items.copy())
    train = TrainData(
        interactions=seq.loc[part == TRAIN].drop(columns="part").reset_index(drop=True),
        n_users=n_users,
        catalog=catalog,
        validation=ValidationSet(validation.users, validation.histories, validation.targets),
    )
    return TaskViews(train, validation, test)


def _targets_at(which: int, part: np.ndarray, items: np.ndarray, bounds: np.ndarray) -> EvalSet:
    """Users with a row of part `which`; history = everything before that row."""
    rows = np.flatnonzero(part == which)
    users = np.searchsorted(bounds, rows, side="right") - 1
    histories = [readonly(items[bounds[u]:row]) for u, row in zip(users, rows)]
    return EvalSet(readonly(users.astype("int64")), histories, readonly(items[rows].astype("int64")))
