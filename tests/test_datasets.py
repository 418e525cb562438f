"""The dataset registry: registered names, folders by path, formats and downloads."""
from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.data import prepare
from benchmark.data.dataset import RawDataset
from benchmark.data.datasets import (
    DatasetError,
    DatasetFormat,
    Download,
    DownloadError,
    RegisteredDataset,
    available_datasets,
    locate,
    register_dataset,
    register_format,
    registry,
)
from benchmark.data.datasets.atomic import RecBoleAtomic
from benchmark.paths import assets_root
from benchmark.tasks import load_task
from conftest import synthetic_task

QUIET = lambda *_: None  # noqa: E731


def task_on(dataset: dict):
    return synthetic_task(dataset=dataset)


def write_toy_atomic(folder: Path) -> Path:
    """The same files as were used to pin the fingerprints below before the registry."""
    folder.mkdir(parents=True)
    (folder / "toy.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        + "".join(f"u{u}\ti{(u * 7 + k) % 11}\t{(u + k) % 5 + 1}\t{k}\n" for u in range(6) for k in range(6)))
    (folder / "toy.item").write_text(
        "item_id:token\tmovie_title:token_seq\n" + "".join(f"i{i}\tT {i}\n" for i in range(11)))
    return folder


class TinyCsv(DatasetFormat):
    """A format defined outside the harness: `*.csv` files with user,item,timestamp."""

    name = "tiny-csv"
    description = "comma-separated user,item,timestamp"
    required = ("*.csv",)

    def read(self, folder: Path, name: str, selection=None) -> RawDataset:
        frames = [pd.read_csv(p, dtype={"user": str, "item": str, "timestamp": "float64"})
                  for p in self.source_files(folder)]
        inter = pd.concat(frames, ignore_index=True)
        return RawDataset(name, inter.assign(row=np.arange(len(inter), dtype="int64")), None, None)


def write_csv(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"u{u},i{(u + k) % 7},{k}" for u in range(5) for k in range(5)]
    (folder / "data.csv").write_text("user,item,timestamp\n" + "\n".join(rows) + "\n")
    return folder


@pytest.fixture
def own_registry(monkeypatch):
    """Registrations made in a test stay in the test."""
    monkeypatch.setattr(registry, "FORMATS", dict(registry.FORMATS))
    monkeypatch.setattr(registry, "DATASETS", dict(registry.DATASETS))
    return registry


def zipped(tmp_path: Path, folder: Path, member: str) -> tuple[str, str]:
    """A zip archive of `folder` under `member`: (file:// URL, sha256)."""
    archive = tmp_path / "tiny.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in folder.iterdir():
            out.write(path, member + path.name)
    return archive.as_uri(), hashlib.sha256(archive.read_bytes()).hexdigest()


def test_ml100k_is_the_recbole_asset_in_the_atomic_format():
    source = locate("ml-100k", None, QUIET)
    assert source.format.name == "recbole-atomic"
    assert [p.name for p in source.files()] == ["ml-100k.inter", "ml-100k.item", "ml-100k.user"]
    info = {entry.name: entry for entry in available_datasets()}["ml-100k"]
    assert info.format == "recbole-atomic" and info.present
    assert "recbole==1.2.1" in info.source and "may not be redistributed" in info.licence


def test_ml100k_fingerprints_and_cache_folders_are_those_before_the_registry(isolated_cache):
    # Computed with the code before the dataset registry existed.
    prepared = prepare(load_task("sequential/ml-100k"), log=QUIET)
    assert prepared.dataset_fingerprint == "09c3bc62eea07cec2ddd6da5050aca31ed00bd7c0b8368fd1aa490223b17fb0d"
    assert prepared.split_fingerprint == "79700bf0e8e1a515ae85f07e253354f1418ce5868b62b04eeabd8f34ffc4383d"
    assert (isolated_cache / "raw" / "ml-100k-dfc111cc80e5b073" / "meta.json").is_file()
    assert (isolated_cache / "processed" / "ml-100k-4775eb8cc28def60" / "meta.json").is_file()


def test_an_atomic_folder_by_path_loads_as_before(tmp_path, isolated_cache):
    folder = write_toy_atomic(tmp_path / "toy")
    prepared = prepare(task_on({"name": "toy", "path": str(folder)}), log=QUIET)
    assert prepared.dataset_fingerprint == "682d25668402f072020684f45ada7a78bce009b6416c0e44804a8896795ef73f"
    assert prepared.split_fingerprint == "ec76157a29186d5025252f417647df35a0af5dff539afed532441a43b8c1f994"
    assert (isolated_cache / "raw" / "toy-31ee1651f402d30b" / "meta.json").is_file()
    assert prepared.dataset.items["title"].iloc[0].startswith("T ")


def test_a_registered_name_with_a_path_reads_the_path(tmp_path):
    folder = write_toy_atomic(tmp_path / "toy")
    source = locate("ml-100k", str(folder), QUIET)
    assert source.folder == folder and source.format.name == "recbole-atomic"


def test_an_unknown_dataset_name_lists_the_registered_ones():
    with pytest.raises(DatasetError) as error:
        prepare(task_on({"name": "ml-10k"}), log=QUIET)
    message = str(error.value)
    assert "unknown dataset 'ml-10k'" in message and "Did you mean: ml-100k" in message
    assert "dataset.path" in message and "recbole-atomic: *.inter" in message


def test_a_folder_no_format_recognises_is_named(tmp_path):
    folder = write_csv(tmp_path / "ratings")
    with pytest.raises(DatasetError) as error:
        prepare(task_on({"name": "ratings", "path": str(folder)}), log=QUIET)
    assert str(folder) in str(error.value) and "no dataset format recognises" in str(error.value)
    assert "recbole-atomic: *.inter (optional: *.item, *.user)" in str(error.value)


def test_a_path_that_is_not_a_folder_is_named(tmp_path):
    with pytest.raises(DatasetError, match=f"dataset.path {tmp_path / 'absent'}: not a folder"):
        locate("absent", str(tmp_path / "absent"), QUIET)


def test_a_format_registered_outside_the_harness_reads_folders_by_path(tmp_path, own_registry):
    register_format(TinyCsv())
    folder = write_csv(tmp_path / "mine")
    prepared = prepare(task_on({"name": "mine", "path": str(folder)}), log=QUIET)
    assert prepared.summary["n_users"] == 5 and prepared.summary["n_interactions"] == 25
    assert prepared.dataset.users["original_id"].tolist() == [f"u{u}" for u in range(5)]


def test_a_registered_dataset_is_downloaded_checked_and_read_by_its_format(tmp_path, own_registry, monkeypatch):
    monkeypatch.setenv("LLM4REC_ASSETS", str(tmp_path / "assets"))
    register_format(TinyCsv())
    url, sha = zipped(tmp_path, write_csv(tmp_path / "files"), member="tiny/")
    register_dataset(RegisteredDataset("tiny", "tiny-csv", licence="test data",
                                       source=Download(url, sha, member="tiny/")))
    assert not {d.name: d for d in available_datasets()}["tiny"].present
    prepared = prepare(task_on({"name": "tiny"}), log=QUIET)
    assert prepared.summary["n_interactions"] == 25
    info = {d.name: d for d in available_datasets()}["tiny"]
    assert info.present and info.format == "tiny-csv" and info.source.startswith(url)
    folder = assets_root() / "downloads" / f"tiny-{sha[:12]}"
    assert (folder / "data.csv").is_file() and (folder / ".complete").read_text() == "tiny.zip"


def test_a_download_with_the_wrong_sha256_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM4REC_ASSETS", str(tmp_path / "assets"))
    url, _ = zipped(tmp_path, write_csv(tmp_path / "files"), member="")
    with pytest.raises(DownloadError, match="expected 0{64}; refusing"):
        Download(url, "0" * 64).fetch(QUIET)
    assert not Download(url, "0" * 64).present()


def test_an_unreachable_download_says_how_to_get_the_files_by_hand(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM4REC_ASSETS", str(tmp_path / "assets"))
    url = (tmp_path / "nowhere" / "ml-1m.zip").as_uri()
    with pytest.raises(DownloadError) as error:
        Download(url, "a" * 64, member="ml-1m/").fetch(QUIET)
    assert f"could not download {url}" in str(error.value)
    assert "unpack its folder ml-1m/ and give that folder as dataset.path" in str(error.value)


def test_a_registered_name_prefers_its_own_format_when_several_recognise_a_folder(tmp_path, own_registry):
    register_format(TinyCsv())
    folder = write_csv(tmp_path / "both")
    write_toy_atomic(tmp_path / "toy")
    (folder / "toy.inter").write_text((tmp_path / "toy" / "toy.inter").read_text())
    register_dataset(RegisteredDataset("tiny", "tiny-csv", licence="test data"))
    assert locate("tiny", str(folder), QUIET).format.name == "tiny-csv"
    with pytest.raises(DatasetError, match="several formats recognise this folder .*recbole-atomic, tiny-csv"):
        locate("unregistered", str(folder), QUIET)


def test_a_registered_dataset_without_download_asks_for_a_path(own_registry):
    register_dataset(RegisteredDataset("local-only", "recbole-atomic", licence="test data"))
    with pytest.raises(DatasetError, match="'local-only' has no download: give dataset.path, a folder with "
                                           r"recbole-atomic: \*.inter"):
        locate("local-only", None, QUIET)


def test_registrations_are_checked(own_registry):
    with pytest.raises(ValueError, match="format 'recbole-atomic' is already registered"):
        register_format(RecBoleAtomic())
    with pytest.raises(ValueError, match="dataset 'ml-100k' is already registered"):
        register_dataset(RegisteredDataset("ml-100k", "recbole-atomic", licence=""))
    with pytest.raises(ValueError, match="dataset 'x': unknown format 'csv'. Known: .*recbole-atomic"):
        register_dataset(RegisteredDataset("x", "csv", licence=""))

