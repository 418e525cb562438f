"""The Yelp Open Dataset (the "academic dataset"), as JSON lines.

`yelp_academic_dataset_review.json`: review_id, user_id, business_id, stars, useful,
funny, cool, text, date ('YYYY-MM-DD HH:MM:SS'; older releases wrote 'YYYY-MM-DD').
`yelp_academic_dataset_business.json` (optional): business_id, name, address, city,
state, postal_code, latitude, longitude, stars, review_count, is_open, attributes (a dict
whose values are often Python literals as text, "u'free'"), categories (one
comma-separated text), hours. `yelp_academic_dataset_user.json` (optional): user_id,
name, review_count, yelping_since, friends (a long list: not kept), useful, funny, cool,
fans, elite, average_stars, compliment_*.

Canonical tables: interactions(user, item = business_id, timestamp (UTC seconds; the
times have no zone), rating = stars, row), items(item, title = name, categories, city,
state, stars, review_count, attributes as "key: value" text), users(user, name,
review_count, yelping_since, fans, average_stars, elite) when the user file is there.
There is no download: the publisher asks each user to accept its terms first.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.data.dataset import RawDataset
from benchmark.data.datasets.formats import ALL, DataFileError, DatasetFormat, Selection
from benchmark.data.datasets.readers import (
    find_file,
    first_rows_for,
    numbers_or_nan,
    numeric_column,
    read_records,
    required_text,
    text_of,
    time_from_text,
    with_row_order,
)
from benchmark.data.datasets.registry import RegisteredDataset

PREFIX = "yelp_academic_dataset_"
REVIEW_FIELDS = {"user": "user_id", "item": "business_id", "rating": "stars", "date": "date"}
BUSINESS_FIELDS = {"item": "business_id", "title": "name", "categories": "categories", "city": "city",
                   "state": "state", "stars": "stars", "review_count": "review_count", "attributes": "attributes"}
USER_FIELDS = {"user": "user_id", "name": "name", "review_count": "review_count", "yelping_since": "yelping_since",
               "fans": "fans", "average_stars": "average_stars", "elite": "elite"}


def _file(folder: Path, part: str) -> Path | None:
    return find_file(folder, f"{PREFIX}{part}.json", f"{PREFIX}{part}.json.gz")


class Yelp(DatasetFormat):
    name = "yelp"
    description = "Yelp Open Dataset: yelp_academic_dataset_review.json, optional business and user files"
    required = (f"{PREFIX}review.json*",)
    optional = (f"{PREFIX}business.json*", f"{PREFIX}user.json*")
    time_field = f"{PREFIX}review.json: date (YYYY-MM-DD HH:MM:SS)"

    def read(self, folder: Path, name: str, selection: Selection = ALL) -> RawDataset:
        path = _file(folder, "review")
        if path is None:
            raise DataFileError(f"{folder}: no {PREFIX}review.json")
        frame = read_records(path, REVIEW_FIELDS, required=REVIEW_FIELDS,
                             convert={"rating": str, "date": str})
        inter = pd.DataFrame({
            "user": required_text(frame, "user", path, "user_id").to_numpy(),
            "item": required_text(frame, "item", path, "business_id").to_numpy(),
            "timestamp": time_from_text(frame, "date", path, "ISO8601").to_numpy(),
            "rating": numeric_column(frame, "rating", path, "stars").to_numpy(),
        })
        return RawDataset(name, with_row_order(inter), self._businesses(folder, set(inter["item"])),
                          self._users(folder, set(inter["user"])))

    def _businesses(self, folder: Path, reviewed: set[str]) -> pd.DataFrame | None:
        path = _file(folder, "business")
        if path is None:
            return None
        items = read_records(path, BUSINESS_FIELDS, required=["item"],
                             convert={"title": text_of, "categories": text_of, "city": text_of, "state": text_of,
                                      "attributes": _attributes})
        items["stars"] = numbers_or_nan(items["stars"])
        items["review_count"] = numbers_or_nan(items["review_count"])
        return first_rows_for(items.drop(columns="line"), "item", reviewed)

    def _users(self, folder: Path, reviewers: set[str]) -> pd.DataFrame | None:
        path = _file(folder, "user")
        if path is None:
            return None
        users = read_records(path, USER_FIELDS, required=["user"],
                             convert={"name": text_of, "yelping_since": text_of, "elite": text_of})
        for column in ("review_count", "fans", "average_stars"):
            users[column] = numbers_or_nan(users[column])
        return first_rows_for(users.drop(columns="line"), "user", reviewers)


def _attributes(value) -> str | None:
    """The attributes dict as "key: value" text; the publisher's Python-literal values
    ("u'free'", "'none'") lose their quotes."""
    if not isinstance(value, dict):
        return text_of(value)
    cleaned = {key: _unquote(item) for key, item in sorted(value.items())}
    return text_of(cleaned)


def _unquote(value):
    if isinstance(value, str):
        text = value[1:] if value[:2] in ("u'", 'u"') else value
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            return text[1:-1]
        return text
    if isinstance(value, dict):
        return {key: _unquote(item) for key, item in value.items()}
    return value


FORMAT_LIST: list = [Yelp()]
DATASET_LIST: list = [
    RegisteredDataset(
        name="yelp",
        format="yelp",
        source=None,
        homepage="https://www.yelp.com/dataset",
        description="Yelp Open Dataset: reviews of businesses, with business and user attributes",
        licence="Yelp Dataset Terms of Use: for academic and personal, non-commercial use after accepting "
                "Yelp's terms at the homepage; no redistribution.",
    ),
]
