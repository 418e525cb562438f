"""Studies over the results store. `paradigms`: training paradigms (ID models from
scratch, pre-train + fine-tune, zero-shot and in-context LLMs, instruction tuning,
prompt tuning) x tasks x training budgets x seeds, run through the normal runner (every
cell an MLflow run, finished cells reused), reported as Markdown and self-contained
HTML with figures and paired significance. See docs/study.md."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from benchmark.study.grid import StudyConfig, build_config, only_rows
from benchmark.study.report import build_report
from benchmark.study.run import finished_cells, installed, run_grid

__all__ = ["StudyConfig", "build_config", "build_report", "default_mode", "finished_cells", "paradigm_study",
           "run_grid"]


def default_mode(quick: bool = False) -> str:
    import torch

    return "quick" if quick else ("gpu" if torch.cuda.is_available() else "cpu")


def paradigm_study(dataset: str = "ml-100k", quick: bool = False, out: str | Path | None = None,
                   tracking_uri: str | None = None, mode: str | None = None, llms: list[str] | None = None,
                   text_encoder: str | None = None, budgets: list[int] | None = None,
                   seeds: list[int] | None = None, report_only: bool = False, rows: list[str] | None = None,
                   notes: list[str] | None = None, log: Callable[[str], None] = print,
                   executor: str = "local", ray_address: str | None = None,
                   ray_workers: int | None = None, size_budget_minutes: float | None = None) -> dict[str, Path]:
    """Run the paradigm study's grid and write its report into `out`
    (default reports/paradigms-<dataset>[-quick]). Returns the written files. With
    `report_only`, nothing runs: the report covers the cells already finished. With
    `rows` (row or submission names), only those rows run, and the report covers every
    finished cell of the grid: a study split between machines (see `llm4rec store merge`).
    `notes` join the report's list of reduced settings (why a budget or cell is missing).
    `executor="ray"` spreads the grid's runs over a Ray cluster (see runner.evaluate).
    `llms`: the models of the LLM rows (each row once per model); the sizes mode picks
    its users for `size_budget_minutes` per model (benchmark.study.sizes)."""
    config = build_config(dataset, mode or default_mode(quick), installed(), llms=llms, text_encoder=text_encoder,
                          budgets=budgets, seeds=tuple(seeds) if seeds else None,
                          size_budget_minutes=size_budget_minutes)
    config.reductions += list(notes or [])
    suffix = {"quick": "-quick", "sizes": "-sizes"}.get(config.mode, "")
    out = Path(out) if out else Path("reports") / f"paradigms-{dataset}{suffix}"
    log(f"study: {config.mode} mode, {len(config.entries)} rows on {', '.join(config.tasks.values())}")
    for reduction in config.reductions:
        log(f"study: reduced: {reduction}")
    started = time.perf_counter()
    if rows:
        run_grid(only_rows(config, rows), tracking_uri, log, executor, ray_address, ray_workers)
    if report_only or rows:
        cells = finished_cells(config, tracking_uri, log=log)
    else:
        cells = run_grid(config, tracking_uri, log, executor, ray_address, ray_workers)
    files = build_report(cells, config, tracking_uri, out, elapsed_seconds=time.perf_counter() - started)
    log(f"study: report written to {files['markdown']} and {files['html']}")
    return files
