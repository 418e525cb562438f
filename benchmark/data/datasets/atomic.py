"""The RecBole atomic format (`<name>.inter`, `.item`, `.user`): tab-separated, with a
header of `field:type` where type is token, token_seq, float or float_seq. Every line
has the header's number of fields; the interactions' timestamp is a number in every row,
whatever its declared type (RecBole files often say `timestamp:token`)."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark.data.dataset import RawDataset, from_atomic_tables
from benchmark.data.datasets.formats import DataFileError, DatasetFormat, as_numbers

FIELD_TYPES = ("token", "token_seq", "float", "float_seq")
# RecBole field names that map to canonical columns.
CANONICAL_NAMES = {
    "user_id": "user_id",
    "item_id": "item_id",
    "rating": "rating",
    "timestamp": "timestamp",
    "movie_title": "title",
    "title": "title",
}


AtomicFileError = DataFileError  # the one error of unreadable source files, by its older name


@dataclass(frozen=True)
class Field:
    name: str  # the canonical column name
    header: str  # as written in the header, e.g. "timestamp:token"
    kind: str  # one of FIELD_TYPES


def read_atomic(path: Path, numeric: tuple[str, ...] = ()) -> pd.DataFrame:
    """One atomic file as a DataFrame with canonical column names (types stripped):
    float fields as numbers, the others as text. The fields named in `numeric` must hold
    a number in every row whatever their declared type (a `timestamp:token` column read
    as text would order "1000" before "997")."""
    fields, blank_lines = _scan(path)
    numbers = {f.name for f in fields if f.kind == "float" or f.name in numeric}
    try:
        frame = _read_rows(path, fields, numbers)
    except ValueError:  # text where a number belongs: read it all as text, to name the cell
        try:
            frame = _read_rows(path, fields, set())
        except ValueError as error:
            raise AtomicFileError(f"{path}: {error}") from None
    frame = frame.drop(index=[line - 2 for line in blank_lines])
    for field in fields:
        if field.name in numbers:
            frame[field.name] = as_numbers(frame[field.name], path, field.header, required=field.name in numeric)
    return frame.reset_index(drop=True)


def _read_rows(path: Path, fields: list[Field], numbers: set[str]) -> pd.DataFrame:
    """The lines after the header, blank ones included (so index + 2 is the line): the
    `numbers` fields parsed as float64 (an empty cell is NaN), the others as text."""
    dtypes = {f.name: "float64" if f.name in numbers else str for f in fields}
    return pd.read_csv(path, sep="\t", skiprows=1, names=list(dtypes), dtype=dtypes, quoting=csv.QUOTE_NONE,
                       keep_default_na=False, na_values={name: [""] for name in numbers},
                       skip_blank_lines=False, encoding="utf-8")


def _scan(path: Path) -> tuple[list[Field], list[int]]:
    """The header's fields, and the blank lines; every other line must have as many
    fields as the header (a missing or extra tab would shift the columns silently)."""
    blank: list[int] = []
    with path.open("rb") as handle:
        try:
            fields = _fields(path, handle.readline().decode("utf-8-sig").rstrip("\r\n").split("\t"))
        except UnicodeDecodeError:
            raise AtomicFileError(f"{path} line 1: the header is not UTF-8 text") from None
        for number, line in enumerate(handle, start=2):
            found = line.count(b"\t") + 1
            if found == len(fields):
                continue
            if not line.strip(b"\r\n"):
                blank.append(number)
                continue
            raise AtomicFileError(f"{path} line {number}: {found} fields, but the header has {len(fields)} "
                                  f"({', '.join(f.header for f in fields)})")
    return fields, blank


def _fields(path: Path, header: list[str]) -> list[Field]:
    fields = []
    for column, text in enumerate(header):
        name, sep, kind = text.partition(":")
        if not sep or kind not in FIELD_TYPES:
            raise AtomicFileError(
                f"{path}: header field {column + 1} '{text}' must be 'name:type' with type one of "
                f"{', '.join(FIELD_TYPES)}"
            )
        fields.append(Field(CANONICAL_NAMES.get(name, name), text, kind))
    return fields


def read_atomic_folder(folder: Path, name: str | None = None) -> dict[str, pd.DataFrame]:
    """The `.inter` file (required) and `.item`/`.user` files (optional) of a dataset
    folder; the files are `<name>.<suffix>` with name defaulting to the folder's."""
    name = name or folder.name
    inter = folder / f"{name}.inter"
    if not inter.is_file():
        raise AtomicFileError(f"{folder}: no {inter.name} (a RecBole atomic dataset needs one)")
    tables = {"interactions": read_atomic(inter, numeric=("timestamp",))}
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
