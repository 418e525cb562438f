"""Reading publishers' files, with errors that name the file, line and field.

Loaders build on these: `open_text` (plain or gzip), `read_records` (one JSON object or
Python literal per line), `read_delimited` (separated text, through pandas' C parser),
`read_unquoted` (big unquoted files, through pyarrow), and the checks of what a column
must hold (`required_text`, `numeric_column`)."""
from __future__ import annotations

import ast
import csv
import gzip
import io
import json
import tarfile
from contextlib import nullcontext
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator, Literal

import numpy as np
import pandas as pd

from benchmark.data.datasets.formats import DataFileError, as_numbers

__all__ = [
    "as_numbers", "cell_text", "check_field_counts", "error_text", "find_file", "find_gz_or_plain",
    "first_rows_for", "html_text", "iter_records", "join_parts", "nonblank_line_numbers", "numbers_or_nan",
    "numeric_column", "open_bytes", "open_text", "read_delimited", "read_records", "read_split_lines",
    "read_unquoted", "read_unquoted_fast", "require_gz_or_plain", "required_text", "selected_parts",
    "text_encoding", "text_of", "text_or_none", "time_from_text", "top_tags", "with_row_order",
]

LineSyntax = Literal["json", "python"]


# --- Opening files -------------------------------------------------------------------------

def open_text(path: Path, encoding: str = "utf-8") -> IO[str]:
    """A text handle on `path`, gunzipped when the name ends in .gz."""
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding=encoding, newline="")
    return path.open("r", encoding=encoding, newline="")


def open_bytes(path: Path) -> IO[bytes]:
    """A binary handle on `path`, gunzipped when the name ends in .gz."""
    return gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")


def find_file(folder: Path, *patterns: str) -> Path | None:
    """The first file of `folder` matching a pattern, in the patterns' order."""
    for pattern in patterns:
        found = sorted(folder.glob(pattern))
        if found:
            return found[0]
    return None


def find_gz_or_plain(folder: Path, name: str) -> Path | None:
    """`name`.gz, else `name`: the publisher's gzipped file, or the same file unpacked."""
    return find_file(folder, f"{name}.gz", name)


def require_gz_or_plain(folder: Path, name: str) -> Path:
    """`find_gz_or_plain`, a DataFileError naming both names when neither is there."""
    path = find_gz_or_plain(folder, name)
    if path is None:
        raise DataFileError(f"{folder}: no {name}.gz (or {Path(name).suffix})")
    return path


def text_encoding(path: Path) -> str:
    """UTF-8 when the whole file decodes as UTF-8, else Latin-1 (which decodes any byte):
    GroupLens' older files, Book-Crossing and HetRec's tags are ISO-8859-1."""
    try:
        with open_bytes(path) as handle:
            handle.read().decode("utf-8")
    except UnicodeDecodeError:
        return "latin-1"
    except (OSError, EOFError) as error:
        raise DataFileError(f"{path}: cannot be read ({error})") from None
    return "utf-8"


def error_text(error: BaseException) -> str:
    """The first line of an error's message (at most 200 characters), for our own messages."""
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


# --- One record a line ---------------------------------------------------------------------

def _parse_line(text: str, syntax: LineSyntax):
    if syntax == "json":
        return json.loads(text)
    return ast.literal_eval(text)  # the 2014 Amazon metadata, Steam: Python dict literals


def iter_records(path: Path, syntax: LineSyntax = "json", encoding: str = "utf-8"
                 ) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; a line that is not one object is a
    DataFileError naming the file and line (a truncated last line, above all)."""
    what = "a JSON object" if syntax == "json" else "a Python dict literal"
    try:
        with open_text(path, encoding) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = _parse_line(line, syntax)
                except (ValueError, SyntaxError, RecursionError, MemoryError) as error:
                    raise DataFileError(f"{path} line {number}: not {what} ({error_text(error)})") from None
                if not isinstance(record, dict):
                    raise DataFileError(f"{path} line {number}: not {what} (a {type(record).__name__})")
                yield number, record
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile, OSError) as error:
        if isinstance(error, DataFileError):
            raise
        raise DataFileError(f"{path}: cannot be read as {encoding} text ({error_text(error)})") from None


def read_records(path: Path, fields: dict[str, str], required: Iterable[str] = (), syntax: LineSyntax = "json",
                 encoding: str = "utf-8", convert: dict[str, Callable] | None = None) -> pd.DataFrame:
    """One row per record: `fields` maps each output column to the record's key (a
    dotted key reads into nested objects); a record without a `required` key is a
    DataFileError naming the file, line and field. `convert` turns a value on the way
    (e.g. a list of categories into text). The frame's `line` column is the line number."""
    required = set(required)
    convert = convert or {}
    columns: dict[str, list] = {name: [] for name in fields}
    lines: list[int] = []
    for number, record in iter_records(path, syntax, encoding):
        for name, key in fields.items():
            value = _lookup(record, key)
            if value is None and name in required:
                raise DataFileError(f"{path} line {number}: no field '{key}'")
            columns[name].append(convert[name](value) if name in convert and value is not None else value)
        lines.append(number)
    return pd.DataFrame(columns | {"line": np.asarray(lines, dtype="int64")})


def _lookup(record: dict, key: str):
    value = record
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


# --- Separated text ------------------------------------------------------------------------

def read_delimited(source: Path | IO[bytes], columns: list[str], sep: str, encoding: str = "utf-8",
                   header: bool = False, quoting: bool = False, optional: Iterable[str] = (),
                   escapechar: str | None = None, label: str | None = None,
                   encoding_errors: str = "strict") -> pd.DataFrame:
    """Separated text into a frame of text cells (column `line` = the line number).

    `source` is a file, or a stream (a member of an archive) that `label` names in errors.
    Without a header the file's fields are `columns`, in order; with one, `columns` must
    each be in it (named in the error when missing) and the `optional` ones are kept when
    there. A line with more fields than the header is a DataFileError naming the file
    and line: a wrong separator, or a separator inside a field. pandas streams the file
    (the Last.fm 1K listens are gigabytes), but for a multi-character separator
    (MovieLens' `::`): read whole, it becomes a tab, so that pandas' fast parser reads it."""
    label = label or str(source)
    try:
        with open_bytes(source) if isinstance(source, Path) else nullcontext(source) as handle:
            if len(sep) > 1:
                handle, sep = io.BytesIO(handle.read().replace(sep.encode(encoding), b"\t")), "\t"
            frame = pd.read_csv(handle, sep=sep, header=0 if header else None, names=None if header else columns,
                                dtype=str, keep_default_na=False, encoding=encoding,
                                encoding_errors=encoding_errors, quoting=csv.QUOTE_MINIMAL if quoting
                                else csv.QUOTE_NONE, escapechar=escapechar, skip_blank_lines=False,
                                engine="c", on_bad_lines="error")
    except pd.errors.ParserError as error:  # 'Expected 4 fields in line 7, saw 5': kept, with the likely cause
        raise DataFileError(f"{label}: {error_text(error)} (a wrong separator, or a quote or separator "
                            f"inside a field?)") from None
    except UnicodeDecodeError as error:
        raise DataFileError(f"{label}: not {encoding} text ({error_text(error)})") from None
    except (OSError, EOFError, tarfile.TarError) as error:
        raise DataFileError(f"{label}: cannot be read ({error_text(error)})") from None
    return _numbered(frame, columns, header, optional, label, sep)


def _numbered(frame: pd.DataFrame, columns: list[str], header: bool, optional: Iterable[str], label: str,
              sep: str) -> pd.DataFrame:
    """`read_delimited`'s columns, checked against the header, with `line`, blank lines left out."""
    frame.columns = [str(c).strip() for c in frame.columns]
    if header:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DataFileError(f"{label}: no column {', '.join(repr(c) for c in missing)} in the header "
                                f"(it has {', '.join(frame.columns)}); is the separator {sep!r}?")
        frame = frame[columns + [c for c in optional if c in frame.columns]]
    first_line = 2 if header else 1
    frame = frame.assign(line=np.arange(first_line, first_line + len(frame), dtype="int64"))
    blank = (frame[columns].apply(lambda col: col.str.len()).sum(axis=1) == 0).to_numpy()
    return frame[~blank].reset_index(drop=True)


def read_unquoted(path: Path, columns: list[str], sep: str, numeric: Iterable[str] = (), header: bool = False,
                  encoding: str = "utf-8", required: Iterable[str] | None = None) -> pd.DataFrame:
    """A big separated file without quoting: `numeric` columns as float64, the others as
    text exactly as published ("007" stays "007"), in this order, and `line` (blank lines
    skipped). `required` columns (default: all) must not be empty; the others may be (NaN, "").

    Parsed typed by pyarrow's multithreaded CSV reader (several times faster than
    pandas' C parser); when that fails or finds an empty required cell, the file is read
    again as text through `read_delimited`, whose checks name the file, line and field
    (and whose result is returned when the file is fine after all)."""
    required = tuple(columns if required is None else required)
    frame = read_unquoted_fast(path, columns, sep, numeric, header, encoding, required)
    if frame is not None:
        return frame
    return _unquoted_as_text(path, columns, sep, tuple(numeric), header, encoding, required)


def read_unquoted_fast(source: Path | IO[bytes], columns: list[str], sep: str, numeric: Iterable[str] = (),
                       header: bool = False, encoding: str = "utf-8", required: Iterable[str] | None = None
                       ) -> pd.DataFrame | None:
    """`read_unquoted`'s fast path, also for a stream (a file inside an archive): its
    frame, or None when pyarrow cannot parse the file or a `required` cell (default:
    every column's) is empty, so that the caller reads it again as text to name what is
    wrong. Blank lines are skipped in a file (its lines then counted again), refused in
    a stream."""
    numeric = set(numeric)
    frame, lines = _arrow_rows(source, columns, sep, numeric, header, encoding)
    if frame is None:
        return None
    if any(_empty(frame[c], c in numeric).any() for c in (columns if required is None else required)):
        return None
    return frame.assign(line=lines)


def _empty(values: pd.Series, numeric: bool) -> pd.Series:
    return values.isna() if numeric else values == ""


def _arrow_rows(source: Path | IO[bytes], columns: list[str], sep: str, numeric: set[str], header: bool,
                encoding: str) -> tuple[pd.DataFrame | None, np.ndarray | None]:
    """(frame, line numbers) parsed by pyarrow, or (None, None). Parsed first with blank
    lines kept, so that rows are lines and need no count; but a blank line is then a row
    of empty cells, so where a first cell is empty a file is parsed again with blank
    lines skipped, and its non-blank lines counted (a stream cannot be read twice)."""
    frame = _arrow_frame(source, columns, sep, numeric, header, encoding, skip_blank=False)
    if frame is not None and not _empty(frame[columns[0]], columns[0] in numeric).any():
        return frame, np.arange(1 + header, 1 + header + len(frame), dtype="int64")
    if not isinstance(source, Path):
        return None, None
    frame = _arrow_frame(source, columns, sep, numeric, header, encoding, skip_blank=True)
    if frame is None:
        return None, None
    return frame, nonblank_line_numbers(source, len(frame) + header)[int(header):]


def _arrow_frame(source: Path | IO[bytes], columns: list[str], sep: str, numeric: set[str], header: bool,
                 encoding: str, skip_blank: bool) -> pd.DataFrame | None:
    """The columns as pyarrow's CSV reader parses them (without quoting), or None when it cannot."""
    import pyarrow as pa
    import pyarrow.csv as arrow_csv

    try:
        if len(sep) > 1:  # pyarrow takes one character: a tab stands in, unless the file holds tabs
            with open_bytes(source) if isinstance(source, Path) else source as handle:
                data = handle.read()
            if b"\t" in data:
                return None
            source, sep = pa.BufferReader(data.replace(sep.encode(encoding), b"\t")), "\t"
            del data
        elif isinstance(source, Path):
            source = str(source)  # pyarrow gunzips a .gz path itself
        table = arrow_csv.read_csv(
            source,
            read_options=arrow_csv.ReadOptions(column_names=None if header else columns, encoding=encoding,
                                               block_size=1 << 26),
            parse_options=arrow_csv.ParseOptions(delimiter=sep, quote_char=False, newlines_in_values=False,
                                                 ignore_empty_lines=skip_blank),
            convert_options=arrow_csv.ConvertOptions(
                column_types={c: pa.float64() if c in numeric else pa.string() for c in columns},
                include_columns=columns, strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowException, OSError, EOFError, ValueError, KeyError):
        return None
    return table.to_pandas()


def _unquoted_as_text(path: Path, columns: list[str], sep: str, numeric: tuple[str, ...], header: bool,
                      encoding: str, required: tuple[str, ...]) -> pd.DataFrame:
    """`read_unquoted` through pandas, each fault named by file, line and field."""
    if len(sep) > 1:
        _refuse_tabs(path, columns, sep)
    elif not header:  # pandas pads a short line with empty cells silently: count the fields first
        check_field_counts(path, columns, sep)
    text = read_delimited(path, columns, sep, encoding=encoding, header=header)
    if len(sep) > 1 and not header:
        _refuse_lone_fields(text, path, columns, sep)

    def checked(column: str) -> pd.Series:
        if column in numeric:
            return numeric_column(text, column, path, required=column in required)
        return required_text(text, column, path) if column in required else text[column]

    return pd.DataFrame({column: checked(column) for column in columns} | {"line": text["line"]})


def _refuse_tabs(path: Path, columns: list[str], sep: str) -> None:
    """A tab in a file of `sep` (several characters) would split fields once `sep` is a tab."""
    with open_bytes(path) as handle:
        data = handle.read()
    tab = data.find(b"\t")
    if tab >= 0:
        line = data.count(b"\n", 0, tab) + 1
        raise DataFileError(f"{path} line {line}: a tab, but the fields are separated "
                            f"by {sep!r} ({sep.join(columns)}): a wrong separator?")


def _refuse_lone_fields(text: pd.DataFrame, path: Path, columns: list[str], sep: str) -> None:
    """A line of one field only: another separator than `sep` (or a truncated line)."""
    if len(columns) < 2:
        return
    lone = (text[columns[1:]] == "").all(axis=1).to_numpy()
    if lone.any():
        line = int(text["line"].to_numpy()[lone.argmax()])
        raise DataFileError(f"{path} line {line}: one field only, no {sep!r} between fields (expected "
                            f"{sep.join(columns)}; a wrong separator, or a truncated line?)")


def read_split_lines(path: Path, fields: list[str], sep: str, free: int | None = None,
                     encoding: str | None = None) -> pd.DataFrame:
    """A small separated file without quoting, line by line: one text column per field
    (and `line`). The field at index `free` (a title, a tag) takes whatever lies between
    the fixed fields before and after it, separators included. A line with too few fields
    (or too many, without a free field) is a DataFileError naming the file and line."""
    encoding = encoding or text_encoding(path)
    rows, lines = [], []
    with open_bytes(path) as handle:
        text = handle.read().decode(encoding)
    # Split on "\n" only: str.splitlines would also break at \x85 or \x1c, which Latin-1 text may hold.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        parts = line.split(sep)
        if free is not None and len(parts) > len(fields):
            tail = len(fields) - free - 1
            parts = parts[:free] + [sep.join(parts[free:len(parts) - tail])] + parts[len(parts) - tail:]
        if len(parts) != len(fields):
            expected = sep.join(fields)
            if len(parts) < len(fields):
                raise DataFileError(f"{path} line {number}: {len(parts)} of {len(fields)} fields, no field "
                                    f"'{fields[len(parts)]}' (expected {expected}; a truncated line, or not "
                                    f"separated by {sep!r}?)")
            raise DataFileError(f"{path} line {number}: {len(parts)} fields, expected {len(fields)} ({expected})")
        rows.append(parts)
        lines.append(number)
    frame = pd.DataFrame(rows, columns=fields, dtype=object) if rows else pd.DataFrame(columns=fields, dtype=object)
    return frame.assign(line=np.asarray(lines, dtype="int64"))


def check_field_counts(path: Path, names: list[str], sep: str, quoted: bool = False,
                       encoding: str = "utf-8") -> None:
    """Every non-blank line of a separated file holds len(names) fields, else a
    DataFileError naming the file, the line and the first missing field (a truncated
    line, or another separator) or the count of extra fields. pandas pads a short line
    with empty cells silently, so loaders call this before parsing. An unquoted file is
    scanned in blocks with numpy (fast on files of gigabytes); a quoted CSV (`quoted`)
    through the csv module, so that a separator inside quotes is no field break."""
    expected = len(names)
    found = _quoted_field_counts(path, sep, expected, encoding) if quoted else _field_counts(path, sep, expected)
    if found is None:
        return
    line, count = found
    if count < expected:
        raise DataFileError(f"{path} line {line}: {count} of {expected} fields, no field '{names[count]}' "
                            f"(a truncated line, or not separated by {sep!r}?)")
    raise DataFileError(f"{path} line {line}: {count} fields, expected {expected} ({', '.join(names)}): "
                        f"a wrong separator, or {sep!r} inside a field?")


def _field_counts(path: Path, sep: str, expected: int, block_size: int = 1 << 24) -> tuple[int, int] | None:
    """(line, fields) of the first non-blank line without `expected` fields, or None."""
    separator, newline = ord(sep), ord("\n")
    first = 1  # the number of the block's first line
    rest = b""
    try:
        with open_bytes(path) as handle:
            while True:
                block = handle.read(block_size)
                data = rest + block
                if not block:
                    data += b"\n" if data else b""
                    cut = len(data)
                else:
                    cut = data.rfind(b"\n") + 1
                rest = data[cut:]
                bytes_ = np.frombuffer(data, dtype=np.uint8, count=cut)
                ends = np.flatnonzero(bytes_ == newline)
                if len(ends):
                    starts = np.concatenate(([0], ends[:-1] + 1))
                    counts = np.bincount(np.searchsorted(ends, np.flatnonzero(bytes_ == separator)),
                                         minlength=len(ends)) + 1
                    length = ends - starts
                    blank = (length == 0) | ((length == 1) & (bytes_[starts] == ord("\r")))
                    bad = np.flatnonzero((counts != expected) & ~blank)
                    if len(bad):
                        return first + int(bad[0]), int(counts[bad[0]])
                    first += len(ends)
                if not block:
                    return None
    except (OSError, EOFError) as error:
        raise DataFileError(f"{path}: cannot be read ({error_text(error)})") from None


def _quoted_field_counts(path: Path, sep: str, expected: int, encoding: str) -> tuple[int, int] | None:
    try:
        with open_text(path, encoding) as handle:
            reader = csv.reader(handle, delimiter=sep)
            for row in reader:
                if row and len(row) != expected:
                    return reader.line_num, len(row)
    except (UnicodeDecodeError, OSError, EOFError, csv.Error) as error:
        raise DataFileError(f"{path}: cannot be read as {encoding} CSV ({error_text(error)})") from None
    return None



def nonblank_line_numbers(path: Path, rows: int, block_size: int = 1 << 24) -> np.ndarray:
    """The line numbers of the non-blank lines: 1..rows unless the file has a blank line
    (a cheap search), else counted block by block."""
    with open_bytes(path) as handle:
        head = handle.read(1)
        blank = head in (b"\n", b"\r")
        carry = head
        while not blank:
            block = handle.read(block_size)
            if not block:
                break
            data = carry + block
            blank = b"\n\n" in data or b"\n\r\n" in data
            carry = data[-2:]
    if not blank:
        return np.arange(1, rows + 1, dtype="int64")
    lines: list[np.ndarray] = []
    first, rest = 1, b""
    with open_bytes(path) as handle:
        while True:
            block = handle.read(block_size)
            data = rest + block if block else rest + (b"\n" if rest else b"")
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            bytes_ = np.frombuffer(data, dtype=np.uint8, count=cut)
            ends = np.flatnonzero(bytes_ == ord("\n"))
            starts = np.concatenate(([0], ends[:-1] + 1)) if len(ends) else ends
            length = ends - starts
            filled = ~((length == 0) | ((length == 1) & (bytes_[starts] == ord("\r"))))
            lines.append(first + np.flatnonzero(filled))
            first += len(ends)
            if not block:
                break
    return np.concatenate(lines)[:rows].astype("int64")


# --- What a column must hold ---------------------------------------------------------------

def required_text(frame: pd.DataFrame, column: str, path: Path, field: str | None = None) -> pd.Series:
    """A text column that must be non-empty in every row; an empty cell (a truncated
    line leaves them) is a DataFileError naming the file, line and field. Numbers
    and other values of parsed records become their text (None an empty cell)."""
    values = frame[column].fillna("").astype(str).str.strip()
    empty = (values == "").to_numpy()
    if empty.any():
        line = int(frame["line"].to_numpy()[empty.argmax()])
        raise DataFileError(f"{path} line {line}: field '{field or column}' is empty (a truncated line?)")
    return values


def numeric_column(frame: pd.DataFrame, column: str, path: Path, field: str | None = None,
                   required: bool = True) -> pd.Series:
    """A column as float64 with `as_numbers`' errors (file, line and field; lines read
    from `line`): text cells, numbers a parser read, or the values of parsed records
    (numbers, numeric text, None for an empty cell)."""
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values):
        cells = values.astype("float64").to_numpy()
    else:
        cells = values.to_numpy(dtype=object)
        if pd.api.types.infer_dtype(cells, skipna=False) != "string":  # records' values, not only text
            parsed = pd.to_numeric(values, errors="coerce").astype("float64")
            if not parsed.isna().any():
                return parsed
            cells = values.map(cell_text).to_numpy(dtype=object)  # as text, so that the error shows the cell
    # as_numbers names line index + first_line: index each cell by its line - 1.
    parsed = as_numbers(pd.Series(cells, index=frame["line"].to_numpy() - 1), path, field or column,
                        required=required, first_line=1)
    return pd.Series(parsed.to_numpy(), index=frame.index)


def numbers_or_nan(values: pd.Series) -> pd.Series:
    """Attribute values as float64, NaN where one is not a number (no error: an attribute is optional)."""
    return pd.to_numeric(values, errors="coerce").astype("float64")


def time_from_text(frame: pd.DataFrame, column: str, path: Path, fmt: str | None = None,
                   field: str | None = None) -> pd.Series:
    """Dates or date-times as text into seconds since the epoch (UTC, float64); a cell
    that does not parse is a DataFileError naming the file, line and field."""
    text = frame[column].fillna("").astype(str)
    parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = bad.argmax()
        raise DataFileError(f"{path} line {int(frame['line'].to_numpy()[row])}: field '{field or column}': "
                            f"{text.iloc[row]!r} is not a date" + (f" in the form {fmt}" if fmt else ""))
    return (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds().astype("float64")


def text_or_none(values: pd.Series) -> np.ndarray:
    """Text cells trimmed, as an object array; empty or missing cells None."""
    text = values.astype(object)
    text = text.where(text.isna(), text.astype(str).str.strip())
    return text.where(text.notna() & (text != ""), None).to_numpy(dtype=object)


def first_rows_for(table: pd.DataFrame, key: str, seen: Iterable[str]) -> pd.DataFrame:
    """An attribute table (items, users) cut to the first row of each `key` the
    interactions name (`seen`): the others describe nothing that was read."""
    table = table.drop_duplicates(key)
    return table[table[key].isin(set(seen))].reset_index(drop=True)


def join_parts(parts: Iterable[tuple[pd.DataFrame, pd.DataFrame | None]]
               ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The (interactions, items) of a multi-part read: the parts' interactions one after
    the other, their items together (`first_rows_for` those interactions; None when no
    part has any)."""
    interactions, items = zip(*parts)
    inter = pd.concat(interactions, ignore_index=True) if len(interactions) > 1 else interactions[0]
    items = [table for table in items if table is not None]
    return inter, (first_rows_for(pd.concat(items, ignore_index=True), "item", inter["item"]) if items else None)


def with_row_order(interactions: pd.DataFrame) -> pd.DataFrame:
    """The canonical interaction table: user and item as text, timestamp float64, the
    original row order in `row` (it breaks timestamp ties), the line numbers dropped."""
    table = interactions.drop(columns=[c for c in ("line",) if c in interactions]).reset_index(drop=True)
    table["user"] = table["user"].astype(str)
    table["item"] = table["item"].astype(str)
    table["timestamp"] = table["timestamp"].astype("float64") if "timestamp" in table else np.nan
    return table.assign(row=np.arange(len(table), dtype="int64"))


def top_tags(item: pd.Series, tag: pd.Series, limit: int = 10) -> pd.Series:
    """item -> up to `limit` of its tags, most often applied first (ties: first used
    first), joined with ", "; empty tags left out."""
    frame = pd.DataFrame({"item": item.astype(str).to_numpy(), "tag": tag.astype(str).str.strip().to_numpy()})
    frame = frame[frame["tag"] != ""].reset_index(drop=True)
    if frame.empty:
        return pd.Series(dtype=object)
    frame["first"] = np.arange(len(frame))
    counted = frame.groupby(["item", "tag"], sort=False).agg(n=("first", "size"), first=("first", "min"))
    counted = counted.reset_index().sort_values(["item", "n", "first"], ascending=[True, False, True])
    counted = counted.groupby("item", sort=False).head(limit)
    return counted.groupby("item", sort=False)["tag"].agg(", ".join)


# --- Metadata values as text, and the parts of a multi-part folder ---------------------

def cell_text(value) -> str:
    """A value as one text cell: None and NaN as "", anything else as str() writes it."""
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def text_of(value, sep: str = ", ", inner: str = " > ") -> str | None:
    """A metadata value as one text cell: a list's non-empty elements joined with `sep`
    (a nested list, e.g. an Amazon category path, joined with `inner` first), a dict as
    "key: value" pairs joined with "; ", a number as its text; None, an empty text or an
    empty list as None."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, dict):
        pairs = [f"{key}: {text}" for key, item in value.items() if (text := text_of(item, sep, inner))]
        return "; ".join(pairs) or None
    if isinstance(value, (list, tuple, np.ndarray)):
        texts = [text_of(item, inner, inner) for item in value]
        return sep.join(t for t in texts if t) or None
    return str(value)


def html_text(value) -> str | None:
    """Text with its HTML tags removed and entities decoded (`&amp;` -> `&`), spaces
    collapsed, None when nothing is left; a value that is not text as `text_of` has it."""
    import html
    import re

    if not isinstance(value, str):
        return text_of(value)
    text = " ".join(html.unescape(re.sub(r"<[^>]*>", " ", value)).split())
    return text or None


def selected_parts(dataset_format, folder: Path, selection) -> list[str]:
    """The parts a multi-part format reads: the selected category, else every part the
    folder holds; a DataFileError when there is none."""
    parts = [selection.category] if selection.category else dataset_format.categories(folder)
    if not parts:
        raise DataFileError(f"{folder}: no part's files ({dataset_format.needs()})")
    return parts
