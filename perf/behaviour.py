"""Bit-identical behaviour check: every first-party submission on the contract tasks,
in the tree before a change and in this one, compared run by run.

    .venv/bin/python perf/behaviour.py [--base a6f5dd5 | --base-dir /tmp/base] [--only pop ...]

The base tree is a throw-away `git worktree` of --base (removed at the end), or an
existing checkout given by --base-dir. Each tree runs in its own subprocess whose
`benchmark` package and `submissions/` are that tree's (the virtualenv's editable
install, which points at this checkout, is taken out of the child's import system; the
child asserts where `benchmark` came from). In each tree, every folder under
`submissions/` whose card declares no `requirements:` (the RecBole cards need their own
environment: left out, and listed) runs on each `benchmark/tasks/contract-*.yaml` with
the task's first seed, through the public `benchmark.evaluate`, into a fresh SQLite
MLflow store with a fresh `LLM4REC_CACHE` (offline assets are shared read-only).

From each run it reads back the status, the failure reason's first line, every metric
(last value and, where logged per step, the whole curve) except wall-clock, memory and
load readings, and the `llm.*` tags except `llm.decoding`; floats as float.hex, so
equality is exact. A run that fails in both trees, where the submission lacks the
method the task calls in at least one of them (a CTR task without predict(), full
ranking without score()), is not a difference; both reasons are shown.

Prints one line per run while collecting, then `same` or the differing keys per
(submission, task), then one line:
    identical_runs=N differing_runs=M runs_compared=K
Exit status 0 always: it is a report.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BASE = "a6f5dd5"  # the last commit before the restructure of issue 12
CONTRACT_TASKS = ["sequential", "topk", "ctr", "zeroshot"]  # benchmark/tasks/contract-<name>.yaml
CARD_FILE = "submission.yaml"
# Readings of the machine, not of the model: they differ between any two runs.
VOLATILE_METRICS = {"cost.fit_seconds", "cost.score_seconds", "cost.trust_seconds", "cost.peak_rss_mb",
                    "cost.worker_peak_rss_mb", "cost.load_average"}
# The decoding description may be reworded without any output changing.
IGNORED_TAGS = {"llm.decoding"}
# The model methods through which the harness (of either tree) serves each family's
# tasks; recommend() only serves fixed candidate sets.
TASK_METHODS = {"sequential": ("score",), "topk": ("score",), "zeroshot": ("score", "recommend"),
                "ctr": ("predict",)}


def volatile(metric: str) -> bool:
    """Time, memory and load: excluded from the comparison (also per-epoch seconds)."""
    return metric in VOLATILE_METRICS or metric.endswith("_seconds")


# ------------------------------------------------------------------ the child: one tree


def collect(tree: Path, out: Path, only: list[str]) -> None:
    """Run the collection with this tree's own `benchmark` and write it to `out`."""
    benchmark = import_tree_benchmark(tree)
    import yaml

    submissions, left_out = first_party_submissions(tree, only)
    tasks = [contract_task(tree, name) for name in CONTRACT_TASKS]
    uri = f"sqlite:///{(out.parent / f'{out.stem}-mlflow' / 'mlflow.db').as_posix()}"
    Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    label = out.stem  # base or after
    runs: dict[str, dict[str, Any]] = {}
    total, done = len(submissions) * len(tasks), 0
    for task_path in tasks:
        task = yaml.safe_load(task_path.read_text())
        for name, folder in submissions.items():
            done += 1
            key = f"{name} · {task['task']}"
            started = time.perf_counter()
            try:
                frame = benchmark.evaluate([str(folder)], [str(task_path)], seeds=[task["seeds"][0]],
                                           tracking_uri=uri)
                row = frame.iloc[0].to_dict()
            except Exception as error:  # the harness itself broke on this run: a difference to show
                row = {"status": "ERROR", "run_id": None, "reason": f"{type(error).__name__}: {error}"}
            runs[key] = read_run(uri, row) | {"implements": implements(folder, task["family"])}
            print(f"[{label}] {done}/{total} {key} seed {task['seeds'][0]}: {runs[key]['status']} "
                  f"({time.perf_counter() - started:.1f} s)", flush=True)
    out.write_text(json.dumps({"tree": str(tree), "benchmark": benchmark.__file__, "left_out": left_out,
                               "runs": runs}, indent=1, sort_keys=True))


def import_tree_benchmark(tree: Path):
    """`benchmark` from `tree`, never from the editable install (which points at REPO)."""
    sys.path[0] = str(tree)
    sys.meta_path[:] = [finder for finder in sys.meta_path
                        if not getattr(finder, "__module__", "").startswith("__editable__")]
    import benchmark

    where = Path(benchmark.__file__).resolve()
    assert where.is_relative_to(tree.resolve()), f"benchmark imported from {where}, not from {tree}"
    return benchmark


def first_party_submissions(tree: Path, only: list[str]) -> tuple[dict[str, Path], list[str]]:
    """name -> folder for the cards under `tree/submissions` without `requirements:`;
    and the names of those left out because they have them."""
    import yaml

    root = tree / "submissions"
    chosen, left_out = {}, []
    for card_path in sorted(root.glob(f"*/{CARD_FILE}")) + sorted(root.glob(f"*/*/{CARD_FILE}")):
        card = yaml.safe_load(card_path.read_text()) or {}
        name = card.get("name", card_path.parent.name)
        if only and name not in only:
            continue
        if card.get("requirements"):
            left_out.append(name)
        else:
            chosen[name] = card_path.parent
    for name in sorted(set(only) - set(chosen) - set(left_out)):
        print(f"--only {name}: no such submission under {root}", flush=True)
    return chosen, left_out


def contract_task(tree: Path, family: str) -> Path:
    path = tree / "benchmark" / "tasks" / f"contract-{family}.yaml"
    if not path.is_file():
        raise SystemExit(f"{path}: contract task file missing in {tree}")
    return path


def implements(folder: Path, family: str) -> bool | None:
    """Whether the model overrides a method that serves the family's tasks (None: cannot tell)."""
    from benchmark.api import Recommender, Submission

    if family not in TASK_METHODS:
        raise SystemExit(f"contract task family {family!r}: perf/behaviour.py knows {', '.join(TASK_METHODS)}")
    try:
        cls = Submission(folder).model_class()
    except Exception:
        return None
    return any(getattr(cls, method, None) is not getattr(Recommender, method, None)
               for method in TASK_METHODS[family])


def read_run(uri: str, row: dict) -> dict[str, Any]:
    """What the store holds of one run, flat: status, reason, metric.*, curve.*, tag.*."""
    if not row.get("run_id"):
        return {"status": row["status"], "reason": first_line(row.get("reason"))}
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(row["run_id"])
    record: dict[str, Any] = {"status": run.info.status,
                              "reason": first_line(run.data.tags.get("failure_reason"))}
    for key, value in sorted(run.data.metrics.items()):
        if volatile(key):
            continue
        record[f"metric.{key}"] = float(value).hex()
        history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
        if len(history) > 1:
            record[f"curve.{key}"] = [[step, float(value).hex()] for step, value in history]
    record |= {f"tag.{key}": value for key, value in sorted(run.data.tags.items())
               if key.startswith("llm.") and key not in IGNORED_TAGS}
    return record


def first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


# ------------------------------------------------------------------ the parent: compare


@contextmanager
def base_tree(rev: str, base_dir: Path | None) -> Iterator[Path]:
    """--base-dir as given, else a detached worktree of `rev`, removed afterwards."""
    if base_dir is not None:
        if not (base_dir / "benchmark" / "__init__.py").is_file():
            raise SystemExit(f"--base-dir {base_dir}: no benchmark/__init__.py there")
        yield base_dir.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="llm4rec-base-") as tmp:
        folder = Path(tmp) / "base"
        added = subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet",
                                str(folder), rev], capture_output=True, text=True)
        if added.returncode != 0:
            raise SystemExit(f"--base {rev}: git worktree add failed: {added.stderr.strip()}")
        try:
            yield folder
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(folder)], check=False)


def describe(tree: Path) -> str:
    sha = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return f"{tree} at {sha or 'unknown commit'}{' with uncommitted changes' if dirty else ''}"


def run_side(side: str, tree: Path, work: Path, only: list[str]) -> dict:
    """Collect in a subprocess with cwd = tree; its harness log goes to <work>/<side>.log."""
    out, log = work / f"{side}.json", work / f"{side}.log"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "LLM4REC_ISOLATE", "MLFLOW_TRACKING_URI")}
    env |= {"LLM4REC_CACHE": str(work / f"{side}-cache"), "LLM4REC_ASSETS": str(assets_root()),
            "LLM4REC_SUBMISSIONS": str(tree / "submissions"), "LLM4REC_TASKS": str(tree / "tasks"),
            "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, str(Path(__file__).resolve()), "--collect", str(tree), "--collect-out", str(out)]
    command += [arg for name in only for arg in ("--only", name)]
    print(f"{side}: {describe(tree)} (harness log: {log})", flush=True)
    with log.open("w") as stderr:
        code = subprocess.run(command, cwd=tree, env=env, stderr=stderr).returncode
    if code != 0 or not out.is_file():
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-20:])
        print(f"{side}: the collection FAILED (exit {code}); its runs count as missing. Log tail:\n{tail}",
              flush=True)
        return {"runs": {}, "left_out": []}
    return json.loads(out.read_text())


def assets_root() -> Path:
    """The offline assets the harness would use here (benchmark.paths.assets_root's rule),
    so that the fresh caches need not fetch them again."""
    if os.environ.get("LLM4REC_ASSETS"):
        return Path(os.environ["LLM4REC_ASSETS"])
    return Path(os.environ.get("LLM4REC_CACHE", Path.home() / ".cache" / "llm4rec")) / "assets"


def compare(base: dict, after: dict) -> tuple[int, int]:
    """Print per run `same` or its differences; returns (identical, differing)."""
    identical = differing = 0
    for key in sorted(set(base["runs"]) | set(after["runs"])):
        a, b = base["runs"].get(key), after["runs"].get(key)
        if a is None or b is None:
            differing += 1
            print(f"{key}: DIFFERENT — no run in the {'base' if a is None else 'after'} tree")
            continue
        if cannot_serve(a, b):
            identical += 1
            reasons = (f"base: {a['reason']} | after: {b['reason']}" if a["reason"] != b["reason"]
                       else a["reason"])
            print(f"{key}: same (FAILED in both; the model lacks the task's method in "
                  f"{'both trees' if a['implements'] is b['implements'] else 'one tree'}: {reasons})")
            continue
        keys = [k for k in sorted(set(a) | set(b)) if k != "implements" and a.get(k) != b.get(k)]
        if not keys:
            identical += 1
            print(f"{key}: same")
            continue
        differing += 1
        print(f"{key}: DIFFERENT in {len(keys)} key(s)")
        for k in keys:
            print(f"    {k}: base {shown(a.get(k))} | after {shown(b.get(k))}")
    return identical, differing


def cannot_serve(a: dict, b: dict) -> bool:
    """Both runs failed and at least one tree's model lacks the method the task calls
    (e.g. score() moved to recommend(), which full ranking cannot use): nothing to compare."""
    return a["status"] == b["status"] == "FAILED" and False in (a["implements"], b["implements"])


def shown(value: Any) -> str:
    """Hex floats as their decimal repr (still exact); curves shortened."""
    if value is None:
        return "(absent)"
    if isinstance(value, list):
        points = ", ".join(f"{step}: {shown(v)}" for step, v in value[:10])
        return f"[{points}{', …' if len(value) > 10 else ''}]"
    if isinstance(value, str) and (value.startswith(("0x", "-0x")) or value in ("nan", "inf", "-inf")):
        return repr(float.fromhex(value))
    return repr(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--base", default=DEFAULT_BASE,
                        help=f"the revision to compare against (default {DEFAULT_BASE}); a temporary worktree")
    parser.add_argument("--base-dir", type=Path, help="an existing checkout of the base instead of a worktree")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="only this submission (repeatable); default: every first-party one")
    parser.add_argument("--out", type=Path,
                        help="keep the two collections (JSON), stores and logs here (default: a temporary folder)")
    parser.add_argument("--collect", type=Path, help=argparse.SUPPRESS)  # the child's mode
    parser.add_argument("--collect-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.collect:
        collect(args.collect.resolve(), args.collect_out, args.only)
        return
    with tempfile.TemporaryDirectory(prefix="llm4rec-behaviour-") as tmp, \
            base_tree(args.base, args.base_dir) as base_dir:
        work = args.out or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        base = run_side("base", base_dir, work, args.only)
        after = run_side("after", REPO, work, args.only)
    left_out = sorted(set(base["left_out"]) | set(after["left_out"]))
    if left_out:
        print(f"left out (their cards declare requirements:, a separate environment): {', '.join(left_out)}")
    identical, differing = compare(base, after)
    print(f"identical_runs={identical} differing_runs={differing} runs_compared={identical + differing}")


if __name__ == "__main__":
    main()
