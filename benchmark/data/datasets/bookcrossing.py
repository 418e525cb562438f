"""Book-Crossing (Ziegler, McNee, Konstan & Lausen, WWW 2005): four weeks of crawled
Book-Crossing.com data (2004), the "BX-CSV-Dump".

Three `;`-separated files with a header, every field double-quoted, ISO-8859-1:
`BX-Book-Ratings.csv` "User-ID";"ISBN";"Book-Rating" (1-10 explicit, 0 implicit: kept as
rating 0, so that a task chooses with dataset.implicit.min_rating), `BX-Books.csv`
"ISBN";"Book-Title";"Book-Author";"Year-Of-Publication";"Publisher";"Image-URL-S";
"Image-URL-M";"Image-URL-L" and `BX-Users.csv` "User-ID";"Location";"Age" (Age an
unquoted NULL when unknown). There are no times: the interactions' timestamp is NaN and
chronological splits are refused.

Quirks handled: quotes inside BX-Books' fields are escaped with a backslash (`\\"`), as
MySQL writes them (a plain CSV reader splits such a line at a `;` further on, e.g. the
one of `&amp;`); titles, authors, publishers and locations hold HTML entities (`&amp;`),
decoded; a few books lost their author into the title in the original export (title
`...Readers)";Michael Teitelbaum`, the other fields shifted one to the left, the last
one empty): the title is split there and the fields put back; Year-Of-Publication 0
means unknown (missing). ISBNs are kept exactly as published (the ratings name some
ISBNs that BX-Books.csv lacks: those items have no title).

Canonical tables: interactions(user, item = ISBN, timestamp NaN, rating, row = file
order); items(item, title, author, year (text), publisher); users(user, location, age
as a number, NaN when NULL).
"""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.dataset import RawDataset
from benchmark.data.datasets.formats import ALL, DatasetFormat, Selection
from benchmark.data.datasets.readers import (
    numeric_column,
    read_delimited,
    required_text,
    text_or_none,
    with_row_order,
)
from benchmark.data.datasets.registry import RegisteredDataset
from benchmark.data.datasets.sources import Download

RATINGS = "BX-Book-Ratings.csv"
BOOKS = "BX-Books.csv"
USERS = "BX-Users.csv"
BOOK_FIELDS = ["ISBN", "Book-Title", "Book-Author", "Year-Of-Publication", "Publisher"]
ENCODING = "latin-1"


def unescape(values: pd.Series) -> np.ndarray:
    """HTML entities decoded (`&amp;` -> `&`), spaces trimmed; empty -> None."""
    text = values.fillna("").astype(str).str.strip()
    has_entity = text.str.contains("&", regex=False)
    if has_entity.any():
        text = text.where(~has_entity, text[has_entity].map(html.unescape))
    return text_or_none(text)


def read_books(path: Path) -> pd.DataFrame:
    """BX-Books.csv as text cells (ISBN and the four text fields) and `line`, with
    backslash-escaped quotes and the rows whose author slid into the title repaired."""
    # MySQL's export: quotes inside a field escaped with a backslash
    frame = read_delimited(path, BOOK_FIELDS, ";", encoding=ENCODING, header=True, quoting=True, escapechar="\\",
                           optional=["Image-URL-L"])
    if "Image-URL-L" in frame.columns:
        title = frame["Book-Title"]
        slid = ((frame["Image-URL-L"] == "") & title.str.contains('";', regex=False)).to_numpy()
        if slid.any():
            parts = title[slid].str.split('";', n=1, expand=True)
            rows = frame.index[slid]
            frame.loc[rows, "Publisher"] = frame.loc[rows, "Year-Of-Publication"]
            frame.loc[rows, "Year-Of-Publication"] = frame.loc[rows, "Book-Author"]
            frame.loc[rows, "Book-Title"] = parts[0].str.rstrip("\\").to_numpy()
            frame.loc[rows, "Book-Author"] = parts[1].str.strip().str.strip('"\\').to_numpy()
    return frame


class BookCrossing(DatasetFormat):
    name = "book-crossing"
    description = "Book-Crossing: ';'-separated, quoted ISO-8859-1 BX-Book-Ratings.csv, BX-Books.csv (BX-Users.csv)"
    required = (RATINGS, BOOKS)
    optional = (USERS,)
    timestamps = False
    time_field = f"{RATINGS}: User-ID;ISBN;Book-Rating — no time"

    def read(self, folder: Path, name: str, selection: Selection = ALL) -> RawDataset:
        path = folder / RATINGS
        ratings = read_delimited(path, ["User-ID", "ISBN", "Book-Rating"], ";", encoding=ENCODING, header=True,
                                 quoting=True)
        interactions = with_row_order(pd.DataFrame({
            "user": required_text(ratings, "User-ID", path),
            "item": required_text(ratings, "ISBN", path),
            "timestamp": np.nan,
            "rating": numeric_column(ratings, "Book-Rating", path),
        }))[["user", "item", "timestamp", "rating", "row"]]
        books_path = folder / BOOKS
        books = read_books(books_path)
        year = books["Year-Of-Publication"].str.strip()
        items = pd.DataFrame({
            "item": required_text(books, "ISBN", books_path).to_numpy(dtype=object),
            "title": unescape(books["Book-Title"]),
            "author": unescape(books["Book-Author"]),
            "year": text_or_none(year.where(year != "0", "")),
            "publisher": unescape(books["Publisher"]),
        }).drop_duplicates("item").reset_index(drop=True)
        users = None
        users_path = folder / USERS
        if users_path.is_file():
            frame = read_delimited(users_path, ["User-ID", "Location", "Age"], ";", encoding=ENCODING, header=True,
                                   quoting=True)
            age = frame["Age"].str.strip()
            frame = frame.assign(Age=age.where(age.str.upper() != "NULL", ""))
            users = pd.DataFrame({
                "user": required_text(frame, "User-ID", users_path).to_numpy(dtype=object),
                "location": unescape(frame["Location"]),
                "age": numeric_column(frame, "Age", users_path, required=False).to_numpy(dtype="float64"),
            }).drop_duplicates("user").reset_index(drop=True)
        return RawDataset(name, interactions, items, users)


FORMAT_LIST = [BookCrossing()]

DATASET_LIST = [RegisteredDataset(
    name="book-crossing",
    format="book-crossing",
    licence="Cai-Nicolas Ziegler (2004), from Book-Crossing.com: freely available for research use when "
            "acknowledged: cite Ziegler, McNee, Konstan & Lausen (WWW 2005)",
    source=Download("http://www2.informatik.uni-freiburg.de/~cziegler/BX/BX-CSV-Dump.zip"),
    homepage="http://www2.informatik.uni-freiburg.de/~cziegler/BX/",
    description="Book-Crossing: about 1.15M ratings (0 = implicit, 1-10 explicit) of 271,000 books by "
                "105,000 users, no times; books' titles, authors, years, publishers; users' location and age",
)]
