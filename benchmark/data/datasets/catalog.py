"""The registered formats and datasets. A new source is one module here with its
format (how the publisher's files are read) and its entry (name, download, licence),
listed below; see docs/task_guide.md, "Adding a dataset"."""
from __future__ import annotations

from benchmark.data.datasets import (
    amazon,
    bookcrossing,
    criteo,
    goodreads,
    lastfm,
    mind,
    movielens,
    steam,
    tabular,
    yelp,
)
from benchmark.data.datasets.atomic import RecBoleAtomic
from benchmark.data.datasets.registry import RegisteredDataset, register_dataset, register_format
from benchmark.data.datasets.sources import AssetSource

register_format(RecBoleAtomic())

register_dataset(RegisteredDataset(
    name="ml-100k",
    format="recbole-atomic",
    source=AssetSource("ml-100k"),
    homepage="https://grouplens.org/datasets/movielens/100k/",
    description="MovieLens 100K as RecBole's atomic files (shipped in the recbole wheel)",
    licence="MovieLens 100K (GroupLens Research, University of Minnesota): research use, cite "
            "Harper & Konstan (2015); may not be redistributed, no commercial use without permission",
))

for _module in (movielens, amazon, steam, lastfm, yelp, bookcrossing, goodreads, mind, criteo, tabular):
    for _format in _module.FORMAT_LIST:
        register_format(_format)
    for _entry in _module.DATASET_LIST:
        register_dataset(_entry)
