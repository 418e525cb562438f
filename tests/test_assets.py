"""Offline assets from wheels: checked by sha256, unpacked, reused; bad wheels refused."""
from __future__ import annotations

import hashlib
import zipfile

import pytest

from benchmark.data.assets import ASSETS, AssetError, WheelAsset, fetch_asset


def make_wheel(folder, name="toydata-1.0-py3-none-any.whl", content=b"1\t2\n"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("toydata/data/toy/toy.inter", b"user_id:token\titem_id:token\n" + content)
        archive.writestr("toydata/__init__.py", b"raise ImportError('assets are never imported')")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def toy_asset(sha256: str) -> WheelAsset:
    return WheelAsset("toy", "toydata==1.0", "toydata-1.0-py3-none-any.whl", sha256, "toydata/data/toy/")


def test_wheel_from_wheelhouse_is_checked_and_unpacked(tmp_path, monkeypatch):
    wheel, sha = make_wheel(tmp_path / "wheels")
    monkeypatch.setenv("LLM4REC_WHEELHOUSE", str(tmp_path / "wheels"))
    monkeypatch.setenv("LLM4REC_ASSETS", str(tmp_path / "assets"))
    folder = fetch_asset(toy_asset(sha), log=lambda _: None)
    assert (folder / "toy.inter").read_bytes().endswith(b"1\t2\n")
    assert not (folder / "__init__.py").exists()
    wheel.unlink()  # a second call reuses the unpacked folder
    assert fetch_asset(toy_asset(sha), log=lambda _: None) == folder


def test_a_wheel_with_the_wrong_sha256_is_refused(tmp_path, monkeypatch):
    make_wheel(tmp_path / "wheels", content=b"tampered\n")
    monkeypatch.setenv("LLM4REC_WHEELHOUSE", str(tmp_path / "wheels"))
    monkeypatch.setenv("LLM4REC_ASSETS", str(tmp_path / "assets"))
    with pytest.raises(AssetError, match="has sha256 .* expected 0{64}; refusing"):
        fetch_asset(toy_asset("0" * 64), log=lambda _: None)
    assert not list((tmp_path / "assets").iterdir())


def test_ml100k_asset_is_the_pinned_recbole_wheel():
    folder = fetch_asset("ml-100k")
    asset = ASSETS["ml-100k"]
    assert asset.requirement == "recbole==1.2.1"
    assert (folder / ".complete").read_text() == asset.wheel_file
    assert {p.name for p in folder.iterdir()} >= {"ml-100k.inter", "ml-100k.item", "ml-100k.user"}


def test_unknown_asset_name():
    with pytest.raises(ValueError, match="unknown asset 'ml-10k'. Did you mean: ml-100k"):
        fetch_asset("ml-10k")
