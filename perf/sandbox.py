"""Scoring throughput in the sandbox against in process, in one command.

1. `sasrec` on `sequential/ml-100k`: trained once per mode (a few epochs; the same
   seed gives the same model in both), then the test pass the runner makes (requests
   in batches, every answer checked, metrics accumulated) timed `--repeats` times.
2. A catalogue of 200,000 items (`--users` users with 30 random items each, the next
   one their target): a dot-product model (random item embeddings, a user is the mean
   of its history's) scores the whole catalogue; each answer is a 256 x 200,000 float32
   score matrix (200 MB) crossing the boundary (read from the worker's memory, or
   through a shared buffer where the kernel does not allow that:
   benchmark.executors.transfer).

Throughput is users scored per second (best of the repeats); a ratio is sandboxed over
in-process, so 1.0 means the boundary costs nothing. Also printed: the start-up
seconds of a worker (median of 3 `pop` workers: the sandbox, the interpreter, the
harness's API) and of the sasrec worker (torch imported too).

    PYTHONPATH=. python perf/sandbox.py [--epochs 2] [--users 1024] [--repeats 7]

Ends with one line: sandbox_ratio_ml100k=X sandbox_ratio_200k=Y startup_s=Z
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from benchmark.api import Catalog, FitContext, Submission, TrainData, find_submission
from benchmark.data import prepare
from benchmark.data.views import EvalSet, TaskViews, build_views
from benchmark.executors import build_model, close_model
from benchmark.executors.limits import Limits
from benchmark.families import family
from benchmark.runner import seed_everything
from benchmark.tasks import load_task
from benchmark.tasks.schema import TaskSpec

DOT_PRODUCT = '''
import numpy as np
from benchmark.api import Recommender


class DotProduct(Recommender):
    def fit(self, train, ctx):
        rng = np.random.default_rng(ctx.seed)
        self.items = rng.standard_normal((train.n_items, 32)).astype(np.float32)

    def score(self, request):
        users = np.stack([self.items[h].mean(axis=0) if len(h) else np.zeros(32, np.float32)
                          for h in request.histories])
        return users @ self.items.T
'''


def quiet(*_) -> None:
    pass


def dot_product_submission(folder: Path) -> Submission:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(textwrap.dedent(DOT_PRODUCT))
    (folder / "submission.yaml").write_text(yaml.safe_dump({
        "name": "dot-product", "version": "1", "paradigm": "id-from-scratch", "authors": ["perf"],
        "description": "random item embeddings; a user is the mean of its history's", "license": "MIT",
        "entrypoint": "model:DotProduct"}))
    return Submission(folder)


CATALOGUE_TASK = {
    "task": "sequential/perf-200k", "family": "sequential", "version": 1,
    "dataset": {"name": "perf-200k", "synthetic": {"n_users": 3, "n_items": 3, "interactions_per_user": 3}},
    "split": {"method": "leave_one_out"}, "history": {"max_len": 50, "exclude_seen": False},
    "metrics": ["HR@10", "NDCG@10"], "main_score": "NDCG@10", "seeds": [0], "batch_size": 256}


def catalogue_views(users: int, items: int = 200_000, history: int = 30) -> tuple[TaskSpec, TaskViews]:
    """A task over a catalogue of `items` items (views built directly: a generated
    dataset keeps only the items someone took): `users` users with `history` random
    items each, the next one their target."""
    rng = np.random.default_rng(0)
    taken = rng.integers(0, items, (users, history + 2))
    catalog = Catalog(items, pd.DataFrame({"item_id": np.arange(items), "original_id": np.arange(items).astype(str),
                                           "title": [f"Item {i}" for i in range(items)]}))
    interactions = pd.DataFrame({"user_id": np.repeat(np.arange(users), history),
                                 "item_id": taken[:, :history].ravel(),
                                 "timestamp": np.tile(np.arange(history, dtype=np.float64), users)})
    train = TrainData(interactions, users, catalog)
    test = EvalSet(np.arange(users), [taken[u, 1:history + 1] for u in range(users)], taken[:, history + 1])
    return TaskSpec.model_validate(CATALOGUE_TASK), TaskViews(train, test, test)


def throughput(submission: Submission, task: TaskSpec, views: TaskViews, sandbox: bool,
               repeats: int) -> tuple[float, float, dict]:
    """(users scored per second, best of `repeats`; start-up seconds; the metrics)."""
    seed_everything(0)
    started = time.perf_counter()
    model = build_model(submission, sandbox=sandbox, limits=Limits.effective(task.limits))
    startup = time.perf_counter() - started
    try:
        model.fit(views.train, FitContext(seed=0))
        task_family = family(task.family)
        call = task_family.test_call(model, views.train)
        best, metrics = 0.0, {}
        for _ in range(repeats):
            started = time.perf_counter()
            evaluation = task_family.evaluate_part(call, views.test, task, views.train, submission.name, "test")
            seconds = time.perf_counter() - started
            best, metrics = max(best, len(views.test) / seconds), evaluation.summary()
    finally:
        close_model(model)
    return best, startup, metrics


def compare(label: str, submission: Submission, task: TaskSpec, views: TaskViews, repeats: int) -> float:
    """Sandboxed / in-process throughput."""
    inside, startup, ours = throughput(submission, task, views, True, repeats)
    outside, _, theirs = throughput(submission, task, views, False, repeats)
    same = "identical metrics" if ours == theirs else f"METRICS DIFFER: {ours} vs {theirs}"
    print(f"{label}: in process {outside:,.0f} users/s, sandboxed {inside:,.0f} users/s "
          f"(ratio {inside / outside:.3f}); worker start-up {startup:.2f} s; {same}", file=sys.stderr)
    return inside / outside


def startup_seconds(runs: int = 3) -> float:
    """Median seconds until a sandboxed `pop` worker has imported its submission."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        close_model(build_model(find_submission("pop")))
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2, help="sasrec's training epochs (ml-100k)")
    parser.add_argument("--users", type=int, default=1024, help="users of the 200,000-item catalogue")
    parser.add_argument("--repeats", type=int, default=7, help="timed test passes per mode (the best counts)")
    args = parser.parse_args()

    startup = startup_seconds()
    print(f"worker start-up (pop, median of 3): {startup:.2f} s", file=sys.stderr)
    sasrec = find_submission("sasrec").variant(epochs=args.epochs, patience=args.epochs)
    task = load_task("sequential/ml-100k")
    views = build_views(task, prepare(task, log=quiet))
    ratio_ml100k = compare("sasrec on sequential/ml-100k", sasrec, task, views, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        ratio_200k = compare("dot product, 200,000 items", dot_product_submission(Path(tmp) / "dot-product"),
                             *catalogue_views(args.users), args.repeats)
    print(f"sandbox_ratio_ml100k={ratio_ml100k:.3f} sandbox_ratio_200k={ratio_200k:.3f} startup_s={startup:.2f}")


if __name__ == "__main__":
    main()
