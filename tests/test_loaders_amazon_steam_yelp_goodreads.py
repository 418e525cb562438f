"""The Amazon (2014, 2018, 2023), Steam, Yelp and Goodreads loaders: each reads the
publisher's files, quirks included, into the exact canonical tables; a task on each runs
end to end; bad files are errors naming the file, line and field."""
from __future__ import annotations

import datetime as dt
import gzip
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.data import prepare
from benchmark.data.dataset import k_core
from benchmark.data.datasets import DATASETS, FORMATS, DataFileError, DatasetError, Selection, available_datasets
from benchmark.data.datasets.amazon import OFFICIAL_PARTS
from benchmark.runner import evaluate
from benchmark.tasks.schema import TaskSpec
from conftest import shipped
from fixtures_amazon_steam_yelp_goodreads import (
    DAY,
    FIXTURES,
    NO_TITLE,
    amazon_2014,
    amazon_2018,
    amazon_2018_ratings,
    amazon_2023,
    goodreads,
    steam,
    write_amazon_2014,
    write_amazon_2018,
    write_amazon_2018_ratings,
    write_amazon_2023,
    write_amazon_2023_splits,
    write_goodreads,
    write_steam,
    write_yelp,
    yelp,
)

NAMES = ["amazon-2014", "amazon-2018", "amazon-2018-ratings", "amazon-2023", "steam", "yelp", "goodreads"]
# The fixtures' lengths, for the last lines of files
N_2014, N_2018_CSV = len(amazon_2014()[0]), len(amazon_2018_ratings()[0])
N_2023, N_STEAM = len(amazon_2023()[0]), len(steam()[0])


def read(name: str, folder: Path, category: str | None = None):
    return FORMATS[DATASETS[name].format].read(folder, name, Selection(category))


def expected(user, item, timestamp, rating=None, **extra) -> pd.DataFrame:
    table = pd.DataFrame({"user": list(user), "item": list(item), "timestamp": np.asarray(timestamp, dtype="float64")})
    if rating is not None:
        table["rating"] = np.asarray(rating, dtype="float64")
    for column, values in extra.items():
        table[column] = list(values)
    return table.assign(row=np.arange(len(table), dtype="int64"))


def assert_canonical(actual: pd.DataFrame, wanted: pd.DataFrame) -> None:
    assert list(actual.columns) == list(wanted.columns)
    assert actual["timestamp"].dtype == "float64" and actual["row"].dtype == "int64"
    assert pd.api.types.is_string_dtype(actual["user"]) and pd.api.types.is_string_dtype(actual["item"])
    if "rating" in wanted:
        assert actual["rating"].dtype == "float64"
    pd.testing.assert_frame_equal(actual.astype({"user": object, "item": object}),
                                  wanted.astype({"user": object, "item": object}), check_dtype=False)


def titles(raw) -> dict[str, object]:
    return dict(zip(raw.items["item"], raw.items["title"]))


def has_tie(table: pd.DataFrame) -> bool:
    return bool(table.duplicated(["user", "timestamp"]).any())


# --- each loader reads its fixture into the canonical tables ---------------------------

def test_registered_entries_download_urls_licences_and_parts():
    info = {d.name: d for d in available_datasets()}
    assert set(NAMES) <= set(info) and set(NAMES) == set(FIXTURES)
    assert info["amazon-2014"].source.startswith(
        "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/reviews_{category}_5.json.gz + "
        "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/meta_{category}.json.gz")
    assert "https://jmcauley.ucsd.edu/data/amazon_v2/categoryFilesSmall/{category}.csv" \
        in info["amazon-2018-ratings"].source
    assert "https://mcauley.ucsd.edu/data/amazon_2023/raw/meta_categories/meta_{category}.jsonl.gz" \
        in info["amazon-2023"].source
    assert info["yelp"].source == "local files only (dataset.path)"
    assert info["yelp"].homepage == "https://www.yelp.com/dataset"
    for name in NAMES:
        assert info[name].checksum == "source not checksummed"
        assert "research" in info[name].licence or "academic" in info[name].licence
        assert info[name].timestamps
    assert "Beauty" in info["amazon-2014"].categories and "Apps_for_Android" in info["amazon-2014"].categories
    assert len(info["amazon-2018"].categories) == 29 and len(info["amazon-2023"].categories) == 34
    assert info["goodreads"].categories[0] == "children" and "poetry" in info["goodreads"].categories
    assert info["amazon-2018"].files == \
        "amazon-2018: {category}_5.json* or {category}.csv (optional: meta_{category}.json*)"


def test_amazon_2014_beauty_reads_every_review_with_day_ties_and_python_literal_titles(tmp_path):
    write_amazon_2014(tmp_path / "beauty")
    reviews, meta = amazon_2014()
    raw = read("amazon-2014", tmp_path / "beauty", "Beauty")
    assert_canonical(raw.interactions, expected(
        [r["reviewerID"] for r in reviews], [r["asin"] for r in reviews], [r["unixReviewTime"] for r in reviews],
        [r["overall"] for r in reviews]))
    inter = raw.interactions
    assert (inter["timestamp"] % DAY == 0).all() and has_tie(inter)  # day granularity: ties, in file order
    assert inter["item"].str.startswith("0").any()  # ISBN-like ASINs keep their leading zeros
    # The volume tasks on it need: 40+ users with 6+ reviews, 30+ titled items, ratings 1-5, years of times.
    per_user = inter.groupby("user").size()
    assert len(per_user) >= 40 and per_user.min() >= 6
    assert len(k_core(inter, 5, 5)) == len(inter)  # a 5-core file, as the publisher's
    assert sorted(inter["rating"].unique()) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert (inter["timestamp"].max() - inter["timestamp"].min()) / DAY > 3 * 365
    assert raw.users is None
    items = raw.items
    assert list(items.columns) == ["item", "title", "description", "categories", "brand", "price"]
    assert set(items["item"]) == set(inter["item"]) and "B00NOTREVD" not in set(items["item"])
    assert items["title"].notna().sum() >= 30
    by_item = titles(raw)
    asins = [m["asin"] for m in meta]
    assert "'title': u'Cr\\xe8me de la Mer" in gzip.open(tmp_path / "beauty" / "meta_Beauty.json.gz", "rt").read()
    assert by_item[asins[4]] == "Crème de la Mer Moisturizing Cream"
    assert by_item[asins[3]] == 'Burt\'s Bees "Original" Beeswax Lip Balm'
    assert by_item[asins[1]] == "L'Oreal Paris Voluminous Original Mascara"
    assert all(pd.isna(by_item[a]) for a in asins[-NO_TITLE - 1:-1])  # products without a title
    row = items.set_index("item").loc[asins[0]]
    assert row["categories"] == "Beauty > Makeup > Eyes > Mascara | Beauty > Gift Sets" and row["price"] == 3.0
    assert items.set_index("item").loc[asins[8], "price"] != items.set_index("item").loc[asins[8], "price"]  # NaN
    assert items.set_index("item").loc[asins[5], "description"] == "Apply daily.\nFor all skin types."


def test_amazon_2014_reads_plain_json_and_every_category_when_none_is_selected(tmp_path):
    folder = tmp_path / "two"
    write_amazon_2014(folder, "Beauty")
    write_amazon_2014(folder, "Video_Games", gz=False, seed=7, n_users=10, n_items=9)
    fmt = FORMATS["amazon-2014"]
    assert fmt.categories(folder) == ["Beauty", "Video_Games"]
    games = read("amazon-2014", folder, "Video_Games")
    reviews, _ = amazon_2014("Video_Games", seed=7, n_users=10, n_items=9)
    assert games.interactions["user"].tolist() == [r["reviewerID"] for r in reviews]
    assert set(games.items["title"].dropna()) <= {f"Video_Games product {i}" for i in range(9)}
    both = read("amazon-2014", folder)
    beauty, _ = amazon_2014()
    assert len(both.interactions) == len(beauty) + len(reviews)
    assert both.interactions["row"].tolist() == list(range(len(both.interactions)))
    assert [p.name for p in fmt.source_files(folder, Selection("Video_Games"))] == \
        ["meta_Video_Games.json", "reviews_Video_Games_5.json"]
    assert fmt.missing(folder, Selection("Books")) == ["reviews_Books_5.json*"]


def test_amazon_2018_five_core_reviews_and_html_metadata(tmp_path):
    write_amazon_2018(tmp_path / "lux")
    reviews, meta = amazon_2018()
    raw = read("amazon-2018", tmp_path / "lux", "Luxury_Beauty")
    assert_canonical(raw.interactions, expected(
        [r["reviewerID"] for r in reviews], [r["asin"] for r in reviews], [r["unixReviewTime"] for r in reviews],
        [r["overall"] for r in reviews]))
    items = raw.items.set_index("item")
    assert len(items) == 32 and items.index.is_unique  # a product listed twice is kept once
    asins = [m["asin"] for m in meta if m is not meta[5]]
    assert items.loc[asins[0], "title"] == "La Roche-Posay Toleriane & Double Repair"
    assert items.loc[asins[3], "title"] == "Elizabeth Arden Eight Hour Cream"
    assert items.loc[asins[5], "title"] == "Kiehl's Creamy Eye Treatment with Avocado"
    assert items.loc[asins[1], "brand"] == "Crabtree & Evelyn"
    assert items.loc[asins[2], "categories"] == "Luxury Beauty > Skin Care & Body > Face"
    assert items.loc[asins[0], "description"] == "Step 0: apply & enjoy. Dermatologist tested"
    assert pd.isna(items.loc[asins[0], "main_category"]) and items.loc[asins[1], "main_category"] == "Luxury Beauty"
    assert items.loc[asins[0], "price"] == 24.99 and items.loc[asins[2], "price"] == 1299.0
    assert pd.isna(items.loc[asins[1], "price"]) and pd.isna(items.loc[asins[3], "price"])  # "" and a range
    text = items.select_dtypes(exclude="number").astype(str)
    assert not text.apply(lambda c: c.str.contains("<|&amp;|&#39;")).any().any()


def test_amazon_2018_ratings_csv_is_item_user_rating_timestamp_and_the_5core_wins(tmp_path):
    write_amazon_2018_ratings(tmp_path / "games")
    rows, _ = amazon_2018_ratings()
    raw = read("amazon-2018-ratings", tmp_path / "games", "Video_Games")
    assert_canonical(raw.interactions, expected([r[1] for r in rows], [r[0] for r in rows], [r[3] for r in rows],
                                                [r[2] for r in rows]))
    assert raw.items["title"].notna().all() and len(raw.items) == raw.interactions["item"].nunique()
    fmt = FORMATS["amazon-2018"]
    write_amazon_2018(tmp_path / "games", "Video_Games")  # both files: the 5-core reviews are read
    assert [p.name for p in fmt.source_files(tmp_path / "games", Selection("Video_Games"))] == \
        ["Video_Games_5.json.gz", "meta_Video_Games.json.gz"]
    assert len(read("amazon-2018", tmp_path / "games", "Video_Games").interactions) == len(amazon_2018()[0])
    assert fmt.missing(tmp_path / "games", Selection("Books")) == ["Books_5.json* or Books.csv"]


def test_amazon_2023_items_are_parent_asins_times_milliseconds_read_through_datasets(tmp_path):
    write_amazon_2023(tmp_path / "beauty")
    reviews, meta = amazon_2023()
    raw = read("amazon-2023", tmp_path / "beauty", "All_Beauty")
    assert_canonical(raw.interactions, expected(
        [r["user_id"] for r in reviews], [r["parent_asin"] for r in reviews],
        [r["timestamp"] / 1000 for r in reviews], [r["rating"] for r in reviews]))
    assert any(r["asin"] != r["parent_asin"] for r in reviews)  # variants count as their parent
    assert (raw.interactions["timestamp"] % 1 != 0).any()  # the milliseconds are kept
    items = raw.items.set_index("item")
    assert list(raw.items.columns) == ["item", "title", "main_category", "store", "categories", "features",
                                       "description", "price"]
    first, second = meta[0]["parent_asin"], meta[1]["parent_asin"]
    assert items.loc[first, "title"] == "Maybelline New York Great Lash Washable Mascara, Blackest Black (2023 edition)"
    assert items.loc[second, "features"] == "Gentle formula Fragrance free"
    assert items.loc[second, "categories"] == "Beauty & Personal Care > Skin Care"
    assert pd.isna(items.loc[first, "categories"]) and pd.isna(items.loc[first, "price"])
    assert pd.isna(items.loc[second, "price"]) and items.loc[meta[2]["parent_asin"], "price"] == pytest.approx(11.99)


def test_amazon_2023_official_splits_are_read_instead_with_their_part(tmp_path):
    folder = tmp_path / "beauty"
    write_amazon_2023(folder)
    parts = write_amazon_2023_splits(folder)
    fmt = FORMATS["amazon-2023"]
    assert "All_Beauty.jsonl" not in [p.name for p in fmt.source_files(folder, Selection("All_Beauty"))]
    raw = read("amazon-2023", folder, "All_Beauty")
    rows = [(part, row) for part in OFFICIAL_PARTS for row in parts[part]]
    assert_canonical(raw.interactions, expected(
        [r[0] for _, r in rows], [r[1] for _, r in rows], [r[3] / 1000 for _, r in rows], [r[2] for _, r in rows],
        official_split=[p for p, _ in rows]))
    assert raw.interactions["official_split"].value_counts().to_dict() == {"train": N_2023 - 80, "valid": 40,
                                                                                "test": 40}
    (folder / "All_Beauty.jsonl").unlink()  # the split files stand in for the reviews
    assert fmt.categories(folder) == ["All_Beauty"] and fmt.missing(folder, Selection("All_Beauty")) == []
    (folder / "All_Beauty.test.csv").unlink()
    with pytest.raises(DataFileError, match="All_Beauty.train.csv is there but not All_Beauty.test.csv"):
        read("amazon-2023", folder, "All_Beauty")


def test_steam_python_2_literals_username_fallback_and_day_ties(tmp_path):
    write_steam(tmp_path / "steam")
    reviews, games = steam()
    raw = read("steam", tmp_path / "steam")
    midnight = [(dt.date.fromisoformat(r["date"]) - dt.date(1970, 1, 1)).days * DAY for r in reviews]
    assert_canonical(raw.interactions, expected(
        [r.get("user_id", r["username"]) for r in reviews], [r["product_id"] for r in reviews], midnight))
    users = set(raw.interactions["user"])
    assert any(u.startswith("7656") for u in users) and any(" " in u for u in users)
    raw_text = gzip.open(tmp_path / "steam" / "steam_reviews.json.gz", "rt").read()
    assert "u'Zo\\xeb " in raw_text and "u\"Jack's " in raw_text and "{u'username': " in raw_text
    assert any(u.startswith("Zoë ") for u in users) and any(u.startswith("Jack's ") for u in users)
    assert has_tie(raw.interactions)
    items = raw.items.set_index("item")
    assert items.loc[games[6]["id"], "title"] == "The Witcher® 3: Wild Hunt"
    assert items.loc[games[3]["id"], "title"] == "Portal 2"  # no app_name: the title
    assert items.loc[games[1]["id"], "genres"] == "Action, Indie"
    assert pd.isna(items.loc[games[2]["id"], "price"]) and items.loc[games[0]["id"], "price"] == 4.99  # Free To Play
    assert len(items) == 34 and "No id" not in set(items["title"])


def test_yelp_reviews_businesses_and_users(tmp_path):
    write_yelp(tmp_path / "yelp")
    reviews, businesses, people = yelp()
    raw = read("yelp", tmp_path / "yelp")
    seconds = [(dt.datetime.strptime(r["date"], "%Y-%m-%d %H:%M:%S") - dt.datetime(1970, 1, 1)).total_seconds()
               for r in reviews]
    assert_canonical(raw.interactions, expected([r["user_id"] for r in reviews], [r["business_id"] for r in reviews],
                                                seconds, [r["stars"] for r in reviews]))
    items = raw.items.set_index("item")
    assert items.loc[businesses[6]["business_id"], "title"] == "Café Du Monde"
    assert items.loc[businesses[1]["business_id"], "categories"].startswith("Gastropubs, Food")
    assert "WiFi: free" in items.loc[businesses[1]["business_id"], "attributes"]
    assert pd.isna(items.loc[businesses[6]["business_id"], "attributes"])
    users = raw.users.set_index("user")
    assert list(raw.users.columns) == ["user", "name", "review_count", "yelping_since", "fans", "average_stars",
                                       "elite"]
    assert users.loc[people[0]["user_id"], "elite"] == "2012,2013" and pd.isna(users.loc[people[1]["user_id"], "elite"])
    assert users.loc[people[3]["user_id"], "fans"] == 3.0 and "friends" not in raw.users


def test_goodreads_date_added_in_utc_and_unrated_shelvings(tmp_path):
    write_goodreads(tmp_path / "gr")
    interactions, books = goodreads()
    raw = read("goodreads", tmp_path / "gr", "poetry")

    def seconds(text: str) -> float:
        return dt.datetime.strptime(text, "%a %b %d %H:%M:%S %z %Y").timestamp()

    times = [seconds(i["date_added"] or i["date_updated"]) for i in interactions]
    ratings = [i["rating"] or np.nan for i in interactions]
    assert_canonical(raw.interactions, expected([i["user_id"] for i in interactions],
                                                [i["book_id"] for i in interactions], times, ratings))
    assert raw.interactions["rating"].isna().sum() == sum(i["rating"] == 0 for i in interactions) > 0
    assert any(i["date_added"] == "" for i in interactions)  # date_updated stands in
    assert any("-0800" in i["date_added"] for i in interactions) and any("-0700" in i["date_added"]
                                                                       for i in interactions)
    index = next(n for n, i in enumerate(interactions) if i["date_added"])
    added = interactions[index]["date_added"]  # e.g. 'Sat Mar 02 00:00:00 -0800 2013' is 08:00 UTC
    utc = dt.datetime.strptime(added[:20] + added[26:], "%a %b %d %H:%M:%S %Y") - dt.timedelta(hours=int(added[20:23]))
    assert raw.interactions["timestamp"].iloc[index] == (utc - dt.datetime(1970, 1, 1)).total_seconds()
    items = raw.items.set_index("item")
    assert items.loc[books[0]["book_id"], "title"] == "Leaves of Grass (The Poets, #1)"
    assert items.loc[books[0]["book_id"], "title_without_series"] == "Leaves of Grass"
    assert items.loc[books[0]["book_id"], "authors"] == "1000, 77"
    assert items.loc[books[1]["book_id"], "shelves"] == "to-read, poetry, favorites, classics, owned"
    assert items.loc[books[1]["book_id"], "num_pages"] == 65.0 and pd.isna(items.loc[books[0]["book_id"], "publisher"])


# --- a task on each dataset, end to end -------------------------------------------------

def task(name: str, family: str, dataset: dict, split: dict, metrics: list[str], **extra) -> TaskSpec:
    history = {"max_len": 20, "exclude_seen": family == "topk"}
    return TaskSpec.model_validate({
        "task": f"{family}/{name}-fixture", "family": family, "version": 1, "dataset": dataset, "split": split,
        "metrics": metrics, "main_score": metrics[0], "seeds": [0], "batch_size": 64,
        **({} if family == "ctr" else {"history": history}), **extra})


def test_pop_runs_end_to_end_on_a_task_of_each_dataset(tmp_path, tracking_uri):
    from mlflow.tracking import MlflowClient

    from benchmark.tracking.store import metric_key

    loo, time_split = {"method": "leave_one_out"}, {"method": "global_time", "valid_fraction": 0.1,
                                                     "test_fraction": 0.1}
    seq, topk, ctr = ["NDCG@10", "HR@10"], ["Recall@10", "NDCG@10"], ["AUC", "LogLoss"]
    tasks = []
    for name in NAMES:
        dataset = FIXTURES[name](tmp_path / name) | {"path": str(tmp_path / name)}
        if name in ("amazon-2014", "amazon-2023", "steam"):
            tasks.append(task(name, "sequential", dataset, loo, seq))
        elif name in ("amazon-2018", "yelp"):
            features = {"amazon-2018": ([], ["brand", "price"]), "yelp": (["fans", "average_stars"], ["stars"])}[name]
            tasks.append(task(name, "ctr", dataset, time_split, ctr, ctr={
                "label_min_rating": 4, "user_features": features[0], "item_features": features[1]}))
        else:
            tasks.append(task(name, "topk", dataset, time_split, topk))
    runs = evaluate([shipped("pop")], tasks, tracking_uri=tracking_uri, sandbox=False)
    assert runs["status"].tolist() == ["FINISHED"] * len(NAMES), runs.to_string()
    client = MlflowClient(tracking_uri)
    for spec, (_, run) in zip(tasks, runs.iterrows()):
        score = run[spec.main_score]
        assert math.isfinite(score) and 0 <= score <= 1, (spec.task, score)
        logged = client.get_run(run["run_id"]).data.metrics
        assert logged[metric_key(spec.main_score)] == pytest.approx(score), spec.task
    sequential = runs.set_index("task").loc["sequential/amazon-2014-fixture"]
    assert sequential["NDCG@10"] > 0  # pop finds some targets among 36 items


def test_the_beauty_fixture_serves_a_zeroshot_task_with_titles(tmp_path):
    from benchmark.data.views import build_views

    dataset = write_amazon_2014(tmp_path / "beauty") | {"path": str(tmp_path / "beauty")}
    spec = task("amazon-2014", "zeroshot", dataset, {"method": "leave_one_out"}, ["NDCG@10", "HR@1"],
                candidates={"mode": "sampled", "n_negatives": 19}, eval_users={"sample": 200, "seed": 0},
                prompt="{% for h in history %}{{ h }}\n{% endfor %}")
    prepared = prepare(spec, log=lambda *_: None)
    views = build_views(spec, prepared)
    assert len(views.test.users) == 48
    titled = prepared.dataset.items["title"].notna()
    assert titled.sum() == 33 and len(titled) == 36


# --- bad files: the file, line and field are named ------------------------------------

def lines_of(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return handle.read().splitlines()


def rewrite(path: Path, lines: list[str]) -> None:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def truncate_last(path: Path) -> int:
    lines = lines_of(path)
    lines[-1] = lines[-1][:len(lines[-1]) // 2]
    rewrite(path, lines)
    return len(lines)


def drop_field(path: Path, line: int, field: str, python: bool = False) -> None:
    lines = lines_of(path)
    import ast

    record = ast.literal_eval(lines[line - 1]) if python else json.loads(lines[line - 1])
    del record[field]
    lines[line - 1] = repr(record) if python else json.dumps(record)
    rewrite(path, lines)


def separate_with(path: Path, sep: str) -> None:
    rewrite(path, [line.replace(",", sep) for line in lines_of(path)])


BAD_FILES = {
    "amazon-2014 truncated review": (
        "amazon-2014", "reviews_Beauty_5.json.gz", lambda p: truncate_last(p),
        rf"reviews_Beauty_5.json.gz line {N_2014}: not a JSON object"),
    "amazon-2014 review without overall": (
        "amazon-2014", "reviews_Beauty_5.json.gz", lambda p: drop_field(p, 17, "overall"),
        r"reviews_Beauty_5.json.gz line 17: no field 'overall'"),
    "amazon-2014 metadata without asin": (
        "amazon-2014", "meta_Beauty.json.gz", lambda p: drop_field(p, 3, "asin", python=True),
        r"meta_Beauty.json.gz line 3: no field 'asin'"),
    "amazon-2014 metadata truncated": (
        "amazon-2014", "meta_Beauty.json.gz", lambda p: truncate_last(p),
        r"meta_Beauty.json.gz line 37: not a Python dict literal"),
    "amazon-2018 ratings with semicolons": (
        "amazon-2018-ratings", "Video_Games.csv", lambda p: separate_with(p, ";"),
        r"Video_Games.csv line 1: 1 of 4 fields, no field 'user'"),
    "amazon-2018 ratings truncated": (
        "amazon-2018-ratings", "Video_Games.csv", lambda p: rewrite(p, lines_of(p)[:-1] + [lines_of(p)[-1][:8]]),
        rf"Video_Games.csv line {N_2018_CSV}: 1 of 4 fields, no field 'user'"),
    "amazon-2018 review with a text rating": (
        "amazon-2018", "Luxury_Beauty_5.json.gz",
        lambda p: rewrite(p, [lines_of(p)[0].replace('"overall": ', '"overall": "five", "x": ')] + lines_of(p)[1:]),
        r"Luxury_Beauty_5.json.gz line 1: column 'overall': 'five' is not a number"),
    "amazon-2023 truncated review": (
        "amazon-2023", "All_Beauty.jsonl", lambda p: truncate_last(p),
        rf"All_Beauty.jsonl line {N_2023}: not a JSON object"),
    "amazon-2023 review without parent_asin": (
        "amazon-2023", "All_Beauty.jsonl", lambda p: drop_field(p, 12, "parent_asin"),
        r"All_Beauty.jsonl line 12: no field 'parent_asin'"),
    "steam review without product_id": (
        "steam", "steam_reviews.json.gz", lambda p: drop_field(p, 5, "product_id", python=True),
        r"steam_reviews.json.gz line 5: no field 'product_id'"),
    "steam review truncated": (
        "steam", "steam_reviews.json.gz", lambda p: truncate_last(p),
        rf"steam_reviews.json.gz line {N_STEAM}: not a Python dict literal"),
    "yelp review with a bad date": (
        "yelp", "yelp_academic_dataset_review.json",
        lambda p: rewrite(p, lines_of(p)[:8] + [lines_of(p)[8].replace('"date":"', '"date":"9 ')] + lines_of(p)[9:]),
        r"yelp_academic_dataset_review.json line 9: field 'date': '9 .*' is not a date"),
    "yelp review without stars": (
        "yelp", "yelp_academic_dataset_review.json", lambda p: drop_field(p, 2, "stars"),
        r"yelp_academic_dataset_review.json line 2: no field 'stars'"),
    "goodreads interaction without rating": (
        "goodreads", "goodreads_interactions_poetry.json.gz", lambda p: drop_field(p, 30, "rating"),
        r"goodreads_interactions_poetry.json.gz line 30: no field 'rating'"),
    "goodreads interaction with a bad date": (
        "goodreads", "goodreads_interactions_poetry.json.gz",
        lambda p: rewrite(p, [lines_of(p)[0].replace('"date_added": "', '"date_added": "2017-')] + lines_of(p)[1:]),
        r"goodreads_interactions_poetry.json.gz line 1: field 'date_added': '2017-.*' is not a date"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_names_its_file_line_and_field(case, tmp_path):
    name, file, damage, message = BAD_FILES[case]
    folder = tmp_path / name
    spec = FIXTURES[name](folder)
    damage(folder / file)
    with pytest.raises(DataFileError, match=message) as error:
        read(name, folder, spec.get("category"))
    assert str(folder / file) in str(error.value)


def test_a_bad_official_split_file_names_the_missing_column(tmp_path):
    folder = tmp_path / "beauty"
    write_amazon_2023(folder)
    write_amazon_2023_splits(folder)
    separate_with(folder / "All_Beauty.valid.csv", "\t")
    with pytest.raises(DataFileError, match=r"All_Beauty.valid.csv: no column 'user_id', 'parent_asin', 'rating', "
                                            r"'timestamp' in the header .*is the separator ','\?"):
        read("amazon-2023", folder, "All_Beauty")
    rewrite(folder / "All_Beauty.valid.csv", [line.replace(",rating", ",stars") for line in
                                              lines_of(folder / "All_Beauty.train.csv")])
    with pytest.raises(DataFileError, match=r"All_Beauty.valid.csv: no column 'rating' in the header"):
        read("amazon-2023", folder, "All_Beauty")
    write_amazon_2023_splits(folder)
    train = lines_of(folder / "All_Beauty.train.csv")
    rewrite(folder / "All_Beauty.train.csv", train[:-1] + [train[-1][:35]])  # cut in the parent_asin
    with pytest.raises(DataFileError, match=rf"All_Beauty.train.csv line {len(train)}: 2 of 5 fields, "
                                            r"no field 'rating'"):
        read("amazon-2023", folder, "All_Beauty")


def test_a_folder_of_other_files_is_no_part_of_a_multi_part_format(tmp_path):
    for name in ("data.csv", "notes.jsonl", "backup_5.json", "meta_Beauty.json.gz", "reviews.json"):
        (tmp_path / name).write_text("x\n")
    for name in ("amazon-2014", "amazon-2018", "amazon-2023", "goodreads"):
        assert FORMATS[name].categories(tmp_path) == [] and not FORMATS[name].recognises(tmp_path), name
    with pytest.raises(DataFileError, match=r"no part's files \(amazon-2023: \{category\}.jsonl\* or"):
        read("amazon-2023", tmp_path)


def test_a_task_on_a_bad_file_names_the_task_the_path_and_the_line(tmp_path):
    folder = tmp_path / "beauty"
    dataset = write_amazon_2014(folder) | {"path": str(folder)}
    drop_field(folder / "reviews_Beauty_5.json.gz", 40, "reviewerID")
    spec = task("amazon-2014", "sequential", dataset, {"method": "leave_one_out"}, ["NDCG@10"])
    with pytest.raises(DatasetError, match=rf"dataset.path {folder}: {folder}/reviews_Beauty_5.json.gz line 40: "
                                           r"no field 'reviewerID'"):
        prepare(spec, log=lambda *_: None)
    shutil.rmtree(folder)
    folder.mkdir()
    with pytest.raises(DatasetError, match=r"no file matches reviews_Beauty_5.json\*"):
        prepare(spec, log=lambda *_: None)
