"""The Amazon review datasets of the McAuley lab, one category (a part) at a time.

* amazon-2014 (McAuley, Targett, Shi & van den Hengel, SIGIR 2015; He & McAuley, WWW 2016):
  the 5-core review files `reviews_{category}_5.json.gz`, strict JSON lines (reviewerID,
  asin, overall, unixReviewTime, reviewTime, ...), and the metadata
  `meta_{category}.json.gz`, one Python dict literal a line (single quotes: the publisher
  wrote them with Python's repr, so they are read with `ast.literal_eval`) with asin,
  title (missing for many products), description, categories (a list of category
  paths), brand, price, salesRank, related. unixReviewTime has day granularity, so many
  of a user's reviews share a timestamp: the file order (`row`) breaks the ties.
* amazon-2018 (Ni, Li & McAuley, EMNLP 2019): the 5-core reviews `{category}_5.json.gz`
  (JSON lines: reviewerID, asin, overall, unixReviewTime, vote, style, ...) or the
  ratings-only `{category}.csv` (no header; item,user,rating,timestamp in that order), and
  the metadata `meta_{category}.json.gz` (JSON lines whose titles and descriptions hold
  HTML: tags are removed, entities such as `&amp;` decoded). Either interaction file may
  be present (see `Amazon2018.alternatives`); when both are, the 5-core reviews are read.
* amazon-2023 (Hou, Li, He, Yan, Chen & McAuley, 2024; hub id
  McAuley-Lab/Amazon-Reviews-2023): the reviews `{category}.jsonl(.gz)` (rating, title,
  text, asin, parent_asin, user_id, timestamp in milliseconds, ...) and the metadata
  `meta_{category}.jsonl(.gz)` (parent_asin, title, main_category, features,
  description, categories, store, price, details, ...), read through the Hugging Face
  `datasets` library. Items are parent_asin, as in the publisher's benchmark. When the
  publisher's benchmark split files `{category}.train.csv`, `.valid.csv`, `.test.csv`
  (header user_id,parent_asin,rating,timestamp[,history]; from its 5core or 0core
  last_out or timestamp splits) are in the folder, the interactions are read from them
  instead (in train, valid, test order) and the official part is kept in a column
  `official_split` (train/valid/test); the task's own split still decides what is
  trained and tested on. They may stand in for the review file.

Canonical tables: interactions(user, item, timestamp in seconds, rating, row), items of
the reviewed products (item, title, description, categories ("a > b > c" paths joined
with " | "), brand or store, price as a number), no user table. Reviews are kept as the
file has them (duplicates included); filtering is the task's business.
"""
from __future__ import annotations

import re
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.dataset import RawDataset
from benchmark.data.datasets.formats import ALL, DataFileError, DatasetFormat, Selection
from benchmark.data.datasets.readers import (
    cell_text,
    check_field_counts,
    find_file,
    find_gz_or_plain,
    html_text,
    iter_records,
    join_parts,
    numeric_column,
    open_text,
    read_delimited,
    read_records,
    required_text,
    require_gz_or_plain,
    selected_parts,
    text_of,
    with_row_order,
)
from benchmark.data.datasets.registry import RegisteredDataset
from benchmark.data.datasets.sources import Download

# The publisher's category names: the parts a folder is searched for.
CATEGORIES_2014 = (
    "Beauty", "Sports_and_Outdoors", "Toys_and_Games", "Video_Games", "CDs_and_Vinyl", "Books", "Electronics",
    "Movies_and_TV", "Clothing_Shoes_and_Jewelry", "Home_and_Kitchen", "Kindle_Store",
    "Cell_Phones_and_Accessories", "Health_and_Personal_Care", "Tools_and_Home_Improvement",
    "Grocery_and_Gourmet_Food", "Office_Products", "Pet_Supplies", "Automotive", "Musical_Instruments",
    "Patio_Lawn_and_Garden", "Baby", "Digital_Music", "Amazon_Instant_Video", "Apps_for_Android",
)
CATEGORIES_2018 = (
    "AMAZON_FASHION", "All_Beauty", "Appliances", "Arts_Crafts_and_Sewing", "Automotive", "Books",
    "CDs_and_Vinyl", "Cell_Phones_and_Accessories", "Clothing_Shoes_and_Jewelry", "Digital_Music",
    "Electronics", "Gift_Cards", "Grocery_and_Gourmet_Food", "Home_and_Kitchen", "Industrial_and_Scientific",
    "Kindle_Store", "Luxury_Beauty", "Magazine_Subscriptions", "Movies_and_TV", "Musical_Instruments",
    "Office_Products", "Patio_Lawn_and_Garden", "Pet_Supplies", "Prime_Pantry", "Software",
    "Sports_and_Outdoors", "Tools_and_Home_Improvement", "Toys_and_Games", "Video_Games",
)
CATEGORIES_2023 = (
    "All_Beauty", "Amazon_Fashion", "Appliances", "Arts_Crafts_and_Sewing", "Automotive", "Baby_Products",
    "Beauty_and_Personal_Care", "Books", "CDs_and_Vinyl", "Cell_Phones_and_Accessories",
    "Clothing_Shoes_and_Jewelry", "Digital_Music", "Electronics", "Gift_Cards", "Grocery_and_Gourmet_Food",
    "Handmade_Products", "Health_and_Household", "Health_and_Personal_Care", "Home_and_Kitchen",
    "Industrial_and_Scientific", "Kindle_Store", "Magazine_Subscriptions", "Movies_and_TV",
    "Musical_Instruments", "Office_Products", "Patio_Lawn_and_Garden", "Pet_Supplies", "Software",
    "Sports_and_Outdoors", "Subscription_Boxes", "Tools_and_Home_Improvement", "Toys_and_Games",
    "Video_Games", "Unknown",
)


# --- the shared shape of a multi-part Amazon folder ------------------------------------


class AmazonFormat(DatasetFormat):
    """A multi-part format whose first required pattern may be stood in for by an
    alternative (`alternatives`: required pattern -> patterns, any of which will do).
    A folder's parts are the publisher's categories (`parts`) whose files it holds: so
    that a folder of other files (a `data.csv`) is not taken for one (a task naming its
    category explicitly may use another name)."""

    multi_part = True
    alternatives: dict[str, tuple[str, ...]] = {}

    def _fill(self, pattern: str, category: str | None) -> str:
        return pattern.replace("{category}", category or "*")

    def missing(self, folder: Path, selection: Selection = ALL) -> list[str]:
        if not folder.is_dir():
            return list(self.patterns(selection)[0])
        if not selection.category:
            return [] if self.categories(folder) else [self._describe(self.required[0], None)]
        names = [p.name for p in folder.iterdir() if p.is_file()]
        found = []
        for pattern in self.required:
            options = (pattern, *self.alternatives.get(pattern, ()))
            if not any(fnmatchcase(n, self._fill(o, selection.category)) for o in options for n in names):
                found.append(self._describe(pattern, selection.category))
        return found

    def _describe(self, pattern: str, category: str | None) -> str:
        options = (pattern, *self.alternatives.get(pattern, ()))
        return " or ".join(o.replace("{category}", category) if category else o for o in options)

    def needs(self) -> str:
        optional = [o for o in self.optional if not any(o in alts for alts in self.alternatives.values())]
        extra = f" (optional: {', '.join(optional)})" if optional else ""
        return f"{self.name}: {', '.join(self._describe(p, None) for p in self.required)}{extra}"

    def part_patterns(self) -> tuple[str, ...]:
        """The interaction file's pattern and its alternatives."""
        pattern = self.required[0]
        return (pattern, *self.alternatives.get(pattern, ()))

    def source_files(self, folder: Path, selection: Selection = ALL) -> list[Path]:
        files = super().source_files(folder, selection)
        return [p for p in files if not p.name.endswith((".partial", ".tmp"))]

    def read(self, folder: Path, name: str, selection: Selection = ALL) -> RawDataset:
        inter, items = join_parts(self.read_part(folder, c) for c in selected_parts(self, folder, selection))
        return RawDataset(name, with_row_order(inter), items, None)

    def read_part(self, folder: Path, category: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        raise NotImplementedError


def _price(values: pd.Series) -> pd.Series:
    """Prices as numbers: "$1,299.00" is 1299.0; a missing price, or a range, NaN."""
    def number(value) -> float:
        try:
            return float(re.sub(r"[$,\s]", "", cell_text(value)))
        except ValueError:
            return np.nan

    return values.map(number).astype("float64")


def _review_frame(frame: pd.DataFrame, path: Path, fields: dict[str, str], millis: bool = False) -> pd.DataFrame:
    """user, item, rating, timestamp (seconds) from records read with those names."""
    seconds = numeric_column(frame, "timestamp", path, fields["timestamp"])
    return pd.DataFrame({
        "user": required_text(frame, "user", path, fields["user"]).to_numpy(),
        "item": required_text(frame, "item", path, fields["item"]).to_numpy(),
        "timestamp": (seconds / 1000.0 if millis else seconds).to_numpy(),
        "rating": numeric_column(frame, "rating", path, fields["rating"]).to_numpy(),
    })


# --- 2014 ---------------------------------------------------------------------------------

REVIEWS_2014 = {"user": "reviewerID", "item": "asin", "rating": "overall", "timestamp": "unixReviewTime"}


class Amazon2014(AmazonFormat):
    name = "amazon-2014"
    description = ("Amazon reviews 2014 (McAuley et al.): 5-core reviews_{category}_5.json(.gz), "
                   "metadata meta_{category}.json(.gz) as Python dict literals")
    required = ("reviews_{category}_5.json*",)
    optional = ("meta_{category}.json*",)
    time_field = "reviews_{category}_5.json: unixReviewTime (seconds, day granularity)"
    parts = CATEGORIES_2014

    def read_part(self, folder: Path, category: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        path = require_gz_or_plain(folder, f"reviews_{category}_5.json")
        frame = read_records(path, REVIEWS_2014, required=REVIEWS_2014)
        inter = _review_frame(frame, path, REVIEWS_2014)
        meta = find_gz_or_plain(folder, f"meta_{category}.json")
        if meta is None:
            return inter, None
        fields = {"item": "asin", "title": "title", "description": "description", "categories": "categories",
                  "brand": "brand", "price": "price"}
        items = read_records(meta, fields, required=["item"], syntax="python",
                             convert={"categories": lambda v: text_of(v, " | "), "title": text_of,
                                      "description": text_of, "brand": text_of})
        items["item"] = required_text(items, "item", meta, "asin")
        items["price"] = _price(items["price"])
        return inter, items.drop(columns="line")


# --- 2018 ---------------------------------------------------------------------------------

RATINGS_2018 = ["item", "user", "rating", "timestamp"]  # the publisher's order, no header


class Amazon2018(AmazonFormat):
    name = "amazon-2018"
    description = ("Amazon reviews 2018 (Ni et al.): 5-core {category}_5.json(.gz) or ratings {category}.csv "
                   "(item,user,rating,timestamp), metadata meta_{category}.json(.gz) with HTML")
    required = ("{category}_5.json*",)
    optional = ("{category}.csv", "meta_{category}.json*")
    # The ratings-only CSV stands in for the 5-core reviews (the 5-core file is read when both are there).
    alternatives = {"{category}_5.json*": ("{category}.csv",)}
    parts = CATEGORIES_2018
    time_field = "{category}_5.json: unixReviewTime, or {category}.csv: timestamp (seconds)"

    def source_files(self, folder: Path, selection: Selection = ALL) -> list[Path]:
        files = super().source_files(folder, selection)
        fives = {p.name.split("_5.json")[0] for p in files if "_5.json" in p.name}
        return [p for p in files if not (p.name.endswith(".csv") and p.name[:-4] in fives)]

    def read_part(self, folder: Path, category: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        path = find_gz_or_plain(folder, f"{category}_5.json")
        if path is not None:
            frame = read_records(path, REVIEWS_2014, required=REVIEWS_2014)
            inter = _review_frame(frame, path, REVIEWS_2014)
        else:
            path = find_gz_or_plain(folder, f"{category}.csv")
            if path is None:
                raise DataFileError(f"{folder}: no {category}_5.json.gz (or .json) and no {category}.csv")
            inter = read_ratings_2018(path)
        meta = find_gz_or_plain(folder, f"meta_{category}.json")
        return inter, (None if meta is None else read_meta_2018(meta))


def read_ratings_2018(path: Path) -> pd.DataFrame:
    check_field_counts(path, RATINGS_2018, ",")
    frame = read_delimited(path, RATINGS_2018, sep=",")
    return pd.DataFrame({
        "user": required_text(frame, "user", path).to_numpy(),
        "item": required_text(frame, "item", path).to_numpy(),
        "timestamp": numeric_column(frame, "timestamp", path).to_numpy(),
        "rating": numeric_column(frame, "rating", path).to_numpy(),
    })


def _html_list(value, sep: str = " ") -> str | None:
    """A list of HTML snippets (descriptions, feature bullets, a category path) as one text."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return text_of([html_text(v) for v in value], sep)
    return html_text(value)


def read_meta_2018(path: Path) -> pd.DataFrame:
    fields = {"item": "asin", "title": "title", "brand": "brand", "main_category": "main_cat",
              "categories": "category", "description": "description", "features": "feature", "price": "price"}
    items = read_records(path, fields, required=["item"],
                         convert={"title": html_text, "brand": html_text, "main_category": html_text,
                                  "categories": lambda v: _html_list(v, " > "),
                                  "description": _html_list, "features": _html_list})
    items["item"] = required_text(items, "item", path, "asin")
    items["price"] = _price(items["price"])
    return items.drop(columns="line")


# --- 2023 ---------------------------------------------------------------------------------

REVIEWS_2023 = {"user": "user_id", "item": "parent_asin", "rating": "rating", "timestamp": "timestamp"}
SPLIT_COLUMNS = ["user_id", "parent_asin", "rating", "timestamp"]
OFFICIAL_PARTS = ("train", "valid", "test")


class Amazon2023(AmazonFormat):
    name = "amazon-2023"
    description = ("Amazon Reviews 2023 (Hou et al.): reviews {category}.jsonl(.gz), metadata "
                   "meta_{category}.jsonl(.gz); items are parent_asin; optional official splits "
                   "{category}.train/valid/test.csv")
    required = ("{category}.jsonl*",)
    optional = ("meta_{category}.jsonl*", "{category}.train.csv*", "{category}.valid.csv*",
                "{category}.test.csv*")
    # The official benchmark split files stand in for the review file (they are read when present).
    alternatives = {"{category}.jsonl*": ("{category}.train.csv*",)}
    parts = CATEGORIES_2023
    time_field = "{category}.jsonl: timestamp (milliseconds), or the official {category}.train.csv splits"

    def source_files(self, folder: Path, selection: Selection = ALL) -> list[Path]:
        files = super().source_files(folder, selection)
        split = {p.name.split(".train.csv")[0] for p in files if ".train.csv" in p.name}
        return [p for p in files if not (".jsonl" in p.name and not p.name.startswith("meta_")
                                         and p.name.split(".jsonl")[0] in split)]

    def read_part(self, folder: Path, category: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        if find_file(folder, f"{category}.train.csv*"):
            inter = read_official_splits(folder, category)
        else:
            path = find_gz_or_plain(folder, f"{category}.jsonl")
            if path is None:
                raise DataFileError(f"{folder}: no {category}.jsonl.gz (or .jsonl), and no official "
                                    f"{category}.train.csv split")
            frame = hf_json_records(path, REVIEWS_2023, required=REVIEWS_2023)
            inter = _with_file_lines(lambda f: _review_frame(f, path, REVIEWS_2023, millis=True), frame, path)
        meta = find_gz_or_plain(folder, f"meta_{category}.jsonl")
        return inter, (None if meta is None else read_meta_2023(meta))


def read_official_splits(folder: Path, category: str) -> pd.DataFrame:
    """The publisher's train, valid and test files, one after the other."""
    parts = []
    for part in OFFICIAL_PARTS:
        path = find_gz_or_plain(folder, f"{category}.{part}.csv")
        if path is None:
            raise DataFileError(f"{folder}: {category}.train.csv is there but not {category}.{part}.csv "
                                f"(the official split needs all three)")
        with open_text(path) as handle:  # a last_out file has 4 columns, a *_w_his file 5 (history)
            header = handle.readline().rstrip("\r\n").split(",")
        check_field_counts(path, header, ",")
        frame = read_delimited(path, SPLIT_COLUMNS, sep=",", header=True)
        parts.append(pd.DataFrame({
            "user": required_text(frame, "user_id", path).to_numpy(),
            "item": required_text(frame, "parent_asin", path).to_numpy(),
            "timestamp": (numeric_column(frame, "timestamp", path) / 1000.0).to_numpy(),
            "rating": numeric_column(frame, "rating", path).to_numpy(),
            "official_split": part,
        }))
    return pd.concat(parts, ignore_index=True)


def read_meta_2023(path: Path) -> pd.DataFrame:
    fields = {"item": "parent_asin", "title": "title", "main_category": "main_category", "store": "store",
              "categories": "categories", "features": "features", "description": "description", "price": "price"}
    frame = hf_json_records(path, fields, required=["item"])
    items = pd.DataFrame({"item": _with_file_lines(lambda f: required_text(f, "item", path, "parent_asin"),
                                                   frame, path).to_numpy()})
    items["title"] = frame["title"].map(text_of).to_numpy()
    items["main_category"] = frame["main_category"].map(text_of).to_numpy()
    items["store"] = frame["store"].map(text_of).to_numpy()
    items["categories"] = frame["categories"].map(lambda v: text_of(v, " > ")).to_numpy()
    items["features"] = frame["features"].map(lambda v: text_of(v, " ")).to_numpy()
    items["description"] = frame["description"].map(lambda v: text_of(v, " ")).to_numpy()
    items["price"] = _price(frame["price"]).to_numpy()
    return items


def hf_json_records(path: Path, fields: dict[str, str], required) -> pd.DataFrame:
    """JSON lines through Hugging Face `datasets` (Arrow: fast on the multi-gigabyte 2023
    files), as `read_records` gives them: one column per field (None where a record
    lacks it) and `line`. A line that is not JSON is a DataFileError naming it (found by
    reading the file line by line once `datasets` has failed); so is a record without a
    `required` field. Where `datasets` cannot reconcile the records' types, the file is
    read line by line instead."""
    try:
        frame = _hf_frame(path, list(dict.fromkeys(fields.values())))
    except DataFileError:
        raise
    except Exception:  # noqa: BLE001  (pyarrow, datasets: a syntax error, or types it cannot unify)
        for _ in iter_records(path):  # names the first line that is not a JSON object
            pass
        return read_records(path, fields, required=required)
    out = pd.DataFrame({name: frame[key].to_numpy() if key in frame else None for name, key in fields.items()},
                       index=frame.index)
    for name in required:
        missing = out[name].isna().to_numpy()
        if missing.any():
            row = int(missing.argmax())
            raise DataFileError(f"{path} line {_line_of_record(path, row)}: no field '{fields[name]}'")
    # Record i is on line i + 1 unless the file has blank lines: see _with_file_lines.
    out["line"] = np.arange(1, len(out) + 1, dtype="int64")
    return out


def _with_file_lines(convert, frame: pd.DataFrame, path: Path):
    """convert(frame); when it finds a bad cell, again with the records' own line numbers
    (counted only then: they differ from the record numbers where there are blank lines)."""
    try:
        return convert(frame)
    except DataFileError:
        lines = _record_lines(path)
        if len(lines) != len(frame) or (lines == frame["line"].to_numpy()).all():
            raise
        return convert(frame.assign(line=lines))


def _hf_frame(path: Path, columns: list[str]) -> pd.DataFrame:
    import tempfile

    import datasets

    from benchmark.paths import cache_dir

    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    verbosity = datasets.logging.get_verbosity()
    datasets.logging.set_verbosity_error()
    try:
        with tempfile.TemporaryDirectory(dir=cache_dir(), prefix="hf-json-") as tmp:
            table = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=tmp)
            present = [c for c in columns if c in table.column_names]
            return table.select_columns(present).to_pandas()
    finally:
        datasets.logging.set_verbosity(verbosity)
        if bars:
            datasets.enable_progress_bars()


def _record_lines(path: Path) -> np.ndarray:
    return np.asarray([number for number, _ in _nonblank_lines(path)], dtype="int64")


def _nonblank_lines(path: Path):
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line


def _line_of_record(path: Path, row: int) -> int:
    for index, (number, _) in enumerate(_nonblank_lines(path)):
        if index == row:
            return number
    return row + 1


# --- the registered datasets ---------------------------------------------------------------

SNAP_2014 = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles"
UCSD_2018 = "https://jmcauley.ucsd.edu/data/amazon_v2"
UCSD_2023 = "https://mcauley.ucsd.edu/data/amazon_2023/raw"
LICENCE = ("{what} (McAuley lab, UCSD): for research use only, not for commercial use or redistribution; "
           "cite {cite}.")

FORMAT_LIST: list = [Amazon2014(), Amazon2018(), Amazon2023()]
DATASET_LIST: list = [
    RegisteredDataset(
        name="amazon-2014",
        format="amazon-2014",
        source=Download(f"{SNAP_2014}/reviews_{{category}}_5.json.gz",
                        extra_urls=(f"{SNAP_2014}/meta_{{category}}.json.gz",)),
        homepage="https://cseweb.ucsd.edu/~jmcauley/datasets/amazon/links.html",
        categories=CATEGORIES_2014,
        description="Amazon product reviews 2014, 5-core per category, with product metadata (titles)",
        licence=LICENCE.format(what="Amazon review data 2014",
                               cite="McAuley et al. (SIGIR 2015) and He & McAuley (WWW 2016)"),
    ),
    RegisteredDataset(
        name="amazon-2018",
        format="amazon-2018",
        source=Download(f"{UCSD_2018}/categoryFilesSmall/{{category}}_5.json.gz",
                        extra_urls=(f"{UCSD_2018}/metaFiles2/meta_{{category}}.json.gz",)),
        homepage="https://cseweb.ucsd.edu/~jmcauley/datasets/amazon_v2/",
        categories=CATEGORIES_2018,
        description="Amazon review data 2018, 5-core reviews per category, with product metadata",
        licence=LICENCE.format(what="Amazon review data 2018", cite="Ni, Li & McAuley (EMNLP 2019)"),
    ),
    RegisteredDataset(
        name="amazon-2018-ratings",
        format="amazon-2018",
        source=Download(f"{UCSD_2018}/categoryFilesSmall/{{category}}.csv",
                        extra_urls=(f"{UCSD_2018}/metaFiles2/meta_{{category}}.json.gz",)),
        homepage="https://cseweb.ucsd.edu/~jmcauley/datasets/amazon_v2/",
        categories=CATEGORIES_2018,
        description="Amazon review data 2018, every rating of a category (ratings-only CSV, not k-cored), "
                    "with product metadata",
        licence=LICENCE.format(what="Amazon review data 2018", cite="Ni, Li & McAuley (EMNLP 2019)"),
    ),
    RegisteredDataset(
        name="amazon-2023",
        format="amazon-2023",
        source=Download(f"{UCSD_2023}/review_categories/{{category}}.jsonl.gz",
                        extra_urls=(f"{UCSD_2023}/meta_categories/meta_{{category}}.jsonl.gz",)),
        homepage="https://amazon-reviews-2023.github.io/",
        categories=CATEGORIES_2023,
        description="Amazon Reviews 2023 per category (also on the Hugging Face hub as "
                    "McAuley-Lab/Amazon-Reviews-2023); items are parent_asin; the publisher's benchmark "
                    "splits ({category}.train/valid/test.csv) are read when in the folder",
        licence=LICENCE.format(what="Amazon Reviews 2023", cite="Hou et al. (2024), Bridging Language and "
                                                                "Items for Retrieval and Recommendation"),
    ),
]
