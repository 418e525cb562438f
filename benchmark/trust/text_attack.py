"""The text-attack pass: a promotional phrase appended to the title of one item per
user (a non-target candidate, or on full ranking an item neither a target nor in the
history), and how far that item moves up the user's ranking. A model that ignores titles
and scores a request alike each time (pop) leaves it where it was: gain 0 by
construction; one that draws new random scores per call (random) moves it by chance."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from benchmark.api import Catalog
from benchmark.data.views import EvalSet
from benchmark.eval.trust import expected_rank
from benchmark.progress import track
from benchmark.tasks.schema import TextAttackSpec
from benchmark.trust import TrustRun


def applies(run: TrustRun) -> str | None:
    return None if run.train.catalog.titles() is not None else "the catalogue has no titles"


def measure(run: TrustRun, spec: TextAttackSpec) -> dict[str, float]:
    """Mean tie-aware rank of each user's attacked item before and after the phrase is
    appended to its title, and the mean gain (before - after: positive = moved up).
    Each user's item differs, so each user is one request with its own catalogue."""
    part = run.first_users(spec.users)
    columns = attacked_columns(part, run.train.n_items, run.rng("text_attack"))
    before = ranks(run, part, run.scores(part, "text attack before"), columns)
    after = np.empty(len(part))
    catalog = run.train.catalog
    for row in track(range(len(part)), f"{run.name} text-attack pass"):
        user = part.subset(np.array([row]))
        item = int(columns[row] if part.candidates is None else part.candidates[row, columns[row]])
        train = replace(run.train, catalog=promoted(catalog, item, spec.phrase))
        scores = run.scores(user, f"text attack user {row}", train=train)
        after[row] = ranks(run, user, scores, columns[row:row + 1])[0]
    return {"trust.attack.text.before_rank": float(before.mean()),
            "trust.attack.text.after_rank": float(after.mean()),
            "trust.attack.text.gain": float((before - after).mean())}


def attacked_columns(part: EvalSet, n_items: int, rng: np.random.Generator) -> np.ndarray:
    """Per user, the score column of the item to attack: a candidate other than the
    target, or on full ranking (column = item id) an item neither a target nor seen."""
    out = np.empty(len(part), dtype=np.int64)
    for row in range(len(part)):
        targets = np.atleast_1d(np.asarray(part.targets[row], dtype=np.int64))
        if part.candidates is None:
            allowed = np.setdiff1d(np.arange(n_items), np.concatenate([targets, part.histories[row]]))
        else:
            allowed = np.flatnonzero(~np.isin(part.candidates[row], targets))
        out[row] = rng.choice(allowed)
    return out


def ranks(run: TrustRun, part: EvalSet, scores: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Each user's expected rank of its column, in the ranking the task makes of the
    scores (seen items left out where the task excludes them)."""
    scores = np.array(scores, dtype=np.float64, copy=True)
    if run.task.history.exclude_seen and part.candidates is None:
        for row, history in enumerate(part.histories):
            scores[row, np.asarray(history, dtype=np.int64)] = -np.inf
    return np.array([expected_rank(scores[row], column) for row, column in enumerate(columns)])


def promoted(catalog: Catalog, item: int, phrase: str) -> Catalog:
    """A copy of the catalogue with `phrase` appended to the item's title (to its
    fallback text where the title is missing)."""
    items = catalog.items.copy()
    row = np.flatnonzero(items["item_id"].to_numpy() == item)[0]
    title = items["title"].iloc[row]
    if pd.isna(title) or not str(title).strip():
        title = catalog.item_texts()[item]
    items["title"] = items["title"].astype(object)
    items.iloc[row, items.columns.get_loc("title")] = f"{title}{phrase}"
    return Catalog(catalog.n_items, items)
