"""MovieLens (GroupLens Research, University of Minnesota; Harper & Konstan, ACM TiiS 2015),
in the two layouts GroupLens has published.

* movielens-dat: ML-1M and ML-10M (`ml-10M100K/` in its zip). `::`-separated lines, no
  header: `ratings.dat` UserID::MovieID::Rating::Timestamp (seconds since the epoch;
  whole stars in ML-1M, half stars in ML-10M), `movies.dat` MovieID::Title::Genres
  (ML-1M's titles are ISO-8859-1, ML-10M's UTF-8: each text file is decoded as UTF-8,
  else as Latin-1), ML-1M's `users.dat` UserID::Gender::Age::Occupation::Zip-code (age
  and occupation are the codes its README lists, kept as text) and ML-10M's `tags.dat`
  UserID::MovieID::Tag::Timestamp. In movies.dat and tags.dat the free text (title, tag)
  takes every field between the fixed ones, so a `::` inside it does not shift the rest.
* movielens-csv: ML-20M, ML-25M, ML-32M, ml-latest and ml-latest-small. UTF-8 CSV with a
  header, fields with commas or quotes quoted (quotes doubled): `ratings.csv`
  userId,movieId,rating,timestamp, `movies.csv` movieId,title,genres, optional
  `tags.csv` userId,movieId,tag,timestamp and `links.csv` movieId,imdbId,tmdbId.

Canonical tables: interactions(user, item, timestamp (seconds), rating, row = the line
order of the ratings file, which breaks the one-second ties of rating bursts); items
(item, title as published, year included, e.g. "Usual Suspects, The (1995)"; genres:
the `|`-separated list as space-separated words ("Animation Children's Comedy", as
ML-100K's `class`, so that a CTR field sees one token a genre; "(no genres listed)" is
missing); release_year: the year in parentheses at the end of the title, as text, when
there is one; tags (when a tags file is there): up to ten of the movie's tags, those
applied most often first, joined with ", "; imdb_id and tmdb_id (links.csv) as text);
users (ML-1M only: user, gender, age, occupation, zip_code as text). Tags are never
interactions.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from benchmark.data.dataset import RawDataset
from benchmark.data.datasets.formats import ALL, DatasetFormat, Selection
from benchmark.data.datasets.readers import (
    read_delimited,
    read_split_lines,
    read_unquoted,
    required_text,
    text_encoding,
    text_or_none,
    top_tags,
    with_row_order,
)
from benchmark.data.datasets.registry import RegisteredDataset
from benchmark.data.datasets.sources import Download

YEAR = re.compile(r"\((\d{4})\)\s*$")
NO_GENRES = "(no genres listed)"


# --- MovieLens --------------------------------------------------------------------------

def _genres(values: pd.Series) -> pd.Series:
    text = values.fillna("").astype(str).str.strip()
    text = text.where(text != NO_GENRES, "")
    return text.map(lambda genres: " ".join(g.strip() for g in genres.split("|") if g.strip()))


def _items(movies: pd.DataFrame, path: Path, item_field: str) -> pd.DataFrame:
    item = required_text(movies, "item", path, item_field)
    title = movies["title"].fillna("").astype(str).str.strip()
    return pd.DataFrame({
        "item": item.to_numpy(dtype=object),
        "title": text_or_none(title),
        "genres": text_or_none(_genres(movies["genres"])),
        "release_year": text_or_none(title.str.extract(YEAR, expand=False)),
    }).drop_duplicates("item").reset_index(drop=True)


def _with_tags(items: pd.DataFrame, tags: pd.Series | None) -> pd.DataFrame:
    if tags is None:
        return items
    return items.assign(tags=text_or_none(items["item"].map(tags)))


def _interactions(ratings: pd.DataFrame, fields: list[str]) -> pd.DataFrame:
    user, item, rating, timestamp = fields
    table = pd.DataFrame({"user": ratings[user], "item": ratings[item], "timestamp": ratings[timestamp],
                          "rating": ratings[rating]})
    return with_row_order(table)[["user", "item", "timestamp", "rating", "row"]]


class MovieLensDat(DatasetFormat):
    name = "movielens-dat"
    description = "MovieLens 1M/10M: '::'-separated ratings.dat and movies.dat (optional users.dat, tags.dat)"
    required = ("ratings.dat", "movies.dat")
    optional = ("users.dat", "tags.dat")
    time_field = "ratings.dat: UserID::MovieID::Rating::Timestamp (seconds since the epoch)"

    RATINGS = ["UserID", "MovieID", "Rating", "Timestamp"]

    def read(self, folder: Path, name: str, selection: Selection = ALL) -> RawDataset:
        ratings_path = folder / "ratings.dat"
        ratings = read_unquoted(ratings_path, self.RATINGS, "::", numeric=("Rating", "Timestamp"),
                                encoding="latin-1")
        movies_path = folder / "movies.dat"
        movies = read_split_lines(movies_path, ["MovieID", "Title", "Genres"], "::", free=1)
        items = _items(movies.rename(columns={"MovieID": "item", "Title": "title", "Genres": "genres"}),
                       movies_path, "MovieID")
        tags_path = folder / "tags.dat"
        if tags_path.is_file():
            tags = read_split_lines(tags_path, ["UserID", "MovieID", "Tag", "Timestamp"], "::", free=2)
            items = _with_tags(items, top_tags(tags["MovieID"].str.strip(), tags["Tag"]))
        users = None
        users_path = folder / "users.dat"
        if users_path.is_file():
            frame = read_split_lines(users_path, ["UserID", "Gender", "Age", "Occupation", "Zip-code"], "::")
            users = pd.DataFrame({
                "user": required_text(frame, "UserID", users_path).to_numpy(dtype=object),
                "gender": text_or_none(frame["Gender"]),
                "age": text_or_none(frame["Age"]),
                "occupation": text_or_none(frame["Occupation"]),
                "zip_code": text_or_none(frame["Zip-code"]),
            }).drop_duplicates("user").reset_index(drop=True)
        return RawDataset(name, _interactions(ratings, self.RATINGS), items, users)


class MovieLensCsv(DatasetFormat):
    name = "movielens-csv"
    description = ("MovieLens 20M/25M/32M/latest: CSV ratings.csv and movies.csv with headers "
                   "(optional tags.csv, links.csv)")
    required = ("ratings.csv", "movies.csv")
    optional = ("tags.csv", "links.csv")
    time_field = "ratings.csv: userId,movieId,rating,timestamp (seconds since the epoch)"

    RATINGS = ["userId", "movieId", "rating", "timestamp"]

    def read(self, folder: Path, name: str, selection: Selection = ALL) -> RawDataset:
        ratings = read_unquoted(folder / "ratings.csv", self.RATINGS, ",", numeric=("rating", "timestamp"),
                                header=True)
        movies_path = folder / "movies.csv"
        movies = read_delimited(movies_path, ["movieId", "title", "genres"], ",", header=True, quoting=True,
                                encoding=text_encoding(movies_path))
        items = _items(movies.rename(columns={"movieId": "item"}), movies_path, "movieId")
        tags_path = folder / "tags.csv"
        if tags_path.is_file():
            tags = read_delimited(tags_path, ["userId", "movieId", "tag", "timestamp"], ",", header=True,
                                  quoting=True, encoding=text_encoding(tags_path))
            items = _with_tags(items, top_tags(required_text(tags, "movieId", tags_path), tags["tag"]))
        links_path = folder / "links.csv"
        if links_path.is_file():
            links = read_delimited(links_path, ["movieId", "imdbId", "tmdbId"], ",", header=True, quoting=True)
            links = links.assign(movieId=required_text(links, "movieId", links_path))
            links = links.drop_duplicates("movieId").set_index("movieId")
            for column, source in (("imdb_id", "imdbId"), ("tmdb_id", "tmdbId")):
                items[column] = text_or_none(items["item"].map(links[source]))
        return RawDataset(name, _interactions(ratings, self.RATINGS), items, None)


FORMAT_LIST = [MovieLensDat(), MovieLensCsv()]

LICENCE = ("GroupLens Research (University of Minnesota): research use; cite Harper & Konstan (2015); "
           "may not be redistributed, and no commercial use, without GroupLens' permission")
BASE = "https://files.grouplens.org/datasets/movielens/"


def _movielens(name: str, archive: str, member: str, dataset_format: str, homepage: str,
               description: str) -> RegisteredDataset:
    url = BASE + archive
    return RegisteredDataset(
        name=name,
        format=dataset_format,
        licence=LICENCE,
        source=Download(url, member=member, md5_url=url + ".md5"),
        homepage="https://grouplens.org/datasets/movielens/" + homepage,
        description=description,
    )


DATASET_LIST = [
    _movielens("ml-1m", "ml-1m.zip", "ml-1m/", "movielens-dat", "1m/",
               "MovieLens 1M: about 1M ratings (1-5 stars) of 3,900 movies by 6,040 users (2000-2003), "
               "with users' gender, age group, occupation and zip code"),
    _movielens("ml-10m", "ml-10m.zip", "ml-10M100K/", "movielens-dat", "10m/",
               "MovieLens 10M: about 10M ratings (half stars) and 95,000 tags on 10,700 movies by "
               "72,000 users"),
    _movielens("ml-20m", "ml-20m.zip", "ml-20m/", "movielens-csv", "20m/",
               "MovieLens 20M: about 20M ratings (half stars) and 465,000 tags on 27,000 movies by "
               "138,000 users (1995-2015)"),
    _movielens("ml-25m", "ml-25m.zip", "ml-25m/", "movielens-csv", "25m/",
               "MovieLens 25M: about 25M ratings and 1M tags on 62,000 movies by 162,000 users (1995-2019)"),
    _movielens("ml-32m", "ml-32m.zip", "ml-32m/", "movielens-csv", "32m/",
               "MovieLens 32M: about 32M ratings and 2M tags on 87,000 movies by 200,000 users (1995-2023)"),
    _movielens("ml-latest", "ml-latest.zip", "ml-latest/", "movielens-csv", "latest/",
               "MovieLens latest (full): the current release, which GroupLens updates over time: "
               "not for comparisons across papers"),
    _movielens("ml-latest-small", "ml-latest-small.zip", "ml-latest-small/", "movielens-csv", "latest/",
               "MovieLens latest (small): about 100,000 ratings of 9,700 movies by 610 users; "
               "updated over time, for development"),
]
