"""llm4rec-bench against RecBole 1.2.1 on sequential/ml-100k, in one command.

(a) Data preparation: ours (`prepare` + `build_views` from the raw atomic files into an
    empty cache: reading, ordering, leave-one-out, fingerprints, the Parquet cache
    written) against RecBole's `create_dataset` + `data_preparation` for its sequential
    leave-one-out protocol on the same files. Imports are not timed on either side;
    median of `--repeats`.
(b) Training throughput in supervised next-item targets per second: our `sasrec`
    against RecBole's SASRec with the same architecture (hidden 64, 2 layers, 2 heads,
    feed-forward 64, ReLU, dropout 0.2, max length 50, batch 256, full-softmax CE), the
    same torch thread count; the median epoch after the first.
(c) Quality: test NDCG@10 (seed 0) of our `sasrec` after its default training against
    RecBole's SASRec (the `recbole-sasrec` card with that architecture) trained for up to
    `--budget` seconds (default 600: ten minutes of CPU) with RecBole's early stopping,
    both evaluated by the harness on the same split. The budget counts the worker's CPU
    seconds divided by its torch threads (wall seconds on an idle machine), so other
    jobs on the machine do not shrink it.

RecBole runs in its own environment (the recbole-sasrec card's requirements, built and
cached by the harness). Run from the repository root:

    PYTHONPATH=. python perf/vs_recbole.py [--budget 600] [--repeats 3] [--epochs 3]

Ends with one line:
    data_prep_speedup=X train_throughput_ratio=Y ndcg10_ours=A ndcg10_recbole=B
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from benchmark.api import FitContext, find_submission
from benchmark.data import prepare
from benchmark.data.assets import fetch_asset
from benchmark.data.views import build_views
from benchmark.executors.envs import ensure_env
from benchmark.runner import evaluate
from benchmark.tasks import load_task

REPO = Path(__file__).resolve().parents[1]
TASK = "sequential/ml-100k"
# RecBole's SASRec in the architecture of our sasrec card (see recbole_side.py).
RECBOLE_SASREC = {"MAX_ITEM_LIST_LENGTH": 50, "hidden_size": 64, "inner_size": 64, "n_layers": 2,
                  "n_heads": 2, "hidden_act": "relu", "hidden_dropout_prob": 0.2,
                  "attn_dropout_prob": 0.2, "train_batch_size": 256, "epochs": 1000,
                  "stopping_step": 10}


def quiet(*_args, **_kwargs) -> None:
    pass


def our_data_prep(repeats: int) -> list[float]:
    task = load_task(TASK)
    seconds = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            os.environ["LLM4REC_CACHE"] = cache
            start = time.perf_counter()
            build_views(task, prepare(task, log=quiet))
            seconds.append(time.perf_counter() - start)
        print(f"ours data preparation: {seconds[-1]:.2f} s", flush=True)
    os.environ.pop("LLM4REC_CACHE")
    return seconds


def our_epochs(epochs: int) -> tuple[list[float], int]:
    """Seconds per epoch of our sasrec (no validation), and its targets per epoch."""
    task = load_task(TASK)
    train = build_views(task, prepare(task, log=quiet)).train
    model = find_submission("sasrec").build(epochs=epochs)
    stamps: list[float] = []

    def timed(iterable, **_):
        for item in iterable:
            stamps.append(time.perf_counter())
            yield item
        stamps.append(time.perf_counter())

    model.fit(train, FitContext(seed=0, progress=timed))
    seconds = [b - a for a, b in zip(stamps[:-1], stamps[1:])]
    for epoch, s in enumerate(seconds):
        print(f"ours sasrec epoch {epoch}: {s:.1f} s", flush=True)
    targets = sum(max(len(s) - 1, 0) for s in train.sequences())
    return seconds, targets


def recbole_side(python: Path, repeats: int, epochs: int) -> dict:
    command = [str(python), str(REPO / "perf" / "recbole_side.py"), str(fetch_asset("ml-100k", log=quiet)),
               str(repeats), str(epochs), str(torch.get_num_threads())]
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=None, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def ndcg10(submission, seed: int = 0) -> float:
    runs = evaluate(submission, TASK, seeds=[seed], store=False)
    row = runs.iloc[0]
    if row["status"] != "FINISHED":
        raise RuntimeError(f"{row['submission']}: {row['reason']}")
    return float(row["NDCG@10"])


def recbole_budgeted(budget: float):
    """The recbole-sasrec card with our architecture and a training time budget."""
    return find_submission("recbole-sasrec").variant(**RECBOLE_SASREC, time_budget_seconds=budget)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=600.0, help="RecBole SASRec training seconds")
    parser.add_argument("--repeats", type=int, default=3, help="data preparation repeats")
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed for throughput")
    args = parser.parse_args()

    print(f"torch threads: {torch.get_num_threads()}; building/reusing RecBole's environment", flush=True)
    python = ensure_env(find_submission("recbole-sasrec").card.requirements, name="recbole").python

    ours_prep = statistics.median(our_data_prep(args.repeats))
    theirs = recbole_side(python, args.repeats, args.epochs)
    theirs_prep = statistics.median(theirs["prep_seconds"])
    ours_epochs, ours_targets = our_epochs(args.epochs)
    ours_rate = ours_targets / statistics.median(ours_epochs[1:] or ours_epochs)
    theirs_rate = theirs["train_targets"] / statistics.median(theirs["epoch_seconds"][1:] or theirs["epoch_seconds"])
    print(f"(a) data preparation: ours {ours_prep:.2f} s, RecBole {theirs_prep:.2f} s")
    print(f"(b) training: ours {ours_rate:,.0f} targets/s ({ours_targets:,} per epoch), "
          f"RecBole {theirs_rate:,.0f} targets/s ({theirs['train_targets']:,} per epoch)", flush=True)

    print("(c) our sasrec, default training, seed 0", flush=True)
    ours_ndcg = ndcg10(find_submission("sasrec"))
    print(f"(c) RecBole SASRec, {args.budget:.0f} s training budget, seed 0", flush=True)
    theirs_ndcg = ndcg10(recbole_budgeted(args.budget))
    print(f"(c) test NDCG@10: ours {ours_ndcg:.4f}, RecBole {theirs_ndcg:.4f}")
    print(f"data_prep_speedup={theirs_prep / ours_prep:.2f} train_throughput_ratio={ours_rate / theirs_rate:.2f} "
          f"ndcg10_ours={ours_ndcg:.4f} ndcg10_recbole={theirs_ndcg:.4f}")


if __name__ == "__main__":
    main()
