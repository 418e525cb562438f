"""The dataset registry's commands (`llm4rec datasets`, `show`, `fetch`, `export`), task
files that `include:` a family template, and the shipped ML-1M and Amazon-Beauty tasks
run end to end on files in the publishers' formats."""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from benchmark.cli import app
from benchmark.data.dataset import RawDataset
from benchmark.data.datasets import DATASETS, FORMATS, Download, DownloadError, Selection
from benchmark.data.datasets.export import export_dataset
from benchmark.data.datasets.registry import data_status
from benchmark.data.datasets.statistics import gini, raw_statistics
from benchmark.data import prepare
from benchmark.runner import evaluate
from benchmark.specs import SpecError
from benchmark.tasks import available_tasks, load_task
from conftest import shipped
from fixtures_amazon_steam_yelp_goodreads import FIXTURES as AMAZON_STEAM_YELP_GOODREADS
from fixtures_mind_criteo_tabular import FIXTURES as MIND_CRITEO_TABULAR
from fixtures_movielens_lastfm_bx import FIXTURES as MOVIELENS_LASTFM_BX

FIXTURES = MOVIELENS_LASTFM_BX | AMAZON_STEAM_YELP_GOODREADS | MIND_CRITEO_TABULAR
runner = CliRunner()


def cli(*args: str):
    result = runner.invoke(app, list(args))
    return result


# --- the registry listing -------------------------------------------------------------


def test_the_registry_lists_at_least_twelve_datasets_with_source_licence_and_presence():
    result = cli("datasets", "--format", "json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    names = {entry["name"] for entry in listed}
    assert len(names) >= 12
    assert {"ml-1m", "ml-10m", "ml-20m", "amazon-2014", "amazon-2018", "amazon-2023", "steam", "yelp",
            "book-crossing", "goodreads", "mind-small", "criteo"} <= names
    for entry in listed:
        assert entry["licence"] and entry["format"] in FORMATS and isinstance(entry["present"], bool)
    by_name = {entry["name"]: entry for entry in listed}
    assert "Beauty" in by_name["amazon-2014"]["categories"]
    assert by_name["book-crossing"]["timestamps"] is False
    table = cli("datasets")
    assert table.exit_code == 0 and "ml-1m" in table.output and "book-crossing" in table.output


def test_every_registered_dataset_has_a_fixture_in_its_publishers_format():
    assert set(DATASETS) - {"ml-100k"} <= set(FIXTURES)


# --- show -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_show_gives_the_statistics_of_every_fixture(tmp_path, name):
    dataset = FIXTURES[name](tmp_path / name)
    args = ["datasets", "show", dataset["name"], "--path", str(tmp_path / name), "--format", "json"]
    if dataset.get("category"):
        args += ["--category", dataset["category"]]
    if dataset.get("columns"):
        pytest.skip("tabular: the column mapping is a task's (dataset.columns), not a command option")
    result = cli(*args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    stats = report["statistics"]
    assert stats["n_users"] > 0 and stats["n_items"] > 0 and stats["n_interactions"] >= stats["n_users"]
    assert 0 < stats["density"] <= 1 and 0 <= stats["gini_item_popularity"] < 1
    assert stats["median_history_length"] >= 1
    assert report["source"]["files"] and all(len(f["sha256"]) == 64 for f in report["source"]["files"])
    assert report["source"]["checksum"].startswith("source not checksummed")  # a folder given by hand
    timed = FORMATS[report["source"]["format"]].timestamps
    assert (stats["time_span_days"] is not None) == timed


def test_statistics_are_exact_on_a_small_table():
    inter = pd.DataFrame({
        "user": ["a", "a", "a", "b", "b", "c", "c", "c", "c"],
        "item": ["x", "y", "z", "x", "y", "x", "z", "y", "w"],
        "timestamp": [1.0, 2.0, 2.0, 5.0, 9.0, 0.0, 86400.0, 3.0, 86400.0],
    }).assign(row=np.arange(9))
    items = pd.DataFrame({"item": ["x", "y", "z", "w"], "title": ["X", "", None, "W"]})
    stats = raw_statistics(RawDataset("small", inter, items, None))
    assert (stats["n_users"], stats["n_items"], stats["n_interactions"]) == (3, 4, 9)
    assert stats["n_items_with_title"] == 2  # "" and None are no title
    assert stats["density"] == round(9 / 12, 8)
    assert stats["median_history_length"] == 3.0
    # a: its last two (times 2, 2) tie; b: 5 then 9; c: by time 0, 3, 86400, 86400: a tie.
    assert stats["users_with_tied_last_two_timestamps"] == 2
    assert stats["time_span_days"] == 1.0 and stats["first_time"] == "1970-01-01T00:00:00Z"
    assert stats["gini_item_popularity"] == round(gini(np.array([3, 3, 2, 1])), 4)
    assert gini(np.array([5, 5, 5])) == 0.0 and gini(np.array([0, 0, 0, 9])) == pytest.approx(0.75)


def test_show_names_the_missing_part_of_a_multi_part_source(tmp_path):
    folder = tmp_path / "amazon"
    dataset = AMAZON_STEAM_YELP_GOODREADS["amazon-2014"](folder)
    result = cli("datasets", "show", "amazon-2014", "--path", str(folder))
    assert result.exit_code == 2 and "give dataset.category (--category)" in result.output
    result = cli("datasets", "show", "amazon-2014", "--path", str(folder), "--category", "Beuty")
    assert result.exit_code == 2 and "Did you mean: Beauty" in result.output
    assert dataset["category"] == "Beauty"


# --- fetch ----------------------------------------------------------------------------


def zipped_movielens(tmp_path: Path) -> tuple[Path, str]:
    files = tmp_path / "files"
    MOVIELENS_LASTFM_BX["ml-1m"](files / "ml-1m")
    archive = tmp_path / "ml-1m.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted((files / "ml-1m").iterdir()):
            out.write(path, f"ml-1m/{path.name}")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    return archive, md5


def test_fetch_checks_the_md5_the_publisher_lists_and_records_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM4REC_ASSETS", str(tmp_path / "assets"))
    archive, md5 = zipped_movielens(tmp_path)
    (tmp_path / "ml-1m.zip.md5").write_text(f"{md5}  ml-1m.zip\n")
    download = Download(archive.as_uri(), member="ml-1m/", md5_url=(tmp_path / "ml-1m.zip.md5").as_uri())
    folder = download.fetch(lambda _: None)
    assert (folder / "ratings.dat").is_file() and download.present()
    record = json.loads((folder / ".checksum.json").read_text())
    assert record["ml-1m.zip"]["verified"].startswith("md5 published at")
    result = cli("datasets", "show", "ml-1m", "--path", str(folder), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["source"]["checksum"].startswith("md5 published at")


def test_fetch_refuses_files_whose_md5_differs_from_the_published_one(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM4REC_ASSETS", str(tmp_path / "assets"))
    archive, _ = zipped_movielens(tmp_path)
    (tmp_path / "ml-1m.zip.md5").write_text("0" * 32 + "  ml-1m.zip\n")
    download = Download(archive.as_uri(), member="ml-1m/", md5_url=(tmp_path / "ml-1m.zip.md5").as_uri())
    with pytest.raises(DownloadError, match="refusing to use it"):
        download.fetch(lambda _: None)
    assert not download.present()


def test_fetch_without_network_says_where_to_put_the_files(monkeypatch, tmp_path):
    monkeypatch.setenv("LLM4REC_ASSETS", str(tmp_path / "assets"))
    unreachable = Download("http://127.0.0.1:9/ml-1m.zip", member="ml-1m/")
    monkeypatch.setitem(DATASETS, "ml-1m", DATASETS["ml-1m"].__class__(
        **{**DATASETS["ml-1m"].__dict__, "source": unreachable}))
    result = cli("datasets", "fetch", "ml-1m")
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "could not download http://127.0.0.1:9/ml-1m.zip" in text
    assert "give that folder as dataset.path" in text and "ratings.dat" in text
    no_download = cli("datasets", "fetch", "yelp")
    assert no_download.exit_code == 2 and "has no download: give dataset.path" in " ".join(no_download.output.split())


# --- export ---------------------------------------------------------------------------


def test_export_round_trips_through_recbole_atomic_parquet_and_hf(tmp_path):
    folder = tmp_path / "ml-1m"
    MOVIELENS_LASTFM_BX["ml-1m"](folder)
    raw = FORMATS["movielens-dat"].read(folder, "ml-1m", Selection())
    for export_format in ("atomic", "parquet", "hf"):
        result = cli("datasets", "export", "ml-1m", "--path", str(folder), "--format", export_format,
                     "--out", str(tmp_path / export_format))
        assert result.exit_code == 0, result.output
    back = FORMATS["recbole-atomic"].read(tmp_path / "atomic", "ml-1m", Selection())
    pd.testing.assert_frame_equal(back.interactions[["user", "item", "rating", "timestamp", "row"]],
                                  raw.interactions[["user", "item", "rating", "timestamp", "row"]],
                                  check_dtype=False)
    assert back.items.set_index("item")["title"].to_dict() == raw.items.set_index("item")["title"].to_dict()
    parquet = pd.read_parquet(tmp_path / "parquet" / "items.parquet")
    assert parquet["title"].tolist() == raw.items["title"].tolist()

    import datasets

    hf = datasets.load_from_disk(str(tmp_path / "hf"))
    assert set(hf) >= {"interactions", "items"} and hf["interactions"].num_rows == len(raw.interactions)
    assert hf["items"]["title"] == raw.items["title"].tolist()


def test_atomic_export_of_a_dataset_without_times_leaves_the_timestamp_out(tmp_path):
    inter = pd.DataFrame({"user": ["u1", "u2"], "item": ["i1", "i2"], "rating": [0.0, 8.0],
                          "timestamp": [np.nan, np.nan], "row": [0, 1]})
    items = pd.DataFrame({"item": ["i1", "i2"], "title": ["A\ttab", "B\nline"]})
    export_dataset(RawDataset("bx", inter, items, None), tmp_path, "atomic")
    header = (tmp_path / "bx.inter").read_text().splitlines()[0]
    assert header == "user_id:token\titem_id:token\trating:float"
    assert (tmp_path / "bx.item").read_text().splitlines()[1:] == ["i1\tA tab", "i2\tB line"]


# --- tasks that include a family template -----------------------------------------------


def test_a_task_file_includes_its_family_template_and_overrides_it(tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "base.yaml").write_text(yaml.safe_dump({
        "family": "sequential", "version": 1, "split": {"method": "leave_one_out", "min_user_interactions": 4},
        "history": {"max_len": 50, "exclude_seen": False}, "metrics": ["NDCG@10", "HR@10"],
        "main_score": "NDCG@10", "seeds": [0, 1, 2]}))
    task = tmp_path / "sequential" / "toy.yaml"
    task.parent.mkdir()
    task.write_text(yaml.safe_dump({"task": "sequential/toy", "include": "../templates/base.yaml",
                                    "dataset": {"name": "ml-100k"}, "history": {"max_len": 20}, "seeds": [7]}))
    spec = load_task(task)
    assert spec.history.max_len == 20 and spec.history.exclude_seen is False  # merged field by field
    assert spec.seeds == [7] and spec.split.min_user_interactions == 4


def test_include_errors_name_the_file_and_the_field(tmp_path):
    task = tmp_path / "toy.yaml"
    task.write_text("task: sequential/toy\ninclude: missing.yaml\n")
    with pytest.raises(SpecError, match=rf"{task}: field 'include': no file .*missing.yaml"):
        load_task(task)
    (tmp_path / "a.yaml").write_text("include: toy.yaml\n")
    task.write_text("task: sequential/toy\ninclude: a.yaml\n")
    with pytest.raises(SpecError, match="includes itself"):
        load_task(task)


def test_the_shipped_tasks_share_the_family_templates():
    assert "templates/zeroshot" not in " ".join(available_tasks())  # templates are not tasks
    assert load_task("zeroshot/ml-1m").prompt == load_task("zeroshot/ml-100k").prompt
    for family in ("sequential", "topk", "ctr", "zeroshot"):
        for dataset in ("ml-1m", "amazon-2014-beauty"):
            spec = load_task(f"{family}/{dataset}")
            assert spec.family == family and spec.dataset.name in ("ml-1m", "amazon-2014")


def test_tasks_whose_data_is_absent_are_listed_with_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM4REC_ASSETS", str(tmp_path / "empty-assets"))
    table = cli("tasks")
    assert table.exit_code == 0 and "sequential/ml-1m" in table.output, table.output
    listed = cli("tasks", "--format", "json")
    status = {row["task"]: row["data"] for row in json.loads(listed.stdout)}
    assert status["sequential/ml-1m"] == "absent: llm4rec datasets fetch ml-1m (or give dataset.path)"
    assert status["zeroshot/amazon-2014-beauty"].startswith("absent: llm4rec datasets fetch amazon-2014 --category Beauty")
    assert status["ctr/criteo"].startswith("absent: get the files from https://")
    assert data_status("amazon-2014", None, "Beauty") == \
        "absent: llm4rec datasets fetch amazon-2014 --category Beauty (or give dataset.path)"
    assert data_status("yelp", None).startswith("absent: get the files from https://")
    assert data_status("ml-1m", str(tmp_path)) == "present"


def test_a_chronological_task_on_a_dataset_without_times_is_refused_naming_the_field(tmp_path):
    task = tmp_path / "sequential" / "bx.yaml"
    task.parent.mkdir()
    task.write_text((Path(__file__).parent.parent / "tasks" / "templates" / "sequential.yaml").read_text()
                    + "task: sequential/bx\ndataset:\n  name: book-crossing\n")
    with pytest.raises(SpecError) as error:
        load_task(task)
    message = str(error.value)
    assert "leave_one_out" in message and "book-crossing" in message and "no timestamps" in message
    assert "BX-Book-Ratings.csv" in message


# --- the ML-1M and Amazon-Beauty tasks, end to end on publisher-format files -----------


@pytest.mark.parametrize("dataset", ["ml-1m", "amazon-2014-beauty"])
def test_the_shipped_tasks_run_end_to_end_on_files_in_the_publishers_format(tmp_path, dataset):
    name = "ml-1m" if dataset == "ml-1m" else "amazon-2014"
    folder = tmp_path / name
    FIXTURES[name](folder)
    for family in ("sequential", "topk", "ctr", "zeroshot"):
        spec = load_task(f"{family}/{dataset}")
        local = spec.model_copy(update={"dataset": spec.dataset.model_copy(update={"path": str(folder)})})
        runs = evaluate([shipped("pop")], local, seeds=[0], store=False, sandbox=False)
        assert runs["status"].tolist() == ["FINISHED"], (family, runs.get("error"))
        score = runs[spec.main_score].iloc[0]
        assert np.isfinite(score) and 0 <= score <= 1


SHIPPED_ON_FIXTURES = sorted(task_id for task_id, path in available_tasks().items()
                             if load_task(task_id).dataset.name in FIXTURES)


@pytest.mark.parametrize("task_id", SHIPPED_ON_FIXTURES)
def test_every_shipped_task_prepares_its_data_from_publisher_format_files(tmp_path, task_id):
    spec = load_task(task_id)
    written = FIXTURES[spec.dataset.name](tmp_path / "files")
    # One fixture part per source: the task's protocol is read on it (Sports as Beauty).
    local = spec.model_copy(update={"dataset": spec.dataset.model_copy(
        update={"path": str(tmp_path / "files"), "category": written.get("category")})})
    summary = prepare(local, log=lambda _: None).summary
    assert summary["n_test_interactions"] > 0 and summary["n_train_interactions"] > summary["n_test_interactions"]


def test_task_digests_stay_those_recorded_before_and_do_not_hold_the_files_folder(tmp_path):
    # The ml-100k tasks' trust passes (issue 16) are part of their protocol: runs with
    # them key anew. A task without a trust block keeps the digest it had before (ml-1m:
    # computed at 399d338), as fields added later leave old specs hashing alike.
    assert load_task("sequential/ml-100k").digest() == \
        "5512c7bf803518f92eac80cb7bd7f9043b7ce9dc7fc97820bdb14c131121a923"
    assert load_task("zeroshot/ml-100k").digest() == \
        "968a458ea1718747e31944b2ba1a0784198d86bfaf186e59c7f9b27da6d72017"
    assert load_task("sequential/ml-1m").digest() == \
        "80e17c867fd024996441586c69b7837f6dac7e70145cdee37b5200b27439c1fb"
    spec = load_task("sequential/ml-1m")
    elsewhere = spec.model_copy(update={"dataset": spec.dataset.model_copy(update={"path": str(tmp_path)})})
    assert elsewhere.digest() == spec.digest()
    beauty = load_task("sequential/amazon-2014-beauty")
    sports = load_task("sequential/amazon-2014-sports")
    other_part = beauty.model_copy(update={"dataset": beauty.dataset.model_copy(update={"category": "Toys_and_Games"})})
    assert other_part.digest() != beauty.digest() and sports.digest() != beauty.digest()
