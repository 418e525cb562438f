"""From a task's dataset and split spec to the prepared tables, cached as Parquet.

The source files come from the dataset registry (benchmark/data/datasets), which also
reads them into the canonical raw tables.

Two cache levels, both under the llm4rec cache folder: the canonical raw tables keyed
by the source files' sha256, and the processed split keyed by the dataset fingerprint
plus the filtering and split settings. A re-run reads Parquet and recomputes nothing.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from benchmark.data.assets import sha256_of
from benchmark.data.dataset import (Dataset, RawDataset, filtered, fingerprint, keep_positive,
                                    release_unused_memory)
from benchmark.data.datasets import ALL, DatasetError, locate
from benchmark.data.datasets.formats import DataFileError
from benchmark.data.splits import global_time, leave_one_out, ratio_split, split_summary
from benchmark.data.synthetic import synthetic_dataset
from benchmark.paths import cache_dir
from benchmark.tasks.schema import DatasetSpec, SplitSpec, TaskSpec

# Bump when the processing code changes what it produces, so old caches are not reused.
PROCESSING_VERSION = 3


@dataclass(frozen=True)
class PreparedData:
    """A task's data: dense tables and the interactions in chronological order with
    their split part (see benchmark.data.splits)."""

    dataset: Dataset
    sequence: pd.DataFrame
    dataset_fingerprint: str
    split_fingerprint: str
    summary: dict


def prepare(task: TaskSpec, log: Callable[[str], None] = print) -> PreparedData:
    """The task's data, prepared once and cached. A dataset that cannot be found or read
    is a DatasetError (a SpecError) naming the task, its `dataset` field and the file,
    line and column at fault."""
    try:
        raw_fingerprint, raw = _raw_dataset(task.dataset, log)
    except DataFileError as error:  # the format's reader names the file, line and column
        raise DatasetError(f"{task.origin}: {_dataset_field(task.dataset)}: {error}") from None
    except DatasetError as error:  # the registry names dataset.path, or the dataset's name
        raise DatasetError(f"{task.origin}: {error}") from None
    # category and columns shape the raw tables, so the raw fingerprint holds them already.
    settings = {"dataset": task.dataset.model_dump(exclude={"name", "path", "category", "columns"}),
                "split": task.split.model_dump(), "version": PROCESSING_VERSION,
                "ctr": task.ctr.model_dump() if task.ctr else None}
    key = _digest(raw_fingerprint, json.dumps(settings, sort_keys=True))
    folder = cache_dir() / "processed" / f"{task.dataset.name}-{key[:16]}"
    if (folder / "meta.json").is_file():
        return _read_prepared(folder, task.dataset.name)
    # raw() is handed over, not kept: _process lets the raw tables go once it has filtered them.
    prepared = _process(raw(), task, raw_fingerprint, log)
    _write_prepared(folder, prepared)
    return prepared


def _process(raw: RawDataset, task: TaskSpec, raw_fingerprint: str,
             log: Callable[[str], None] | None = None) -> PreparedData:
    if log is not None:
        log(f"data: preparing {task.task} ({task.dataset.name}, {len(raw.interactions):,} interactions)")
    source = f"task {task.task}"
    implicit, filters = task.dataset.implicit, task.dataset.filters
    # keep_positive, k_core and densify in one pass, the rows already in chronological order.
    dense = filtered(raw, implicit.min_rating if implicit else None, filters.min_user_interactions,
                     filters.min_item_interactions, source)
    del raw  # the raw tables can go (at scale, the largest thing here) unless a caller holds them
    release_unused_memory()
    if dense is None:
        raise DatasetError(f"{source}: no interactions remain after dataset.filters {filters}")
    if task.ctr is not None:
        dense = _with_labels(dense, task.ctr.label_min_rating, source)
    sequence, extra = _split(dense.interactions, task.split)
    # Interactions in chronological order, as a cached copy is read back.
    dataset = Dataset(dense.name, sequence.drop(columns="part"), dense.items, dense.users)
    split_fingerprint = fingerprint(sequence, dataset.items, dataset.users)
    release_unused_memory()  # what hashing took, before the Parquet writer needs its own
    return PreparedData(
        dataset=dataset,
        sequence=sequence,
        dataset_fingerprint=raw_fingerprint,
        split_fingerprint=split_fingerprint,
        summary=split_summary(sequence, dataset.n_users, dataset.n_items) | extra,
    )


def _split(interactions: pd.DataFrame, split: SplitSpec) -> tuple[pd.DataFrame, dict]:
    if split.method == "leave_one_out":
        return leave_one_out(interactions, split.min_user_interactions), {}
    if split.method == "global_time":
        return global_time(interactions, split.valid_fraction, split.test_fraction)
    return ratio_split(interactions, split.ratios, split.order, split.seed), {}


def _with_labels(dataset: Dataset, min_rating: float, source: str) -> Dataset:
    """CTR: label = 1 when the rating is at least the threshold."""
    inter = keep_positive(dataset.interactions, min_rating, source)  # checks the field exists
    labels = dataset.interactions.index.isin(inter.index).astype("int8")
    return Dataset(dataset.name, dataset.interactions.assign(label=labels), dataset.items, dataset.users)


def _dataset_field(spec: DatasetSpec) -> str:
    return f"dataset.path {spec.path}" if spec.path else f"dataset.name '{spec.name}'"


def _raw_dataset(spec: DatasetSpec, log) -> tuple[str, Callable[[], RawDataset]]:
    """(fingerprint, loader) for the canonical raw tables, cached by source digest."""
    if spec.synthetic:
        raw = synthetic_dataset(spec.name, **spec.synthetic.model_dump())
        return raw.fingerprint, lambda: raw
    source = locate(spec.name, spec.path, log, spec.selection())
    # The selection is part of the key only when there is one (earlier caches stay valid).
    selected = [source.selection.key()] if source.selection != ALL else []
    source_digest = _digest(*selected, *(f"{p.name}:{sha256_of(p)}" for p in source.files()))
    cache = cache_dir() / "raw" / f"{spec.name}-{source_digest[:16]}"
    if not (cache / "meta.json").is_file():
        log(f"data: reading {spec.name} from {source.folder}")
        raw = source.read(spec.name)
        raw_fingerprint = raw.fingerprint  # (a property: it hashes every cell)
        _write_tables(cache, {"interactions": raw.interactions, "items": raw.items, "users": raw.users},
                      {"fingerprint": raw_fingerprint, "source": str(source.folder)})
        # Just read: the first load needs no cache read back, and keeps no reference to
        # the tables it hands over (so that they can be freed once processed).
        just_read = [raw]
        return raw_fingerprint, lambda: just_read.pop() if just_read else _load_raw(cache, spec.name)
    meta = json.loads((cache / "meta.json").read_text())
    return meta["fingerprint"], lambda: _load_raw(cache, spec.name)


def _load_raw(cache: Path, name: str) -> RawDataset:
    tables = _read_tables(cache)
    return RawDataset(name, tables["interactions"], tables.get("items"), tables.get("users"))


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _write_tables(folder: Path, tables: dict[str, pd.DataFrame | None], meta: dict) -> None:
    """Write Parquet files, then meta.json last: its presence marks a complete cache."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        if table is not None:
            table.to_parquet(folder / f"{name}.parquet", index=False)
    (folder / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    release_unused_memory()  # the Parquet writer's buffers


def _read_tables(folder: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_parquet(p) for p in folder.glob("*.parquet")}


def _write_prepared(folder: Path, prepared: PreparedData) -> None:
    d = prepared.dataset
    _write_tables(folder, {"sequence": prepared.sequence, "items": d.items, "users": d.users}, {
        "dataset_fingerprint": prepared.dataset_fingerprint,
        "split_fingerprint": prepared.split_fingerprint,
        "summary": prepared.summary,
    })


def _read_prepared(folder: Path, name: str) -> PreparedData:
    meta = json.loads((folder / "meta.json").read_text())
    tables = _read_tables(folder)
    sequence = tables["sequence"]
    dataset = Dataset(name, sequence.drop(columns="part"), tables["items"], tables["users"])
    return PreparedData(dataset, sequence, meta["dataset_fingerprint"], meta["split_fingerprint"],
                        meta["summary"])


def load_raw(spec: DatasetSpec, log: Callable[[str], None] = print) -> RawDataset:
    """A dataset's canonical raw tables, before any task filtering (through the raw
    cache); errors as `prepare` gives them, naming the dataset field and the file."""
    try:
        return _raw_dataset(spec, log)[1]()
    except DataFileError as error:
        raise DatasetError(f"{_dataset_field(spec)}: {error}") from None
