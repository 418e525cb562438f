"""CSV that a spreadsheet opens as data. Every CSV this suite writes goes through here:
submission names, descriptions and failure reasons are the submitter's text."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd

# A spreadsheet runs a cell that starts with one of these as a formula ("CSV injection",
# OWASP): `=HYPERLINK(...)` in a submission's name would be a live link or worse.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def spreadsheet_csv(frame: pd.DataFrame, path: str | Path | None = None) -> str | None:
    """CSV text (or, with `path`, a file) that a spreadsheet opens as data: every text
    cell quoted (a line break inside one cannot start a row) and, where it would run as
    a formula, prefixed with a single quote, as OWASP recommends; headers likewise.
    Numbers, negative ones included, and text that is just a number ("-0.5") stay."""
    safe = frame.rename(columns=_safe_cell)
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]):
            safe[column] = safe[column].map(_safe_cell)
    return safe.to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC)


def _safe_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value
