"""A dataset format: which files of a folder it reads, and how it reads them into the
canonical raw tables (benchmark.data.dataset.RawDataset)."""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Selection:
    """What a task picks from a source folder besides the folder: the part of a
    multi-part source (an Amazon category) and, for tabular files, which source column
    holds each canonical one (`user`, `item`, `timestamp`, `rating`, `title`, ...)."""

    category: str | None = None
    columns: tuple[tuple[str, str], ...] = ()  # (canonical, source) pairs

    @property
    def column_map(self) -> dict[str, str]:
        return dict(self.columns)

    def key(self) -> str:
        """Part of the raw cache key: the same files read with another selection differ."""
        return f"category={self.category}|columns={sorted(self.columns)}"


ALL = Selection()


class DatasetFormat(ABC):
    """One way source files are laid out (RecBole atomic files, MovieLens `.dat`, ...).

    A subclass names its files by pattern and implements `read`; the harness keys the raw
    cache on the sha256 of `source_files` and the selection, so `read` must depend on
    those only. A multi-part format writes `{category}` in its patterns (every part when
    no category is selected). Files may be gzip-compressed (`.gz`): readers open them
    through `benchmark.data.datasets.readers.open_text`."""

    name: str  # the registry key, e.g. "recbole-atomic"
    description: str  # one line for listings
    required: tuple[str, ...]  # file-name patterns that must each match a file
    optional: tuple[str, ...] = ()  # file-name patterns read when present
    multi_part: bool = False  # the patterns hold {category}; a task names its category
    parts: tuple[str, ...] = ()  # a multi-part source's part names, where the publisher lists them
    timestamps: bool = True  # whether its interactions carry times (chronological splits need them)
    # Where the times come from, or what the interaction file holds instead, for the
    # error a chronological task on it gets: e.g. "BX-Book-Ratings.csv: User-ID;ISBN;Book-Rating".
    time_field: str = "timestamp"

    def patterns(self, selection: Selection = ALL) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(required, optional) patterns with the selected category filled in."""
        part = selection.category or "*"
        return (tuple(p.replace("{category}", part) for p in self.required),
                tuple(p.replace("{category}", part) for p in self.optional))

    def source_files(self, folder: Path, selection: Selection = ALL) -> list[Path]:
        """The files of `folder` this format reads (required and optional), by name."""
        required, optional = self.patterns(selection)
        return sorted(p for p in folder.iterdir()
                      if p.is_file() and any(fnmatchcase(p.name, pattern) for pattern in required + optional))

    def missing(self, folder: Path, selection: Selection = ALL) -> list[str]:
        """The required patterns that no file of `folder` matches."""
        names = [p.name for p in folder.iterdir() if p.is_file()]
        return [pattern for pattern in self.patterns(selection)[0]
                if not any(fnmatchcase(name, pattern) for name in names)]

    def recognises(self, folder: Path, selection: Selection = ALL) -> bool:
        return not self.missing(folder, selection)

    def part_patterns(self) -> tuple[str, ...]:
        """The patterns whose `{category}` names a part a folder holds: the first required one."""
        return self.required[:1]

    def categories(self, folder: Path) -> list[str]:
        """The parts of a multi-part source present in `folder`: the `{category}` of the
        files matching `part_patterns`, kept to the publisher's `parts` when listed (so a
        folder of other files, a `data.csv`, is not taken for a part)."""
        if not self.multi_part or not folder.is_dir():
            return []
        regexes = [re.compile(re.escape(p).replace(re.escape("{category}"), "(.+?)").replace(r"\*", ".*") + "$")
                   for p in self.part_patterns() if "{category}" in p]
        found = set()
        for path in folder.iterdir():
            match = next((m for m in (r.match(path.name) for r in regexes) if m), None) if path.is_file() else None
            if match and (not self.parts or match.group(1) in self.parts):
                found.add(match.group(1))
        return sorted(found)

    def has_timestamps(self, selection: Selection = ALL) -> bool:
        return self.timestamps

    def timestamp_field(self, selection: Selection = ALL) -> str:
        return self.time_field

    def check(self, selection: Selection) -> None:
        """A SpecError when the selection does not fit the format (a part it lacks, ...)."""
        if selection.category and not self.multi_part:
            raise SpecError(f"dataset.category: the format {self.name} has no parts")
        if selection.columns:
            raise SpecError(f"dataset.columns: the format {self.name} has fixed columns; "
                            f"columns map the tabular format's files only")

    def needs(self) -> str:
        """What a folder in this format holds, for error messages and docs."""
        optional = f" (optional: {', '.join(self.optional)})" if self.optional else ""
        return f"{self.name}: {', '.join(self.required)}{optional}"

    @abstractmethod
    def read(self, folder: Path, name: str, selection: Selection = ALL) -> RawDataset:
        """The canonical raw tables: interactions(user, item as original ids in text,
        timestamp as numbers (never text: "1000" sorts before "997"; NaN in every row
        where the format has no times), [rating], row = the original row order),
        items(item, [title], other text...) or None, users(user, ...) or None. Errors
        are DataFileError naming the file, line or field at fault."""
