"""The dataset registry: formats (how a folder of source files is read into the canonical
raw tables) and datasets (a named source in a format, with its download and licence).

`locate(name, path, log, selection)` is the one rule from a task's `dataset:` to its files."""
from benchmark.data.datasets import catalog  # noqa: F401  (registers the built-in entries)
from benchmark.data.datasets.formats import ALL, DataFileError, DatasetFormat, Selection
from benchmark.data.datasets.registry import (
    DATASETS,
    FORMATS,
    DatasetError,
    DatasetInfo,
    RegisteredDataset,
    SourceFolder,
    available_datasets,
    fetch,
    format_for_folder,
    locate,
    register_dataset,
    register_format,
    timestamps_of,
)
from benchmark.data.datasets.sources import AssetSource, Download, DownloadError

__all__ = [
    "ALL", "DataFileError", "Selection", "fetch", "timestamps_of",
    "DATASETS", "FORMATS", "AssetSource", "DatasetError", "DatasetFormat", "DatasetInfo", "Download",
    "DownloadError", "RegisteredDataset", "SourceFolder", "available_datasets", "format_for_folder",
    "locate", "register_dataset", "register_format",
]
