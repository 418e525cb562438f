"""Results without MLflow: the manifest format.

A results folder holds `manifest.json` and, per run, a folder
`runs/<n>-<task>-<submission>-seed<seed>/` with its per-user metrics
(`per_user_metrics.parquet`) and its descriptive artifacts (task.json, submission.json,
data_summary.json). `llm4rec store export` writes one
from a store, `llm4rec store import` reads one (or a bundle, which is the same format
plus the submission's code: benchmark.bundles) into a store, so a public board can be
rebuilt from a git repository of results and two maintainers can exchange runs. The
format is documented in docs/submitting.md; FORMAT_VERSION changes when it does.

Each run entry: `experiment`, `run_name`, `tags` (task, versions, fingerprints,
candidate-set hash, run key, submission digest, environment, ...), `params`
(hyperparameters, seed), `metrics` (task metrics, costs, trust metrics: by their
names, NDCG@10), `per_user` (the file) and `per_user_sha256`, `artifacts` (the other
files, as the leaderboard reads them).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

import benchmark
from benchmark.specs import SpecError
from benchmark.tracking.results import PER_USER_ARTIFACT, counted_runs, read_runs
from benchmark.tracking.store import ResultsStore, metric_name

FORMAT = "llm4rec-results"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# Where a run came from, when not from this store's own harness: `verified` (re-run by
# `llm4rec verify` from a bundle) or `self-reported` (imported without a re-run).
TAG_PROVENANCE = "provenance"
TAG_BUNDLE = "bundle_hash"
TAG_VERIFIED = "verified"  # "true" on runs `llm4rec verify` recorded
# Tags that say where a run was recorded, not what it was: never exported.
LOCAL_TAGS = ("owner.", "heartbeat", "mlflow.", "merged_from")
# A store's judgement of a run: exported, but imported only from a folder the
# maintainer trusts (their own results repository), never from a submitter.
PROVENANCE_TAGS = (TAG_PROVENANCE, TAG_BUNDLE, TAG_VERIFIED)
RUN_FIELDS = ("experiment", "run_name", "tags", "params", "metrics", "per_user", "per_user_sha256")
DESCRIPTIVE_ARTIFACTS = ("task.json", "submission.json", "data_summary.json")
METRIC_TOLERANCE = 1e-9  # a metric against the mean of its per-user values (float sums)


class ManifestError(SpecError):
    """A results folder or bundle that cannot be read or does not hold together; the
    message names the folder and the field."""


@dataclass(frozen=True)
class RunEntry:
    experiment: str
    run_name: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]
    per_user: str  # relative to the folder
    per_user_sha256: str
    artifacts: tuple[str, ...] = ()  # relative to the folder

    @property
    def label(self) -> str:
        return f"{self.experiment} · {self.tags.get('submission', '?')}@{self.tags.get('submission_version', '?')} " \
               f"seed {self.tags.get('seed', '?')}"

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in RUN_FIELDS} | {"artifacts": list(self.artifacts)}


def sha256_file(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# ---------------------------------------------------------------- writing


def export_runs(store: ResultsStore, out: Path, runs: pd.DataFrame | None = None,
                log: Callable[[str], None] = lambda _: None) -> list[RunEntry]:
    """Write the given runs (default: every counted run of the store) with their per-user
    metrics under `out/runs/`; returns their entries (the caller writes the manifest)."""
    runs = counted_runs(read_runs(store)) if runs is None else runs
    (out / "runs").mkdir(parents=True, exist_ok=True)
    entries = []
    for number, (_, row) in enumerate(runs.sort_values(["experiment", "submission", "seed"]).iterrows()):
        run = store.client.get_run(row["run_id"])
        folder = out / "runs" / _folder_name(number, row)
        folder.mkdir()
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(store.client.download_artifacts(row["run_id"], "", tmp))
            if not (local / PER_USER_ARTIFACT).is_file():  # a run without them cannot be checked
                raise ManifestError(f"run {row['run_id']} ({row['experiment']}): no {PER_USER_ARTIFACT} to export")
            kept = [name for name in (PER_USER_ARTIFACT, *DESCRIPTIVE_ARTIFACTS) if (local / name).is_file()]
            for name in kept:
                shutil.copyfile(local / name, folder / name)
        relative = folder.relative_to(out).as_posix()
        entries.append(RunEntry(
            experiment=row["experiment"], run_name=run.info.run_name or "",
            tags={k: v for k, v in run.data.tags.items() if not k.startswith(LOCAL_TAGS)},
            params=dict(run.data.params),
            metrics={metric_name(k): v for k, v in run.data.metrics.items() if not k.startswith("train/")},
            per_user=f"{relative}/{PER_USER_ARTIFACT}", per_user_sha256=sha256_file(folder / PER_USER_ARTIFACT),
            artifacts=tuple(f"{relative}/{name}" for name in kept[1:])))
        log(f"export: {entries[-1].label}")
    return entries


def _folder_name(number: int, row: pd.Series) -> str:
    text = f"{number:04d}-{row['task']}-{row['submission']}-seed{int(row['seed'])}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)[:150]


def write_manifest(out: Path, entries: list[RunEntry], extra: dict[str, Any] | None = None) -> Path:
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "harness_version": benchmark.__version__,
                **(extra or {}), "runs": [e.to_json() for e in entries]}
    path = out / MANIFEST
    path.write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str) + "\n")
    return path


def export_store(store: ResultsStore, out: Path, log: Callable[[str], None] = lambda _: None) -> list[RunEntry]:
    """`llm4rec store export`: every counted run of the store into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    entries = export_runs(store, out, log=log)
    write_manifest(out, entries, {"exported_from": store.uri})
    return entries


# ---------------------------------------------------------------- reading


def read_manifest(folder: Path) -> tuple[dict[str, Any], list[RunEntry]]:
    """The manifest of a results folder (or bundle) and its run entries, every field
    checked: a ManifestError names the folder and the field at fault."""
    path = folder / MANIFEST
    if not path.is_file():
        raise ManifestError(f"{folder}: no {MANIFEST} (not a results folder or bundle)")
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ManifestError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ManifestError(f"{path}: field 'format': expected '{FORMAT}'")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ManifestError(f"{path}: field 'format_version': {manifest.get('format_version')!r} is not "
                            f"{FORMAT_VERSION}, the version this harness reads")
    runs = manifest.get("runs")
    if not isinstance(runs, list):
        raise ManifestError(f"{path}: field 'runs': expected a list")
    return manifest, [_entry(path, i, run) for i, run in enumerate(runs)]


def _entry(path: Path, index: int, run: Any) -> RunEntry:
    where = f"{path}: field 'runs[{index}]"
    if not isinstance(run, dict):
        raise ManifestError(f"{where}': expected an object")
    missing = [f for f in RUN_FIELDS if f not in run]
    if missing:
        raise ManifestError(f"{where}.{missing[0]}': missing")
    for name in ("tags", "params", "metrics"):
        if not isinstance(run[name], dict):
            raise ManifestError(f"{where}.{name}': expected an object")
    for name in ("experiment", "run_name", "per_user", "per_user_sha256"):
        if not isinstance(run[name], str):
            raise ManifestError(f"{where}.{name}': expected a string")
    bad = [k for k, v in run["metrics"].items() if isinstance(v, bool) or not isinstance(v, (int, float))]
    if bad:
        raise ManifestError(f"{where}.metrics.{bad[0]}': expected a number")
    artifacts = run.get("artifacts", [])
    if not isinstance(artifacts, list) or not all(isinstance(a, str) for a in artifacts):
        raise ManifestError(f"{where}.artifacts': expected a list of paths")
    for field, value in [("per_user", run["per_user"])] + [("artifacts", a) for a in artifacts]:
        relative = Path(value)
        if relative.is_absolute() or ".." in relative.parts or Path(value).name not in (
                PER_USER_ARTIFACT, *DESCRIPTIVE_ARTIFACTS):
            raise ManifestError(f"{where}.{field}': {value!r} must be a {PER_USER_ARTIFACT} or "
                                f"{'/'.join(DESCRIPTIVE_ARTIFACTS)} inside the folder")
    for tag in ("task", "task_version", "seed", "submission", "submission_version"):
        if tag not in run["tags"]:
            raise ManifestError(f"{where}.tags.{tag}': missing")
    return RunEntry(run["experiment"], run["run_name"], {k: str(v) for k, v in run["tags"].items()},
                    {k: str(v) for k, v in run["params"].items()},
                    {k: float(v) for k, v in run["metrics"].items()}, run["per_user"], run["per_user_sha256"],
                    tuple(artifacts))


def read_per_user(folder: Path, entry: RunEntry, index: int) -> pd.DataFrame:
    """A run's per-user metrics, after checking the file is the one the manifest
    names (its sha256) and that every metric the file has a column for is the mean of
    that column (a manifest whose metric was edited does not hold together)."""
    where = f"{folder / MANIFEST}: field 'runs[{index}].per_user'"
    path = folder / entry.per_user
    if not path.is_file():
        raise ManifestError(f"{where}: {entry.per_user} is missing from {folder}")
    if sha256_file(path) != entry.per_user_sha256:
        raise ManifestError(f"{where}: {entry.per_user} was changed after the run (its sha256 is not "
                            f"the manifest's per_user_sha256) ({entry.label})")
    try:
        table = pd.read_parquet(path)
    except Exception as error:  # pyarrow raises many kinds
        raise ManifestError(f"{where}: {entry.per_user} is not a readable Parquet file ({error})") from None
    for metric, value in entry.metrics.items():
        if metric in table.columns and len(table):
            mean = float(table[metric].mean())
            if not math.isclose(mean, value, rel_tol=METRIC_TOLERANCE, abs_tol=METRIC_TOLERANCE):
                raise ManifestError(
                    f"{folder / MANIFEST}: field 'runs[{index}].metrics.{metric}': {value!r} is not the mean of "
                    f"the per-user values in {entry.per_user} ({mean!r}): the manifest was edited ({entry.label})")
    return table


def _descriptive(folder: Path, entry: RunEntry) -> dict[str, Any]:
    """The run's descriptive JSON artifacts that are there and parse (they describe;
    nothing is computed from them)."""
    found = {}
    for relative in entry.artifacts:
        try:
            found[Path(relative).name] = json.loads((folder / relative).read_text())
        except (OSError, ValueError):
            continue
    return found


def import_runs(store: ResultsStore, folder: Path, entries: list[RunEntry], tags: dict[str, str],
                trusted: bool = False, log: Callable[[str], None] = lambda _: None) -> list[str]:
    """Record the runs of a results folder in `store` as FINISHED runs with `tags`
    added (their provenance); returns their run ids. The folder's own provenance tags
    are kept only when `trusted`. A run whose run key already has a FINISHED run in
    the store is skipped and said so. Every per-user file is checked before anything
    is written."""
    tables = [read_per_user(folder, entry, i) for i, entry in enumerate(entries)]
    added = []
    for entry, table in zip(entries, tables):
        key = entry.tags.get("run_key")
        if key and store.finished_run(entry.experiment, key) is not None:
            log(f"import: {entry.label}: the store has a FINISHED run of its run key; skipped")
            continue
        dropped = LOCAL_TAGS if trusted else LOCAL_TAGS + PROVENANCE_TAGS
        own = {k: v for k, v in entry.tags.items() if not k.startswith(dropped)}
        run_id = store.start(entry.experiment, entry.run_name, own | tags, entry.params)
        store.log_metrics(run_id, entry.metrics)
        store.log_artifacts(run_id, {PER_USER_ARTIFACT: table} | _descriptive(folder, entry))
        store.end(run_id)
        added.append(run_id)
        log(f"import: {entry.label} recorded ({', '.join(f'{k}={v}' for k, v in tags.items())})")
    return added
