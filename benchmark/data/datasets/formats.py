"""A dataset format: which files of a folder it reads, and how it reads them into the
canonical raw tables (benchmark.data.dataset.RawDataset)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from fnmatch import fnmatchcase
from pathlib import Path

from benchmark.data.dataset import RawDataset


class DatasetFormat(ABC):
    """One way source files are laid out (RecBole atomic files, MovieLens `.dat`, ...).

    A subclass names its files by pattern and implements `read`; the harness keys the raw
    cache on the sha256 of `source_files`, so `read` must depend on those files only."""

    name: str  # the registry key, e.g. "recbole-atomic"
    description: str  # one line for listings
    required: tuple[str, ...]  # file-name patterns that must each match a file
    optional: tuple[str, ...] = ()  # file-name patterns read when present

    def source_files(self, folder: Path) -> list[Path]:
        """The files of `folder` this format reads (required and optional), by name."""
        patterns = self.required + self.optional
        return sorted(p for p in folder.iterdir()
                      if p.is_file() and any(fnmatchcase(p.name, pattern) for pattern in patterns))

    def missing(self, folder: Path) -> list[str]:
        """The required patterns that no file of `folder` matches."""
        names = [p.name for p in folder.iterdir() if p.is_file()]
        return [pattern for pattern in self.required
                if not any(fnmatchcase(name, pattern) for name in names)]

    def recognises(self, folder: Path) -> bool:
        return not self.missing(folder)

    def needs(self) -> str:
        """What a folder in this format holds, for error messages and docs."""
        optional = f" (optional: {', '.join(self.optional)})" if self.optional else ""
        return f"{self.name}: {', '.join(self.required)}{optional}"

    @abstractmethod
    def read(self, folder: Path, name: str) -> RawDataset:
        """The canonical raw tables: interactions(user, item as original ids in text,
        timestamp, [rating], row = the original row order), items(item, ...) or None,
        users(user, ...) or None. Errors name the file, line or field at fault."""
