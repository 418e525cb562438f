"""From a submitter's folder to a verified leaderboard row (docs/submitting.md).

A bundle is a results folder (benchmark.tracking.manifest) whose manifest also has a
`bundle` section, plus the submission's files under `submission/` and, for a card with
`requirements:`, the exact versions its environment had (`requirements.lock`):

- `submit` (the submitter): validates the folder, runs the standard evaluation in the
  sandbox and writes the bundle (a folder, or a .tar.gz).
- `check_bundle` (anyone): the bundle holds together: its code hashes to the manifest's
  digest, each per-user file is the one the manifest names and each metric is the mean
  of its per-user values, every run is of this submission, the tasks exist here in the
  same version, with the same data (fingerprints), and the name is not another
  submission's.
- `verify` (the maintainer): checks, re-runs the code in the sandbox for its tasks (all
  seeds, or a sample), compares metric by metric and user by user, and only then
  records the maintainer's own re-run in the store, tagged `provenance=verified` and
  the bundle's hash. Any difference is a BundleError naming every metric, seed and user.
- `import_bundle` (the maintainer, without a re-run): the runs as the bundle reports
  them, tagged `provenance=self-reported`.
"""
from __future__ import annotations

import hashlib
import math
import os
import random
import shutil
import tarfile
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd

import benchmark
from benchmark.api import Submission
from benchmark.api.registry import package_root, submission_files, submission_folders
from benchmark.specs import SpecError
from benchmark.tracking.manifest import (MANIFEST, TAG_BUNDLE, TAG_PROVENANCE, TAG_VERIFIED, ManifestError, RunEntry,
                                         export_runs, import_runs, read_manifest, read_per_user, sha256_file,
                                         write_manifest)
from benchmark.tracking.results import read_runs
from benchmark.tracking.store import ResultsStore

CODE_FOLDER = "submission"
LOCK_FILE = "requirements.lock"
# Metrics that measure the machine, not the model: never compared.
UNCOMPARED_PREFIXES = ("cost.",)
DEFAULT_TOLERANCE = 1e-6  # absolute, per metric and per user value; see docs/submitting.md
SHOWN_USERS = 10  # users named per differing metric and seed (then a count)

Log = Callable[[str], None]


class BundleError(SpecError):
    """A bundle refused: the message names the bundle, the field and the reason."""


@dataclass
class Bundle:
    path: Path  # what the user named (folder or archive)
    folder: Path  # the unpacked folder
    manifest: dict[str, Any]
    runs: list[RunEntry]

    @property
    def info(self) -> dict[str, Any]:
        return self.manifest["bundle"]

    def hash(self) -> str:
        """sha256 over every file of the bundle (its path and content), manifest included."""
        digest = hashlib.sha256()
        for path in sorted(p for p in self.folder.rglob("*") if p.is_file() or p.is_symlink()):
            content = os.readlink(path) if path.is_symlink() else sha256_file(path)
            digest.update(f"{path.relative_to(self.folder).as_posix()}\0{content}\n".encode())
        return digest.hexdigest()


# ---------------------------------------------------------------- submitter


def submit(path: str | Path, tasks: Sequence[str], out: Path, seeds: Sequence[int] | None = None,
           archive: bool = False, log: Log = print) -> Path:
    """Validate, evaluate sandboxed, write the bundle at `out` (a folder, or with
    `archive` a .tar.gz); returns its path."""
    from benchmark.api import find_submission
    from benchmark.runner import evaluate
    from benchmark.validate import validate_submission

    submission = find_submission(str(path))
    failed = [c for c in validate_submission(str(submission.folder)) if not c.ok]
    if failed:
        raise BundleError(f"{submission.folder}: the submission does not pass `llm4rec validate`: "
                          + "; ".join(f"{c.name}: {c.detail}" for c in failed))
    if out.exists() and (archive or not out.is_dir() or any(out.iterdir())):
        raise BundleError(f"{out}: already exists; give a new path for the bundle")
    with tempfile.TemporaryDirectory(prefix="llm4rec-submit-") as tmp:
        uri = f"sqlite:///{Path(tmp) / 'store.db'}"
        runs = evaluate([submission], list(tasks), seeds=seeds, tracking_uri=uri)
        bad = runs[runs["status"] != "FINISHED"]
        if len(bad):
            raise BundleError("a bundle holds finished runs only; failed: " + "; ".join(
                f"{r.task} seed {r.seed}: {r.reason}" for r in bad.itertuples()))
        store = ResultsStore(uri, log=log)
        table = read_runs(store)
        folder = Path(tmp) / "bundle" if archive else out
        folder.mkdir(parents=True, exist_ok=True)
        entries = export_runs(store, folder, table[table["run_id"].isin(runs["run_id"])], log=log)
        relative = _copy_code(submission, folder / CODE_FOLDER)
        lock = _write_lock(submission, folder)
        write_manifest(folder, entries, {"bundle": {
            "name": submission.card.name, "version": submission.card.version, "digest": submission.digest,
            "folder": relative, "requirements_lock": lock, "harness_version": benchmark.__version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}})
        if archive:
            out.parent.mkdir(parents=True, exist_ok=True)
            with tarfile.open(out, "w:gz") as tar:
                tar.add(folder, arcname=".")
    return out


def _copy_code(submission: Submission, into: Path) -> str:
    """Copy the files the submission's digest covers; returns the submission's folder
    relative to what was copied (its package root)."""
    files = submission_files(submission.folder)
    root = package_root(Path(submission.folder).resolve())
    for relative, path in files:
        target = into / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target, follow_symlinks=False)
    return Path(submission.folder).resolve().relative_to(root).as_posix()


def _write_lock(submission: Submission, folder: Path) -> str | None:
    """The exact versions of the card's environment (requirements only)."""
    if not submission.card.requirements:
        return None
    from benchmark.executors.envs import ensure_env

    environment = ensure_env(submission.card.requirements, submission.card.name)
    shutil.copyfile(environment.lock_file, folder / LOCK_FILE)
    return LOCK_FILE


# ---------------------------------------------------------------- reading and checking


@contextmanager
def open_bundle(path: str | Path) -> Iterator[Bundle]:
    """The bundle at `path` (a folder, or a .tar.gz unpacked into a temporary folder)."""
    path = Path(path)
    if path.is_dir():
        yield _load(path, path)
        return
    if not path.is_file():
        raise BundleError(f"{path}: no such bundle (a folder, or a .tar.gz made by `llm4rec submit --archive`)")
    with tempfile.TemporaryDirectory(prefix="llm4rec-bundle-") as tmp:
        try:
            with tarfile.open(path, "r:*") as tar:
                tar.extractall(tmp, filter="data")  # no links out, no absolute paths, no devices
        except (tarfile.TarError, OSError) as error:
            raise BundleError(f"{path}: not a readable bundle archive ({error})") from None
        yield _load(path, Path(tmp))


def _load(path: Path, folder: Path) -> Bundle:
    try:
        manifest, runs = read_manifest(folder)
    except ManifestError as error:
        raise BundleError(f"bundle {path}: {error}") from None
    info = manifest.get("bundle")
    if not isinstance(info, dict):
        raise BundleError(f"bundle {path}: {MANIFEST}: field 'bundle': missing (a results folder, not a bundle: "
                          "use `llm4rec store import`)")
    for field in ("name", "version", "digest", "folder"):
        if not isinstance(info.get(field), str):
            raise BundleError(f"bundle {path}: {MANIFEST}: field 'bundle.{field}': missing or not a string")
    relative = Path(info["folder"])
    if relative.is_absolute() or ".." in relative.parts:
        raise BundleError(f"bundle {path}: {MANIFEST}: field 'bundle.folder': must be a path inside {CODE_FOLDER}/")
    if not runs:
        raise BundleError(f"bundle {path}: {MANIFEST}: field 'runs': empty")
    return Bundle(path, folder, manifest, runs)


def check_bundle(bundle: Bundle, store: ResultsStore | None = None, log: Log = print) -> None:
    """Every check short of re-running (see the module doc); a BundleError names the
    first problem found."""
    info, where = bundle.info, f"bundle {bundle.path}"
    submission = _bundled_submission(bundle)
    card = submission.card
    if submission.digest != info["digest"]:
        raise BundleError(f"{where}: the code changed after the runs: its files hash to {submission.digest[:16]}…, "
                          f"field 'bundle.digest' says {info['digest'][:16]}…")
    for field, value in (("name", card.name), ("version", card.version)):
        if info[field] != value:
            raise BundleError(f"{where}: field 'bundle.{field}': {info[field]!r}, but the card says {value!r}")
    for index, entry in enumerate(bundle.runs):
        _check_run(bundle, index, entry, submission)
    _check_name(bundle, submission, store)
    if card.requirements and not (bundle.folder / LOCK_FILE).is_file():
        raise BundleError(f"{where}: field 'bundle.requirements_lock': the card has requirements but the bundle has "
                          f"no {LOCK_FILE}")
    _check_tasks(bundle, log)


def _bundled_submission(bundle: Bundle) -> Submission:
    folder = bundle.folder / CODE_FOLDER / bundle.info["folder"]
    if not (folder / "submission.yaml").is_file():
        raise BundleError(f"bundle {bundle.path}: {CODE_FOLDER}/{bundle.info['folder']}: no submission.yaml")
    submission = Submission(folder)
    try:
        submission.card
    except SpecError as error:
        raise BundleError(f"bundle {bundle.path}: {error}") from None
    return submission


def _check_run(bundle: Bundle, index: int, entry: RunEntry, submission: Submission) -> None:
    where = f"bundle {bundle.path}: {MANIFEST}: field 'runs[{index}]"
    expected = {"submission": submission.card.name, "submission_version": submission.card.version,
                "submission_digest": submission.digest}
    for tag, value in expected.items():
        if entry.tags.get(tag) != value:
            raise BundleError(f"{where}.tags.{tag}': {entry.tags.get(tag)!r}, not this bundle's {value!r}")
    try:
        read_per_user(bundle.folder, entry, index)
    except ManifestError as error:
        raise BundleError(f"bundle {bundle.path}: {error}") from None


def _check_name(bundle: Bundle, submission: Submission, store: ResultsStore | None) -> None:
    """A bundle may not take a name that is another submission's: one the maintainer
    has here with other files, or one whose version the store holds with other code."""
    name, version, digest = submission.card.name, submission.card.version, submission.digest
    for folder in submission_folders().get(name, []):
        if Submission(folder).digest != digest:
            raise BundleError(f"bundle {bundle.path}: field 'bundle.name': '{name}' is the submission at {folder} "
                              "here, with other files; a bundle cannot take another submission's name")
    if store is None:
        return
    runs = read_runs(store)
    if runs.empty or "tag:submission_digest" not in runs:
        return
    same = runs[(runs["submission"] == name) & (runs["version"] == version)]
    other = same["tag:submission_digest"].dropna()
    other = other[other != digest]
    if len(other):
        raise BundleError(f"bundle {bundle.path}: field 'bundle.version': {name}@{version} is recorded in {store.uri} "
                          f"with other code ({other.iloc[0][:16]}…); a new version of the code needs a new version")


def _check_tasks(bundle: Bundle, log: Log) -> None:
    """The tasks exist here in the bundle's version, with the same spec and the same data."""
    from benchmark.data import prepare
    from benchmark.tasks import load_task

    seen: dict[str, Any] = {}
    for index, entry in enumerate(bundle.runs):
        where = f"bundle {bundle.path}: {MANIFEST}: field 'runs[{index}].tags"
        task_id = entry.tags["task"]
        if task_id not in seen:
            try:
                task = load_task(task_id)
            except SpecError:
                raise BundleError(f"{where}.task': there is no task '{task_id}' here") from None
            seen[task_id] = (task, prepare(task, log=log))
        task, prepared = seen[task_id]
        checks = (("task_version", str(task.version)), ("task_digest", task.digest()),
                  ("dataset_fingerprint", prepared.dataset_fingerprint),
                  ("split_fingerprint", prepared.split_fingerprint))
        for tag, here in checks:
            if tag in entry.tags and entry.tags[tag] != here:
                raise BundleError(f"{where}.{tag}': {entry.tags[tag]!r}, but task '{task_id}' here has {here!r}")


# ---------------------------------------------------------------- maintainer


@dataclass
class Verification:
    bundle_hash: str
    compared: list[str]  # run labels re-run and compared
    recorded: list[str]  # run ids written to the store


def verify(path: str | Path, tracking_uri: str | None = None, sample_seeds: int | None = None,
           tolerance: float = DEFAULT_TOLERANCE, log: Log = print) -> Verification:
    """Check the bundle, re-run it in the sandbox, compare, then record the re-run as
    verified; a BundleError (nothing written) names every difference."""
    from benchmark.runner import evaluate

    store = ResultsStore(tracking_uri, log=log)
    with open_bundle(path) as bundle:
        check_bundle(bundle, store, log)
        chosen = _sample(bundle.runs, sample_seeds)
        submission = _bundled_submission(bundle)
        with tempfile.TemporaryDirectory(prefix="llm4rec-verify-") as tmp:
            uri = f"sqlite:///{Path(tmp) / 'store.db'}"
            for task_id, seeds in _by_task(chosen).items():
                log(f"verify: re-running {submission.card.name} on {task_id}, seeds {seeds}")
                runs = evaluate([submission], task_id, seeds=seeds, tracking_uri=uri)
                bad = runs[runs["status"] != "FINISHED"]
                if len(bad):
                    raise BundleError(f"bundle {bundle.path}: the re-run failed: " + "; ".join(
                        f"{r.task} seed {r.seed}: {r.reason}" for r in bad.itertuples()))
            rerun_store = ResultsStore(uri, log=log)
            rerun_folder = Path(tmp) / "rerun"
            reruns = export_runs(rerun_store, rerun_folder, read_runs(rerun_store))
            differences = _compare(bundle, chosen, rerun_folder, reruns, tolerance)
            if differences:
                raise BundleError(f"bundle {bundle.path}: the re-run differs from the manifest (tolerance "
                                  f"{tolerance:g}):\n" + "\n".join(f"  - {d}" for d in differences))
            bundle_hash = bundle.hash()
            recorded = import_runs(store, rerun_folder, reruns, {TAG_PROVENANCE: "verified", TAG_VERIFIED: "true",
                                                                      TAG_BUNDLE: bundle_hash}, log=log)
        return Verification(bundle_hash, [e.label for e in chosen], recorded)


def import_bundle(path: str | Path, tracking_uri: str | None = None, log: Log = print) -> list[str]:
    """Record the bundle's runs as reported (no re-run), tagged self-reported, after
    every check short of re-running."""
    store = ResultsStore(tracking_uri, log=log)
    with open_bundle(path) as bundle:
        check_bundle(bundle, store, log)
        return import_runs(store, bundle.folder, bundle.runs,
                           {TAG_PROVENANCE: "self-reported", TAG_VERIFIED: "false", TAG_BUNDLE: bundle.hash()},
                           log=log)


def import_results(path: str | Path, tracking_uri: str | None = None, trusted: bool = False,
                   log: Log = print) -> list[str]:
    """`llm4rec store import`: a bundle (self-reported, see import_bundle), or a results
    folder from `llm4rec store export` (self-reported too, unless `trusted`: then the
    provenance it records is kept)."""
    path = Path(path)
    if not path.is_dir() or "bundle" in _manifest_keys(path):
        return import_bundle(path, tracking_uri, log=log)
    _, entries = read_manifest(path)
    tags = {} if trusted else {TAG_PROVENANCE: "self-reported", TAG_VERIFIED: "false"}
    return import_runs(ResultsStore(tracking_uri, log=log), path, entries, tags, trusted=trusted, log=log)


def _manifest_keys(folder: Path) -> set[str]:
    try:
        return set(read_manifest(folder)[0])
    except ManifestError:
        return {"bundle"}  # let the bundle reader name what is wrong


def _sample(runs: list[RunEntry], sample_seeds: int | None) -> list[RunEntry]:
    """All runs, or per task `sample_seeds` seeds drawn at random (a submitter cannot
    know which seeds the maintainer will re-run)."""
    if sample_seeds is None:
        return runs
    chosen = []
    for task_id, seeds in _by_task(runs).items():
        picked = set(random.SystemRandom().sample(seeds, min(sample_seeds, len(seeds))))
        chosen += [e for e in runs if e.tags["task"] == task_id and int(e.tags["seed"]) in picked]
    return chosen


def _by_task(runs: list[RunEntry]) -> dict[str, list[int]]:
    seeds: dict[str, list[int]] = {}
    for entry in runs:
        seeds.setdefault(entry.tags["task"], []).append(int(entry.tags["seed"]))
    return {task: sorted(set(s)) for task, s in seeds.items()}


def _compare(bundle: Bundle, chosen: list[RunEntry], rerun_folder: Path, reruns: list[RunEntry],
             tolerance: float) -> list[str]:
    """Every difference between the manifest's runs and the re-run: metrics, then users."""
    by_key = {(e.tags["task"], e.tags["seed"]): (i, e) for i, e in enumerate(reruns)}
    differences = []
    for entry in chosen:
        index = bundle.runs.index(entry)
        label = f"{entry.tags['task']} seed {entry.tags['seed']}"
        if (entry.tags["task"], entry.tags["seed"]) not in by_key:
            differences.append(f"{label}: not re-run")
            continue
        rerun_index, rerun = by_key[(entry.tags["task"], entry.tags["seed"])]
        for metric in sorted(set(entry.metrics) | set(rerun.metrics)):
            if metric.startswith(UNCOMPARED_PREFIXES):
                continue
            ours, theirs = rerun.metrics.get(metric), entry.metrics.get(metric)
            if ours is None or theirs is None or not _close(ours, theirs, tolerance):
                differences.append(f"{label}: {metric}: manifest {theirs!r}, re-run {ours!r}")
        reported = read_per_user(bundle.folder, entry, index)
        measured = read_per_user(rerun_folder, rerun, rerun_index)
        differences += _per_user_differences(label, reported, measured, tolerance)
    return differences


def _close(a: float, b: float, tolerance: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tolerance


def _per_user_differences(label: str, reported: pd.DataFrame, measured: pd.DataFrame,
                          tolerance: float) -> list[str]:
    if "user" not in reported or "user" not in measured:
        return [f"{label}: per-user file without a user column"]
    reported, measured = reported.set_index("user"), measured.set_index("user")
    differences = []
    if set(reported.index) != set(measured.index):
        missing, extra = set(measured.index) - set(reported.index), set(reported.index) - set(measured.index)
        differences.append(f"{label}: users differ ({len(missing)} re-run users missing from the manifest, "
                           f"{len(extra)} users not in the re-run)")
    users = measured.index.intersection(reported.index)
    for column in measured.columns:
        if column not in reported or not pd.api.types.is_numeric_dtype(measured[column]):
            continue
        ours = measured.loc[users, column].to_numpy(dtype=float)
        theirs = reported.loc[users, column].to_numpy(dtype=float)
        off = ~(np.isclose(ours, theirs, rtol=0.0, atol=tolerance) | (np.isnan(ours) & np.isnan(theirs)))
        if off.any():
            named = ", ".join(f"user {u} ({t:g} vs {o:g})" for u, t, o in
                              zip(users[off][:SHOWN_USERS], theirs[off][:SHOWN_USERS], ours[off][:SHOWN_USERS]))
            more = f" and {int(off.sum()) - SHOWN_USERS} more" if off.sum() > SHOWN_USERS else ""
            differences.append(f"{label}: per-user {column} differs for {int(off.sum())} users: {named}{more} "
                               "(manifest vs re-run)")
    return differences
