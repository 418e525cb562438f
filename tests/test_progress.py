"""Progress where stderr is a log file: a line per LOG_EVERY_SECONDS with counts and
the time left, and always a last line; the items pass through unchanged."""
from __future__ import annotations

import benchmark.progress as progress


def test_a_log_file_gets_progress_lines(monkeypatch):
    lines = []
    monkeypatch.setattr(progress, "log", lines.append)
    monkeypatch.setattr(progress, "LOG_EVERY_SECONDS", 0.0)
    assert list(progress._logged(range(3), "scoring test", 3)) == [0, 1, 2]
    assert lines[0].startswith("scoring test: 1/3 in 0s, about ") and lines[0].endswith(" left")
    assert lines[-1] == "scoring test: 3/3 in 0s"


def test_only_the_last_line_when_the_work_is_quick(monkeypatch):
    lines = []
    monkeypatch.setattr(progress, "log", lines.append)
    assert list(progress.track(iter(range(5)), "fit", total=5)) == list(range(5))  # pytest: not a terminal
    assert lines == ["fit: 5/5 in 0s"]


def test_run_monitor_averages_the_load_over_the_run(monkeypatch):
    import itertools
    import time

    loads = itertools.count(1.0)  # 1, 2, 3, ... one per sample
    monkeypatch.setattr(progress.os, "getloadavg", lambda: (next(loads), 0.0, 0.0))
    with progress.RunMonitor(interval=0.001, load_every=0.005) as monitor:
        data = bytearray(64 * 2**20)  # touched pages count towards the peak
        time.sleep(0.1)
    samples = monitor._loads
    assert len(samples) > 3 and samples == sorted(samples)  # at the start, each 5 ms, at the end
    assert monitor.mean_load == sum(samples) / len(samples)
    assert monitor.peak_mb >= 64 and len(data) == 64 * 2**20
