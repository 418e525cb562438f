"""The MIND, Criteo (Kaggle challenge) and bring-your-own tabular loaders: canonical
tables from files in the publishers' formats, a task end to end with `pop` on each,
and bad files named by file, line and field."""
from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from benchmark.data import prepare
from benchmark.data.datasets import (
    DataFileError,
    DatasetError,
    Selection,
    available_datasets,
    format_for_folder,
    locate,
)
from benchmark.data.datasets.criteo import CATEGORICAL_FEATURES, INTEGER_FEATURES, CriteoFormat
from benchmark.data.datasets.mind import MindFormat
from benchmark.data.datasets.tabular import TabularFormat
from benchmark.runner import evaluate
from benchmark.specs import SpecError
from benchmark.tasks.schema import TaskSpec
from conftest import shipped, synthetic_task
from fixtures_mind_criteo_tabular import (
    CRITEO_ROWS,
    FIXTURES,
    SHOP_COLUMNS,
    TABULAR_FIXTURES,
    criteo_rows,
    shop_tables,
    write_criteo,
    write_mind_large,
    write_mind_small,
    write_tabular_csv,
    write_tabular_jsonl,
    write_tabular_parquet,
)

QUIET = lambda *_: None  # noqa: E731


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory) -> str:
    """One MLflow store for the module's runs (each task its own experiment): its schema
    is created once."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def selection(spec: dict) -> Selection:
    return Selection(spec.get("category"), tuple(sorted(spec.get("columns", {}).items())))


def read(folder: Path, spec: dict):
    """(format name, canonical tables) of a fixture folder, as a task would locate it."""
    source = locate(spec["name"], str(folder), QUIET, selection(spec))
    return source.format.name, source.read(spec["name"])


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=timezone.utc).timestamp()


def rewrite_line(path: Path, number: int, change) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[number - 1] = change(lines[number - 1])
    path.write_text("\n".join(lines), encoding="utf-8")


def ctr_task(dataset: dict, **ctr) -> TaskSpec:
    return TaskSpec.model_validate({
        "task": f"ctr/{dataset['name']}-fixture", "family": "ctr", "version": 1, "dataset": dataset,
        "ctr": {"label_min_rating": 1} | ctr,
        "split": {"method": "global_time", "valid_fraction": 0.15, "test_fraction": 0.15},
        "metrics": ["AUC", "GAUC", "LogLoss"], "main_score": "AUC", "seeds": [0], "batch_size": 256})


def finished(runs: pd.DataFrame, metrics: list[str], store_uri: str) -> dict[str, pd.Series]:
    """Every run FINISHED with finite metrics, and those metrics logged to the store."""
    from mlflow.tracking import MlflowClient

    assert runs["status"].tolist() == ["FINISHED"] * len(runs), runs[["submission", "reason"]].to_string()
    client = MlflowClient(store_uri)
    for _, run in runs.iterrows():
        logged = client.get_run(run["run_id"]).data.metrics
        for metric in metrics:
            assert math.isfinite(run[metric]), (run["submission"], metric, run[metric])
            assert logged[metric.replace("@", "_at_")] == pytest.approx(run[metric]), (run["submission"], metric)
    return {run["submission"]: run for _, run in runs.iterrows()}


# ---------------------------------------------------------------------------- MIND


def test_mind_reads_one_row_per_impression_entry_with_clicks_as_ratings(tmp_path):
    spec = write_mind_small(tmp_path / "mind")
    assert spec == {"name": "mind-small", "category": "train"}
    name, raw = read(tmp_path / "mind", spec)
    assert name == "mind" and raw.users is None
    inter = raw.interactions
    assert list(inter.columns) == ["user", "item", "timestamp", "rating", "row"]
    head = inter.head(7)
    assert head["user"].tolist() == ["U100"] * 3 + ["U101"] * 2 + ["U100"] * 2
    assert head["item"].tolist() == ["N1001", "N1002", "N1005", "N1001", "N1006", "N1007", "N1001"]
    assert head["rating"].tolist() == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    # 5:01:12 AM; 12:30 PM is noon; 12:05 AM is just past midnight (and earlier than line 1).
    expected = [utc(2019, 11, 9, 5, 1, 12)] * 3 + [utc(2019, 11, 9, 12, 30)] * 2 + [utc(2019, 11, 9, 0, 5, 9)] * 2
    assert head["timestamp"].tolist() == expected
    assert inter["row"].tolist() == list(range(len(inter)))
    # One row per entry of the impressions column, the history column left out.
    lines = (tmp_path / "mind" / "behaviors.tsv").read_text().splitlines()
    assert len(inter) == sum(len(line.split("\t")[4].split()) for line in lines)
    assert set(inter["rating"]) == {0.0, 1.0} and inter["timestamp"].notna().all()
    assert inter["timestamp"].between(utc(2019, 11, 9), utc(2019, 11, 15)).all()
    items = raw.items.set_index("item")
    assert list(raw.items.columns) == ["item", "title", "abstract", "category", "subcategory"]
    assert items.loc["N1001", "title"] == 'The "Crown" star\'s secret, revealed'  # bare quotes kept
    assert items.loc["N1001", "abstract"] == 'What she said "off the record".'
    assert items.loc["N1002", "abstract"] == "" and items.loc["N1002", "subcategory"] == "golf"
    assert items.loc["N1003", "title"] == "Café owners — what’s next?"
    assert len(items) == 60 and set(inter["item"]) <= set(items.index)


def test_mind_large_dev_part_and_the_registered_parts(tmp_path):
    spec = write_mind_large(tmp_path / "dev")
    assert spec == {"name": "mind", "category": "dev"}
    _, raw = read(tmp_path / "dev", spec)
    later = raw.interactions.iloc[7:]  # the generated impressions: all on Nov 15
    assert later["timestamp"].between(utc(2019, 11, 15), utc(2019, 11, 16)).all()
    info = {d.name: d for d in available_datasets()}
    for name, size in (("mind-small", "MINDsmall"), ("mind", "MINDlarge")):
        assert info[name].format == "mind" and info[name].categories == ("train", "dev")
        assert f"https://mind201910small.blob.core.windows.net/release/{size}_{{category}}.zip" in info[name].source
        assert info[name].checksum == "source not checksummed"
        assert "non-commercial" in info[name].licence and info[name].homepage == "https://msnews.github.io/"
    # A next-click task keeps the clicks: every rating left is 1, each user's clicks in time order.
    clicks = synthetic_task(task="sequential/mind-clicks", dataset=spec | {
        "path": str(tmp_path / "dev"), "implicit": {"min_rating": 1}})
    sequence = prepare(clicks, log=QUIET).sequence
    assert (sequence["rating"] == 1).all() and len(sequence) == (raw.interactions["rating"] == 1).sum()
    assert (sequence.groupby("user_id")["timestamp"].diff().dropna() >= 0).all()
    with pytest.raises(SpecError, match="dataset 'mind-small' has parts: give dataset.category .* train, dev"):
        locate("mind-small", str(tmp_path / "dev"), QUIET)
    with pytest.raises(SpecError, match="dataset.columns: the format mind has fixed columns"):
        locate("mind", str(tmp_path / "dev"), QUIET, Selection("dev", (("user", "u"),)))


def test_mind_ctr_task_with_a_global_time_split_runs_pop(tmp_path, store_uri):
    spec = FIXTURES["mind-small"](tmp_path / "mind")
    task = ctr_task(spec | {"path": str(tmp_path / "mind")}, item_features=["category", "subcategory"])
    runs = evaluate([shipped("pop")], task, seeds=[0], tracking_uri=store_uri, sandbox=False)
    pop = finished(runs, ["AUC", "GAUC", "LogLoss"], store_uri)["pop"]
    assert pop["AUC"] > 0.6  # a quarter of the news is clicked far more often: its click rate shows


@pytest.mark.parametrize("file, line, change, message", [
    ("behaviors.tsv", 5, lambda l: "\t".join(l.split("\t")[:4]),
     "behaviors.tsv line 5: 4 of 5 fields, no field 'impressions' (a truncated line"),
    ("news.tsv", 1, lambda l: l.replace("\t", ","), "news.tsv line 1: 1 of 8 fields, no field 'category'"),
    ("behaviors.tsv", 2, lambda l: l.replace("N1001-0", "N12-x"),
     "behaviors.tsv line 2: field 'impressions': 'N12-x' is not <news id>-1 (clicked) or <news id>-0"),
    ("behaviors.tsv", 3, lambda l: l.replace("N1007-0", "N1007"), "'N1007' is not <news id>-1 (clicked) or "
     "<news id>-0 (not clicked) (no click label: MIND's test part has none)"),
    ("behaviors.tsv", 1, lambda l: l.replace("11/9/2019 5:01:12 AM", "2019-11-09 05:01:12"),
     "behaviors.tsv line 1: field 'time': '2019-11-09 05:01:12' is not a date in the form %m/%d/%Y %I:%M:%S %p"),
    ("behaviors.tsv", 4, lambda l: l.replace("\tU2", "\t\tU2", 1), "behaviors.tsv line 4: 6 fields, expected 5"),
    ("behaviors.tsv", 6, lambda l: "\t".join(["6", "", *l.split("\t")[2:]]),
     "behaviors.tsv line 6: field 'user_id' is empty"),
])
def test_bad_mind_files_are_named_by_file_line_and_field(tmp_path, file, line, change, message):
    folder = tmp_path / "mind"
    spec = write_mind_small(folder)
    rewrite_line(folder / file, line, change)
    with pytest.raises(DataFileError) as error:
        MindFormat().read(folder, "mind-small", selection(spec))
    assert str(folder / file) in str(error.value) and message in str(error.value)


def test_a_bad_mind_file_fails_the_task_naming_its_dataset_and_a_missing_file_is_named(tmp_path):
    folder = tmp_path / "mind"
    spec = write_mind_small(folder)
    rewrite_line(folder / "behaviors.tsv", 2, lambda l: l.replace("N1006-1", "N1006-?"))
    with pytest.raises(DatasetError) as error:
        prepare(ctr_task(spec | {"path": str(folder)}), log=QUIET)
    assert f"dataset.path {folder}" in str(error.value)
    assert "behaviors.tsv line 2: field 'impressions': 'N1006-?'" in str(error.value)
    (folder / "news.tsv").unlink()
    with pytest.raises(DatasetError, match=r"no file matches news.tsv \(needed by the mind format\)"):
        locate("mind-small", str(folder), QUIET, selection(spec))


# ---------------------------------------------------------------------------- Criteo


def test_criteo_reads_one_item_per_line_with_its_features(tmp_path):
    spec = write_criteo(tmp_path / "criteo")
    name, raw = read(tmp_path / "criteo", spec)
    assert name == "criteo" and raw.users is None
    assert [p.name for p in CriteoFormat().source_files(tmp_path / "criteo")] == ["train.txt"]  # not test.txt
    inter = raw.interactions
    assert len(inter) == CRITEO_ROWS and list(inter.columns) == ["user", "item", "timestamp", "rating", "row"]
    assert (inter["user"] == "anonymous").all()
    assert inter["item"].tolist() == [f"row-{n}" for n in range(CRITEO_ROWS)]
    assert inter["timestamp"].tolist() == [float(n) for n in range(CRITEO_ROWS)]  # the line order is time
    assert inter["rating"].tolist() == [float(row[0]) for row in criteo_rows()]
    items = raw.items
    assert list(items.columns) == ["item", *INTEGER_FEATURES, *CATEGORICAL_FEATURES]
    assert items["item"].tolist() == inter["item"].tolist()
    first = items.iloc[0]
    assert first["I1"] == 1.0 and first["I2"] == -1.0 and math.isnan(first["I3"]) and first["I4"] == 5.0
    assert math.isnan(first["I12"]) and first["I13"] == 2.0
    assert first["C1"] == "68fd1e64" and first["C22"] == "" and first["C26"] == "9727dd16"
    second, third = items.iloc[1], items.iloc[2]
    assert second[INTEGER_FEATURES].isna().sum() == 12 and second["I2"] == 0.0
    assert third["C1"] == "be589b51" and (third[CATEGORICAL_FEATURES[1:]] == "").all()
    assert items[INTEGER_FEATURES].dtypes.eq("float64").all()


def test_criteo_gzipped_train_file_reads_the_same(tmp_path):
    write_criteo(tmp_path / "plain")
    write_criteo(tmp_path / "gz", gz=True)
    assert [p.name for p in CriteoFormat().source_files(tmp_path / "gz")] == ["train.txt.gz"]
    assert read(tmp_path / "gz", {"name": "criteo"})[1].fingerprint == \
        read(tmp_path / "plain", {"name": "criteo"})[1].fingerprint


def test_criteo_is_registered_without_a_download(tmp_path):
    info = {d.name: d for d in available_datasets()}["criteo"]
    assert info.format == "criteo" and info.checksum == "source not checksummed"
    assert "CC BY-NC-SA 4.0" in info.licence and info.homepage == "https://ailab.criteo.com/ressources/"
    with pytest.raises(DatasetError, match="'criteo' has no download: give dataset.path, a folder with "
                                           r"criteo: train.txt.*https://ailab.criteo.com/ressources/"):
        locate("criteo", None, QUIET)


def test_criteo_ctr_task_with_item_features_runs_the_shipped_ctr_baselines(tmp_path, store_uri):
    """The features hold empty cells (NaN numbers, "" hashes): the shipped lr baseline
    encodes them (with the field encoder deepfm shares); pop sees every item once, so it
    predicts the overall rate."""
    spec = FIXTURES["criteo"](tmp_path / "criteo")
    task = ctr_task(spec | {"path": str(tmp_path / "criteo")}, item_features=INTEGER_FEATURES + CATEGORICAL_FEATURES)
    prepared = prepare(task, log=QUIET)
    parts = prepared.sequence["part"].to_numpy()
    assert (np.diff(prepared.sequence["row"].to_numpy()[parts == 2]) == 1).all()  # the test part: the last lines
    assert prepared.sequence.loc[parts == 2, "row"].min() == CRITEO_ROWS - round(0.15 * CRITEO_ROWS)
    names = ["pop", "lr"]
    runs = evaluate([shipped(n) for n in names], task, seeds=[0], tracking_uri=store_uri, sandbox=False)
    by_name = finished(runs, ["AUC", "GAUC", "LogLoss"], store_uri)
    assert by_name["pop"]["AUC"] == pytest.approx(0.5)  # no test item was seen in training: one rate for all
    assert by_name["lr"]["AUC"] != pytest.approx(0.5)  # its predictions vary with the features


@pytest.mark.parametrize("line, change, message", [
    (5, lambda l: "\t".join(l.split("\t")[:20]), "train.txt line 5: 20 of 40 fields, no field 'C7' (a truncated"),
    (1, lambda l: l.replace("\t", ","), "train.txt line 1: 1 of 40 fields, no field 'I1'"),
    (2, lambda l: l + "\textra", "train.txt line 2: 41 fields, expected 40"),
    (4, lambda l: "\t".join([*l.split("\t")[:5], "12a", *l.split("\t")[6:]]),
     "train.txt line 4: column 'I5': '12a' is not a number"),
    (6, lambda l: "2" + l[1:], "train.txt line 6: field 'label': '2', but a label is 0 or 1"),
    (7, lambda l: l[1:], "train.txt line 7: field 'label': an empty cell, but a label is 0 or 1"),
])
def test_bad_criteo_files_are_named_by_file_line_and_field(tmp_path, line, change, message):
    folder = tmp_path / "criteo"
    write_criteo(folder)
    rewrite_line(folder / "train.txt", line, change)
    with pytest.raises(DataFileError) as error:
        CriteoFormat().read(folder, "criteo")
    assert str(folder / "train.txt") in str(error.value) and message in str(error.value)


def test_criteo_lines_are_counted_past_blank_lines(tmp_path):
    folder = tmp_path / "criteo"
    write_criteo(folder)
    lines = (folder / "train.txt").read_text().split("\n")
    lines[9] = "7" + lines[9][1:]
    (folder / "train.txt").write_text("\n".join(["", *lines[:5], "", *lines[5:]]))
    with pytest.raises(DataFileError, match="train.txt line 12: field 'label': '7', but a label is 0 or 1"):
        CriteoFormat().read(folder, "criteo")
    lines[9] = "1" + lines[9][1:]
    (folder / "train.txt").write_text("\n".join(["", *lines[:5], "", *lines[5:]]))
    assert len(CriteoFormat().read(folder, "criteo").interactions) == CRITEO_ROWS  # blank lines skipped


def test_a_truncated_gzip_criteo_file_is_named(tmp_path):
    folder = tmp_path / "criteo"
    write_criteo(folder, gz=True)
    data = (folder / "train.txt.gz").read_bytes()
    (folder / "train.txt.gz").write_bytes(data[:len(data) // 2])
    with pytest.raises(DataFileError, match=f"{folder / 'train.txt.gz'}: cannot be read"):
        CriteoFormat().read(folder, "criteo")


# ---------------------------------------------------------------------------- tabular


def expected_shop() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The canonical tables the shop's files must give, from the fixture's own records."""
    tables = shop_tables()
    source = tables["interactions"]
    inter = pd.DataFrame({"user": source["customer_id"].astype(str), "item": source["sku"],
                          "timestamp": [t.timestamp() for t in source["ts"]], "rating": source["stars"],
                          "row": np.arange(len(source), dtype="int64")})
    items = tables["items"].rename(columns={"sku": "item", "name": "title"})
    items["tags"] = items["tags"].map(" ".join)
    users = tables["users"].rename(columns={"customer_id": "user"})
    return inter, items, users


@pytest.mark.parametrize("kind", ["csv", "parquet", "jsonl"])
def test_tabular_files_read_into_the_same_canonical_tables(tmp_path, kind):
    spec = TABULAR_FIXTURES[kind](tmp_path / kind)
    name, raw = read(tmp_path / kind, spec)
    assert name == "tabular"
    inter, items, users = expected_shop()
    got = raw.interactions
    assert list(got.columns) == list(inter.columns)  # the unmapped 'channel' column is not read
    assert got["user"].tolist() == inter["user"].tolist() and got["item"].tolist() == inter["item"].tolist()
    assert got["timestamp"].tolist() == inter["timestamp"].tolist()
    np.testing.assert_array_equal(got["rating"].to_numpy(), inter["rating"].to_numpy())  # NaN where empty
    assert got["row"].tolist() == inter["row"].tolist()
    tied = got.groupby("user")["timestamp"].apply(lambda t: t.duplicated().any())
    assert tied.sum() == 6  # the ties the fixture wrote stay ties; row order breaks them
    assert raw.items["item"].tolist() == items["item"].tolist()
    assert raw.items["title"].tolist() == items["title"].tolist()  # quoted commas and quotes decoded
    assert raw.items["tags"].tolist() == items["tags"].tolist()  # lists as space-separated text
    assert raw.items["brand"].tolist() == items["brand"].tolist()
    if kind == "jsonl":
        assert raw.users is None
    else:
        assert list(raw.users.columns) == ["user", "age", "city"]
        assert raw.users["user"].tolist() == users["user"].astype(str).tolist()
        assert raw.users["age"].astype(str).tolist() == users["age"].astype(str).tolist()
        assert raw.users["city"].tolist() == users["city"].tolist()


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_tabular_sequential_leave_one_out_runs_pop(tmp_path, store_uri, kind):
    spec = TABULAR_FIXTURES[kind](tmp_path / kind)
    task = synthetic_task(task=f"sequential/shop-{kind}", dataset=spec | {"path": str(tmp_path / kind)})
    runs = evaluate([shipped("pop")], task, seeds=[0], tracking_uri=store_uri, sandbox=False)
    pop = finished(runs, ["HR@5", "NDCG@5", "MRR"], store_uri)["pop"]
    assert 0 < pop["HR@5"] <= 1  # a skewed popularity: the top items are bought again and again
    prepared = prepare(task, log=QUIET)
    assert prepared.summary["n_users"] == 36 and prepared.summary["n_test_users"] == 36
    assert prepared.dataset.items["title"].iloc[0] != ""


@pytest.mark.parametrize("kind", ["csv", "parquet", "jsonl"])
def test_a_tabular_folder_is_recognised_by_the_tabular_format_only(tmp_path, kind):
    TABULAR_FIXTURES[kind](tmp_path / kind)
    assert format_for_folder(tmp_path / kind).name == "tabular"


def test_tabular_timestamps_come_from_the_mapping(tmp_path):
    folder = tmp_path / "shop"
    write_tabular_csv(folder)
    no_times = {k: v for k, v in SHOP_COLUMNS.items() if k != "timestamp"}
    dataset = {"name": "shop", "path": str(folder), "columns": no_times}
    with pytest.raises(ValidationError, match="orders interactions by time, but dataset 'shop' .tabular format: "
                                              "dataset.columns maps no 'timestamp' column. has no timestamps"):
        synthetic_task(task="sequential/shop", dataset=dataset)
    task = synthetic_task(task="topk/shop", family="topk", dataset=dataset, metrics=["NDCG@10"],
                          main_score="NDCG@10", split={"method": "ratio", "order": "random"},
                          history={"max_len": None, "exclude_seen": True})
    prepared = prepare(task, log=QUIET)
    assert prepared.sequence["timestamp"].isna().all() and prepared.summary["n_interactions"] == 36 * 8
    # Without a mapping the format promises times; a file without them is refused.
    bare = tmp_path / "bare"
    bare.mkdir()
    pd.DataFrame({"user": ["a", "b"], "item": ["x", "y"]}).to_csv(bare / "interactions.csv", index=False)
    assert TabularFormat().has_timestamps(Selection()) and not TabularFormat().has_timestamps(selection(dataset))
    with pytest.raises(DataFileError, match=r"interactions.csv: no column 'timestamp'. Without dataset.columns"):
        TabularFormat().read(bare, "bare")


def test_tabular_selection_is_checked():
    with pytest.raises(SpecError, match="dataset.category: the format tabular has no parts"):
        TabularFormat().check(Selection("Beauty"))
    with pytest.raises(SpecError, match="the column 'id' is mapped twice .item and user."):
        TabularFormat().check(Selection(None, (("item", "id"), ("user", "id"))))
    TabularFormat().check(Selection(None, tuple(SHOP_COLUMNS.items())))  # columns are the tabular format's own


def _semicolons(path: Path) -> None:
    path.write_text(path.read_text().replace(",", ";"))


def _truncate(path: Path) -> None:
    rewrite_line(path, 5, lambda l: ",".join(l.split(",")[:3]))


def _bad_date(path: Path) -> None:
    rewrite_line(path, 3, lambda l: ",".join([*l.split(",")[:2], "yesterday", *l.split(",")[3:]]))


def _no_user(path: Path) -> None:
    rewrite_line(path, 4, lambda l: "," + l.split(",", 1)[1])


@pytest.mark.parametrize("damage, columns, message", [
    (None, {"timestamp": "time"}, "interactions.csv: no column 'time' (dataset.columns.timestamp); the file has "
                                  "customer_id, sku, ts, stars, channel"),
    (_semicolons, {}, "interactions.csv: no column 'customer_id' (dataset.columns.user); the file has "
                      "customer_id;sku;ts;stars;channel"),
    (_truncate, {}, "interactions.csv line 5: 3 of 5 fields, no field 'stars' (a truncated line"),
    (_bad_date, {}, "interactions.csv line 3: field 'ts': 'yesterday' is not a date in the form ISO8601"),
    (_no_user, {}, "interactions.csv line 4: field 'customer_id' is empty"),
    (None, {"title": "label"}, "dataset.columns.title: no column 'label' in items.csv or users.csv"),
])
def test_bad_tabular_files_are_named_by_file_line_and_field(tmp_path, damage, columns, message):
    folder = tmp_path / "shop"
    write_tabular_csv(folder)
    if damage:
        damage(folder / "interactions.csv")
    mapping = SHOP_COLUMNS | columns
    with pytest.raises(DataFileError) as error:
        TabularFormat().read(folder, "shop", Selection(None, tuple(sorted(mapping.items()))))
    assert message in str(error.value)


def test_bad_tabular_jsonl_and_parquet_files_are_named(tmp_path):
    folder = tmp_path / "jsonl"
    write_tabular_jsonl(folder)
    text = (folder / "interactions.jsonl").read_text()
    (folder / "interactions.jsonl").write_text(text[:-20])  # the last line cut short
    lines = text.count("\n")
    with pytest.raises(DataFileError, match=f"interactions.jsonl line {lines}: not a JSON object"):
        TabularFormat().read(folder, "shop")
    folder = tmp_path / "parquet"
    write_tabular_parquet(folder)
    data = (folder / "interactions.parquet").read_bytes()
    (folder / "interactions.parquet").write_bytes(data[:len(data) // 2])
    with pytest.raises(DataFileError, match="interactions.parquet: not a readable Parquet file"):
        TabularFormat().read(folder, "shop", Selection(None, tuple(SHOP_COLUMNS.items())))
    write_tabular_csv(folder)
    with pytest.raises(DataFileError, match="several interactions files .interactions.csv, interactions.parquet."):
        TabularFormat().read(folder, "shop", Selection(None, tuple(SHOP_COLUMNS.items())))
