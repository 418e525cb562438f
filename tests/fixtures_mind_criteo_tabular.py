"""Small folders in the publishers' formats, with their quirks, for MIND, Criteo's Kaggle
challenge data and the bring-your-own tabular format.

`FIXTURES` maps each registered dataset name to a writer: writer(folder) writes the
files into `folder` and returns the task's `dataset:` mapping besides `path`.
`TABULAR_FIXTURES` does the same for the tabular format (read by path only, under a
name of the task's choosing). The first lines of each file are written by hand (the
tests check them cell by cell); the rest is generated, seeded, with a signal a
popularity model can find."""
from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

# ---------------------------------------------------------------------------- MIND

CATEGORIES = [("news", "newsus"), ("sports", "football_nfl"), ("finance", "markets"), ("lifestyle", "royals"),
              ("foodanddrink", "recipes"), ("autos", "autosenthusiasts")]
ENTITY = json.dumps([{"Label": "PGA Tour", "Type": "O", "WikidataId": "Q910409", "Confidence": 1.0,
                      "OccurrenceOffsets": [0], "SurfaceForms": ["PGA Tour"]}])
# news.tsv lines written by hand: quotes left bare (MIND is not quoted), an empty abstract,
# non-ASCII text, entity lists as JSON.
MIND_NEWS_HEAD = [
    ["N1001", "lifestyle", "royals", 'The "Crown" star\'s secret, revealed', "What she said \"off the record\".",
     "https://assets.msn.com/labs/mind/AAGH0ET.html", ENTITY, "[]"],
    ["N1002", "sports", "golf", "PGA Tour winners", "", "https://assets.msn.com/labs/mind/AAjnQjj.html", ENTITY, "[]"],
    ["N1003", "foodanddrink", "recipes", "Café owners — what’s next?", "Prices rise 5% & more.",
     "https://assets.msn.com/labs/mind/BBWqeaV.html", "[]", "[]"],
]
# behaviors.tsv lines written by hand: an AM time, a noon (12:.. PM) and a midnight
# (12:.. AM) time, unpadded month/day/hour, an empty history, and the file not in time
# order (line 3 is earliest).
MIND_BEHAVIORS_HEAD = [
    ["1", "U100", "11/9/2019 5:01:12 AM", "N1003 N1004", "N1001-1 N1002-0 N1005-0"],
    ["2", "U101", "11/9/2019 12:30:00 PM", "", "N1001-0 N1006-1"],
    ["3", "U100", "11/9/2019 12:05:09 AM", "N1003 N1004", "N1007-0 N1001-0"],
]
MIND_N_NEWS = 60
MIND_N_USERS = 40


def mind_time(moment: datetime) -> str:
    """MIND's "M/D/YYYY h:mm:ss AM" (no zero padding of month, day and hour)."""
    hour = moment.hour % 12 or 12
    return (f"{moment.month}/{moment.day}/{moment.year} {hour}:{moment.minute:02d}:{moment.second:02d} "
            f"{'AM' if moment.hour < 12 else 'PM'}")


def _tsv(path: Path, rows: list[list[str]]) -> None:
    path.write_text("".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")


def write_mind_part(folder: Path, first_day: datetime, days: int, seed: int) -> None:
    """behaviors.tsv and news.tsv of one part: the hand-written lines, then impressions of
    40 users over `days` days, in shuffled order; each news has its own click rate."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    news = list(MIND_NEWS_HEAD)
    for k in range(len(news) + 1, MIND_N_NEWS + 1):
        category, sub = CATEGORIES[k % len(CATEGORIES)]
        abstract = "" if k % 7 == 0 else f"Abstract of story {k}: what happened, and why."
        news.append([f"N{1000 + k}", category, sub, f"Story {k}: {category} update", abstract,
                     f"https://assets.msn.com/labs/mind/AA{k:05d}.html", "[]", "[]"])
    _tsv(folder / "news.tsv", news)
    ids = [row[0] for row in news]
    rate = np.where(np.arange(MIND_N_NEWS) % 4 == 0, 0.6, 0.08)  # a quarter of the news is clicked a lot
    lines = []
    for user in range(MIND_N_USERS):
        history = " ".join(rng.choice(ids, rng.integers(0, 5), replace=False)) if user % 5 else ""
        for _ in range(4):
            moment = first_day + timedelta(seconds=int(rng.integers(0, days * 86_400)))
            shown = rng.choice(MIND_N_NEWS, rng.integers(4, 8), replace=False)
            clicked = rng.random(len(shown)) < rate[shown]
            clicked[rng.integers(len(shown))] |= not clicked.any()  # MIND: every impression has a click
            entries = " ".join(f"{ids[n]}-{int(c)}" for n, c in zip(shown, clicked))
            lines.append([f"U{200 + user}", mind_time(moment), history, entries])
    order = rng.permutation(len(lines))
    rows = [list(row) for row in MIND_BEHAVIORS_HEAD]
    rows += [[str(len(rows) + k + 1), *lines[i]] for k, i in enumerate(order)]
    _tsv(folder / "behaviors.tsv", rows)


def write_mind_small(folder: Path) -> dict:
    """MIND-small's train part: Nov 9-14, 2019."""
    write_mind_part(folder, datetime(2019, 11, 9), days=6, seed=0)
    return {"name": "mind-small", "category": "train"}


def write_mind_large(folder: Path) -> dict:
    """MIND (large)'s dev part: Nov 15, 2019."""
    write_mind_part(folder, datetime(2019, 11, 15), days=1, seed=1)
    return {"name": "mind", "category": "dev"}


# ---------------------------------------------------------------------------- Criteo

# train.txt lines written by hand: empty fields anywhere but the label (an empty I3, I12,
# C22; line 2 empties most integers; line 3 every categorical but C1), a negative I2.
CRITEO_HEAD = [
    ["0", "1", "-1", "", "5", "1382", "4", "15", "2", "181", "1", "2", "", "2",
     "68fd1e64", "80e26c9b", "fb936136", "7b4723c4", "25c83c98", "7e0ccccf", "de7995b8", "1f89b562",
     "a73ee510", "a8cd5504", "b2cb9c98", "37c9c164", "2824a5f6", "1adce6ef", "8ba8b39a", "891b62e7",
     "e5ba7672", "f54016b9", "21ddcdc9", "b1252a9d", "07b5194c", "", "3a171ecb", "c5c50484", "e8b83407",
     "9727dd16"],
    ["1", "", "0", "", "", "", "", "", "", "", "", "", "", "",
     "05db9164", "0b153874", "2e8b2631", "", "25c83c98", "fbad5c96", "", "0b153874", "a73ee510", "3b08e48b",
     "c6cb726f", "", "b28479f6", "f2fc99b1", "7b4723c4", "", "07c540c4", "", "", "", "", "", "", "", "",
     ""],
    ["0", "2", "3", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "be589b51"] + [""] * 25,
]
CRITEO_ROWS = 700


def criteo_rows(seed: int = 0, rows: int = CRITEO_ROWS) -> list[list[str]]:
    """The hand-written lines, then generated ones: C1 (one of 5 hashes) and I1 set the
    click chance; about a fifth of the other fields are empty."""
    rng = np.random.default_rng(seed)
    hashes = [f"{rng.integers(0, 2**32):08x}" for _ in range(40)]
    lines = [list(row) for row in CRITEO_HEAD]
    for _ in range(rows - len(lines)):
        c1 = int(rng.integers(0, 5))
        i1 = int(rng.integers(0, 20))
        clicked = rng.random() < 0.02 + 0.2 * c1 + 0.01 * i1
        integers = ["" if rng.random() < 0.2 else str(int(rng.integers(-2, 500))) for _ in range(12)]
        categorical = ["" if rng.random() < 0.2 else hashes[int(rng.integers(0, 40))] for _ in range(25)]
        lines.append([str(int(clicked)), str(i1), *integers, hashes[c1], *categorical])
    return lines


def write_criteo(folder: Path, gz: bool = False) -> dict:
    """train.txt (or train.txt.gz) and the label-less test.txt, which is not read."""
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join("\t".join(row) + "\n" for row in criteo_rows())
    if gz:
        with gzip.open(folder / "train.txt.gz", "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        (folder / "train.txt").write_text(text)
    (folder / "test.txt").write_text("".join("\t".join(row[1:]) + "\n" for row in criteo_rows(seed=9, rows=20)))
    return {"name": "criteo"}


# ---------------------------------------------------------------------------- tabular

SHOP_COLUMNS = {"user": "customer_id", "item": "sku", "timestamp": "ts", "rating": "stars", "title": "name"}
SHOP_START = datetime(2021, 3, 1, tzinfo=timezone.utc)


def shop_tables(seed: int = 0) -> dict[str, pd.DataFrame]:
    """A shop's purchases as the files hold them: 36 customers with 8 purchases each at
    whole-minute times (two of a customer's purchases may share one: a tie), stars 1-5 or
    none; 40 products (names with commas and quotes); customers' ages and cities."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, 41)
    rows = []
    for customer in range(36):
        minutes = np.sort(rng.integers(0, 30 * 24 * 60, 8))
        if customer % 6 == 0:
            minutes[4] = minutes[3]  # a tie: the file's order decides
        products = rng.choice(40, 8, replace=False, p=weights / weights.sum())
        for minute, product in zip(minutes, products):
            stars = float(rng.integers(1, 6)) if rng.random() > 0.15 else np.nan
            rows.append((1000 + customer, f"SKU-{product:03d}", SHOP_START + timedelta(minutes=int(minute)),
                         stars, rng.choice(["web", "store"])))
    interactions = pd.DataFrame(rows, columns=["customer_id", "sku", "ts", "stars", "channel"])
    names = [f"Widget {k}" for k in range(40)]
    names[0], names[1], names[2] = "Widget, large", 'The "Best" Mug', "Crème brûlée torch"
    items = pd.DataFrame({"sku": [f"SKU-{k:03d}" for k in range(40)], "name": names,
                          "brand": [["Acme", "Globex", "Initech"][k % 3] for k in range(40)],
                          "tags": [["kitchen", "gift"] if k % 2 else ["tools"] for k in range(40)]})
    users = pd.DataFrame({"customer_id": np.arange(1000, 1036), "age": rng.integers(18, 70, 36),
                          "city": [["Lyon", "Paris", "São Paulo"][k % 3] for k in range(36)]})
    return {"interactions": interactions, "items": items, "users": users}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_tabular_csv(folder: Path) -> dict:
    """interactions.csv (ISO times, empty stars, an unmapped column), items.csv (quoted
    names, tags as space-separated text) and users.csv; the mapping renames them."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = shop_tables()
    inter = tables["interactions"].assign(ts=tables["interactions"]["ts"].map(_iso))
    inter.to_csv(folder / "interactions.csv", index=False)
    items = tables["items"].assign(tags=tables["items"]["tags"].map(" ".join))
    items.to_csv(folder / "items.csv", index=False)
    tables["users"].to_csv(folder / "users.csv", index=False)
    return {"name": "shop", "columns": dict(SHOP_COLUMNS)}


def write_tabular_parquet(folder: Path) -> dict:
    """The same shop as Parquet: integer customer ids, datetime times, NaN stars, a list
    column of tags."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in shop_tables().items():
        table.to_parquet(folder / f"{name}.parquet", index=False)
    return {"name": "shop", "columns": dict(SHOP_COLUMNS)}


def write_tabular_jsonl(folder: Path) -> dict:
    """The same shop as JSON lines, with the canonical column names (no mapping needed):
    times as seconds since the epoch."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = shop_tables()
    inter = tables["interactions"].rename(columns={"customer_id": "user", "sku": "item", "stars": "rating"})
    with (folder / "interactions.jsonl").open("w") as out:
        for row in inter.itertuples(index=False):
            record = {"user": int(row.user), "item": row.item, "timestamp": row.ts.timestamp()}
            if not np.isnan(row.rating):
                record["rating"] = row.rating
            out.write(json.dumps(record) + "\n")
    with (folder / "items.jsonl").open("w") as out:
        for row in tables["items"].itertuples(index=False):
            out.write(json.dumps({"item": row.sku, "title": row.name, "brand": row.brand, "tags": row.tags}) + "\n")
    return {"name": "shop"}


FIXTURES: dict[str, Callable[[Path], dict]] = {
    "mind-small": write_mind_small,
    "mind": write_mind_large,
    "criteo": write_criteo,
}
TABULAR_FIXTURES: dict[str, Callable[[Path], dict]] = {
    "csv": write_tabular_csv,
    "parquet": write_tabular_parquet,
    "jsonl": write_tabular_jsonl,
}
