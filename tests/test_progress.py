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
