"""The RecBole atomic format (`<name>.inter`, `.item`, `.user`): tab-separated, with a
header of `field:type` where type is token, token_seq, float or float_seq."""
from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from benchmark.data.dataset import RawDataset, from_atomic_tables
from benchmark.data.datasets.formats import DatasetFormat

FIELD_TYPES = {"token": str, "token_seq": str, "float": "float64", "float_seq": str}
# RecBole field names that map to canonical columns.
CANONICAL_NAMES = {
    "user_id": "user_id",
    "item_id": "item_id",
    "rating": "rating",
    "timestamp": "timestamp",
    "movie_title": "title",
    "title": "title",
}


class AtomicFileError(ValueError):
    pass


def read_atomic(path: Path) -> pd.DataFrame:
    """One atomic file as a DataFrame with canonical column names (types stripped)."""
    with path.open(newline="", encoding="utf-8") as handle:
        header = handle.readline().rstrip("\r\n").split("\t")
    names, dtypes = [], {}
    for column, field in enumerate(header):
        name, sep, kind = field.partition(":")
        if not sep or kind not in FIELD_TYPES:
            raise AtomicFileError(
                f"{path}: header field {column + 1} '{field}' must be 'name:type' with type one of "
                f"{', '.join(FIELD_TYPES)}"
            )
        canonical = CANONICAL_NAMES.get(name, name)
        names.append(canonical)
        dtypes[canonical] = FIELD_TYPES[kind]
    try:
        frame = pd.read_csv(path, sep="\t", skiprows=1, names=names, dtype=dtypes,
                            quoting=csv.QUOTE_NONE, keep_default_na=False, na_values={
                                n: [""] for n, t in dtypes.items() if t == "float64"})
    except ValueError as error:
        raise AtomicFileError(f"{path}: {error}") from None
    return frame


def read_atomic_folder(folder: Path, name: str | None = None) -> dict[str, pd.DataFrame]:
    """The `.inter` file (required) and `.item`/`.user` files (optional) of a dataset
    folder; the files are `<name>.<suffix>` with name defaulting to the folder's."""
    name = name or folder.name
    inter = folder / f"{name}.inter"
    if not inter.is_file():
        raise AtomicFileError(f"{folder}: no {inter.name} (a RecBole atomic dataset needs one)")
    tables = {"interactions": read_atomic(inter)}
    for column in ("user_id", "item_id"):
        if column not in tables["interactions"]:
            raise AtomicFileError(f"{inter}: no '{column}' field in the header")
    for suffix, table in (("item", "items"), ("user", "users")):
        path = folder / f"{name}.{suffix}"
        if path.is_file():
            tables[table] = read_atomic(path)
    return tables


def atomic_base_name(folder: Path) -> str:
    """The atomic files' base name: the folder's, else the only .inter file's."""
    inters = list(folder.glob("*.inter"))
    return folder.name if (folder / f"{folder.name}.inter").is_file() or len(inters) != 1 else inters[0].stem


class RecBoleAtomic(DatasetFormat):
    name = "recbole-atomic"
    description = "RecBole atomic files: <name>.inter, optional .item and .user, tab-separated"
    required = ("*.inter",)
    optional = ("*.item", "*.user")

    def read(self, folder: Path, name: str) -> RawDataset:
        return from_atomic_tables(name, read_atomic_folder(folder, atomic_base_name(folder)))
