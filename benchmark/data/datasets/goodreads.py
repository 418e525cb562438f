"""Goodreads (UCSD Book Graph: Wan & McAuley, RecSys 2018; Wan, Misra, Nakashole &
McAuley, ACL 2019), by genre: one part per genre.

`goodreads_interactions_{genre}.json.gz`: JSON lines with user_id, book_id, review_id,
is_read, rating (0 to 5; 0 means shelved without a rating), review_text_incomplete,
date_added, date_updated, read_at, started_at; dates as 'Tue Oct 17 16:28:25 -0700 2017'
(empty when unknown). `goodreads_books_{genre}.json.gz` (optional): book_id, title,
title_without_series, description, authors (a list of {author_id, role}), publisher,
publication_year, language_code, num_pages, popular_shelves (a list of {count, name}),
... every value as text ("" when unknown).

Canonical tables: interactions(user, item = book_id, timestamp, rating, row). The
timestamp is date_added (to UTC seconds): when the user shelved the book, set once,
whereas date_updated moves whenever the shelf entry is edited later (a rating or review
added years on would reorder the history); date_updated stands in only where
date_added is empty. A rating of 0 (no stars given) is NaN. items(item, title (with the
series, as Goodreads shows it), title_without_series, description, authors (author
ids), publisher, publication_year, language_code, num_pages, shelves (the five most
popular shelf names)).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.dataset import RawDataset
from benchmark.data.datasets.formats import ALL, DataFileError, DatasetFormat, Selection
from benchmark.data.datasets.readers import (
    find_gz_or_plain,
    join_parts,
    numbers_or_nan,
    numeric_column,
    read_records,
    require_gz_or_plain,
    required_text,
    selected_parts,
    text_of,
    time_from_text,
    with_row_order,
)
from benchmark.data.datasets.registry import RegisteredDataset
from benchmark.data.datasets.sources import Download

DATE = "%a %b %d %H:%M:%S %z %Y"  # Tue Oct 17 16:28:25 -0700 2017
INTERACTION_FIELDS = {"user": "user_id", "item": "book_id", "rating": "rating", "date_added": "date_added",
                      "date_updated": "date_updated"}
BOOK_FIELDS = {"item": "book_id", "title": "title", "title_without_series": "title_without_series",
               "description": "description", "authors": "authors", "publisher": "publisher",
               "publication_year": "publication_year", "language_code": "language_code", "num_pages": "num_pages",
               "shelves": "popular_shelves"}
GENRES = ("children", "comics_graphic", "fantasy_paranormal", "history_biography", "mystery_thriller_crime",
          "poetry", "romance", "young_adult")


def _names(value, key: str, top: int | None = None) -> str | None:
    """A list of objects (authors, shelves) as their `key`s (the first `top`), joined with ", "."""
    if isinstance(value, list):
        return text_of([v.get(key) if isinstance(v, dict) else v for v in value[:top]], ", ")
    return text_of(value)


class Goodreads(DatasetFormat):
    name = "goodreads"
    description = ("Goodreads by genre (UCSD Book Graph): goodreads_interactions_{category}.json(.gz), "
                   "goodreads_books_{category}.json(.gz)")
    required = ("goodreads_interactions_{category}.json*",)
    optional = ("goodreads_books_{category}.json*",)
    multi_part = True
    time_field = "goodreads_interactions_{category}.json: date_added (else date_updated)"

    def read(self, folder: Path, name: str, selection: Selection = ALL) -> RawDataset:
        inter, items = join_parts(self._part(folder, genre) for genre in selected_parts(self, folder, selection))
        return RawDataset(name, with_row_order(inter), items, None)

    def _part(self, folder: Path, genre: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        interactions = self._interactions(require_gz_or_plain(folder, f"goodreads_interactions_{genre}.json"))
        books = find_gz_or_plain(folder, f"goodreads_books_{genre}.json")
        return interactions, (None if books is None else self._books(books))

    def _interactions(self, path: Path) -> pd.DataFrame:
        frame = read_records(path, INTERACTION_FIELDS, required=["user", "item", "rating"],
                             convert={"user": str, "item": str, "rating": str})
        added = frame["date_added"].fillna("").astype(str).str.strip()
        updated = frame["date_updated"].fillna("").astype(str).str.strip()
        frame["date"] = added.where(added != "", updated)
        undated = (frame["date"] == "").to_numpy()
        if undated.any():
            line = int(frame["line"].to_numpy()[undated.argmax()])
            raise DataFileError(f"{path} line {line}: no field 'date_added' (nor 'date_updated')")
        rating = numeric_column(frame, "rating", path)
        return pd.DataFrame({
            "user": required_text(frame, "user", path, "user_id").to_numpy(),
            "item": required_text(frame, "item", path, "book_id").to_numpy(),
            "timestamp": time_from_text(frame, "date", path, DATE, field="date_added").to_numpy(),
            "rating": rating.where(rating > 0, np.nan).to_numpy(),  # 0: shelved, no stars
        })

    def _books(self, path: Path) -> pd.DataFrame:
        plain = {field: text_of for field in ("title", "title_without_series", "description", "publisher",
                                              "publication_year", "language_code", "num_pages")}
        books = read_records(path, BOOK_FIELDS, required=["item"],
                             convert=plain | {"item": str, "authors": lambda v: _names(v, "author_id"),
                                              "shelves": lambda v: _names(v, "name", top=5)})
        for column in ("publication_year", "num_pages"):
            books[column] = numbers_or_nan(books[column])
        return books.drop(columns="line")


FORMAT_LIST: list = [Goodreads()]
DATASET_LIST: list = [
    RegisteredDataset(
        name="goodreads",
        format="goodreads",
        source=Download("https://datarepo.eng.ucsd.edu/mcauley_group/gdrive/goodreads/byGenre/"
                        "goodreads_interactions_{category}.json.gz",
                        extra_urls=("https://datarepo.eng.ucsd.edu/mcauley_group/gdrive/goodreads/byGenre/"
                                    "goodreads_books_{category}.json.gz",)),
        homepage="https://mengtingwan.github.io/data/goodreads.html",
        categories=GENRES,
        description="Goodreads shelves and ratings by genre (UCSD Book Graph), with book metadata",
        licence="Goodreads datasets (McAuley lab, UCSD): for academic, non-commercial use only; no "
                "redistribution; cite Wan & McAuley (RecSys 2018) and Wan et al. (ACL 2019).",
    ),
]
