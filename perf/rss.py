"""Peak memory of this process for the perf/ scripts (Linux): the resident set now, its
high-water mark, and resetting that mark so a measurement counts only what follows."""
from __future__ import annotations


def rss_kb(field: str = "VmRSS") -> int:
    """A memory field of /proc/self/status in kB: VmRSS (now) or VmHWM (the peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def reset_peak() -> int:
    """Reset VmHWM to the current RSS (writing 5 to clear_refs); return that RSS in kB."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    return rss_kb("VmRSS")
