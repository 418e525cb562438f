"""Data preparation at scale: seconds, peak memory and growth on synthetic power-law data
of 1M, 5M and 20M interactions (20M: ML-20M's size), against RecBole 1.2.1 on the same files.

Data. For each size N a seeded generator writes a RecBole atomic file (`scale-<N>.inter`:
`user_id:token item_id:token rating:float timestamp:float`) into
`<llm4rec cache>/perf-data-scale/` (kept: a later run reuses it). Users have power-law
activity (counts from a Pareto law with exponent 1.1, at least 5, at most 10,000: about
33 on average), items Zipf popularity (exponent 1 over N/50 items, so the tail falls to
the 5-core filter), ratings 1-5, timestamps uniform over three years (whole seconds),
rows in random order; user and item tokens are shuffled integers.

Ours. The sequential task on those files: 5-core filtering (users and items with at
least 5 interactions, repeated until stable), chronological leave-one-out. Timed:
`benchmark.data.pipeline.prepare` into an empty cache (the sha256 of the source file,
reading and checking it, the raw Parquet cache, k-core, dense ids, the split,
fingerprints, the summary, the processed Parquet cache) plus `build_views` (the
training rows, the validation and test users with their histories).
RecBole. `create_dataset` + `data_preparation` for its sequential protocol (SASRec's
data: leave-one-out by time, full ranking) with the same 5-core filter, in its own
environment (the recbole-sasrec card's requirements, built and cached by the harness;
`--no-recbole` skips it). RecBole runs on the 1M and 5M files only: its sequential
data keeps a 50-item history per training interaction, gigabytes at 20M.

Every preparation runs in a fresh child process; imports are not timed (ours first
prepares a 20,000-interaction file, so that lazy imports and code paging are done too).
Peak memory is the child's peak RSS (VmHWM) above its RSS right before the preparation,
so the interpreter and library code do not count; the absolute VmHWM is shown too.
Seconds are wall-clock; CPU seconds (all threads) are shown beside them, since other
work on a shared machine stretches the wall clock.

"The raw table" is the canonical raw interactions DataFrame as the reader returns it
(RawDataset.interactions: user and item ids as text, rating, timestamp, row), measured
by `memory_usage(deep=True)`; peak_over_raw is our peak over it, at the worst size. The
growth exponent is the least-squares slope of log(seconds) on log(N) over the sizes
(1: linear).

    PYTHONPATH=. python perf/data_scale.py [--sizes 1000000 5000000 20000000] [--no-recbole]

Ends with one line:
    prep_speedup_vs_recbole=X peak_over_raw=Y growth_exponent=Z
X: geometric mean over the 1M and 5M sizes of RecBole's seconds over ours ("nan"
without RecBole or those sizes).
"""
# Only the standard library and NumPy at module level: the RecBole side of this file
# runs in RecBole's environment, where the harness is not installed.
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from rss import reset_peak, rss_kb  # perf/rss.py: this script's folder is on sys.path

REPO = Path(__file__).resolve().parents[1]
HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
MIN_INTERACTIONS = 5  # the k-core filter on both sides
RECBOLE_SIZES = (1_000_000, 5_000_000)
SEED = 0




# --- the data --------------------------------------------------------------------------

def generate(n: int, seed: int) -> dict[str, np.ndarray]:
    """n interactions: users with Pareto activity, items with Zipf popularity."""
    rng = np.random.default_rng(seed)
    # Per-user counts: a Pareto law (alpha 1.1) from 5, capped at 10,000 (mean ~55).
    counts = np.minimum(np.floor(MIN_INTERACTIONS * rng.random(n // MIN_INTERACTIONS + 1) ** (-1 / 1.1)),
                        10_000).astype(np.int64)
    n_users = int(np.searchsorted(np.cumsum(counts), n)) + 1
    users = np.repeat(np.arange(n_users), counts[:n_users])[:n]
    n_items = max(100, n // 50)
    popularity = 1.0 / np.arange(1, n_items + 1)
    items = rng.choice(n_items, size=n, p=popularity / popularity.sum())
    order = rng.permutation(n)  # the file is not sorted by user or time
    start = 1_400_000_000  # 2014
    return {
        "user_id": (rng.permutation(n_users) + 1)[users[order]],
        "item_id": (rng.permutation(n_items) + 1)[items[order]],
        "rating": rng.integers(1, 6, n),
        "timestamp": rng.integers(start, start + 3 * 365 * 86_400, n),
    }


def dataset_folder(n: int, seed: int, root: Path | None = None, quiet: bool = False) -> Path:
    """The folder of the size-n atomic file, written on first use (under the llm4rec
    cache unless `root` is given)."""
    if root is None:
        from benchmark.paths import cache_dir

        root = cache_dir() / "perf-data-scale"
    folder = root / f"scale-{n}-seed{seed}"
    inter = folder / f"scale-{n}.inter"
    done = folder / ".complete"
    if done.is_file():
        return folder
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if not quiet:
        print(f"writing {n:,} interactions to {inter}", file=sys.stderr, flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table(generate(n, seed))
    with inter.open("wb") as f:
        f.write(HEADER.encode())
        pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none"))
    done.write_text("")
    return folder


# --- ours (a child process) ------------------------------------------------------------

def scale_task(folder: Path, name: str):
    from benchmark.tasks.schema import TaskSpec

    return TaskSpec.model_validate({
        "task": f"sequential/{name}", "family": "sequential", "version": 1,
        "dataset": {"name": name, "path": str(folder),
                    "filters": {"min_user_interactions": MIN_INTERACTIONS,
                                "min_item_interactions": MIN_INTERACTIONS}},
        "split": {"method": "leave_one_out"},
        "metrics": ["NDCG@10"], "main_score": "NDCG@10", "seeds": [0],
    })


def ours_child(folder: Path, name: str) -> dict:
    from benchmark.data import prepare
    from benchmark.data.datasets.atomic import RecBoleAtomic
    from benchmark.data.views import build_views

    def run(folder: Path, name: str):
        task = scale_task(folder, name)
        return task, prepare(task, log=lambda _: None)

    with tempfile.TemporaryDirectory(prefix="llm4rec-scale-") as scratch:
        os.environ["LLM4REC_CACHE"] = scratch  # empty: nothing is reused
        # Warm-up on a small dataset: code paged in, lazy imports done (they are not data).
        build_views(*run(dataset_folder(20_000, SEED + 1, Path(scratch), quiet=True), "scale-20000"))
        base = reset_peak()
        start, cpu = time.perf_counter(), time.process_time()
        task, prepared = run(folder, name)
        views = build_views(task, prepared)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        peak = rss_kb("VmHWM")
    summary = prepared.summary
    del prepared, views
    # After the measurement: the raw table as the reader returns it.
    raw = RecBoleAtomic().read(folder, name).interactions
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_mb": (peak - base) / 1024, "hwm_mb": peak / 1024,
            "raw_mb": int(raw.memory_usage(deep=True).sum()) / 2**20, "raw_rows": len(raw),
            "users": summary["n_users"], "items": summary["n_items"], "interactions": summary["n_interactions"]}


# --- RecBole (a child process in RecBole's environment) --------------------------------

def recbole_child(folder: Path, name: str) -> dict:
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    warnings.filterwarnings("ignore")
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation

    sys.argv = sys.argv[:1]  # RecBole's Config reads the command line
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        (Path(scratch) / name).symlink_to(folder.resolve())
        config = Config(model="SASRec", dataset=name, config_dict={
            "data_path": scratch, "checkpoint_dir": f"{scratch}/saved",
            "use_gpu": False, "show_progress": False, "save_dataset": False,
            "save_dataloaders": False, "log_wandb": False, "worker": 0, "reproducibility": True,
            "seed": 0, "state": "ERROR",
            "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
            "user_inter_num_interval": f"[{MIN_INTERACTIONS},inf)",
            "item_inter_num_interval": f"[{MIN_INTERACTIONS},inf)",
            # RecBole's sequential protocol, as perf/recbole_side.py runs it.
            "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full",
                          "group_by": "user"},
            "MAX_ITEM_LIST_LENGTH": 50, "loss_type": "CE", "train_neg_sample_args": None,
        })
        base = reset_peak()
        start, cpu = time.perf_counter(), time.process_time()
        dataset = create_dataset(config)
        # After its filtering, before the split ([PAD] is id 0 of each id field).
        counts = {"users": dataset.user_num - 1, "items": dataset.item_num - 1, "interactions": dataset.inter_num}
        train, _, _ = data_preparation(config, dataset)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        peak = rss_kb("VmHWM")
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_mb": (peak - base) / 1024, "hwm_mb": peak / 1024, **counts,
            "train_rows": len(train.dataset)}


# --- the parent ------------------------------------------------------------------------

def run_child(python: str | Path, side: str, folder: Path, name: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    command = [str(python), str(Path(__file__).resolve()), "--child", side, "--folder", str(folder), "--name", name]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def growth_exponent(sizes: list[int], seconds: list[float]) -> float:
    """Least-squares slope of log(seconds) on log(size)."""
    if len(sizes) < 2:
        return float("nan")
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000, 20_000_000],
                        help="interactions per dataset (default: 1M 5M 20M)")
    parser.add_argument("--no-recbole", action="store_true", help="skip RecBole (no environment needed)")
    parser.add_argument("--child", choices=["ours", "recbole"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps((ours_child if args.child == "ours" else recbole_child)(args.folder, args.name)))
        return

    sizes = sorted(set(args.sizes))
    recbole_python = None
    if not args.no_recbole and any(n in RECBOLE_SIZES for n in sizes):
        from benchmark.api import find_submission
        from benchmark.executors.envs import ensure_env

        print("building/reusing RecBole's environment", file=sys.stderr, flush=True)
        recbole_python = ensure_env(find_submission("recbole-sasrec").card.requirements, name="recbole").python

    load_before = os.getloadavg()[0]
    ours: dict[int, dict] = {}
    theirs: dict[int, dict] = {}
    for n in sizes:
        folder, name = dataset_folder(n, SEED), f"scale-{n}"
        ours[n] = run_child(sys.executable, "ours", folder, name)
        print(f"ours {n:,}: {ours[n]['seconds']:.1f} s, peak +{ours[n]['peak_mb']:.0f} MB", file=sys.stderr, flush=True)
        if recbole_python is not None and n in RECBOLE_SIZES:
            theirs[n] = run_child(recbole_python, "recbole", folder, name)
            print(f"recbole {n:,}: {theirs[n]['seconds']:.1f} s, peak +{theirs[n]['peak_mb']:.0f} MB",
                  file=sys.stderr, flush=True)

    for n in sizes:
        o = ours[n]
        print(f"\n{n:,} interactions in the file; after the 5-core filter {o['interactions']:,} "
              f"({o['users']:,} users, {o['items']:,} items); raw table {o['raw_mb']:.0f} MB")
        print(f"  {'':10}{'seconds':>10}{'CPU s':>10}{'rows/s':>12}{'peak MB':>10}{'peak/raw':>10}{'VmHWM MB':>10}")
        rows = [("ours", o)] + ([("RecBole", theirs[n])] if n in theirs else [])
        for label, r in rows:
            print(f"  {label:10}{r['seconds']:>10.1f}{r['cpu_seconds']:>10.1f}{n / r['seconds']:>12,.0f}"
                  f"{r['peak_mb']:>10.0f}{r['peak_mb'] / o['raw_mb']:>10.2f}{r['hwm_mb']:>10.0f}")
        if n in theirs:
            t = theirs[n]
            same = (t["users"], t["items"], t["interactions"]) == (o["users"], o["items"], o["interactions"])
            print(f"  RecBole/ours: {t['seconds'] / o['seconds']:.1f}x the time; RecBole after filtering: "
                  f"{t['interactions']:,} interactions, {t['users']:,} users, {t['items']:,} items"
                  f"{' (the same)' if same else ' (differs from ours)'}")

    exponent = growth_exponent(sizes, [ours[n]["seconds"] for n in sizes])
    cpu_exponent = growth_exponent(sizes, [ours[n]["cpu_seconds"] for n in sizes])
    ratios = [theirs[n]["seconds"] / ours[n]["seconds"] for n in RECBOLE_SIZES if n in theirs]
    speedup = math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios else float("nan")
    worst = max(ours[n]["peak_mb"] / ours[n]["raw_mb"] for n in sizes)
    print(f"\ngrowth over {', '.join(f'{n:,}' for n in sizes)}: seconds ~ N^{exponent:.2f} "
          f"(CPU seconds ~ N^{cpu_exponent:.2f})")
    print(f"load average (1 min) before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} "
          "cores (a shared machine)")
    print(f"prep_speedup_vs_recbole={speedup:.2f} peak_over_raw={worst:.2f} growth_exponent={exponent:.2f}")


if __name__ == "__main__":
    main()
