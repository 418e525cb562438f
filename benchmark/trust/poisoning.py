"""The data-poisoning pass (docs/trust.md): fake users, each rating a filler of popular
or random items and then one target item from the popularity tail, join the training
part; the submission is fitted again on it, and the targets' exposure (the mean over
targets of the share of real test users with it in their top k) is measured with the
run's model and with the poisoned one. The only pass that fits again."""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable

import numpy as np
import pandas as pd

from benchmark.api import TrainData
from benchmark.eval.trust import TAIL, fake_user_items, poisoning_targets, popularity_groups, target_hits
from benchmark.tasks.schema import PoisoningSpec
from benchmark.trust import TrustRun

# The popularity groups' shares where the task switches the exposure pass off.
DEFAULT_SHARES = (0.2, 0.2)


def applies(run: TrustRun) -> str | None:
    if run.fit_again is None:
        return "the model does not train on the task's data: nothing to poison"
    if run.test.candidates is not None:
        return "candidate-set task: the target items are rarely among a user's candidates"
    if not (_groups(run) == TAIL).any():
        return "no item in the popularity tail to promote"
    return None


def measure(run: TrustRun, spec: PoisoningSpec) -> dict[str, float]:
    """Targets and fake users drawn per task seed; exposure at spec.k before and after."""
    rng = run.rng("poisoning")
    popularity = _popularity(run.train)
    targets = poisoning_targets(popularity, _groups(run), spec.targets, rng)
    # Rounded first: 0.07 * 100 is 7.000000000000001, which must stay 7 fake users.
    n_fake = max(1, math.ceil(round(spec.fake_users * run.train.n_users, 9)))
    poisoned = poisoned_train(run.train, fake_user_items(popularity, targets, n_fake, spec.filler,
                                                         spec.filler_size, rng))
    before = target_exposure(run, run.score, run.train, targets, spec.k, "before")
    with run.fit_again(poisoned) as model:
        after = target_exposure(run, run.family.scorer(model, poisoned), poisoned, targets, spec.k, "after")
    return {"trust.attack.poisoning.before": before, "trust.attack.poisoning.after": after,
            "trust.attack.poisoning.gain": after - before}


def _popularity(train: TrainData) -> np.ndarray:
    return np.bincount(train.interactions["item_id"], minlength=train.n_items)


def _groups(run: TrustRun) -> np.ndarray:
    exposure = run.task.trust.exposure
    head, tail = (exposure.head_share, exposure.tail_share) if exposure is not None else DEFAULT_SHARES
    return popularity_groups(_popularity(run.train), head, tail)


def poisoned_train(train: TrainData, fake_items: list[np.ndarray]) -> TrainData:
    """`train` with fake users n_users, n_users + 1, ... rating `fake_items` in order,
    after the last training time; same catalogue and validation set. Their rows carry
    the highest rating and continue the row numbering; their user rows (if any) have
    original_id "fake-<j>" and no attributes."""
    real = train.interactions
    n_fake = len(fake_items)
    ids = np.arange(train.n_users, train.n_users + n_fake)
    items = np.concatenate(fake_items) if fake_items else np.empty(0, dtype=np.int64)
    order = np.arange(len(items))
    fake = {"user_id": np.repeat(ids, [len(f) for f in fake_items]), "item_id": items}
    if "timestamp" in real:
        fake["timestamp"] = (real["timestamp"].max() + 1 if len(real) else 0) + order
    if "rating" in real:
        fake["rating"] = np.full(len(items), real["rating"].max())
    if "row" in real:
        fake["row"] = (real["row"].max() + 1 if len(real) else 0) + order
    # Other columns (none in ranking tasks today) are left missing.
    rows = pd.DataFrame(fake).astype({name: real[name].dtype for name in fake})
    interactions = pd.concat([real, rows], ignore_index=True)
    users = train.users
    if users is not None:
        extra = {"user_id": ids} | ({"original_id": [f"fake-{j}" for j in range(n_fake)]}
                                    if "original_id" in users else {})
        users = pd.concat([users, pd.DataFrame(extra).astype({"user_id": users["user_id"].dtype})],
                          ignore_index=True)
    return replace(train, interactions=interactions, n_users=train.n_users + n_fake, users=users)


def target_exposure(run: TrustRun, score: Callable, train: TrainData, targets: np.ndarray, k: int, label: str) -> float:
    """The targets' exposure at k over every real test user, batch by batch (checked
    calls; seen items excluded where the task excludes them)."""
    from benchmark.scoring import score_batch

    hits = []
    exclude_seen = run.task.history.exclude_seen
    for index, (users, histories, _, _) in enumerate(run.test.batches(run.task.batch_size)):
        scores = score_batch(score, run.task, train, users, histories, None,
                             f"submission '{run.name}': score() on poisoning ({label}) batch {index}")
        hits.append(target_hits(scores, targets, k, histories if exclude_seen else None))
    return float(np.concatenate(hits).mean()) if hits else float("nan")
