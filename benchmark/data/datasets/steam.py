"""Steam (Kang & McAuley, ICDM 2018, "Self-attentive sequential recommendation"; the
"Version 2" review data of the UCSD Steam datasets).

`steam_reviews.json.gz`: one Python dict literal a line (the publisher wrote Python 2
reprs: single quotes, `u'...'` strings, True/False, so lines are read with
`ast.literal_eval`), with username, user_id (missing for most reviewers), product_id,
date ('YYYY-MM-DD'), hours, text, products, page, page_order, early_access,
found_funny, compensation. `steam_games.json.gz` (optional): Python dict literals with
id, app_name, title, genres, tags, specs, developer, publisher, release_date, price,
... (a few games have no id: they cannot be joined and are skipped).

Canonical tables: interactions(user, item = product_id, timestamp = the review's date at
00:00 UTC in seconds, row), no rating (a Steam review carries hours played, not a
rating). The user is user_id where the review has one, else the username, as the
publisher's files identify reviewers (a reviewer seen with and without user_id counts as
two users). Dates have daily granularity, so one user's reviews often tie: the file
order (`row`) breaks ties. items(item, title = app_name (else title), genres, tags,
specs, developer, publisher, release_date, price as a number: "Free To Play" is NaN).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.dataset import RawDataset
from benchmark.data.datasets.formats import ALL, DataFileError, DatasetFormat, Selection
from benchmark.data.datasets.readers import (
    find_gz_or_plain,
    first_rows_for,
    read_records,
    require_gz_or_plain,
    required_text,
    text_of,
    time_from_text,
    with_row_order,
)
from benchmark.data.datasets.registry import RegisteredDataset
from benchmark.data.datasets.sources import Download

REVIEW_FIELDS = {"user_id": "user_id", "username": "username", "item": "product_id", "date": "date"}
GAME_FIELDS = {"item": "id", "title": "app_name", "other_title": "title", "genres": "genres", "tags": "tags",
               "specs": "specs", "developer": "developer", "publisher": "publisher",
               "release_date": "release_date", "price": "price"}


class Steam(DatasetFormat):
    name = "steam"
    description = "Steam reviews (Kang & McAuley 2018): steam_reviews.json(.gz), steam_games.json(.gz), " \
                  "Python dict literals"
    required = ("steam_reviews.json*",)
    optional = ("steam_games.json*",)
    time_field = "steam_reviews.json: date (YYYY-MM-DD, daily)"

    def read(self, folder: Path, name: str, selection: Selection = ALL) -> RawDataset:
        path = require_gz_or_plain(folder, "steam_reviews.json")
        frame = read_records(path, REVIEW_FIELDS, required=["item", "date"], syntax="python",
                             convert={"user_id": str, "item": str, "username": str})  # ids as text
        user = frame["user_id"].astype(object).where(frame["user_id"].notna(), frame["username"].astype(object))
        frame = frame.assign(user=user)
        no_user = frame["user"].isna().to_numpy()
        if no_user.any():
            line = int(frame["line"].to_numpy()[no_user.argmax()])
            raise DataFileError(f"{path} line {line}: no field 'username' (nor 'user_id')")
        inter = pd.DataFrame({
            "user": required_text(frame, "user", path, "username").to_numpy(),
            "item": required_text(frame, "item", path, "product_id").to_numpy(),
            "timestamp": time_from_text(frame, "date", path, "%Y-%m-%d").to_numpy(),
        })
        return RawDataset(name, with_row_order(inter), self._games(folder, set(inter["item"])), None)

    def _games(self, folder: Path, reviewed: set[str]) -> pd.DataFrame | None:
        path = find_gz_or_plain(folder, "steam_games.json")
        if path is None:
            return None
        lists = {field: (lambda v: text_of(v, ", ")) for field in ("genres", "tags", "specs")}
        games = read_records(path, GAME_FIELDS, syntax="python",
                             convert={"item": str, "title": text_of, "other_title": text_of,
                                      "developer": text_of, "publisher": text_of, "release_date": text_of}
                             | lists)
        games = games[games["item"].notna()]
        games = games.assign(title=games["title"].where(games["title"].notna(), games["other_title"]),
                             price=games["price"].map(_price))
        return first_rows_for(games.drop(columns=["other_title", "line"]), "item", reviewed)


def _price(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):  # "Free To Play", "Free", missing
        return np.nan


FORMAT_LIST: list = [Steam()]
DATASET_LIST: list = [
    RegisteredDataset(
        name="steam",
        format="steam",
        source=Download("https://cseweb.ucsd.edu/~wckang/steam_reviews.json.gz",
                        extra_urls=("https://cseweb.ucsd.edu/~wckang/steam_games.json.gz",)),
        homepage="https://cseweb.ucsd.edu/~jmcauley/datasets.html#steam_data",
        description="Steam game reviews (7.8M reviews) with game metadata; no ratings",
        licence="Steam data (McAuley lab, UCSD): for research use only, not for commercial use or "
                "redistribution; cite Kang & McAuley (ICDM 2018).",
    ),
]
