"""Bring your own data: a folder of tables, read by path (no registered dataset).

Files: `interactions.csv`, `interactions.parquet` or `interactions.jsonl` (exactly one;
`.csv.gz` and `.jsonl.gz` too), and optionally `items.*` and `users.*` in the same
formats. CSV files are comma-separated with a header row and may quote fields
("...", "" for a quote inside); JSON lines hold one object a line (list values become
space-separated text, other nested values JSON text); Parquet list columns become
space-separated text too. The `line` an error names counts one record a line (for
Parquet files: the row, from 1).

The task's `dataset.columns` maps canonical columns to the files' own:
    columns: {user: customer_id, item: sku, timestamp: ts, rating: stars, title: name}
A column named in the mapping is renamed; every other column keeps its name.
- interactions: `user` and `item` (required in every row), `rating` (a number; empty is
  NaN), `timestamp` (required in every row: seconds since the epoch, ISO 8601 date
  text such as "2020-05-01" or "2020-05-01T10:22:32Z", or a Parquet datetime; without
  a zone read as UTC). Other columns of the interaction file are not read.
- items / users: keyed by the same `item` / `user` column; every other column is kept as
  an attribute (a CTR task names them in ctr.item_features / ctr.user_features), those
  the mapping names (title, description, ...) under their canonical name; a mapped
  attribute in neither file is an error.
Without a mapping the files must use the canonical names.

Timestamps: a task may split by time only if the format knows there are times before
reading, from the mapping alone: with a mapping, the interactions have times iff it
maps `timestamp` (`timestamp: timestamp` for a column already named so); a `timestamp`
column it does not map is not read. Without a mapping the format cannot tell, so it
says yes and the reader keeps that promise: an interaction file without a `timestamp`
column is refused, with the advice to give a mapping (user and item at least) when
the data has no times.

A folder holding `interactions.*` must hold no other format's files: the registry
refuses a folder two formats recognise.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.dataset import RawDataset
from benchmark.data.datasets.formats import ALL, DataFileError, DatasetFormat, Selection
from benchmark.data.datasets.readers import (
    check_field_counts,
    error_text,
    iter_records,
    nonblank_line_numbers,
    numeric_column,
    open_text,
    required_text,
    time_from_text,
    with_row_order,
)
from benchmark.specs import SpecError

SUFFIXES = (".csv", ".csv.gz", ".parquet", ".jsonl", ".jsonl.gz")
TABLES = ("interactions", "items", "users")
INTERACTION_COLUMNS = ("user", "item", "timestamp", "rating")


def table_files(folder: Path, table: str) -> list[Path]:
    return [folder / f"{table}{suffix}" for suffix in SUFFIXES if (folder / f"{table}{suffix}").is_file()]


def read_table(path: Path) -> pd.DataFrame:
    """A table file as a frame (CSV cells as text, Parquet and JSON values as they are)
    with a `line` column: the line of the file (the row of a Parquet file)."""
    if path.name.endswith(".parquet"):
        try:
            frame = pd.read_parquet(path)
        except Exception as error:  # pyarrow's errors for a truncated or foreign file vary
            raise DataFileError(f"{path}: not a readable Parquet file ({error_text(error)})") from None
        return _flat(frame).assign(line=np.arange(1, len(frame) + 1, dtype="int64"))
    if ".jsonl" in path.name:
        lines, records = [], []
        for number, record in iter_records(path, "json"):
            lines.append(number)
            records.append(record)
        return _flat(pd.DataFrame.from_records(records)).assign(line=np.asarray(lines, dtype="int64"))
    return _read_csv(path, _csv_header(path))


def _read_csv(path: Path, header: list[str]) -> pd.DataFrame:
    """Every cell as text, through pyarrow's CSV reader (quotes, "" escapes, and a line
    with another number of fields than the header refused; that line found again by
    `check_field_counts`). Lines are counted as one record a line."""
    import pyarrow as pa
    import pyarrow.csv as arrow_csv

    try:
        table = arrow_csv.read_csv(
            str(path), read_options=arrow_csv.ReadOptions(column_names=header, skip_rows=1),
            parse_options=arrow_csv.ParseOptions(newlines_in_values=True),
            convert_options=arrow_csv.ConvertOptions(column_types={c: pa.string() for c in header},
                                                     strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, OSError, EOFError) as error:
        check_field_counts(path, header, ",", quoted=True)
        raise DataFileError(f"{path}: cannot be read as CSV ({error_text(error)})") from None
    frame = table.to_pandas()
    return frame.assign(line=nonblank_line_numbers(path, len(frame) + 1)[1:])


def _csv_header(path: Path) -> list[str]:
    try:
        with open_text(path) as handle:
            header = next(csv.reader(handle), [])
    except (UnicodeDecodeError, OSError, EOFError, csv.Error) as error:
        raise DataFileError(f"{path}: cannot be read as UTF-8 CSV ({error_text(error)})") from None
    header = [name.strip() for name in header]
    if not any(header):
        raise DataFileError(f"{path} line 1: no header row (the column names, comma-separated)")
    return header


def _flat(frame: pd.DataFrame) -> pd.DataFrame:
    """Lists as space-separated text, other nested values as JSON text (tables hold scalars)."""
    for column in frame.columns[frame.dtypes == object]:
        values = frame[column]
        nested = values.map(lambda v: isinstance(v, (list, tuple, dict, np.ndarray)))
        if nested.any():
            frame[column] = values.where(~nested, values[nested].map(_as_text)).astype(str)
    return frame


def _as_text(value) -> str:
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return " ".join(str(v) for v in value)


class Columns:
    """The mapping of a task's `dataset.columns`: canonical name -> the files' column."""

    def __init__(self, selection: Selection) -> None:
        self.mapping = selection.column_map

    def source(self, canonical: str) -> str:
        return self.mapping.get(canonical, canonical)

    def field(self, canonical: str) -> str:
        """How an error names where a column name came from."""
        if canonical in self.mapping:
            return f"dataset.columns.{canonical}"
        return f"the default name; dataset.columns.{canonical} names another"

    def require(self, frame: pd.DataFrame, canonical: str, path: Path) -> str:
        column = self.source(canonical)
        if column not in frame.columns:
            raise DataFileError(f"{path}: no column '{column}' ({self.field(canonical)}); the file has "
                                f"{', '.join(map(str, frame.columns.drop('line')))}")
        return column


def read_interactions(path: Path, columns: Columns, timestamps: bool) -> pd.DataFrame:
    frame = read_table(path)
    table = pd.DataFrame({name: _ids(frame, columns.require(frame, name, path), path) for name in ("user", "item")})
    if timestamps:
        if "timestamp" not in columns.mapping and "timestamp" not in frame.columns:
            raise DataFileError(f"{path}: no column 'timestamp'. Without dataset.columns a file must have "
                                f"one; for data without times map the columns (user and item at least), "
                                f"then only splits in random order are possible")
        table["timestamp"] = _times(frame, columns.require(frame, "timestamp", path), path)
    rating = columns.source("rating")
    if rating in frame.columns:
        table["rating"] = numeric_column(frame, rating, path, required=False)
    elif "rating" in columns.mapping:
        columns.require(frame, "rating", path)
    return with_row_order(table)


def read_attributes(path: Path, key: str, columns: Columns) -> pd.DataFrame:
    """An items or users table: the key column as text first, then every other column,
    those the mapping names under their canonical name."""
    frame = read_table(path)
    ids = _ids(frame, columns.require(frame, key, path), path)
    renames = {source: canonical for canonical, source in columns.mapping.items()
               if canonical not in INTERACTION_COLUMNS and source in frame.columns}
    others = frame.drop(columns=["line", columns.source(key)]).rename(columns=renames)
    table = pd.concat([ids.rename(key), others], axis=1)
    return table.drop_duplicates(key).reset_index(drop=True)


def _ids(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    values = frame[column]
    if pd.api.types.is_float_dtype(values) and values.dropna().mod(1).eq(0).all():
        values = values.astype("Int64")  # 12.0 -> "12" (a Parquet id column with gaps is float)
    text = values.astype(object).where(values.notna(), "").astype(str)
    return required_text(frame.assign(**{column: text}), column, path)


def _times(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """Seconds since the epoch from numbers, datetimes or ISO 8601 text; every row needs one."""
    values = frame[column]
    if pd.api.types.is_datetime64_any_dtype(values):
        missing = values.isna().to_numpy()
        if missing.any():
            raise DataFileError(f"{path} line {int(frame['line'].to_numpy()[missing.argmax()])}: "
                                f"field '{column}' is empty (every row needs a time)")
        stamps = values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
        return (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds().astype("float64")
    if pd.api.types.is_numeric_dtype(values):
        return numeric_column(frame, column, path)
    text = values.astype(object).where(values.notna(), "").astype(str).str.strip()
    empty = (text == "").to_numpy()
    if empty.any():
        raise DataFileError(f"{path} line {int(frame['line'].to_numpy()[empty.argmax()])}: field '{column}' "
                            f"is empty (every row needs a time)")
    seconds = pd.to_numeric(text, errors="coerce")
    if pd.notna(seconds.iloc[0]):  # numbers, as the first row says: every row must be one
        return numeric_column(frame.assign(**{column: text}), column, path)
    return time_from_text(frame.assign(**{column: text}), column, path, fmt="ISO8601")


class TabularFormat(DatasetFormat):
    name = "tabular"
    description = ("your own tables: interactions.csv|.parquet|.jsonl (+ items.*, users.*), columns mapped "
                   "by dataset.columns")
    required = ("interactions.{csv,parquet,jsonl}",)
    optional = ("items.{csv,parquet,jsonl}", "users.{csv,parquet,jsonl}")

    def missing(self, folder: Path, selection: Selection = ALL) -> list[str]:
        return [] if table_files(folder, "interactions") else list(self.required)

    def source_files(self, folder: Path, selection: Selection = ALL) -> list[Path]:
        return sorted(path for table in TABLES for path in table_files(folder, table))

    def has_timestamps(self, selection: Selection = ALL) -> bool:
        return not selection.columns or "timestamp" in selection.column_map

    def timestamp_field(self, selection: Selection = ALL) -> str:
        if not selection.columns:
            return "the interaction file's column 'timestamp'"
        if "timestamp" in selection.column_map:
            return f"the interaction file's column '{selection.column_map['timestamp']}' (dataset.columns.timestamp)"
        return "dataset.columns maps no 'timestamp' column"

    def check(self, selection: Selection) -> None:
        if selection.category:
            raise SpecError(f"dataset.category: the format {self.name} has no parts")
        sources: dict[str, str] = {}
        for canonical, source in selection.columns:
            if not str(source).strip():
                raise SpecError(f"dataset.columns.{canonical}: empty column name")
            if source in sources:
                raise SpecError(f"dataset.columns: the column '{source}' is mapped twice "
                                f"({sources[source]} and {canonical})")
            sources[source] = canonical

    def read(self, folder: Path, name: str, selection: Selection = ALL) -> RawDataset:
        columns = Columns(selection)
        tables = {table: self._one(folder, table) for table in TABLES}
        interactions = read_interactions(tables["interactions"], columns, self.has_timestamps(selection))
        items = read_attributes(tables["items"], "item", columns) if tables["items"] else None
        users = read_attributes(tables["users"], "user", columns) if tables["users"] else None
        for canonical, source in columns.mapping.items():
            if canonical not in INTERACTION_COLUMNS and not any(
                    t is not None and canonical in t.columns for t in (items, users)):
                files = [p.name for p in (tables["items"], tables["users"]) if p]
                where = f"in {' or '.join(files)}" if files else "file: there is no items or users file"
                raise DataFileError(f"{folder}: dataset.columns.{canonical}: no column '{source}' {where} "
                                    f"(attributes such as {canonical} come from the items or users table)")
        return RawDataset(name, interactions, items, users)

    @staticmethod
    def _one(folder: Path, table: str) -> Path | None:
        found = table_files(folder, table)
        if len(found) > 1:
            raise DataFileError(f"{folder}: several {table} files ({', '.join(p.name for p in found)}); keep one")
        if not found and table == "interactions":
            raise DataFileError(f"{folder}: no interactions file (interactions.csv, .parquet or .jsonl)")
        return found[0] if found else None


FORMAT_LIST = [TabularFormat()]
DATASET_LIST: list = []  # read by path: dataset.path names the folder
