"""Criteo's Kaggle Display Advertising Challenge data (2014): click-through rate without
users.

`train.txt` (or `train.txt.gz`): tab-separated, no header, one display ad a line: the
label (1 clicked, 0 not), 13 integer features I1..I13 (mostly counts; some negative)
and 26 categorical features C1..C26 (32-bit hashes as 8 hex characters). A missing
value is an empty field, anywhere but the label. The publisher says the rows are in
chronological order (7 days of traffic, positives and negatives subsampled at
different rates); no clock time is given.

Canonical tables:
- interactions: one row per line; user "anonymous" (the data has no users: one
  constant user), item "row-<n>" (the line's own id, n counted from 0), timestamp n
  (the line order is the time order, so a `global_time` split tests the last lines:
  the last days), rating = the label (0.0 / 1.0).
- items: item, I1..I13 as numbers (NaN when empty), C1..C26 as text ("" when empty).
- users: none.

A CTR task labels with `ctr.label_min_rating: 1` and hands the features to models with
`ctr.item_features: [I1, ..., I13, C1, ..., C26]`. Every item occurs once, so an id
model (pop) can only predict the overall click rate; the features carry the signal.

`test.txt` (the challenge's test lines, no label column) is not read: without labels
it serves no task.

Size: the file is read with pyarrow's multithreaded CSV reader, but the full 45.8
million lines (11 GB) still make canonical tables of tens of GB in memory; its first
lines (`head -n 5000000 train.txt > train.txt` in another folder) are its first days,
still in time order.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.dataset import RawDataset
from benchmark.data.datasets.formats import ALL, DataFileError, DatasetFormat, Selection
from benchmark.data.datasets.readers import find_file, read_unquoted, with_row_order
from benchmark.data.datasets.registry import RegisteredDataset

INTEGER_FEATURES = [f"I{k}" for k in range(1, 14)]
CATEGORICAL_FEATURES = [f"C{k}" for k in range(1, 27)]
FIELDS = ["label", *INTEGER_FEATURES, *CATEGORICAL_FEATURES]
TRAIN_FILES = ("train.txt", "train.txt.gz")
USER = "anonymous"


def read_train(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(interactions, items) of train.txt, in the canonical form above."""
    frame = read_unquoted(path, FIELDS, "\t", numeric=["label", *INTEGER_FEATURES], required=())
    labels = frame["label"].to_numpy()
    bad = ~np.isin(labels, (0.0, 1.0))
    if bad.any():
        row = int(np.argmax(bad))
        shown = "an empty cell" if np.isnan(labels[row]) else repr(f"{labels[row]:g}")
        raise DataFileError(f"{path} line {frame['line'].iloc[row]}: field 'label': {shown}, but a label is 0 or 1")
    ids = "row-" + pd.Series(np.arange(len(frame)), dtype="int64").astype(str)
    interactions = with_row_order(pd.DataFrame({
        "user": USER, "item": ids, "timestamp": np.arange(len(frame), dtype="float64"), "rating": labels}))
    items = pd.concat([ids.rename("item"), frame[INTEGER_FEATURES + CATEGORICAL_FEATURES]], axis=1)
    return interactions, items


class CriteoFormat(DatasetFormat):
    name = "criteo"
    description = "Criteo Kaggle Display Advertising Challenge: train.txt[.gz], label, I1..I13, C1..C26, no users"
    required = ("train.txt*",)
    time_field = "train.txt: the line order (the rows are chronological; no clock times)"

    def missing(self, folder: Path, selection: Selection = ALL) -> list[str]:
        return [] if _train_file(folder) else ["train.txt (or train.txt.gz)"]

    def source_files(self, folder: Path, selection: Selection = ALL) -> list[Path]:
        found = _train_file(folder)
        return [found] if found else []

    def read(self, folder: Path, name: str, selection: Selection = ALL) -> RawDataset:
        interactions, items = read_train(_train_file(folder))
        return RawDataset(name, interactions, items, None)


def _train_file(folder: Path) -> Path | None:
    return find_file(folder, *TRAIN_FILES)


FORMAT_LIST = [CriteoFormat()]
DATASET_LIST = [
    RegisteredDataset(
        name="criteo",
        format="criteo",
        source=None,  # the download asks to accept Criteo's terms first
        homepage="https://ailab.criteo.com/ressources/",
        description="Criteo Kaggle Display Advertising Challenge (45.8M ads over 7 days, 13 integer and "
                    "26 hashed categorical features); train.txt from the Criteo AI Lab or Kaggle page",
        licence="Criteo: CC BY-NC-SA 4.0, non-commercial research use, share alike; downloaded after "
                "accepting Criteo's terms (https://www.kaggle.com/c/criteo-display-ad-challenge)",
    ),
]
