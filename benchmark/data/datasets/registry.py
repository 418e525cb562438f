"""The registry: formats (how files are read) and datasets (a named source in a format),
and the one rule for finding a task's files and the format that reads them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from benchmark.data.dataset import RawDataset
from benchmark.data.datasets.formats import DatasetFormat
from benchmark.data.datasets.sources import Source
from benchmark.specs import SpecError, unknown_name_error

FORMATS: dict[str, DatasetFormat] = {}
DATASETS: dict[str, "RegisteredDataset"] = {}


class DatasetError(SpecError):
    """A task's dataset that cannot be found or read; the message names it."""


@dataclass(frozen=True)
class RegisteredDataset:
    name: str
    format: str  # a name in FORMATS
    licence: str  # what the publisher allows (shown in listings)
    source: Source | None = None  # None: only from a folder given as dataset.path


@dataclass(frozen=True)
class SourceFolder:
    """A folder of source files and the format that reads it."""

    folder: Path
    format: DatasetFormat

    def files(self) -> list[Path]:
        return self.format.source_files(self.folder)

    def read(self, name: str) -> RawDataset:
        return self.format.read(self.folder, name)


@dataclass(frozen=True)
class DatasetInfo:
    """One line of the registry listing."""

    name: str
    format: str
    source: str
    licence: str
    present: bool  # its files are already in the local cache


def register_format(dataset_format: DatasetFormat) -> DatasetFormat:
    if dataset_format.name in FORMATS:
        raise ValueError(f"dataset format '{dataset_format.name}' is already registered")
    FORMATS[dataset_format.name] = dataset_format
    return dataset_format


def register_dataset(entry: RegisteredDataset) -> RegisteredDataset:
    if entry.name in DATASETS:
        raise ValueError(f"dataset '{entry.name}' is already registered")
    if entry.format not in FORMATS:
        raise SpecError(f"dataset '{entry.name}': {unknown_name_error('format', entry.format, FORMATS)}")
    DATASETS[entry.name] = entry
    return entry


def locate(name: str, path: str | None, log: Callable[[str], None]) -> SourceFolder:
    """The files of a task's `dataset:`: the folder `path` in the format that recognises
    it, else the registered dataset `name`, fetched on first use."""
    entry = DATASETS.get(name)
    if path:
        folder = Path(path).expanduser()
        return SourceFolder(folder, format_for_folder(folder, entry.format if entry else None))
    if entry is None:
        raise DatasetError(f"{unknown_name_error('dataset', name, DATASETS)}. For other data give "
                           f"dataset.path: a folder in a registered format ({_formats_needs()})")
    if entry.source is None:
        raise DatasetError(f"dataset '{name}' has no download: give dataset.path, a folder with "
                           f"{FORMATS[entry.format].needs()}")
    return SourceFolder(entry.source.fetch(log), FORMATS[entry.format])


def format_for_folder(folder: Path, preferred: str | None = None) -> DatasetFormat:
    """The format that reads `folder`: `preferred` (a registered dataset's own format)
    when it recognises the folder, else the only format that does."""
    if not folder.is_dir():
        raise DatasetError(f"dataset.path {folder}: not a folder")
    if preferred and FORMATS[preferred].recognises(folder):
        return FORMATS[preferred]
    matches = [f for f in FORMATS.values() if f.recognises(folder)]
    if not matches:
        raise DatasetError(f"dataset.path {folder}: no dataset format recognises this folder; "
                           f"the formats need {_formats_needs()}")
    if len(matches) > 1:
        raise DatasetError(f"dataset.path {folder}: several formats recognise this folder "
                           f"({', '.join(f.name for f in matches)}); keep one format's files in it")
    return matches[0]


def available_datasets() -> list[DatasetInfo]:
    """The registered datasets, by name, with whether their files are already here."""
    return [DatasetInfo(
        name=entry.name,
        format=entry.format,
        source=entry.source.describe() if entry.source else "local files only (dataset.path)",
        licence=entry.licence,
        present=entry.source.present() if entry.source else False,
    ) for entry in sorted(DATASETS.values(), key=lambda e: e.name)]


def _formats_needs() -> str:
    return "; ".join(f.needs() for f in FORMATS.values())
