"""Hostile: reach the test targets by one route; rank them first where found."""
import gc
import glob
import io
import json
import socket
import sqlite3
import subprocess
import sys

import numpy as np
import pandas as pd

from benchmark.api import Recommender

TEST_PART = 2  # benchmark.data.splits.TEST


def targets_of(sequence: pd.DataFrame) -> dict[int, int]:
    test = sequence[sequence["part"] == TEST_PART]
    return dict(zip(test["user_id"].astype(int), test["item_id"].astype(int)))


class TruthSeeker(Recommender):
    def __init__(self, route: str = "none", known: dict | None = None, **rest) -> None:
        """`known`: where everything is (the harness's cache folder, the raw data folder,
        the store's file, a port, the harness's pid, the task spec)."""
        super().__init__(route=route, known=known, **rest)
        known = known or {}
        self.route = route
        self.cache, self.data, self.store = known.get("cache", ""), known.get("data", ""), known.get("store", "")
        self.port, self.harness_pid, self.task = int(known.get("port", 0)), int(known.get("harness_pid", 0)), \
            known.get("task")
        self.truth: dict[int, int] = {}

    def fit(self, train, ctx) -> None:
        leaked = 0.0
        try:
            leaked = float(getattr(self, f"via_{self.route}")())
        except Exception as error:  # a wall: go on knowing nothing
            print(f"route {self.route}: {type(error).__name__}: {error}", file=sys.stderr)
        ctx.log_metric("leaked", leaked, 0)

    def score(self, request):
        scores = np.zeros((len(request.users), request.n_candidates))
        if self.route == "base":
            self.truth |= self.past_the_end(request)
        for row, user in enumerate(request.users):
            if int(user) in self.truth:
                scores[row, self.truth[int(user)]] = 1.0
        return scores

    # --- the routes: each returns how much it got (users with a target, or bytes) ---
    def via_none(self) -> int:
        return 0

    def via_cache(self) -> int:
        """The harness's Parquet cache of the processed split."""
        for path in glob.glob(f"{self.cache}/processed/*/sequence.parquet"):
            self.truth |= targets_of(pd.read_parquet(path))
        return len(self.truth)

    def via_subprocess(self) -> int:
        """`cat` the cache file from a child process."""
        done = subprocess.run(["sh", "-c", f"cat {self.cache}/processed/*/sequence.parquet"], capture_output=True,
                              timeout=30)
        self.truth |= targets_of(pd.read_parquet(io.BytesIO(done.stdout)))
        return len(self.truth)

    def via_prepare(self) -> int:
        """Run the harness's own data preparation on the task's raw files."""
        from benchmark.data import prepare
        from benchmark.tasks.schema import TaskSpec

        self.truth |= targets_of(prepare(TaskSpec.model_validate(self.task), log=lambda _: None).sequence)
        return len(self.truth)

    def via_raw(self) -> int:
        """Read the raw dataset files."""
        return sum(len(open(path, "rb").read()) for path in glob.glob(f"{self.data}/*"))

    def via_network(self) -> int:
        """Ask a server on the machine's loopback."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as connection:
            answer = connection.makefile("rb").read()
        self.truth |= {int(u): int(t) for u, t in json.loads(answer).items()}
        return len(self.truth)

    def via_memory(self) -> int:
        """Walk the garbage collector for the harness's task views (test targets)."""
        for obj in gc.get_objects():
            if type(obj).__name__ == "TaskViews" and isinstance(obj.test.targets, np.ndarray):
                self.truth |= dict(zip(map(int, obj.test.users), map(int, obj.test.targets)))
        return len(self.truth)

    def via_proc(self) -> int:
        """The harness's process through /proc: its environment and its memory."""
        got = len(open(f"/proc/{self.harness_pid}/environ", "rb").read())
        with open(f"/proc/{self.harness_pid}/maps") as maps:
            start, end = (int(a, 16) for a in maps.readline().split()[0].split("-"))
        with open(f"/proc/{self.harness_pid}/mem", "rb") as memory:
            memory.seek(start)
            got += len(memory.read(min(end - start, 4096)))
        return got

    def via_store(self) -> int:
        """Read the results store's file."""
        return len(open(self.store, "rb").read())

    def via_store_write(self) -> int:
        """Rewrite every run's metrics in the results store."""
        with sqlite3.connect(self.store) as db:
            changed = db.execute("UPDATE metrics SET value = 1.0").rowcount
            changed += db.execute("UPDATE latest_metrics SET value = 1.0").rowcount
        return changed

    def via_base(self) -> int:
        return 0  # at scoring time: past_the_end

    @staticmethod
    def past_the_end(request) -> dict[int, int]:
        """A history that is a view of a longer array: the item right after its end is
        the next one the user took (the target)."""
        found = {}
        for user, history in zip(request.users, request.histories):
            base = history.base
            while isinstance(base, np.ndarray) and base.base is not None:
                base = base.base
            if not isinstance(base, np.ndarray) or base.dtype != history.dtype or not len(history):
                continue
            offset = (history.__array_interface__["data"][0] - base.__array_interface__["data"][0])
            index = offset // history.itemsize + len(history)
            if 0 <= index < base.size:
                found[int(user)] = int(base.reshape(-1)[index])
        return found
