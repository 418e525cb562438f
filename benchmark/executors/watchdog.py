"""The harness-side watch over one worker: its time limits, and its memory and process
limits where no cgroup enforces them; also the peak memory of its processes (a cost the
harness measures, never the worker's word).

A thread checks every `interval` seconds: a passed deadline (a fit, a call), the
cgroup's record of an OOM kill or a refused fork, or, without a cgroup, the resident
memory (VmRSS) and thread count of the worker's process tree. On a breach it records
the limit's wording and kills the worker's whole sandbox; the proxy then reports the
breach instead of a dead process.
"""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from benchmark.executors.cgroups import WorkerCgroup
from benchmark.executors.limits import Limits

MEASURE_EVERY = 5  # ticks between memory samples where a cgroup enforces the limits


def process_tree(root: int) -> set[int]:
    """`root` and its descendants (from /proc/<pid>/task/<tid>/children)."""
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found.add(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                todo += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
            except OSError:
                continue
    return found


def _status(pid: int) -> tuple[int, int]:
    """(memory in kB, threads) of a process; (0, 0) when it is gone. Memory is its
    proportional share (Pss: pages shared with forked children count once over them),
    else its resident size (VmRSS)."""
    memory = threads = 0
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    memory = int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            memory = next((int(line.split()[1]) for line in handle if line.startswith("Pss:")), memory)
    except (OSError, ValueError):
        pass
    return memory, threads


class Watchdog:
    def __init__(self, root_pid: int, limits: Limits, cgroup: WorkerCgroup | None,
                 kill: Callable[[], None], interval: float = 0.1) -> None:
        self.root_pid, self.limits, self.cgroup, self._kill = root_pid, limits, cgroup, kill
        self.interval = interval
        self.breach: str | None = None
        self.peak_rss_mb = 0.0
        self._memory_kb = self._threads = 0  # the last measurement
        self._deadlines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._checking = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llm4rec-watchdog", daemon=True)
        self._thread.start()

    @contextmanager
    def deadline(self, seconds: float, breach: str) -> Iterator[None]:
        """While the block runs, `seconds` from now ends the worker with `breach`."""
        entry = (time.monotonic() + seconds, breach)
        with self._lock:
            self._deadlines.append(entry)
        try:
            yield
        finally:
            with self._lock:
                self._deadlines.remove(entry)

    def check(self) -> str | None:
        """Look once (also called by the proxy when the worker died, before the thread's
        next look); returns the breach, if any."""
        with self._checking:
            if self.breach is None:
                found = self._breached()
                if found is not None:
                    self.breach = found
                    self._kill()
        return self.breach

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        tick = 0
        while not self._stopped.wait(self.interval):
            tick += 1
            # With a cgroup, memory is the kernel's to limit: sampled for the peak only.
            if self.cgroup is None or tick % MEASURE_EVERY == 1:
                self.measure()
            if self.check() is not None:
                return

    def _breached(self) -> str | None:
        now = time.monotonic()
        with self._lock:
            passed = [breach for when, breach in self._deadlines if now > when]
        if passed:
            return passed[0]
        if self.cgroup is not None:
            if self.cgroup.oom_killed():
                return self.limits.memory_breach()
            if self.cgroup.pids_refused():
                return self.limits.processes_breach()
            return None
        # Measured limits, where no kernel enforces them.
        if self._threads > self.limits.processes:
            return self.limits.processes_breach()
        if self._memory_kb * 1024 > self.limits.memory_bytes:
            return self.limits.memory_breach()
        return None

    def measure(self) -> None:
        """Memory and threads of all the worker's processes, now; the peak memory."""
        pids = self.cgroup.pids() if self.cgroup is not None else process_tree(self.root_pid)
        memory = threads = 0
        for pid in pids:
            kb, count = _status(pid)
            memory, threads = memory + kb, threads + count
        self._memory_kb, self._threads = memory, threads
        self.peak_rss_mb = max(self.peak_rss_mb, memory / 1024)
