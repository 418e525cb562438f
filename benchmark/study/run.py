"""Running the study's grid through the normal runner: every cell (entry, task, seed) is
an MLflow run with its run key, so a finished cell is reused by the next invocation."""
from __future__ import annotations

from typing import Callable

import pandas as pd

from benchmark.api import Submission, available_submissions, find_submission
from benchmark.study.grid import Entry, StudyConfig


def entry_submission(entry: Entry) -> Submission:
    """The entry's submission: the card's, or a named variant (`<name>-n64`) with the
    budget (`train_samples`) and overrides as hyperparameters."""
    submission = find_submission(entry.submission)
    hyperparameters = dict(entry.overrides)
    if entry.budget is not None:
        hyperparameters["train_samples"] = entry.budget
    if not hyperparameters:
        return submission
    return submission.variant(entry.suffix, **hyperparameters)


def installed() -> set[str]:
    return set(available_submissions())


# Rows that train for minutes; the other non-LLM rows take seconds.
TRAINED_FROM_DATA = ("sasrec", "text-sasrec")
# LLM rows run their cheaper task first: 1,000 CTR rows, then 200 users x 20 candidates.
LLM_TASK_ORDER = ("ctr", "zeroshot")


def cells_in_order(config: StudyConfig) -> list[tuple[Entry, str]]:
    """(entry, family) cells: the rows that take seconds, then the next-item models,
    then the LLM rows by model size, then increasing budget (CTR first), so an
    interrupted study has every paradigm and the start of each curve, smallest model
    first."""
    cells = [(entry, family) for entry in config.entries for family in entry.families if family in config.tasks]
    position = {id(entry): i for i, entry in enumerate(config.entries)}

    def cost(cell: tuple[Entry, str]) -> tuple:
        entry, family = cell
        if entry.model_kind == "llm":
            return (2, config.llms.index(entry.llm) if entry.llm in config.llms else 0, entry.budget or 0,
                    LLM_TASK_ORDER.index(family), position[id(entry)])
        return (int(entry.submission in TRAINED_FROM_DATA), 0, 0, 0, position[id(entry)])

    return sorted(cells, key=cost)


def finished_cells(config: StudyConfig, tracking_uri: str | None,
                   log: Callable[[str], None] = print) -> pd.DataFrame:
    """The grid's cells that have a finished run in the store, without running anything
    (missing cells are rows with status MISSING): for a report on a study in progress."""
    from benchmark.data import prepare
    from benchmark.runner import run_key
    from benchmark.study.grid import study_task
    from benchmark.tracking.store import ResultsStore

    store = ResultsStore(tracking_uri)
    tasks = {family: study_task(config, family) for family in config.tasks}
    prepared = {family: prepare(task) for family, task in tasks.items()}
    rows = []
    for entry, family in cells_in_order(config):
        task = tasks[family]
        submission = entry_submission(entry)
        for seed in entry.seeds or task.seeds:
            key = run_key(submission, task, seed, prepared[family], config.limit_users.get(family))
            run = store.finished_run(task.experiment_name, key)
            rows.append({"task": task.task, "submission": entry.name, "paradigm": submission.card.paradigm,
                         "seed": seed, "status": "REUSED" if run else "MISSING",
                         "run_id": run.info.run_id if run else None,
                         "reason": None if run else "no finished run yet"} | _origin(entry, family))
    missing = sum(r["status"] == "MISSING" for r in rows)
    log(f"study: {len(rows) - missing} of {len(rows)} runs finished in the store, {missing} missing")
    return pd.DataFrame(rows)


def run_grid(config: StudyConfig, tracking_uri: str | None, log: Callable[[str], None] = print,
             executor: str = "local", ray_address: str | None = None,
             ray_workers: int | None = None) -> pd.DataFrame:
    """Evaluate every cell of the grid as one matrix of runs (`executor`: local, one
    after another in `cells_in_order`; ray: spread over a cluster); returns one row per
    run (the runner's rows, with `entry`, `family` and `budget` added). Failed runs, and
    entries that cannot start (data, card), are rows too."""
    from benchmark.runner import Cell, run_cells
    from benchmark.study.grid import study_task

    cells, origins, broken = [], [], []
    for entry, family in cells_in_order(config):
        task_id = config.tasks[family]
        try:
            task, submission = study_task(config, family), entry_submission(entry)
        except Exception as error:  # an entry that cannot start is reported, the rest goes on
            log(f"study: {entry.name} on {task_id}: {type(error).__name__}: {error}")
            broken.append({"task": task_id, "submission": entry.name, "status": "FAILED",
                           "reason": f"{type(error).__name__}: {error}"} | _origin(entry, family))
            continue
        for seed in entry.seeds or task.seeds:
            cells.append(Cell(submission, task, seed, config.limit_users.get(family)))
            origins.append(_origin(entry, family))
    log(f"study: {len(cells)} runs ({executor} executor)")
    results = run_cells(cells, True, tracking_uri, executor=executor, ray_address=ray_address,
                        ray_workers=ray_workers)
    rows = [result.row() | origin for result, origin in zip(results, origins)] + broken
    return pd.DataFrame(rows)


def _origin(entry: Entry, family: str) -> dict:
    return {"entry": entry.name, "family": family, "base_submission": entry.submission, "budget": entry.budget,
            "llm": entry.llm}
