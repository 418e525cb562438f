"""Progress bars and messages on stderr, so stdout stays clean for tables and JSON."""
from __future__ import annotations

import os
import resource
import sys
import threading
from typing import Iterable, Iterator, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from benchmark.ticks import throttled

# Not squeezed to 80 columns when stderr is a log file rather than a terminal.
console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)
Item = TypeVar("Item")


def log(message: str) -> None:
    console.print(message, markup=False)


# Where stderr is a log file (CI, a background run), a line at most this often.
LOG_EVERY_SECONDS = 30.0


def track(iterable: Iterable[Item], description: str = "working", total: int | None = None) -> Iterator[Item]:
    """Iterate with a progress bar on a terminal; elsewhere (a log file) a line every
    LOG_EVERY_SECONDS with the count, elapsed time and an estimate of the time left."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if not console.is_terminal:
        yield from _logged(iterable, description, total)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        for item in iterable:
            yield item
            bar.advance(task)


def _logged(iterable: Iterable[Item], description: str, total: int | None) -> Iterator[Item]:
    def emit(done: int, elapsed: float) -> None:
        left = f", about {_duration(elapsed / done * (total - done))} left" if total and done < total else ""
        log(f"{description}: {done}/{total if total else '?'} in {_duration(elapsed)}{left}")

    return throttled(iterable, total, LOG_EVERY_SECONDS, emit)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class RunMonitor:
    """While the block runs: this process's peak resident memory (MB), sampled from /proc
    every 20 ms (ru_maxrss is a lifetime maximum, useless per run), and the machine's
    mean 1-minute load average, sampled each second (our own threads included), so that
    seconds measured on a busy machine can be told from seconds on an idle one; and,
    each second, the peak resident memory of this process's children (a submission's
    worker), read by the harness from /proc rather than reported by the worker."""

    def __init__(self, interval: float = 0.02, load_every: float = 1.0) -> None:
        self.interval = interval
        self.load_every = max(1, round(load_every / interval))
        self.peak_mb = 0.0
        self.children_peak_mb: float | None = None  # None: no child process seen
        self._loads: list[float] = []
        self._stop = threading.Event()
        self._page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20

    @property
    def mean_load(self) -> float:
        return sum(self._loads) / len(self._loads)

    def _rss_mb(self) -> float:
        try:
            with open("/proc/self/statm") as handle:
                return int(handle.read().split()[1]) * self._page_mb
        except OSError:
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def _children_peak(self) -> None:
        """VmHWM (the kernel's per-process peak RSS) of each child process."""
        for pid in _children():
            try:
                with open(f"/proc/{pid}/status") as handle:
                    kb = next((int(line.split()[1]) for line in handle if line.startswith("VmHWM:")), None)
            except (OSError, ValueError):
                continue  # it ended between the listing and the read
            if kb is not None:
                self.children_peak_mb = max(self.children_peak_mb or 0.0, kb / 1024)

    def _sample(self) -> None:
        tick = 0
        while not self._stop.wait(self.interval):
            self.peak_mb = max(self.peak_mb, self._rss_mb())
            tick += 1
            if tick % self.load_every == 0:
                self._loads.append(os.getloadavg()[0])
                self._children_peak()

    def __enter__(self) -> "RunMonitor":
        self.peak_mb = self._rss_mb()
        self._loads = [os.getloadavg()[0]]
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._rss_mb())
        self._loads.append(os.getloadavg()[0])
        self._children_peak()


def _children() -> list[str]:
    """Pids of this process's children (every thread's), from /proc."""
    pids: list[str] = []
    for task in os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ():
        try:
            with open(f"/proc/self/task/{task}/children") as handle:
                pids += handle.read().split()
        except OSError:  # a thread that ended meanwhile
            continue
    return pids
