"""The worker's stderr (its prints, its logging, ctx.progress) on the harness's console,
bounded: a flood can neither fill the harness's memory nor block the worker.

The stream is drained as fast as it comes, in chunks; each line is cut to LINE_CHARS;
at most LINES_PER_SECOND lines a second reach the console and the rest are counted
("… 1234 lines not shown"); the last TAIL_LINES lines are kept for failure messages.
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from typing import Callable

LINE_CHARS = 1000
LINES_PER_SECOND = 50
TAIL_LINES = 40
CHUNK = 1 << 16


class OutputForwarder:
    def __init__(self, fd: int, name: str, log: Callable[[str], None]) -> None:
        self.fd, self.name, self.log = fd, name, log
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.hidden = 0  # lines not shown, in all
        self._window_start = time.monotonic()
        self._shown_in_window = 0
        self._hidden_in_window = 0
        self._thread = threading.Thread(target=self._run, name=f"llm4rec-stderr-{name}", daemon=True)
        self._thread.start()

    def text(self) -> str:
        return "\n".join(self.tail).rstrip()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        partial = b""
        try:
            while chunk := os.read(self.fd, CHUNK):
                lines = (partial + chunk).split(b"\n")
                partial = lines.pop()
                for line in lines:
                    self._line(line)
                if len(partial) > LINE_CHARS * 4:  # a line without end: cut it here
                    self._line(partial)
                    partial = b""
            if partial:
                self._line(partial)
        except OSError:
            pass
        finally:
            self._flush_hidden()
            try:
                os.close(self.fd)
            except OSError:
                pass

    def _line(self, raw: bytes) -> None:
        line = raw[:LINE_CHARS * 4].decode("utf-8", errors="replace").rstrip("\r")
        if len(line) > LINE_CHARS:
            line = line[:LINE_CHARS] + " …"
        self.tail.append(line)
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._flush_hidden()
            self._window_start, self._shown_in_window = now, 0
        if self._shown_in_window < LINES_PER_SECOND:
            self._shown_in_window += 1
            self.log(f"  [{self.name}] {line}")
        else:
            self._hidden_in_window += 1
            self.hidden += 1

    def _flush_hidden(self) -> None:
        if self._hidden_in_window:
            self.log(f"  [{self.name}] … {self._hidden_in_window} lines not shown")
            self._hidden_in_window = 0
