"""`llm4rec datasets export`: a dataset's canonical tables as Parquet, as RecBole atomic
files (so RecBole users move data both ways: the recbole-atomic format reads them back)
or as a Hugging Face `datasets` DatasetDict saved to disk."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd

from benchmark.data.dataset import RawDataset

ExportFormat = Literal["parquet", "atomic", "hf"]
EXPORT_FORMATS: tuple[str, ...] = ("parquet", "atomic", "hf")

# Canonical column -> RecBole field name (the others keep their names).
ATOMIC_NAMES = {"user": "user_id", "item": "item_id"}


def tables(raw: RawDataset) -> dict[str, pd.DataFrame]:
    """The canonical tables present: interactions, and items / users where the source has them."""
    found = {"interactions": raw.interactions, "items": raw.items, "users": raw.users}
    return {name: table for name, table in found.items() if table is not None}


def export_dataset(raw: RawDataset, out: Path, export_format: ExportFormat) -> list[Path]:
    """Write the tables into `out` (created); the files written."""
    out.mkdir(parents=True, exist_ok=True)
    if export_format == "parquet":
        written = []
        for name, table in tables(raw).items():
            table.to_parquet(out / f"{name}.parquet", index=False)
            written.append(out / f"{name}.parquet")
        return written
    if export_format == "atomic":
        return write_atomic(raw, out)
    if export_format == "hf":
        return [write_hf(raw, out)]
    raise ValueError(f"export format '{export_format}': one of {', '.join(EXPORT_FORMATS)}")


def write_atomic(raw: RawDataset, out: Path) -> list[Path]:
    """`<name>.inter` (user_id, item_id, [rating], [timestamp]: left out when the source
    has no times, as RecBole then keeps file order), `.item` and `.user`. Text fields are
    `token_seq` with tabs and line breaks turned into spaces; numbers are `float`."""
    inter = raw.interactions.drop(columns=["row"])
    if inter["timestamp"].isna().all():
        inter = inter.drop(columns=["timestamp"])
    written = [_write_atomic_table(inter, out / f"{raw.name}.inter", keys=("user", "item"))]
    for table, suffix, key in ((raw.items, "item", "item"), (raw.users, "user", "user")):
        if table is not None:
            written.append(_write_atomic_table(table, out / f"{raw.name}.{suffix}", keys=(key,)))
    return written


def _write_atomic_table(table: pd.DataFrame, path: Path, keys: tuple[str, ...]) -> Path:
    headers, cells = [], []
    for column in table.columns:
        values = table[column]
        name = ATOMIC_NAMES.get(column, column)
        if column in keys:
            kind, text = "token", values.astype(str)
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            kind, text = "float", values.astype("float64").astype(str).replace("nan", "")
        else:
            kind = "token_seq"
            text = values.fillna("").astype(str).str.replace(r"[\t\r\n]+", " ", regex=True)
        headers.append(f"{name}:{kind}")
        cells.append(text.reset_index(drop=True))
    lines = cells[0].str.cat(cells[1:], sep="\t") if len(cells) > 1 else cells[0]
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write("\t".join(headers) + "\n")
        handle.writelines(line + "\n" for line in lines)
    return path


def write_hf(raw: RawDataset, out: Path) -> Path:
    """A `datasets.DatasetDict` with one split per table, saved with `save_to_disk`
    (`datasets.load_from_disk(out)` reads it back)."""
    import datasets

    parts = {name: datasets.Dataset.from_pandas(table, preserve_index=False) for name, table in tables(raw).items()}
    datasets.DatasetDict(parts).save_to_disk(str(out))
    return out
