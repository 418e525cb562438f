"""Rules about where code lives (DESIGN.md §1), checked over the source text: the
contract imports no model code, submissions import only the contract and the kits,
and only the families package (and the task schema's discriminator) tests a task
family's name."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FAMILY_NAMES = ("sequential", "topk", "ctr", "zeroshot")
NAME = r"[\"'](" + "|".join(FAMILY_NAMES) + r")[\"']"
# `family == ...`, `x != "zeroshot"`, `"ctr" == x`, `x in ("sequential", "zeroshot")`
FAMILY_TEST = re.compile(r"\bfamily\s*(==|!=)|(==|!=)\s*" + NAME + "|" + NAME + r"\s*(==|!=)|"
                         r"\bin\s*[(\[{][^)\]}]*" + NAME)


def python_files(*folders: str) -> list[Path]:
    return [path for folder in folders for path in sorted((REPO / folder).rglob("*.py"))]


def test_the_contract_imports_no_torch():
    code = "import sys, benchmark.api; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"


def test_only_the_families_test_a_family_name():
    allowed = {REPO / "benchmark" / "tasks" / "schema.py"}
    offending = []
    for path in python_files("benchmark", "leaderboard"):
        if path in allowed or (REPO / "benchmark" / "families") in path.parents:
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if FAMILY_TEST.search(line.split("#")[0]):
                offending.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offending, "family tests outside benchmark/families:\n" + "\n".join(offending)


def test_the_family_check_would_catch_a_family_test():
    assert FAMILY_TEST.search('if task.family == "ctr":')
    assert FAMILY_TEST.search("column = 'auc' if family == 'ctr' else main")
    assert FAMILY_TEST.search('if family in ("sequential", "zeroshot"):')
    assert FAMILY_TEST.search('return (2, entry.budget or 0, family != "ctr", position)')
    assert not FAMILY_TEST.search('family(task.family).evaluate_part(call)')
    assert not FAMILY_TEST.search('for family in families:')


def test_submissions_import_only_the_contract_and_the_kits():
    imports = re.compile(r"^\s*(?:from|import)\s+(benchmark[\w.]*|submissions[\w.]*)", re.M)
    offending = []
    for path in python_files("submissions"):
        for module in imports.findall(path.read_text()):
            if not (module in ("benchmark.api", "benchmark.kits") or
                    module.startswith(("benchmark.api.", "benchmark.kits."))):
                offending.append(f"{path.relative_to(REPO)}: {module}")
        if "find_submission" in path.read_text():
            offending.append(f"{path.relative_to(REPO)}: loads another submission")
    assert not offending, "\n".join(offending)


def test_every_csv_is_written_through_the_spreadsheet_guard():
    """Submitters' text reaches every CSV: only benchmark/spreadsheet.py calls to_csv."""
    home = REPO / "benchmark" / "spreadsheet.py"
    offending = [f"{path.relative_to(REPO)}:{number}" for path in python_files("benchmark", "leaderboard")
                 if path != home for number, line in enumerate(path.read_text().splitlines(), start=1)
                 if ".to_csv(" in line.split("#")[0]]
    assert not offending, "CSV written outside benchmark/spreadsheet.py: " + ", ".join(offending)
