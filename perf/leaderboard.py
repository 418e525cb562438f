"""The leaderboard's snapshot against querying MLflow on every render.

A fresh SQLite MLflow store is filled with synthetic runs (default 10,000 over four
tasks, one per family: 500 submissions x 5 seeds per task; 1% failed, 1% partial),
each with the task's metrics, costs, tags and a per-user metrics artifact (100 users),
in three steps (2,500, 5,000, 10,000 runs). Filling the store goes through
MlflowClient (create_run, log_batch, set_terminated: what the harness does); the
per-user Parquet files are written straight into each run's local artifact folder.
That is setup, not measured.

Measured:
  1. the snapshot build (`leaderboard.snapshot.build_snapshot`) after each step:
     seconds per 1,000 runs, which stays flat when the build is linear in runs;
  2. the Overview's tables (every task's ranking, mean ± std, costs and the paired
     tests against the leader), first render:
       snapshot: read the Parquet snapshot (cold: a fresh read) + compute the tables;
       live:     one `search_runs` per task + the per-user artifacts of the ranked runs
                 + the same computation: what an app without a snapshot does per render.
     Both produce the same tables (checked). Also printed: the same comparison without
     the significance column (no per-user data on either side), and the Streamlit
     Overview page's first run (AppTest) on the 10,000-run snapshot.

    PYTHONPATH=. python perf/leaderboard.py [--runs 10000] [--users 100] [--out perf/out/leaderboard]

Ends with one line: render_speedup=X snapshot_seconds_per_1k_runs=Y
(X: the full Overview, snapshot vs live; Y: at the largest store).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark.paradigms import PARADIGM_ORDER  # noqa: E402
from benchmark.tracking.results import (  # noqa: E402
    counted_runs, local_artifact_path, normalize_runs, read_per_user, run_row)
from leaderboard.snapshot import Snapshot, build_snapshot, load_snapshot  # noqa: E402
from leaderboard.tables import overview_tables  # noqa: E402

TASKS = {  # experiment: (family, main score, metrics, per-user columns)
    "sequential/perf@v1": ("sequential", "NDCG@10", ["HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20",
                                                     "MRR@10", "Recall@10"], ["HR@10", "NDCG@10", "MRR@10"]),
    "topk/perf@v1": ("topk", "NDCG@10", ["Recall@10", "NDCG@10", "HR@10", "MRR@10", "ItemCoverage@10", "ARP@10"],
                     ["Recall@10", "NDCG@10"]),
    "ctr/perf@v1": ("ctr", "AUC", ["AUC", "GAUC", "LogLoss"], ["auc"]),
    "zeroshot/perf@v1": ("zeroshot", "NDCG@10", ["HR@10", "NDCG@10", "MRR@10", "trust.PosGap", "trust.kendall_tau",
                                                 "trust.hallucination_rate", "trust.compliance"], ["NDCG@10"]),
}
SEEDS = 5
COSTS = ["cost.fit_seconds", "cost.score_seconds", "cost.peak_rss_mb", "cost.trainable_parameters"]


def fill(client, experiments: dict[str, str], start: int, stop: int, users: int) -> None:
    """Runs number start..stop-1 of every task (run j: submission j // SEEDS, seed j % SEEDS)."""
    from mlflow.entities import Metric, Param

    rng = np.random.default_rng(start)
    now = int(time.time() * 1000)
    total, done, began = (stop - start) * len(TASKS), 0, time.perf_counter()
    for j in range(start, stop):
        submission, seed = j // SEEDS, j % SEEDS
        quality = 0.05 + 0.3 * ((submission * 7919) % 1000) / 1000  # a fixed spread of submissions
        for experiment, (family, main, metrics, per_user_columns) in TASKS.items():
            state = "failed" if j % 100 == 17 else "partial" if j % 100 == 42 else "finished"
            tags = {"task": experiment.split("@")[0], "task_version": "1", "family": family, "dataset": "perf",
                    "submission": f"model-{submission:04d}", "submission_version": "1",
                    "paradigm": PARADIGM_ORDER[submission % len(PARADIGM_ORDER)], "seed": str(seed), "main_score": main,
                    "run_key": f"{experiment}-{j}", "harness_version": "0.1.0", "harness_git_sha": "perf",
                    "dataset_fingerprint": "f" * 16, "split_fingerprint": "s" * 16}
            if state == "partial":
                tags["partial"] = "true"
            if state == "failed":
                tags["failure_reason"] = "submission 'model': ContractViolation: rule 'finite'"
            run = client.create_run(experiments[experiment], start_time=now + j, tags=tags)
            values = {m: quality + 0.01 * rng.standard_normal() for m in metrics}
            values |= {c: float(rng.uniform(1, 100)) for c in COSTS}
            batch = [Metric(m.replace("@", "_at_"), v, now, 0) for m, v in values.items()]
            client.log_batch(run.info.run_id, metrics=batch,
                             params=[Param("seed", str(seed)), Param("hp.dim", str(32 + submission % 4 * 32))])
            if state != "failed":
                per_user = pd.DataFrame({"user": np.arange(users)} | {
                    c: np.clip(quality + 0.2 * rng.standard_normal(users), 0, 1) for c in per_user_columns})
                path = local_artifact_path(run.info.artifact_uri, "per_user_metrics.parquet")
                path.parent.mkdir(parents=True, exist_ok=True)
                per_user.to_parquet(path, index=False)
            client.set_terminated(run.info.run_id, "FAILED" if state == "failed" else "FINISHED")
            done += 1
        if done % 500 < len(TASKS) or j == stop - 1:
            rate = done / (time.perf_counter() - began)
            print(f"\r  filling the store: {done:,}/{total:,} runs ({rate:.0f} runs/s)", end="", flush=True)
    print()


def live_snapshot(client, uri: str, with_per_user: bool) -> Snapshot:
    """What an app without a snapshot does on every render: one search per task (and
    the per-user artifacts of the ranked runs for the tests)."""
    rows = []
    for experiment in TASKS:
        experiment_id = client.get_experiment_by_name(experiment).experiment_id
        rows.extend(run_row(run, experiment) for run in client.search_runs([experiment_id], max_results=50000))
    runs = normalize_runs(pd.DataFrame(rows))
    per_user = read_per_user(counted_runs(runs), uri) if with_per_user else pd.DataFrame(columns=["run_id", "user"])
    return Snapshot(runs, per_user, pd.DataFrame(), pd.DataFrame(), {})


def snapshot_render(folder: Path, with_per_user: bool) -> dict[str, pd.DataFrame]:
    snapshot = load_snapshot(folder)
    if not with_per_user:
        snapshot.per_user = snapshot.per_user.iloc[0:0]
    return overview_tables(snapshot)


def timed(function, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def same_tables(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> bool:
    return list(a) == list(b) and all(a[k].reset_index(drop=True).equals(b[k].reset_index(drop=True)) for k in a)


def app_first_render(folder: Path) -> float:
    from streamlit.testing.v1 import AppTest

    os.environ["LLM4REC_LEADERBOARD_SNAPSHOT"] = str(folder)
    app = AppTest.from_file(str(ROOT / "leaderboard" / "app.py"), default_timeout=600)
    started = time.perf_counter()
    app.run()
    seconds = time.perf_counter() - started
    if app.exception:
        raise RuntimeError(app.exception[0].value)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the final store (all tasks)")
    parser.add_argument("--users", type=int, default=100, help="users per per-user artifact")
    parser.add_argument("--repeat", type=int, default=3, help="timings are the median of this many")
    parser.add_argument("--out", type=Path, default=ROOT / "perf" / "out" / "leaderboard")
    args = parser.parse_args()

    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    from mlflow.tracking import MlflowClient

    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    uri = f"sqlite:///{(args.out / 'mlflow.db').as_posix()}"
    client = MlflowClient(uri)
    experiments = {name: client.create_experiment(name, artifact_location=(args.out / "mlartifacts" / name.replace(
        "/", "__").replace("@", "_")).resolve().as_uri()) for name in TASKS}
    per_task = args.runs // len(TASKS)
    steps = [per_task // 4, per_task // 2, per_task]
    print(f"store: {uri}; {len(TASKS)} tasks, {SEEDS} seeds per submission, {args.users} users per artifact")

    build_snapshot(uri, args.out / "snapshot-warmup")  # imports and connections: not per-run cost
    builds = []
    done = 0
    for stop in steps:
        fill(client, experiments, done, stop, args.users)
        done = stop
        runs = stop * len(TASKS)
        folder = args.out / f"snapshot-{runs}"
        seconds, _ = timed(lambda: build_snapshot(uri, folder), 1)
        builds.append((runs, seconds))
        print(f"  snapshot of {runs:>6,} runs: {seconds:6.2f} s = {seconds / runs * 1000:.3f} s per 1k runs "
              f"(load average {os.getloadavg()[0]:.1f})")
    per_1k = [s / r * 1000 for r, s in builds]
    print(f"snapshot build, s per 1k runs at {', '.join(f'{r:,}' for r, _ in builds)} runs: "
          f"{', '.join(f'{x:.3f}' for x in per_1k)} (flat = linear; {per_1k[-1] / per_1k[0]:.2f}x from smallest to largest)")

    folder = args.out / f"snapshot-{builds[-1][0]}"
    print(f"\nOverview tables on {builds[-1][0]:,} runs ({len(TASKS)} tasks), median of {args.repeat}:")
    results = {}
    for with_per_user, label in ((True, "full Overview (with paired tests)"), (False, "without the significance column")):
        fast, from_snapshot = timed(lambda: snapshot_render(folder, with_per_user), args.repeat)
        slow, from_live = timed(lambda: overview_tables(live_snapshot(client, uri, with_per_user)), args.repeat)
        if not same_tables(from_snapshot, from_live):
            raise SystemExit("the snapshot and the live tables differ")
        results[with_per_user] = slow / fast
        print(f"  {label}: snapshot {fast:.3f} s, one search_runs per task {slow:.3f} s -> {slow / fast:.1f}x "
              "(same tables)")
    print("  (later renders cost neither: the app keeps the snapshot and tables in st.cache_resource)")
    print(f"  Streamlit Overview page, first run (AppTest, cold caches): {app_first_render(folder):.2f} s")
    print(f"\nload average (1 min): {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (shared machine)")
    print(f"render_speedup={results[True]:.1f} snapshot_seconds_per_1k_runs={per_1k[-1]:.3f}")


if __name__ == "__main__":
    main()
