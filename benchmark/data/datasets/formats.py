"""A dataset format: which files of a folder it reads, and how it reads them into the
canonical raw tables (benchmark.data.dataset.RawDataset)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from fnmatch import fnmatchcase
from pathlib import Path

import pandas as pd

from benchmark.data.dataset import RawDataset
from benchmark.specs import SpecError


class DataFileError(SpecError):
    """A source file that cannot be read; the message names the file and, where known,
    the line and column."""


def as_numbers(values: pd.Series, path: Path, column: str, required: bool = False,
               first_line: int = 2) -> pd.Series:
    """A column as float64, so that it orders as numbers ("997" before "1000"): text
    cells, or numbers a parser read already (an empty cell NaN). An empty cell is
    missing (NaN) unless `required`; any other cell that is not a number is a
    DataFileError naming the file, line and column. The index counts data rows: index i
    is line i + first_line of the file."""
    parsed = pd.api.types.is_float_dtype(values)
    numbers = values if parsed else pd.to_numeric(values, errors="coerce").astype("float64")
    bad = numbers.isna()
    if not required and bad.any():  # an empty (or "nan") cell is a missing value
        bad[bad] = False if parsed else ~values[bad].str.strip().str.lower().isin(("", "nan"))
    if bad.any():
        row = bad.idxmax()
        shown = "an empty cell" if parsed or not values[row].strip() else repr(values[row])
        raise DataFileError(f"{path} line {row + first_line}: column '{column}': {shown} is not a number"
                            + (" (every row needs one)" if required else ""))
    return numbers


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
        timestamp as numbers (never text: "1000" sorts before "997"), [rating], row = the
        original row order), items(item, ...) or None, users(user, ...) or None. Errors
        are DataFileError naming the file, line or field at fault."""
