"""Input that users and submitters hand the harness (issue 13): RecBole atomic files with
text-typed timestamps and malformed rows, task files naming missing data, a tasks folder
with a broken file, leaderboard CSV cells that a spreadsheet would run, and a submission
whose code does not parse. Every error names the file (or task), the field and the rule."""
from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from benchmark.cli import app
from benchmark.data import prepare
from benchmark.data.splits import TEST
from benchmark.specs import SpecError
from conftest import synthetic_task

QUIET = lambda _: None  # noqa: E731


def exited(result, code: int) -> bool:
    """The command ended on purpose with `code` (an uncaught exception also exits 1)."""
    return result.exit_code == code and isinstance(result.exception, (SystemExit, type(None)))


def write_inter(folder: Path, header: str, rows: list[str]) -> Path:
    """A RecBole atomic folder holding only `<folder>.inter`, lines as given."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{folder.name}.inter").write_text(header + "\n" + "".join(row + "\n" for row in rows))
    return folder


def task_on(folder: Path | str, task: str = "sequential/input"):
    return synthetic_task(task=task, dataset={"name": Path(folder).name, "path": str(folder)})


def write_task_file(path: Path, folder: Path | str, task: str = "sequential/input") -> Path:
    spec = task_on(folder, task).model_dump(mode="json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec))
    return path


# ---------------------------------------------------------------- 1. token timestamps


def test_token_timestamps_order_as_numbers_not_as_text(tmp_path):
    # As text "1000" < "20" < "997", which would make item a the test target of u.
    folder = write_inter(tmp_path / "stamps", "user_id:token\titem_id:token\ttimestamp:token",
                         ["u\ta\t997", "u\tb\t1000", "u\tc\t20", "v\ta\t5", "v\tb\t6", "v\tc\t7"])
    prepared = prepare(task_on(folder), log=QUIET)
    items = dict(zip(prepared.dataset.items["item_id"], prepared.dataset.items["original_id"]))
    seq = prepared.sequence
    u = seq[seq["user_id"] == 0]
    assert [items[i] for i in u["item_id"]] == ["c", "a", "b"]  # 20, 997, 1000
    assert items[u.loc[u["part"] == TEST, "item_id"].item()] == "b"
    assert u["timestamp"].tolist() == [20.0, 997.0, 1000.0]


def test_token_timestamps_that_are_not_numbers_are_refused(tmp_path):
    folder = write_inter(tmp_path / "dates", "user_id:token\titem_id:token\ttimestamp:token",
                         ["u\ta\t997", "u\tb\t2020-01-02", "u\tc\t20"])
    with pytest.raises(SpecError) as error:
        prepare(task_on(folder), log=QUIET)
    message = str(error.value)
    assert f"{folder / 'dates.inter'} line 3" in message
    assert "column 'timestamp:token': '2020-01-02' is not a number" in message


# ---------------------------------------------------------------- 2. data errors name the task and field


@pytest.mark.parametrize("header, rows, words", [
    ("user_id\titem_id", ["u\ta"], "header field 1 'user_id' must be 'name:type'"),
    ("user_id:token\titem_id:token\trating:float\ttimestamp:float", ["u\ta\t4\t1", "u\tb\t2"],
     "line 3: 3 fields, but the header has 4"),
    # An empty rating is a missing one; text is not.
    ("user_id:token\titem_id:token\trating:float\ttimestamp:float", ["u\ta\t\t1", "u\tb\tfive\t2"],
     "line 3: column 'rating:float': 'five' is not a number"),
    ("user_id:token\titem_id:token\trating:float\ttimestamp:float", ["u\ta\t4\t1", "u\tb\t4\t"],
     "line 3: column 'timestamp:float': an empty cell is not a number (every row needs one)"),
], ids=["header-without-types", "missing-column", "text-in-float", "no-timestamp"])
def test_a_malformed_inter_file_names_the_task_field_file_and_line(tmp_path, header, rows, words):
    folder = write_inter(tmp_path / "bad", header, rows)
    with pytest.raises(SpecError) as error:
        prepare(task_on(folder), log=QUIET)
    message = str(error.value)
    assert message.startswith(f"task sequential/input: dataset.path {folder}: {folder / 'bad.inter'}")
    assert words in message


def test_blank_lines_are_skipped_and_do_not_shift_line_numbers(tmp_path):
    folder = write_inter(tmp_path / "blank", "user_id:token\titem_id:token\trating:float\ttimestamp:float",
                         ["u\ta\t4\t1", "", "u\tb\tfive\t2"])
    with pytest.raises(SpecError, match="line 4: column 'rating:float'"):
        prepare(task_on(folder), log=QUIET)


def test_a_nonexistent_dataset_path_names_the_task_and_field(tmp_path):
    with pytest.raises(SpecError) as error:
        prepare(task_on(tmp_path / "absent"), log=QUIET)
    assert str(error.value) == f"task sequential/input: dataset.path {tmp_path / 'absent'}: not a folder"


def test_the_cli_prints_data_errors_without_a_traceback(tmp_path):
    folder = write_inter(tmp_path / "bad", "user_id:token\titem_id:token\trating:float\ttimestamp:float",
                         ["u\ta\t[red]five\t1"])
    task_file = write_task_file(tmp_path / "task.yaml", folder)
    result = CliRunner().invoke(app, ["tasks", str(task_file)])
    assert exited(result, 2), result.output
    assert f"{folder / 'bad.inter'} line 2: column 'rating:float': '[red]five' is not a number" in result.stderr

    missing = write_task_file(tmp_path / "missing.yaml", tmp_path / "absent")
    result = CliRunner().invoke(app, ["run", "-t", str(missing), "-s", "random", "--no-sandbox",
                                      "--tracking-uri", f"sqlite:///{tmp_path / 'store.db'}"])
    assert exited(result, 2), result.output
    assert f"task sequential/input ({missing}): dataset.path {tmp_path / 'absent'}: not a folder" in result.stderr


# ---------------------------------------------------------------- 3. `llm4rec tasks` with a broken file


def test_tasks_lists_the_good_tasks_and_reports_each_broken_one(tmp_path, monkeypatch):
    tasks = tmp_path / "tasks"
    write_task_file(tasks / "sequential" / "good.yaml", tmp_path / "data", task="sequential/good")
    # Sorted before the good one: it must not stop the listing.
    (tasks / "sequential" / "a-broken.yaml").write_text("task: sequential/a-broken\nfamily: [unclosed\n")
    spec = yaml.safe_load((tasks / "sequential" / "good.yaml").read_text()) | {"family": "nope",
                                                                               "task": "sequential/wrong"}
    (tasks / "sequential" / "wrong.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.setenv("LLM4REC_TASKS", str(tasks))
    result = CliRunner().invoke(app, ["tasks"])
    assert exited(result, 1), result.output
    assert "sequential/good" in result.stdout and "broken" not in result.stdout
    errors = result.stderr.splitlines()
    assert errors[0].startswith(f"error: broken task {tasks / 'sequential' / 'a-broken.yaml'}: not valid YAML")
    wrong = next(i for i, line in enumerate(errors) if "wrong.yaml" in line)
    assert errors[wrong] == f"error: broken task {tasks / 'sequential' / 'wrong.yaml'}: invalid"
    assert "field 'family'" in errors[wrong + 1]


def test_tasks_exits_zero_when_every_task_loads(tmp_path, monkeypatch):
    write_task_file(tmp_path / "tasks" / "sequential" / "good.yaml", tmp_path / "data", task="sequential/good")
    monkeypatch.setenv("LLM4REC_TASKS", str(tmp_path / "tasks"))
    result = CliRunner().invoke(app, ["tasks"])
    assert exited(result, 0) and "sequential/good" in result.stdout and result.stderr == ""


# ---------------------------------------------------------------- 4. CSV formula injection

HOSTILE_CELLS = ['=HYPERLINK("http://evil.example","click")', "+1+1", "-2+3", "@SUM(A1:A2)", "\tcmd", "\r=1"]
# Safe as they start, and kept so; the line break must not start a row with a formula.
HARMLESS_CELLS = ["plain", "-0.5", "a\r=1+1", "b\n@x"]


def test_the_csv_export_neutralises_formulas_and_keeps_numbers(tmp_path, monkeypatch):
    from leaderboard import export as export_module
    from leaderboard.snapshot import Snapshot

    n = len(HOSTILE_CELLS) + len(HARMLESS_CELLS)
    board = pd.DataFrame({
        "run_ids": [[]] * n, "config": [{}] * n, "experiment": ["sequential/x@v1"] * n,
        "submission": HOSTILE_CELLS + HARMLESS_CELLS, "version": ["1"] * n,
        "score": [0.5] * n, "delta": [-0.25] * n, "=cost": [-3] * n,
    })
    monkeypatch.setattr(export_module.tables, "all_leaderboards", lambda snapshot: {"sequential/x@v1": board})
    empty = pd.DataFrame()
    [path] = export_module.export(Snapshot(empty, empty, empty, empty, {}), tmp_path, ["csv"])
    with path.open(newline="", encoding="utf-8") as handle:  # "\r" inside a cell kept as it is
        rows = list(csv.DictReader(handle))
    assert [row["submission"] for row in rows] == ["'" + cell for cell in HOSTILE_CELLS] + HARMLESS_CELLS
    assert {row["delta"] for row in rows} == {"-0.25"} and {row["'=cost"] for row in rows} == {"-3"}
    assert {row["task"] for row in rows} == {"sequential/x@v1"}


# ---------------------------------------------------------------- 5. a submission that does not parse


def test_validate_reports_a_syntax_error_in_the_submission(make_submission):
    folder = make_submission("unparsable", """
        from benchmark.api import Recommender

        class Model(Recommender):
            def score(self, request
                return None
        """)
    result = CliRunner().invoke(app, ["validate", str(folder)])
    assert exited(result, 1), result.output
    assert f"✗ entrypoint: {folder / 'model.py'} line 5: SyntaxError: " in result.stdout
