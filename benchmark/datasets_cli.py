"""`llm4rec datasets …`: the dataset registry — list it, show a dataset's statistics,
fetch its files, export its canonical tables.

Only Typer is imported at module level: `llm4rec --help` stays fast."""
from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

datasets_app = typer.Typer(
    help="The dataset registry: list the datasets (no subcommand), show one's statistics, fetch its files, "
         "export its canonical tables.", invoke_without_command=True)


class Output(str, Enum):
    table = "table"
    json = "json"


class ExportAs(str, Enum):
    parquet = "parquet"
    atomic = "atomic"
    hf = "hf"


FormatOption = Annotated[Output, typer.Option("--format", help="table (default) or json.")]
PathOption = Annotated[Optional[Path], typer.Option(
    "--path", help="A folder holding the publisher's files (default: the registry's cached download).")]
CategoryOption = Annotated[Optional[str], typer.Option(
    "--category", help="The part of a multi-part source, e.g. an Amazon category such as Beauty.")]


def _console():
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def _fail(message: str) -> None:
    from benchmark.cli import _fail as fail

    fail(message)


@datasets_app.callback()
def datasets(ctx: typer.Context, output: FormatOption = Output.table) -> None:
    """List the registered datasets: name, source, licence note, whether present locally,
    the files its format reads. `--format json` gives a list of objects with `name`."""
    if ctx.invoked_subcommand is not None:
        return
    from dataclasses import asdict

    from rich.markup import escape
    from rich.table import Table

    from benchmark.data.datasets import available_datasets

    infos = available_datasets()
    if output == Output.json:
        print(json.dumps([asdict(info) for info in infos], indent=2))
        return
    table = Table("name", "present", "format (files)", "source", "licence", show_lines=True)
    for info in infos:
        parts = f"\nparts: {', '.join(info.categories[:6])}{'…' if len(info.categories) > 6 else ''}" \
            if info.categories else ""
        times = "" if info.timestamps else "\n(no timestamps)"
        table.add_row(escape(info.name), "yes" if info.present else "no", escape(info.files + times + parts),
                      escape(info.source if info.source else info.homepage), escape(info.licence))
    _console().print(table)


def _spec(name: str, path: Path | None, category: str | None):
    from pydantic import ValidationError

    from benchmark.specs import describe_validation_error
    from benchmark.tasks.schema import DatasetSpec

    try:
        return DatasetSpec(name=name, path=str(path) if path else None, category=category)
    except ValidationError as error:
        _fail(describe_validation_error("dataset", error))


@datasets_app.command()
def show(name: Annotated[str, typer.Argument(help="A registered dataset (or any name, with --path).")],
         path: PathOption = None, category: CategoryOption = None, output: FormatOption = Output.table) -> None:
    """The canonical tables' statistics before any task filtering (users, items,
    interactions, items with a title, time span, density, Gini of item popularity,
    median history length, users whose last two interactions tie), the files read with
    their sha256, and whether the publisher's checksum vouched for them."""
    from rich.table import Table

    from benchmark.data.datasets import DATASETS, AssetSource, locate
    from benchmark.data.datasets.statistics import provenance, raw_statistics
    from benchmark.data.pipeline import load_raw
    from benchmark.progress import log
    from benchmark.specs import SpecError

    spec = _spec(name, path, category)
    try:
        source = locate(spec.name, spec.path, log, spec.selection())
        entry = DATASETS.get(name)
        asset = entry is not None and isinstance(entry.source, AssetSource) and not path
        report = {"name": name, "category": category, "statistics": raw_statistics(load_raw(spec, log=log)),
                  "source": provenance(source, entry.source.checksum_note() if asset else None),
                  "licence": DATASETS[name].licence if name in DATASETS else "(not a registered dataset)"}
    except SpecError as error:
        _fail(str(error))
    if output == Output.json:
        print(json.dumps(report, indent=2))
        return
    table = Table("statistic", "value", title=f"{name}{f' ({category})' if category else ''}: before task filtering")
    for key, value in report["statistics"].items():
        table.add_row(key, "—" if value is None else str(value))
    table.add_row("files", ", ".join(f"{f['file']} (sha256 {f['sha256'][:12]}…)" for f in report["source"]["files"]))
    table.add_row("checksum", report["source"]["checksum"])
    table.add_row("licence", report["licence"])
    _console().print(table)


@datasets_app.command()
def fetch(name: Annotated[str, typer.Argument(help="A registered dataset.")],
          category: CategoryOption = None) -> None:
    """Download a dataset's files from the publisher where the network allows, verify them
    (the publisher's checksum where one is published) and unpack them into the cache;
    without network, say where to put the files by hand."""
    from benchmark.data.datasets import DATASETS, fetch as fetch_files
    from benchmark.progress import log
    from benchmark.specs import SpecError, unknown_name_error

    if name not in DATASETS:
        _fail(str(unknown_name_error("dataset", name, DATASETS)))
    try:
        DATASETS[name].check_category(category)
        folder = fetch_files(DATASETS[name], log, category)
    except SpecError as error:
        _fail(str(error))
    print(folder)


@datasets_app.command()
def export(name: Annotated[str, typer.Argument(help="A registered dataset (or any name, with --path).")],
           as_format: Annotated[ExportAs, typer.Option("--format", help="parquet, atomic (RecBole) or hf.")],
           out: Annotated[Path, typer.Option("--out", help="The folder to write into.")],
           path: PathOption = None, category: CategoryOption = None) -> None:
    """Write the canonical tables (interactions, items with their titles, users) as
    Parquet, as RecBole atomic files, or as a Hugging Face `datasets` dataset."""
    from benchmark.data.datasets.export import export_dataset
    from benchmark.data.pipeline import load_raw
    from benchmark.progress import log
    from benchmark.specs import SpecError

    spec = _spec(name, path, category)
    try:
        written = export_dataset(load_raw(spec, log=log), out, as_format.value)
    except SpecError as error:
        _fail(str(error))
    for file in written:
        print(file)
