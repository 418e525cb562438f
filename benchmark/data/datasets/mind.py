"""MIND, the Microsoft News Dataset (Wu et al., ACL 2020): real impression logs, read as
a click-through track.

Each part (train, dev) is one zip of a flat folder: `behaviors.tsv` and `news.tsv`
(and the entity/relation embeddings, not read), tab-separated, no header, no quoting
(titles hold bare `"` characters).

- behaviors.tsv: impression id, user id, time ("11/15/2019 10:22:32 AM", no time zone:
  read as UTC), history (the user's clicked news before the part, space-separated,
  possibly empty), impressions (space-separated `N123-1` / `N456-0`: shown and
  clicked / not clicked).
- news.tsv: news id, category, subcategory, title, abstract (possibly empty), url,
  title entities, abstract entities (JSON lists).

Canonical tables: one interaction per impression entry: user, item (the news id),
timestamp = the impression's time (every entry of one impression ties), rating 1.0
clicked / 0.0 not clicked, rows in the file's order (impressions contiguous; MIND
shuffled the news within an impression, so this is not the order shown). A CTR task
labels with `ctr.label_min_rating: 1`; a sequential or top-K task keeps the clicks with
`dataset.implicit.min_rating: 1`. Items: item, title, abstract, category, subcategory
(the url and the entity lists are left out).

The history column is left out: its clicks have no time (they precede the part, in an
order but without dates), and a chronological split cannot place an interaction
without a time. The impression ids are left out too (rows of one impression are
contiguous and share user and time).

Train and dev: the two zips hold files of the same names, so each part is its own
folder; a registered dataset names the part as `dataset.category` (train or dev), which
picks the download. With `dataset.path` the folder is one part as unpacked (the category
then only names it). MIND-large's test part has no click labels and is not offered: a
folder of it is refused at its first unlabelled impression entry.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as arrow

from benchmark.data.dataset import RawDataset
from benchmark.data.datasets.formats import ALL, DataFileError, DatasetFormat, Selection
from benchmark.data.datasets.readers import read_unquoted, required_text, time_from_text, with_row_order
from benchmark.data.datasets.registry import RegisteredDataset
from benchmark.data.datasets.sources import Download

BEHAVIOR_FIELDS = ["impression_id", "user_id", "time", "history", "impressions"]
NEWS_FIELDS = ["news_id", "category", "subcategory", "title", "abstract", "url", "title_entities",
               "abstract_entities"]
TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"  # "MM/DD/YYYY HH:MM:SS AM/PM", as the MIND docs say
PARTS = ("train", "dev")
RELEASE = "https://mind201910small.blob.core.windows.net/release"
LICENCE = ("Microsoft Research License Terms: non-commercial research use only, no rights to the news "
           "content granted; cite Wu et al., MIND: A Large-scale Dataset for News Recommendation (ACL 2020)")


def read_behaviors(path: Path) -> pd.DataFrame:
    """The impression entries of behaviors.tsv as canonical interactions (split and
    checked with pyarrow's string kernels: MIND-large holds about 100 million entries)."""
    frame = read_unquoted(path, BEHAVIOR_FIELDS, "\t", required=())
    users = required_text(frame, "user_id", path)
    times = time_from_text(frame, "time", path, fmt=TIME_FORMAT)
    shown = required_text(frame, "impressions", path)
    lists = arrow.utf8_split_whitespace(pa.array(shown.to_numpy(dtype=object), pa.string()))
    tokens = lists.flatten()
    rows = arrow.list_parent_indices(lists).to_numpy()  # each entry's impression (row of `frame`)
    suffix = arrow.utf8_slice_codeunits(tokens, -2)
    labelled = arrow.and_(arrow.is_in(suffix, pa.array(["-0", "-1"])),
                          arrow.greater(arrow.utf8_length(tokens), 2)).to_numpy(zero_copy_only=False)
    if not labelled.all():
        bad = int(np.argmin(labelled))
        token = tokens[bad].as_py()
        hint = " (no click label: MIND's test part has none)" if "-" not in token else ""
        raise DataFileError(f"{path} line {frame['line'].iloc[rows[bad]]}: field 'impressions': {token!r} is not "
                            f"<news id>-1 (clicked) or <news id>-0 (not clicked){hint}")
    clicked = arrow.equal(suffix, "-1").to_numpy(zero_copy_only=False)
    return with_row_order(pd.DataFrame({
        "user": users.to_numpy()[rows],
        "item": arrow.utf8_slice_codeunits(tokens, 0, -2).to_pandas(),
        "timestamp": times.to_numpy()[rows],
        "rating": clicked.astype("float64"),
    }))


def read_news(path: Path) -> pd.DataFrame:
    """news.tsv as the item table: item, title, abstract, category, subcategory."""
    frame = read_unquoted(path, NEWS_FIELDS, "\t", required=())
    items = pd.DataFrame({"item": required_text(frame, "news_id", path)})
    for column in ("title", "abstract", "category", "subcategory"):
        items[column] = frame[column].str.strip()
    return items.drop_duplicates("item").reset_index(drop=True)


class MindFormat(DatasetFormat):
    name = "mind"
    description = "MIND (Microsoft News): behaviors.tsv impressions (1 clicked, 0 not) and news.tsv, one part a folder"
    required = ("behaviors.tsv", "news.tsv")
    multi_part = True  # train / dev, each its own folder (the zips hold the same file names)
    time_field = "behaviors.tsv: Time, the impression's date and time (MM/DD/YYYY hh:mm:ss AM/PM)"

    def categories(self, folder: Path) -> list[str]:
        return []  # a folder holds one part; its files do not say which

    def read(self, folder: Path, name: str, selection: Selection = ALL) -> RawDataset:
        interactions = read_behaviors(folder / "behaviors.tsv")
        return RawDataset(name, interactions, read_news(folder / "news.tsv"), None)


FORMAT_LIST = [MindFormat()]
DATASET_LIST = [
    RegisteredDataset(
        name="mind-small",
        format="mind",
        source=Download(f"{RELEASE}/MINDsmall_{{category}}.zip"),
        homepage="https://msnews.github.io/",
        categories=PARTS,
        description="MIND-small (50,000 users): train = Nov 9-14 2019, dev = Nov 15 impressions with clicks",
        licence=LICENCE,
    ),
    RegisteredDataset(
        name="mind",
        format="mind",
        source=Download(f"{RELEASE}/MINDlarge_{{category}}.zip"),
        homepage="https://msnews.github.io/",
        categories=PARTS,
        description="MIND (large, 1 million users): train = Nov 9-14 2019, dev = Nov 15 impressions with clicks",
        licence=LICENCE,
    ),
]
