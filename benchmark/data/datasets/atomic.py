"""The RecBole atomic format (`<name>.inter`, `.item`, `.user`): tab-separated, with a
header of `field:type` where type is token, token_seq, float or float_seq. Every line
has the header's number of fields; the interactions' timestamp is a number in every row,
whatever its declared type (RecBole files often say `timestamp:token`)."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.dataset import RawDataset, from_atomic_tables
from benchmark.data.datasets.formats import ALL, DataFileError, DatasetFormat, Selection, as_numbers

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
    scan = _scan(path)
    fields, blank_lines = scan.fields, scan.blank
    numbers = {f.name for f in fields if f.kind == "float" or f.name in numeric}
    frame = _read_plain(path, fields, numbers, scan.lines) if scan.plain else None
    if frame is None:
        try:
            frame = _read_rows(path, fields, numbers)
        except ValueError:  # text where a number belongs: read it all as text, to name the cell
            try:
                frame = _read_rows(path, fields, set())
            except ValueError as error:
                raise AtomicFileError(f"{path}: {error}") from None
    if blank_lines:  # (dropping no rows would still copy every column)
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


# Number cells that pandas' parser and Arrow's read alike: at most 15 characters, all
# digits, "-" or "." (no exponent, so the value is one correctly rounded division by an
# exact power of ten either way). Anything else is left to pandas.
_PLAIN_NUMBER_CHARS = 15
_PLAIN_NUMBER_BYTES = np.zeros(256, dtype=bool)
_PLAIN_NUMBER_BYTES[list(b"0123456789-.")] = True
_READ_BLOCK = 1 << 22  # bytes per Arrow batch: one batch of text at a time, not too many chunks


def _read_plain(path: Path, fields: list[Field], numbers: set[str], lines: int) -> pd.DataFrame | None:
    """What `_read_rows` returns, read by Arrow's CSV reader instead (5x faster, and no
    Python string per cell), for a plain file (see `_scan`) whose number cells are plain
    numbers; None when that does not hold, and the caller reads it with pandas."""
    text_dtype = pd.Series([], dtype=str).dtype
    names = [f.name for f in fields]
    if (not isinstance(text_dtype, pd.StringDtype) or text_dtype.storage != "pyarrow"
            or len(set(names)) != len(names)):
        return None
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    text = pa.large_string()  # what pandas' str dtype holds
    columns: dict[str, list | np.ndarray] = {n: np.empty(lines) if n in numbers else [] for n in names}
    done = 0
    try:
        # Every cell as text; number columns are checked and converted batch by batch,
        # so their text never exists for the whole file at once.
        reader = pacsv.open_csv(
            path, read_options=pacsv.ReadOptions(skip_rows=1, column_names=names, block_size=_READ_BLOCK),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False, escape_char=False),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, text), null_values=[],
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False))
        for batch in reader:
            rows = slice(done, done + batch.num_rows)
            if rows.stop > lines:
                return None
            for name in names:
                cells = batch.column(name)
                if name not in numbers:
                    columns[name].append(cells)
                elif not _plain_numbers(cells):
                    return None
                else:  # Arrow refuses what is not a number (ArrowInvalid): pandas then names it
                    columns[name][rows] = pc.cast(cells, pa.float64()).to_numpy()
            done = rows.stop
            del batch, cells
            # Arrow's allocator keeps what it freed (this batch's text): hand it back, or
            # the process holds the file's text on top of the table at the end.
            pa.default_memory_pool().release_unused()
    except (pa.ArrowInvalid, UnicodeDecodeError):  # e.g. text that is not UTF-8: pandas names the error
        return None
    if done != lines:
        return None
    return pd.DataFrame({name: values if name in numbers else pd.array(pa.chunked_array(values, text), dtype=text_dtype)
                         for name, values in columns.items()}, copy=False)


def _plain_numbers(cells) -> bool:
    """Whether every cell of an Arrow large_string array (no nulls) is short and made of
    digits, "-" and "." only; read from its offsets and bytes, without a string per cell."""
    _, offsets, data = cells.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int64)[cells.offset:cells.offset + len(cells) + 1]
    if not len(cells) or np.diff(bounds).max() > _PLAIN_NUMBER_CHARS:
        return not len(cells)
    return bool(_PLAIN_NUMBER_BYTES[np.frombuffer(data, dtype=np.uint8)[bounds[0]:bounds[-1]]].all())


@dataclass(frozen=True)
class _Scan:
    fields: list[Field]
    blank: list[int]  # line numbers of blank lines
    lines: int  # lines after the header
    # One row per line, nothing but tabs and newlines for a parser to interpret: no blank
    # or empty lines, no carriage return, no NUL byte, at least one line.
    plain: bool


_SCAN_BLOCK = 1 << 23  # bytes per NumPy pass


def _scan(path: Path) -> _Scan:
    """The header's fields, and the blank lines; every other line must have as many
    fields as the header (a missing or extra tab would shift the columns silently).
    Lines end at "\\n"; a blank one holds nothing but "\\r". Counted with NumPy a block
    at a time, from the positions of the control bytes (tabs, newlines, "\\r"...)."""
    blank: list[int] = []
    with path.open("rb") as handle:
        head = handle.readline()
        try:
            fields = _fields(path, head.decode("utf-8-sig").rstrip("\r\n").split("\t"))
        except UnicodeDecodeError:
            raise AtomicFileError(f"{path} line 1: the header is not UTF-8 text") from None
        plain = not any(byte < 14 and byte not in (9, 10) for byte in head)
        lines, carry = 0, b""  # lines seen after the header; the unfinished line
        while block := handle.read(_SCAN_BLOCK):
            data = np.frombuffer(carry + block if carry else block, dtype=np.uint8)
            marks = np.flatnonzero(data < 14)  # tab 9, newline 10, "\r" 13, NUL 0...
            kinds = data[marks]
            newline = kinds == 10
            if not newline.any():
                carry = data.tobytes()
                continue
            complete = int(np.flatnonzero(newline)[-1]) + 1
            carry = data[marks[complete - 1] + 1:].tobytes()
            marks, kinds, newline = marks[:complete], kinds[:complete], newline[:complete]
            ends = marks[newline]
            starts = np.empty_like(ends)
            starts[0], starts[1:] = 0, ends[:-1] + 1
            found = np.diff(np.cumsum(kinds == 9)[newline], prepend=0) + 1
            # No other control byte (a "\r" or NUL is read differently by parsers), no empty line.
            plain = plain and bool((newline | (kinds == 9)).all()) and not (ends == starts).any()
            bad = np.flatnonzero(found != len(fields))
            if bad.size:
                returns = np.diff(np.cumsum(kinds == 13)[newline], prepend=0)
                is_blank = ends[bad] - starts[bad] == returns[bad]  # nothing but "\r" before the "\n"
                if not is_blank.all():
                    first = bad[np.argmin(is_blank)]
                    _wrong_fields(path, fields, lines + 2 + int(first), int(found[first]))
                blank.extend((lines + 2 + bad).tolist())
                plain = False
            lines += ends.size
        if carry:  # a last line without "\n"
            lines += 1
            found = carry.count(b"\t") + 1
            plain = plain and not any(byte < 14 and byte != 9 for byte in carry)
            if found != len(fields):
                if carry.strip(b"\r\n"):
                    _wrong_fields(path, fields, lines + 1, found)
                blank.append(lines + 1)
                plain = False
    return _Scan(fields, blank, lines, plain and lines > 0)


def _wrong_fields(path: Path, fields: list[Field], line: int, found: int) -> None:
    raise AtomicFileError(f"{path} line {line}: {found} fields, but the header has {len(fields)} "
                          f"({', '.join(f.header for f in fields)})")


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

    def read(self, folder: Path, name: str, selection: Selection = ALL) -> RawDataset:
        return from_atomic_tables(name, read_atomic_folder(folder, atomic_base_name(folder)))
