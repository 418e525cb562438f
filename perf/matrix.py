"""The run matrix through Ray against one cell after another, in one command.

The matrix: `pop` and `random` x 6 seeds (12 cheap cells) on a small generated
sequential task (a YAML written to a temporary folder), run twice, sandboxed as usual,
each time into a fresh SQLite MLflow store of its own:

1. locally, one cell after another (`benchmark.runner.evaluate(..., executor="local")`);
2. through Ray with 2 workers (`executor="ray"`), on a local Ray cluster (`ray start
   --head`, 2 CPUs, on 127.0.0.1 only, token authentication) started and stopped by this
   script. Before the clock starts the cluster is up, this driver connected and the two
   Ray worker processes started with the harness imported (its imports alone take 3-4 s
   here): fixed costs of a matrix, not of its cells, printed on their own together with
   the speed-up left once they are counted; the ratio is the matrix's (the harness uses
   the connection already open).

Before either run the task's data is prepared and one sandboxed worker started
(untimed), so neither run pays for a cold cache. The two runs must give identical
metrics, statuses and run keys; if not, the script says which cells differ and exits 1.

    PYTHONPATH=. python perf/matrix.py [--seeds 6] [--workers 2] [--users 200]

Prints the phases' seconds, then ends with one line:
    ray_speedup_2workers=X overhead_s_per_cell=Y
X = local wall seconds / Ray wall seconds; Y = the mean over the Ray run's cells of
`wall_seconds - cell_seconds - queued_seconds` (dispatch to recorded, less the cell's
own fit, score and record time where it ran, less its wait for a free worker: what Ray
and the driver add to a cell).
Also printed: the cluster's capacity not spent in cells, per cell (2 x Ray wall - the
sum of cell_seconds, over 12), which no queueing inflates. The issue's goal on a 2-core
machine: X >= 1.6, Y <= 1.
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from benchmark.paths import assets_root
from benchmark.progress import log
from benchmark.tracking.store import ResultsStore

SUBMISSIONS = ["pop", "random"]
TASK_ID = "sequential/perf-matrix"
CLUSTER_START_TIMEOUT_S = 180
CLUSTER_STOP_TIMEOUT_S = 60
# `ray start --block` prints this once the head node is up.
RAY_READY_LINE = "block forever"
# Keeps every Ray server of the cluster and of the driver on the loopback: without it
# ray 2.60 binds its gRPC servers to all interfaces even with --node-ip-address=127.0.0.1
# (docs/scaling.md). Token authentication: nobody else on the machine can submit work.
LOOPBACK_RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"}


def task_yaml(folder: Path, users: int) -> Path:
    """A small generated sequential task: cells cost about a sandbox start-up each."""
    spec = {
        "task": TASK_ID, "family": "sequential", "version": 1,
        "description": "perf/matrix.py: a generated task whose cells cost little",
        "dataset": {"name": "perf-matrix",
                    "synthetic": {"n_users": users, "n_items": 100, "interactions_per_user": 20, "seed": 0}},
        "split": {"method": "leave_one_out"},
        "history": {"max_len": 20, "exclude_seen": False},
        "metrics": ["HR@10", "NDCG@10", "MRR"], "main_score": "NDCG@10", "seeds": [0], "batch_size": 64,
    }
    path = folder / "perf-matrix.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalRayCluster:
    """A one-node Ray cluster on 127.0.0.1 (`ray start --head --block` in a session of
    its own), stopped by its process id at the end."""

    def __init__(self, folder: Path, cpus: int) -> None:
        self.port = free_port()
        self.log_path = folder / "ray-head.log"
        ray = Path(sys.executable).with_name("ray")  # the virtualenv's, activated or not
        self.command = [str(ray), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
                        f"--port={self.port}", f"--num-cpus={cpus}", "--num-gpus=0",
                        "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={folder / 'ray'}"]
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> LocalRayCluster:
        with open(self.log_path, "w") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + CLUSTER_START_TIMEOUT_S
        while RAY_READY_LINE not in self.log_path.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                tail = "\n".join(self.log_path.read_text().splitlines()[-15:])
                raise RuntimeError(f"the Ray head did not start ({' '.join(self.command)}):\n{tail}")
            time.sleep(0.2)
        return self

    def __exit__(self, *_) -> None:
        """SIGTERM lets `ray start --block` stop its own processes; whatever of its
        session is left after the timeout is killed."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(CLUSTER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def warm_ray_workers(address: str, workers: int) -> None:
    """Connect this driver to the cluster and have `workers` Ray worker processes import
    the executor's code, so that the timed run finds them started (the harness reuses a
    connection that is already open, and Ray its idle workers of the same job)."""
    import ray

    ray.init(address=address, log_to_driver=False, configure_logging=False)

    @ray.remote(num_cpus=1)
    def import_executor() -> int:
        import benchmark.executors.ray_matrix  # noqa: F401  (what every cell imports first)

        return os.getpid()

    pids = ray.get([import_executor.remote() for _ in range(workers)])
    if len(set(pids)) < workers:
        say(f"warning: only {len(set(pids))} of {workers} Ray workers warmed up")


def evaluate_on_ray(cluster: LocalRayCluster, task: Path, seeds: list[int], store: ResultsStore,
                    workers: int) -> tuple[pd.DataFrame, float, float]:
    """(one row per cell, wall seconds of the matrix, seconds of the connection and the
    workers' warm-up before it); this driver's connection is closed at the end."""
    import ray

    try:
        started = time.perf_counter()
        warm_ray_workers(cluster.address, workers)
        warm_up_s = time.perf_counter() - started
        say(f"driver connected, {workers} Ray workers started with the harness imported (not in the ratio): "
            f"{warm_up_s:.1f} s")
        log(f"Ray run: {workers} workers")
        runs, wall = evaluate_matrix(task, seeds, store, "ray", ray_address=cluster.address)
        return runs, wall, warm_up_s
    finally:
        ray.shutdown()


def evaluate_matrix(task: Path, seeds: list[int], store: ResultsStore, executor: str,
                    **ray: str) -> tuple[pd.DataFrame, float]:
    """(one row per cell, wall seconds of the whole matrix)."""
    from benchmark.runner import evaluate

    started = time.perf_counter()
    runs = evaluate(SUBMISSIONS, str(task), seeds=seeds, store=store, executor=executor, **ray)
    return runs, time.perf_counter() - started


def run_keys(store: ResultsStore, experiment: str) -> pd.DataFrame:
    """(submission, seed, run key) of every run in a store's experiment, sorted."""
    runs = store.runs(experiment)
    return runs[["tag.submission", "param.seed", "tag.run_key"]].sort_values(["tag.submission", "param.seed"])


def differences(local: pd.DataFrame, ray: pd.DataFrame, metrics: list[str]) -> list[str]:
    """Cells whose status or any metric differs (exactly; NaN equals NaN)."""
    cell = ["task", "submission", "seed"]
    joined = local.merge(ray, on=cell, how="outer", suffixes=("_local", "_ray"), indicator=True)
    found = []
    for _, row in joined.iterrows():
        label = f"{row['submission']} seed {row['seed']}"
        if row["_merge"] != "both":
            found.append(f"{label}: only in the {'local' if row['_merge'] == 'left_only' else 'Ray'} run")
            continue
        if row["status_local"] != "FINISHED" or row["status_ray"] != "FINISHED":
            found.append(f"{label}: status {row['status_local']} locally, {row['status_ray']} on Ray")
        for metric in metrics:
            a, b = row[f"{metric}_local"], row[f"{metric}_ray"]
            if not (a == b or (np.isnan(a) and np.isnan(b))):
                found.append(f"{label}: {metric} {a!r} locally, {b!r} on Ray")
    return found


def overheads(runs: pd.DataFrame) -> pd.Series:
    """Per cell: wall_seconds - cell_seconds - queued_seconds (Ray's dispatch and transfer,
    the driver's recording)."""
    missing = {"wall_seconds", "cell_seconds", "queued_seconds"} - set(runs.columns)
    if missing:
        raise SystemExit(f"perf/matrix.py: the Ray run's results lack the column(s) {sorted(missing)}: "
                         "benchmark.runner.evaluate(executor='ray') must report them per cell")
    return runs["wall_seconds"] - runs["cell_seconds"] - runs["queued_seconds"]


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def describe_ray_cells(runs: pd.DataFrame, wall: float, workers: int) -> float:
    """Print the Ray run's per-cell times; return the mean overhead (`overheads`)."""
    overhead = overheads(runs)
    say(f"Ray cells: cell_seconds mean {runs['cell_seconds'].mean():.2f} s, wall_seconds mean "
        f"{runs['wall_seconds'].mean():.2f} s, queued mean {runs['queued_seconds'].mean():.2f} s, "
        f"wall - cell - queued mean {overhead.mean():.2f} s, max {overhead.max():.2f} s")
    # Queueing aside: the cluster's capacity not spent inside cells, per cell.
    idle = (workers * wall - runs["cell_seconds"].sum()) / len(runs)
    say(f"Ray capacity not spent in cells: {idle:.2f} s a cell ({workers} x wall - the sum of cell_seconds, "
        f"over {len(runs)} cells)")
    return float(overhead.mean())


def compare(local: pd.DataFrame, on_ray: pd.DataFrame, stores: dict[str, ResultsStore], task: Path) -> list[str]:
    """Print whether both runs finished every cell with identical metrics and run keys;
    return the differences."""
    from benchmark.tasks import load_task

    spec = load_task(task)
    problems = differences(local, on_ray, spec.metrics)
    keys = {executor: run_keys(store, spec.experiment_name).reset_index(drop=True)
            for executor, store in stores.items()}
    if not keys["local"].equals(keys["ray"]):
        problems.append("the run keys differ between the two stores")
    if problems:
        say("RESULTS DIFFER between the local and the Ray run:\n  " + "\n  ".join(problems))
    else:
        say(f"identical: {len(local)} cells FINISHED in both runs, same metrics ({', '.join(spec.metrics)}) "
            "and run keys")
    return problems


def warm_up(task: Path) -> None:
    """Prepare the task's data into the cache and start one sandboxed worker, so that
    neither timed run pays for a cold cache or cold files."""
    from benchmark.api import find_submission
    from benchmark.data import prepare
    from benchmark.executors import build_model, close_model, require_sandbox
    from benchmark.tasks import load_task

    require_sandbox()
    prepare(load_task(task), log=lambda _: None)
    close_model(build_model(find_submission(SUBMISSIONS[0])))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=6, help="seeds per submission (cells: 2 x this; default 6)")
    parser.add_argument("--workers", type=int, default=2, help="CPUs of the Ray cluster, one cell each (default 2)")
    parser.add_argument("--users", type=int, default=200, help="users of the generated task (default 200)")
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    cells = len(SUBMISSIONS) * len(seeds)

    with tempfile.TemporaryDirectory(prefix="llm4rec-perf-matrix-") as tmp:
        folder = Path(tmp)
        # A cache of this run's own (no stale prepared data), the offline assets shared.
        os.environ["LLM4REC_ASSETS"] = str(assets_root())
        os.environ["LLM4REC_CACHE"] = str(folder / "cache")
        task = task_yaml(folder, args.users)
        say(f"matrix: {', '.join(SUBMISSIONS)} x seeds {seeds} = {cells} cells on {TASK_ID} ({args.users} users, "
            f"100 items), sandboxed; machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")

        started = time.perf_counter()
        stores = {executor: ResultsStore(f"sqlite:///{folder / executor / 'mlflow.db'}", log=log)
                  for executor in ("local", "ray")}
        warm_up(task)
        say(f"set-up (untimed): two fresh SQLite stores, the task's data prepared, one sandboxed worker started: "
            f"{time.perf_counter() - started:.1f} s")

        log("local run: one cell after another")
        local, local_wall = evaluate_matrix(task, seeds, stores["local"], "local")
        say(f"local: {local_wall:.1f} s for {cells} cells ({local_wall / cells:.2f} s a cell)")

        os.environ.update(LOOPBACK_RAY_ENV | {"RAY_AUTH_TOKEN": secrets.token_hex(32)})
        started = time.perf_counter()
        with LocalRayCluster(folder, args.workers) as cluster:
            say(f"Ray cluster start-up (not in the ratio): {time.perf_counter() - started:.1f} s, "
                f"{args.workers} CPUs at {cluster.address}")
            on_ray, ray_wall, warm_up_s = evaluate_on_ray(cluster, task, seeds, stores["ray"], args.workers)
        say(f"Ray: {ray_wall:.1f} s for {cells} cells; with the connection and the workers' start-up "
            f"{ray_wall + warm_up_s:.1f} s, a speed-up of {local_wall / (ray_wall + warm_up_s):.3f}")
        overhead = describe_ray_cells(on_ray, ray_wall, args.workers)
        problems = compare(local, on_ray, stores, task)
    print(f"ray_speedup_{args.workers}workers={local_wall / ray_wall:.3f} overhead_s_per_cell={overhead:.3f}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
