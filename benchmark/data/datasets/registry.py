"""The registry: formats (how files are read) and datasets (a named source in a format),
and the one rule for finding a task's files and the format that reads them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from benchmark.data.dataset import RawDataset
from benchmark.data.datasets.formats import ALL, DatasetFormat, Selection
from benchmark.data.datasets.sources import DownloadError, Source
from benchmark.specs import SpecError, did_you_mean, unknown_name_error

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
    homepage: str = ""  # the publisher's page for the files and their documentation
    categories: tuple[str, ...] = ()  # the parts of a multi-part source (Amazon categories)
    description: str = ""

    def check_category(self, category: str | None) -> None:
        """A SpecError unless a multi-part dataset names one of its parts (and only it does)."""
        if not self.categories:
            if category:
                raise SpecError(f"dataset.category '{category}': dataset '{self.name}' has no parts")
            return
        if not category:
            raise SpecError(f"dataset '{self.name}' has parts: give dataset.category (--category), one of "
                            f"{', '.join(self.categories)}")
        if category not in self.categories:
            raise SpecError(f"dataset.category '{category}': not a part of '{self.name}'."
                            f"{did_you_mean(category, self.categories)} Parts: {', '.join(self.categories)}")


@dataclass(frozen=True)
class SourceFolder:
    """A folder of source files and the format that reads it."""

    folder: Path
    format: DatasetFormat
    selection: Selection = ALL

    def files(self) -> list[Path]:
        return self.format.source_files(self.folder, self.selection)

    def read(self, name: str) -> RawDataset:
        return self.format.read(self.folder, name, self.selection)


@dataclass(frozen=True)
class DatasetInfo:
    """One line of the registry listing."""

    name: str
    format: str
    source: str
    licence: str
    present: bool  # its files are already in the local cache
    checksum: str  # how a download is verified, or "source not checksummed"
    homepage: str
    categories: tuple[str, ...]
    files: str  # what a folder of its files holds (the format's patterns)
    timestamps: bool


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


def locate(name: str, path: str | None, log: Callable[[str], None], selection: Selection = ALL) -> SourceFolder:
    """The files of a task's `dataset:`: the folder `path` in the format that recognises
    it, else the registered dataset `name`, fetched on first use."""
    entry = DATASETS.get(name)
    if entry is not None:
        entry.check_category(selection.category)
    if path:
        folder = Path(path).expanduser()
        found = SourceFolder(folder, format_for_folder(folder, entry.format if entry else None, selection), selection)
        found.format.check(selection)
        return found
    if entry is None:
        raise DatasetError(f"{unknown_name_error('dataset', name, DATASETS)}. For other data give "
                           f"dataset.path: a folder in a registered format ({_formats_needs()})")
    dataset_format = FORMATS[entry.format]
    dataset_format.check(selection)
    return SourceFolder(fetch(entry, log, selection.category), dataset_format, selection)


def fetch(entry: RegisteredDataset, log: Callable[[str], None], category: str | None = None) -> Path:
    """A registered dataset's files in the cache, downloaded and verified on first use; a
    DatasetError saying where to put the files when it has no download or none succeeds."""
    needs = FORMATS[entry.format].needs().replace("{category}", category or "{category}")
    if entry.source is None:
        raise DatasetError(f"dataset '{entry.name}' has no download: give dataset.path, a folder "
                           f"with {needs}" + (f"; the files are at {entry.homepage}" if entry.homepage else ""))
    try:
        return entry.source.fetch(log, category)
    except DownloadError as error:
        raise DatasetError(f"dataset '{entry.name}': {error} The folder must hold {needs}.") from None


def format_for_folder(folder: Path, preferred: str | None = None, selection: Selection = ALL) -> DatasetFormat:
    """The format that reads `folder`: `preferred` (a registered dataset's own format)
    when it recognises the folder, else the only format that does."""
    if not folder.is_dir():
        raise DatasetError(f"dataset.path {folder}: not a folder")
    if preferred and FORMATS[preferred].recognises(folder, selection):
        return FORMATS[preferred]
    matches = [f for f in FORMATS.values() if f.recognises(folder, selection)]
    if not matches and preferred:  # e.g. ML-1M as RecBole atomic files is read too
        missing = FORMATS[preferred].missing(folder, selection)
        raise DatasetError(f"dataset.path {folder}: no file matches {', '.join(missing)} (needed by the "
                           f"{preferred} format), and no other format recognises the folder")
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
        present=_present(entry),
        checksum=entry.source.checksum_note() if entry.source else "source not checksummed",
        homepage=entry.homepage,
        categories=entry.categories,
        files=FORMATS[entry.format].needs(),
        timestamps=FORMATS[entry.format].timestamps,
    ) for entry in sorted(DATASETS.values(), key=lambda e: e.name)]


def _present(entry: RegisteredDataset) -> bool:
    if entry.source is None:
        return False
    return any(entry.source.present(c) for c in entry.categories) if entry.categories else entry.source.present()


def _formats_needs() -> str:
    return "; ".join(f.needs() for f in FORMATS.values())


def timestamps_of(name: str, path: str | None, selection: Selection = ALL) -> tuple[bool | None, str]:
    """(whether the dataset's interactions carry times, the files that say so); None when
    the format is not known yet (a folder that is not there)."""
    entry = DATASETS.get(name)
    dataset_format = FORMATS[entry.format] if entry else None
    if path:
        try:
            dataset_format = format_for_folder(Path(path).expanduser(), entry.format if entry else None, selection)
        except DatasetError:
            if dataset_format is None or dataset_format.multi_part:
                return None, ""
    if dataset_format is None:
        return None, ""
    timestamps = dataset_format.has_timestamps(selection)
    return timestamps, f"dataset '{name}' ({dataset_format.name} format: {dataset_format.timestamp_field(selection)})"


def data_status(name: str, path: str | None, category: str | None = None) -> str:
    """Whether a task's data is here, and if not how to get it (for `llm4rec tasks`)."""
    if path:
        return "present" if Path(path).expanduser().is_dir() else f"absent: no folder {path} (dataset.path)"
    entry = DATASETS.get(name)
    if entry is None:
        return f"absent: '{name}' is not a registered dataset; give dataset.path"
    if entry.source is None:
        where = f" from {entry.homepage}" if entry.homepage else ""
        return f"absent: get the files{where}, give their folder as dataset.path"
    if entry.source.present(category):
        return "present"
    part = f" --category {category}" if category else ""
    return f"absent: llm4rec datasets fetch {name}{part} (or give dataset.path)"
