"""`llm4rec study ...`: studies over many runs (Typer sub-app)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from benchmark.cli_options import Executor, RayAddress, RayWorkers

study_app = typer.Typer(help="Studies over many runs, with a report (Markdown + HTML).", no_args_is_help=True)


@study_app.command("paradigms")
def paradigms(
    dataset: Annotated[str, typer.Option("--dataset", help="The dataset: tasks sequential/<d>, zeroshot/<d> "
                                         "and ctr/<d>-sample.")] = "ml-100k",
    quick: Annotated[bool, typer.Option("--quick", help="A few minutes on a CPU: partial runs (first users "
                                        "only), one seed, the smallest budget, short training.")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Report folder (default "
                                                "reports/paradigms-<dataset>[-quick]).")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option(
        "--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db).")] = None,
    mode: Annotated[Optional[str], typer.Option("--mode", help="gpu (the full study), cpu, quick, or sizes "
                                                "(the LLM rows at every LLM size against the baselines, users "
                                                "picked for a CPU budget); default: gpu when CUDA is available, "
                                                "else cpu.")] = None,
    budget: Annotated[Optional[list[int]], typer.Option("--budget", help="Training budgets of the tuned LLM "
                                                        "rows (repeatable); default: the mode's.")] = None,
    seed: Annotated[Optional[list[int]], typer.Option("--seed", help="Seeds for every row (repeatable); "
                                                      "default: the mode's.")] = None,
    llm: Annotated[Optional[list[str]], typer.Option("--llm", help="Causal LM of the LLM rows (repeatable: every "
                                                     "LLM row runs once per model): an asset (`llm4rec assets`), a "
                                                     "transformers id or a local path; rows other than SmolLM2's "
                                                     "get a -<asset> or -m<hash> suffix.")] = None,
    size_budget: Annotated[Optional[float], typer.Option("--size-budget-minutes", help="The sizes mode's budget "
                                                         "per LLM size, in minutes (default 25).")] = None,
    text_encoder: Annotated[Optional[str], typer.Option("--text-encoder", help="Text encoder for the text rows "
                                                        "instead of MiniLM; rows get a -m<hash> suffix.")] = None,
    row: Annotated[Optional[list[str]], typer.Option("--row", help="Run only this row (a row name, or a "
                                                     "submission for all its rows; repeatable); the report "
                                                     "covers every finished cell.")] = None,
    note: Annotated[Optional[list[str]], typer.Option("--note", help="A line for the report's 'Settings reduced "
                                                      "by compute' (why cells are missing; repeatable).")] = None,
    report_only: Annotated[bool, typer.Option("--report-only", help="Run nothing: report the cells already "
                                              "finished in the store (the others are listed as missing).")] = False,
    executor: Executor = "local",
    ray_address: RayAddress = None,
    ray_workers: RayWorkers = None,
) -> None:
    """Training paradigms x tasks x budgets x seeds, every cell an MLflow run, and a report."""
    from benchmark.progress import log
    from benchmark.specs import SpecError
    from benchmark.study import paradigm_study

    try:
        paradigm_study(dataset, quick=quick, out=out, tracking_uri=tracking_uri, mode=mode, llms=llm or None,
                       text_encoder=text_encoder, budgets=budget or None, seeds=seed or None,
                       report_only=report_only, rows=row or None, notes=note, log=log, executor=executor,
                       ray_address=ray_address, ray_workers=ray_workers, size_budget_minutes=size_budget)
    except (SpecError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2)
