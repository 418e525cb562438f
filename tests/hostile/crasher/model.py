"""Hostile: end or abuse the worker process, one way per `mode`."""
import gc
import mmap
import os
import signal
import sys
import threading
import time

import numpy as np

from benchmark.api import Recommender


def the_worker():
    """The worker's own conversation object (benchmark.executors.worker.Worker)."""
    return next(o for o in gc.get_objects() if type(o).__name__ == "Worker" and hasattr(o, "outgoing"))


class Crasher(Recommender):
    def __init__(self, mode: str = "none", **rest) -> None:
        super().__init__(mode=mode, **rest)
        self.mode = mode

    def fit(self, train, ctx) -> None:
        action = getattr(self, f"fit_{self.mode.replace('-', '_')}", None)
        if action is not None:
            action()

    def score(self, request):
        action = getattr(self, f"score_{self.mode.replace('-', '_')}", None)
        if action is not None:
            action()
        answer = np.zeros((len(request.users), request.n_candidates))
        getattr(self, "given", []).append(answer)
        return answer

    # --- in fit ---
    def fit_exit(self):
        sys.exit(3)

    def fit_signal(self):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)

    def fit_hang_fit(self):
        time.sleep(10**6)

    def fit_memory(self):
        blocks = []
        while True:
            blocks.append(np.ones(2**24))  # 128 MB, every page touched

    def fit_fork_bomb(self):
        while True:
            try:
                os.fork()
            except OSError:
                time.sleep(0.001)

    def fit_threads(self):
        """Many threads at once (a bounded stand-in for a fork bomb, where nothing but
        the watchdog counts)."""
        for _ in range(200):
            threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
        time.sleep(60)

    def fit_flood(self):
        for i in range(100_000):
            print(f"flood line {i}")
            print(f"flood error {i}", file=sys.stderr)
        sys.stderr.write("x" * 20_000_000)  # one line without end
        sys.stderr.flush()

    def fit_garbage(self):
        worker = the_worker()
        worker.outgoing.write(b"garbage on the protocol channel" * 100)
        worker.outgoing.flush()

    def fit_huge_message(self):
        worker = the_worker()
        worker.outgoing.write(b"L4R1" + (2**31).to_bytes(4, "big") + b"{" * 1000)
        worker.outgoing.flush()

    def fit_lie(self):
        worker = the_worker()
        worker._output = lambda scores, where=None: ({"scores_answer": {
            "where": where, "dtype": "<f8", "shape": [10**6, 10**6], "address": 4096}}, None)

    def fit_scribble(self):
        """A thread that keeps writing NaN over every answer it gave and over the shared
        buffer (scores checked before the harness copied them would then be NaN: a
        perfect rank for everyone)."""
        self.given = []
        fd = int(os.environ["LLM4REC_SHM_FD"])

        def scribble():
            while True:
                for answer in list(self.given):
                    answer[...] = np.nan
                size = os.fstat(fd).st_size
                if size:
                    with mmap.mmap(fd, size) as shared:
                        np.frombuffer(shared, dtype=np.float64)[:] = np.nan
                time.sleep(0.0005)

        threading.Thread(target=scribble, daemon=True).start()

    # --- in score ---
    def score_os_exit(self):
        os._exit(5)

    def score_sigkill(self):
        os.kill(os.getpid(), signal.SIGKILL)

    def score_hang(self):
        time.sleep(10**6)
