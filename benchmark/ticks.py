"""Progress as occasional lines, for where there is no terminal to draw a bar on (log
files, worker processes): no dependencies, so the workers' own environments have it."""
from __future__ import annotations

import time
from typing import Callable, Iterable, Iterator, TypeVar

Item = TypeVar("Item")


def throttled(iterable: Iterable[Item], total: int | None, every: float,
              emit: Callable[[int, float], None]) -> Iterator[Item]:
    """Yield the items; call emit(done, elapsed seconds) at most once per `every`
    seconds, and after the last item when `total` is known."""
    started = last = time.monotonic()
    done = 0
    for item in iterable:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= every or done == total:
            last = now
            emit(done, now - started)
