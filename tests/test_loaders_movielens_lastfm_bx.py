"""The MovieLens (.dat and CSV), Book-Crossing and Last.fm (HetRec 2011, 1K) loaders: the
canonical tables read from files in the publishers' formats with their quirks, the
registry entries, a task per dataset run end to end with `pop`, and the errors of bad
files (file, line and field named)."""
from __future__ import annotations

import datetime
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from pydantic import ValidationError

from benchmark.data.datasets import DATASETS, FORMATS, DataFileError, Selection, format_for_folder, locate
from benchmark.data.datasets import readers
from benchmark.runner import evaluate
from benchmark.tasks.schema import TaskSpec
from conftest import shipped
from fixtures_movielens_lastfm_bx import (
    CSV_QUIRKY,
    FIXTURES,
    archive_lastfm_1k,
    bx_ratings,
    hetrec_assignments,
    lastfm_listens,
    ml_ratings,
)

ML_CSV = ["ml-20m", "ml-25m", "ml-32m", "ml-latest", "ml-latest-small"]
QUIET = lambda *_: None  # noqa: E731


def written(name: str, tmp_path: Path) -> Path:
    folder = tmp_path / name
    FIXTURES[name](folder)
    return folder


def read(name: str, folder: Path):
    return FORMATS[DATASETS[name].format].read(folder, name, Selection())


def by_item(items: pd.DataFrame) -> pd.DataFrame:
    return items.set_index("item")


def missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


# --- the registry ---------------------------------------------------------------------------

def test_the_datasets_are_registered_with_their_downloads_checksums_and_licences():
    for name in ["ml-1m", "ml-10m", *ML_CSV]:
        entry = DATASETS[name]
        archive = {"ml-10m": "ml-10m.zip"}.get(name, f"{name}.zip")
        assert entry.source.url == f"https://files.grouplens.org/datasets/movielens/{archive}"
        assert entry.source.md5_url == entry.source.url + ".md5" and entry.source.sha256 is None
        assert entry.source.member == {"ml-10m": "ml-10M100K/"}.get(name, f"{name}/")
        assert entry.format == ("movielens-dat" if name in ("ml-1m", "ml-10m") else "movielens-csv")
        assert "Harper & Konstan" in entry.licence and entry.homepage.startswith("https://grouplens.org/")
    expected = {
        "book-crossing": ("book-crossing", "http://www2.informatik.uni-freiburg.de/~cziegler/BX/BX-CSV-Dump.zip"),
        "lastfm-2k": ("lastfm-hetrec", "https://files.grouplens.org/datasets/hetrec2011/hetrec2011-lastfm-2k.zip"),
        "lastfm-1k": ("lastfm-1k", "http://mtg.upf.edu/static/datasets/last.fm/lastfm-dataset-1K.tar.gz"),
    }
    for name, (dataset_format, url) in expected.items():
        entry = DATASETS[name]
        assert (entry.format, entry.source.url) == (dataset_format, url)
        assert entry.source.checksum_note() == "source not checksummed" and entry.licence and entry.homepage
    assert FORMATS["book-crossing"].timestamps is False
    assert all(FORMATS[f].timestamps for f in ("movielens-dat", "movielens-csv", "lastfm-hetrec", "lastfm-1k"))
    assert set(FIXTURES) == {"ml-1m", "ml-10m", *ML_CSV, "book-crossing", "lastfm-2k", "lastfm-1k"}


def test_each_format_recognises_its_own_folders_and_not_the_others(tmp_path):
    ours = ["movielens-dat", "movielens-csv", "book-crossing", "lastfm-hetrec", "lastfm-1k", "recbole-atomic"]
    for name in ["ml-1m", "ml-10m", "ml-20m", "book-crossing", "lastfm-2k", "lastfm-1k"]:
        folder = written(name, tmp_path)
        recognised = [f for f in ours if FORMATS[f].recognises(folder)]
        assert recognised == [DATASETS[name].format], name
        assert locate(name, str(folder), QUIET).format.name == DATASETS[name].format


# --- MovieLens --------------------------------------------------------------------------------

def expected_ml(half_stars: bool) -> pd.DataFrame:
    rows = ml_ratings(half_stars)
    return pd.DataFrame({"user": [str(r[0]) for r in rows], "item": [str(r[1]) for r in rows],
                         "timestamp": [float(r[3]) for r in rows], "rating": [r[2] for r in rows],
                         "row": np.arange(len(rows), dtype="int64")})


def test_ml_1m_dat_files_latin1_titles_rating_ties_and_user_attributes(tmp_path):
    raw = read("ml-1m", written("ml-1m", tmp_path))
    pd.testing.assert_frame_equal(raw.interactions, expected_ml(half_stars=False), check_dtype=False)
    assert raw.interactions["timestamp"].dtype == "float64" and raw.interactions["rating"].dtype == "float64"
    first_user = raw.interactions[raw.interactions["user"] == "1"].sort_values(["timestamp", "row"])
    assert first_user["timestamp"].iloc[-1] == first_user["timestamp"].iloc[-2]  # a one-second tie, kept
    assert not first_user["row"].is_monotonic_increasing  # the file is not in time order
    items = by_item(raw.items)
    assert list(raw.items.columns) == ["item", "title", "genres", "release_year"] and len(items) == 60
    assert items.loc["2", "title"] == "Misérables, Les (1995)"  # ISO-8859-1 decoded
    assert items.loc["1", "genres"] == "Animation Children's Comedy" and items.loc["1", "release_year"] == "1995"
    assert items.loc["3", "title"].startswith("Dr. Strangelove or: How") and items.loc["3", "release_year"] == "1963"
    assert items.loc["4", "title"] == '"Great Performances" Cats (1998)'
    users = raw.users.set_index("user")
    assert list(raw.users.columns) == ["user", "gender", "age", "occupation", "zip_code"] and len(users) == 32
    assert users.loc["3"].tolist() == ["F", "35", "3", "02460-1234"]
    assert users.loc["2"].tolist() == ["M", "25", "2", "55102"]


def test_ml_10m_half_stars_utf8_titles_and_tags(tmp_path):
    raw = read("ml-10m", written("ml-10m", tmp_path))
    pd.testing.assert_frame_equal(raw.interactions, expected_ml(half_stars=True), check_dtype=False)
    assert {1.5, 3.5} <= set(raw.interactions["rating"]) and raw.users is None
    items = by_item(raw.items)
    assert items.loc["2", "title"] == "Misérables, Les (1995)"  # UTF-8 here
    assert items.loc["4", "tags"] == "classic, musical"  # applied twice, so first
    assert items.loc["2", "tags"] == "time::travel"  # '::' inside a tag; the empty tag left out
    assert missing(items.loc["1", "tags"])


@pytest.mark.parametrize("name", ML_CSV)
def test_movielens_csv_quoted_titles_tags_and_links(tmp_path, name):
    raw = read(name, written(name, tmp_path))
    pd.testing.assert_frame_equal(raw.interactions, expected_ml(half_stars=True), check_dtype=False)
    items = by_item(raw.items)
    assert list(raw.items.columns) == ["item", "title", "genres", "release_year", "tags", "imdb_id", "tmdb_id"]
    assert [items.loc[str(i + 1), "title"] for i in range(len(CSV_QUIRKY))] == [t for t, _ in CSV_QUIRKY]
    assert items.loc["2", "title"] == "American President, The (1995)"
    assert items.loc["3", "title"] == '"Great Performances" Cats (1998)'
    assert items.loc["1", "genres"] == "Adventure Animation Children Comedy Fantasy"
    assert missing(items.loc["5", "genres"]) and missing(items.loc["5", "release_year"])  # (no genres listed)
    assert items.loc["2", "tags"] == "politics, funny, dark" and items.loc["3", "tags"] == '"meta" musical'
    assert items.loc["1", "imdb_id"] == "0114709" and missing(items.loc["5", "tmdb_id"])
    assert raw.users is None


def test_good_files_take_the_fast_path(tmp_path, monkeypatch):
    folders = {name: written(name, tmp_path) for name in ("ml-1m", "ml-20m", "lastfm-2k")}

    def slow(*args, **kwargs):
        raise AssertionError("read again as text")

    monkeypatch.setattr(readers, "read_delimited", slow)
    assert len(read("ml-1m", folders["ml-1m"]).interactions) == len(ml_ratings(False))
    monkeypatch.setattr(readers, "read_unquoted_fast", lambda *a, **k: None)  # as if it failed: the text path
    with pytest.raises(AssertionError, match="read again as text"):
        read("ml-1m", folders["ml-1m"])


# --- Book-Crossing -------------------------------------------------------------------------

def test_book_crossing_quoted_latin1_files_entities_implicit_zeros_and_repaired_rows(tmp_path):
    raw = read("book-crossing", written("book-crossing", tmp_path))
    rows = bx_ratings()
    inter = raw.interactions
    assert list(inter.columns) == ["user", "item", "timestamp", "rating", "row"]
    assert inter["user"].tolist() == [u for u, _, _ in rows] and inter["item"].tolist() == [i for _, i, _ in rows]
    assert inter["rating"].tolist() == [float(r) for _, _, r in rows] and (inter["rating"] == 0).sum() > 30
    assert inter["timestamp"].isna().all() and inter["timestamp"].dtype == "float64"
    assert (inter["row"] == np.arange(len(rows))).all()
    items = by_item(raw.items)
    assert list(raw.items.columns) == ["item", "title", "author", "year", "publisher"] and len(items) == 50
    assert items.loc["0811825590", "title"] == ('Peterman Rides Again: Adventures Continue with the Real "J. Peterman" '
                                                'Through Life & the Catalog Business')
    assert items.loc["0811825590", "publisher"] == "John Wiley & Sons"
    assert items.loc["0393045218", "publisher"] == "W. W. Norton & Company"
    assert items.loc["078946697X"].tolist() == [
        "DK Readers: Creating the X-Men, How It All Began (Level 4: Proficient Readers)", "Michael Teitelbaum",
        "2000", "DK Publishing Inc"]
    assert items.loc["3404921038", "publisher"] == "Lübbe" and missing(items.loc["0440234743", "year"])
    assert "0000000000" in set(inter["item"]) and "0000000000" not in items.index  # rated, not listed
    users = raw.users.set_index("user")
    assert users.loc["276725", "location"] == "tyler, texas, usa" and np.isnan(users.loc["276725", "age"])
    assert users.loc["276726", "age"] == 17.0 and users.loc["276727", "location"] == "münchen, bayern, germany"
    assert users.loc["276728", "location"] == "rio & niterói, rio de janeiro, brazil"


def bx_task(folder: Path | None, split: dict) -> dict:
    dataset = {"name": "book-crossing"} | ({"path": str(folder)} if folder else {})
    family = "sequential" if split["method"] == "leave_one_out" else "topk"
    return {"task": f"{family}/bx", "family": family, "version": 1, "dataset": dataset, "split": split,
            "history": {"max_len": None, "exclude_seen": True}, "metrics": ["NDCG@10"], "main_score": "NDCG@10",
            "seeds": [0]}


@pytest.mark.parametrize("split", [{"method": "leave_one_out"}, {"method": "global_time"},
                                   {"method": "ratio", "order": "time"}])
def test_book_crossing_refuses_chronological_splits_naming_the_dataset_and_time_field(tmp_path, split):
    folder = written("book-crossing", tmp_path)
    for path in (None, folder):
        with pytest.raises(ValidationError) as error:
            TaskSpec.model_validate(bx_task(path, split))
        message = str(error.value)
        assert f"split.method '{split['method']}' orders interactions by time" in message
        where = ("dataset 'book-crossing' (book-crossing format: "
                 "BX-Book-Ratings.csv: User-ID;ISBN;Book-Rating — no time)")
        assert where in message and "no timestamps" in message
    TaskSpec.model_validate(bx_task(folder, {"method": "ratio", "order": "random"}))  # allowed


# --- Last.fm ----------------------------------------------------------------------------------

def test_lastfm_2k_a_users_first_tagging_of_an_artist_is_one_interaction(tmp_path):
    raw = read("lastfm-2k", written("lastfm-2k", tmp_path))
    inter = raw.interactions
    assert list(inter.columns) == ["user", "item", "timestamp", "row"]  # no rating
    assignments = hetrec_assignments()
    assert len(inter) == len({(u, a) for u, a, _, _ in assignments}) == len(assignments) - 1
    assert not inter.duplicated(["user", "item"]).any() and (inter["row"] == np.arange(len(inter))).all()
    user2 = inter[inter["user"] == "2"]
    assert user2["item"].tolist() == [str(a) for a in range(51, 60)]  # the file's order
    times = {a: t for u, a, _, t in assignments if u == 2}
    assert user2["timestamp"].iloc[1] == (times[52]) / 1000 == (assignments[1][3] - 5_000_000) / 1000  # earliest
    assert user2["timestamp"].iloc[0] == user2["timestamp"].iloc[2] == assignments[0][3] / 1000  # tied
    assert inter["timestamp"].between(1.2e9, 1.3e9).all()  # seconds, not milliseconds
    items = by_item(raw.items)
    assert items.loc["52", "title"] == "Mötley Crüe" and items.loc["53", "title"] == '"Weird Al" Yankovic'
    assert items.loc["51", "url"] == "http://www.last.fm/music/A51"
    assert "60" in set(inter["item"]) and "60" not in items.index  # tagged, missing from artists.dat
    tagged_2 = {str(a) for u, a, g, _ in assignments if g == 2}
    assert tagged_2 and all("électronique" in items.loc[a, "tags"] for a in tagged_2 if a in items.index)
    assert "new wave" in items.loc["52", "tags"].split(", ")  # the tag of the kept, earlier assignment
    assert raw.users is None


def test_lastfm_1k_listens_items_by_mbid_or_name_iso_times_and_profiles(tmp_path):
    raw = read("lastfm-1k", written("lastfm-1k", tmp_path))
    listens = lastfm_listens()
    inter = raw.interactions
    assert list(inter.columns) == ["user", "item", "timestamp", "row"] and len(inter) == len(listens)
    stamps = [datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()
              for _, t, _, _, _, _ in listens]
    assert inter["timestamp"].tolist() == stamps and inter["user"].tolist() == [u for u, *_ in listens]
    assert inter["timestamp"].iloc[0] > inter["timestamp"].iloc[2]  # newest first, as published
    assert inter["timestamp"].iloc[0] == inter["timestamp"].iloc[1]  # user 1's tie
    expected_items = [traid or f"{artist} — {track}" for _, _, _, artist, traid, track in listens]
    assert inter["item"].tolist() == expected_items
    items = by_item(raw.items)
    assert items.loc["Deep Dish — Fuck Me Im Famous (Pacha Ibiza)-09-28-2007", "artist_mbid"] == \
        "f1b1cf71-bd35-4e99-8624-24a6e15f133a"
    assert items.loc["f7c1f8f8-b935-45ed-8fc8-7def69d92a10", "title"] == "The Last Emperor (Theme) — 坂本龍一"
    weird = items.loc['"Weird Al" Yankovic — White & Nerdy']
    assert weird["title"] == 'White & Nerdy — "Weird Al" Yankovic' and missing(weird["artist_mbid"])
    assert items.loc["1c5f7b6e-21a5-4a4c-8c4d-87ad4a4f4b8e", "track"] == "Hoppípolla"
    assert len(items) == len(set(expected_items))
    users = raw.users.set_index("user")
    assert list(raw.users.columns) == ["user", "gender", "age", "country", "registered"]
    assert np.isnan(users.loc["user_000001", "age"]) and users.loc["user_000003", "age"] == 22.0
    assert users.loc["user_000001", "registered"] == "Aug 13, 2006" and missing(users.loc["user_000004", "country"])


def test_lastfm_1k_reads_the_publishers_archive_as_it_is(tmp_path):
    folder = written("lastfm-1k", tmp_path)
    packed = tmp_path / "packed"
    packed.mkdir()
    archive = archive_lastfm_1k(folder, packed / "lastfm-dataset-1K.tar.gz")
    assert FORMATS["lastfm-1k"].source_files(packed) == [archive]
    assert format_for_folder(packed).name == "lastfm-1k"
    plain, from_archive = read("lastfm-1k", folder), read("lastfm-1k", packed)
    for table in ("interactions", "items", "users"):
        pd.testing.assert_frame_equal(getattr(from_archive, table), getattr(plain, table))
    (folder / "userid-profile.tsv").unlink()  # an archive without profiles: no user table
    archive_lastfm_1k(folder, archive)
    assert read("lastfm-1k", packed).users is None


# --- one task per dataset, end to end ------------------------------------------------------

def task_for(name: str, folder: Path) -> TaskSpec:
    dataset = {"name": name, "path": str(folder)}
    if name == "book-crossing":
        spec = {"family": "topk", "split": {"method": "ratio", "ratios": [0.6, 0.2, 0.2], "order": "random", "seed": 1},
                "history": {"max_len": None, "exclude_seen": True}, "metrics": ["NDCG@10", "Recall@10"],
                "main_score": "NDCG@10"}
        dataset["implicit"] = {"min_rating": 1}  # the explicit ratings; 0 is an implicit one
    else:
        spec = {"family": "sequential", "split": {"method": "leave_one_out"},
                "history": {"max_len": 20, "exclude_seen": False}, "metrics": ["NDCG@10", "HR@10"],
                "main_score": "NDCG@10"}
    return TaskSpec.model_validate(spec | {"task": f"{spec['family']}/{name}", "version": 1, "dataset": dataset,
                                           "seeds": [0]})


def test_a_task_on_each_dataset_runs_end_to_end_with_pop(tmp_path, tracking_uri):
    tasks = [task_for(name, written(name, tmp_path / "data")) for name in sorted(FIXTURES)]
    runs = evaluate([shipped("pop")], tasks, tracking_uri=tracking_uri, sandbox=False)
    assert len(runs) == len(FIXTURES) and (runs["status"] == "FINISHED").all(), runs[["task", "reason"]]
    client = MlflowClient(tracking_uri)
    for task, run in zip(tasks, runs.itertuples()):
        score = runs.loc[run.Index, task.main_score]
        assert np.isfinite(score) and 0 <= score <= 1, task.task
        logged = client.get_run(run.run_id).data.metrics
        assert logged[task.main_score.replace("@", "_at_")] == pytest.approx(score), task.task
    by_task = runs.set_index("task")
    assert by_task.loc["topk/book-crossing", "NDCG@10"] >= 0


# --- bad files ----------------------------------------------------------------------------------

def replace_line(path: Path, number: int, text: str, encoding: str = "utf-8") -> None:
    lines = path.read_bytes().decode(encoding).split("\n")
    lines[number - 1] = text
    path.write_bytes("\n".join(lines).encode(encoding))


BAD_FILES = [
    # (dataset, file, change, what the message must say)
    ("ml-1m", "ratings.dat", lambda p: replace_line(p, 3, "1::9::3"),
     ["ratings.dat line 3: column 'Timestamp': an empty cell is not a number"]),
    ("ml-1m", "ratings.dat", lambda p: p.write_text(p.read_text().replace("::", ",")),
     ["ratings.dat line 1: one field only, no '::' between fields", "UserID::MovieID::Rating::Timestamp"]),
    ("ml-1m", "ratings.dat", lambda p: replace_line(p, 9, "2\t9\t3\t978300000"),
     ["ratings.dat line 9: a tab, but the fields are separated by '::'"]),
    ("ml-1m", "ratings.dat", lambda p: replace_line(p, 5, "1::9::x::978300000"),
     ["ratings.dat line 5: column 'Rating': 'x' is not a number"]),
    ("ml-1m", "movies.dat", lambda p: replace_line(p, 2, "2::Misérables, Les (1995)", "latin-1"),
     ["movies.dat line 2: 2 of 3 fields, no field 'Genres'"]),
    ("ml-1m", "users.dat", lambda p: replace_line(p, 4, "4::M::45", "latin-1"),
     ["users.dat line 4: 3 of 5 fields, no field 'Occupation'"]),
    ("ml-20m", "ratings.csv", lambda p: p.write_text(p.read_text().replace(",timestamp\n", ",time\n", 1)),
     ["ratings.csv: no column 'timestamp' in the header (it has userId, movieId, rating, time)"]),
    ("ml-20m", "ratings.csv", lambda p: p.write_text(p.read_text().replace(",", ";")),
     ["ratings.csv: no column 'userId', 'movieId', 'rating', 'timestamp'", "is the separator ','?"]),
    ("ml-20m", "ratings.csv", lambda p: replace_line(p, 6, "1,9,3.5"),
     ["ratings.csv line 6: column 'timestamp': an empty cell is not a number"]),
    ("ml-20m", "movies.csv", lambda p: replace_line(p, 8, "7,Movie 7 (1956),Drama,extra"),
     ["movies.csv: ", "Expected 3 fields in line 8, saw 4"]),
    ("book-crossing", "BX-Book-Ratings.csv", lambda p: replace_line(p, 4, '"276725";"1000000014"', "latin-1"),
     ["BX-Book-Ratings.csv line 4: column 'Book-Rating': an empty cell is not a number"]),
    ("book-crossing", "BX-Book-Ratings.csv", lambda p: p.write_bytes(p.read_bytes().replace(b";", b",")),
     ["BX-Book-Ratings.csv: no column 'User-ID', 'ISBN', 'Book-Rating'", "is the separator ';'?"]),
    ("book-crossing", "BX-Books.csv", lambda p: p.write_bytes(p.read_bytes().replace(b'"Publisher"', b'"Pub"', 1)),
     ["BX-Books.csv: no column 'Publisher' in the header"]),
    ("book-crossing", "BX-Users.csv", lambda p: replace_line(p, 3, '"276726";"seattle, washington, usa";"old"',
                                                              "latin-1"),
     ["BX-Users.csv line 3: column 'Age': 'old' is not a number"]),
    ("lastfm-2k", "user_taggedartists-timestamps.dat",
     lambda p: p.write_text(p.read_text().replace("\ttimestamp\n", "\ttime\n", 1)),
     ["user_taggedartists-timestamps.dat: no column 'timestamp' in the header"]),
    ("lastfm-2k", "user_taggedartists-timestamps.dat", lambda p: replace_line(p, 5, "2\t54\t6"),
     ["user_taggedartists-timestamps.dat line 5: column 'timestamp': an empty cell is not a number"]),
    ("lastfm-2k", "artists.dat", lambda p: p.write_text(p.read_text().replace("\t", ",")),
     ["artists.dat: no column 'id', 'name', 'url' in the header"]),
    ("lastfm-1k", "userid-timestamp-artid-artname-traid-traname.tsv",
     lambda p: replace_line(p, 4, "user_000001\t2009-05-04T23:08:57Z"),
     ["userid-timestamp-artid-artname-traid-traname.tsv line 4: field 'artname' is empty (a truncated line?)"]),
    ("lastfm-1k", "userid-timestamp-artid-artname-traid-traname.tsv",
     lambda p: replace_line(p, 6, "user_000001\t2009-05-04 23h08\t\tDeep Dish\t\tSong"),
     ["userid-timestamp-artid-artname-traid-traname.tsv line 6: field 'timestamp': '2009-05-04 23h08' is not a date"]),
    ("lastfm-1k", "userid-timestamp-artid-artname-traid-traname.tsv",
     lambda p: replace_line(p, 7, "user_000001\t2009-05-04T23:08:57Z\t\tDeep Dish\t\tSong\textra"),
     ["userid-timestamp-artid-artname-traid-traname.tsv: ", "Expected 6 fields in line 7, saw 7"]),
    ("lastfm-1k", "userid-timestamp-artid-artname-traid-traname.tsv",
     lambda p: replace_line(p, 2, "user_000001\t2009-05-04T23:08:57Z\t\tDeep Dish\t\t"),
     ["userid-timestamp-artid-artname-traid-traname.tsv line 2: field 'traname' is empty and so is 'traid'"]),
    ("lastfm-1k", "userid-profile.tsv", lambda p: p.write_text(p.read_text().replace("\tcountry\t", "\tland\t", 1)),
     ["userid-profile.tsv: no column 'country' in the header"]),
]


@pytest.mark.parametrize("name,file,change,expected", BAD_FILES,
                         ids=[f"{n}-{f}-{i}" for i, (n, f, _, _) in enumerate(BAD_FILES)])
def test_a_bad_file_is_named_with_its_line_and_field(tmp_path, name, file, change, expected):
    folder = written(name, tmp_path)
    change(folder / file)
    with pytest.raises(DataFileError) as error:
        read(name, folder)
    message = str(error.value)
    assert str(folder / file) in message
    for text in expected:
        assert text in message, message


def test_a_bad_listens_file_inside_the_archive_is_named_too(tmp_path):
    folder = written("lastfm-1k", tmp_path)
    replace_line(folder / "userid-timestamp-artid-artname-traid-traname.tsv", 3, "user_000001")
    packed = tmp_path / "packed"
    packed.mkdir()
    archive_lastfm_1k(folder, packed / "lastfm-dataset-1K.tar.gz")
    with pytest.raises(DataFileError, match=r"lastfm-dataset-1K\.tar\.gz member lastfm-dataset-1K/userid-timestamp-"
                                            r"artid-artname-traid-traname\.tsv line 3: field 'timestamp'"):
        read("lastfm-1k", packed)
    (packed / "lastfm-dataset-1K.tar.gz").write_bytes(b"not gzip")
    with pytest.raises(DataFileError, match="not a readable .tar.gz archive"):
        read("lastfm-1k", packed)
    shutil.rmtree(packed)
