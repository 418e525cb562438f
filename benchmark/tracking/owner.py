"""Who owns a run, and whether that process still lives.

Every run records the process that created it (host, pid, the pid's start time, the
boot id and the pid namespace). On the same machine and pid space, `owner_state` tells
a live owner from one that has ended or whose pid now belongs to another process; on
another machine it cannot tell, and the run's heartbeat decides (see
`benchmark.tracking.store.end_stale_runs`). Linux only reads /proc; elsewhere the pid
checks fall back to "unknown" and only heartbeats count.
"""
from __future__ import annotations

import os
import socket
from enum import Enum
from pathlib import Path

TAG_HOST = "owner.host"
TAG_PID = "owner.pid"
TAG_PID_START = "owner.pid_start"  # clock ticks after boot (/proc/<pid>/stat, field 22)
TAG_BOOT_ID = "owner.boot_id"
TAG_PID_NAMESPACE = "owner.pid_namespace"
# A pid means the same process only within one boot and one pid namespace.
PID_SPACE_TAGS = (TAG_HOST, TAG_BOOT_ID, TAG_PID_NAMESPACE)


class OwnerState(Enum):
    ALIVE = "alive"
    GONE = "gone"            # no such pid, or a zombie
    REPLACED = "replaced"    # the pid now belongs to a process started later
    UNKNOWN = "unknown"      # another machine, pid space or boot, or no owner tags


def owner_tags(pid: int | None = None) -> dict[str, str]:
    """The identity of process `pid` (this one by default) as run tags."""
    pid = os.getpid() if pid is None else pid
    return {TAG_HOST: socket.gethostname(), TAG_PID: str(pid), TAG_PID_START: _start_ticks(pid) or "",
            TAG_BOOT_ID: _read("/proc/sys/kernel/random/boot_id"), TAG_PID_NAMESPACE: _pid_namespace()}


def owner_state(tags: dict[str, str]) -> OwnerState:
    """Whether the process named by a run's owner tags is alive, as far as this
    machine can tell."""
    here = owner_tags()
    if not tags.get(TAG_PID, "").isdigit() or any(not tags.get(t) or tags.get(t) != here[t] for t in PID_SPACE_TAGS):
        return OwnerState.UNKNOWN
    status = stat_fields(int(tags[TAG_PID]))
    if status is None or status[0] in ("Z", "X"):  # zombie or dead: it ran its last instruction
        return OwnerState.GONE
    recorded = tags.get(TAG_PID_START)
    if recorded and status[19] != recorded:
        return OwnerState.REPLACED
    return OwnerState.ALIVE


def describe_owner(tags: dict[str, str]) -> str:
    return f"pid {tags.get(TAG_PID, '?')} on {tags.get(TAG_HOST, '?')}"


def stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 (state) on; the command name before it may hold
    spaces and parentheses, so the split starts after the last ')'."""
    text = _read(f"/proc/{pid}/stat")
    return text.rsplit(")", 1)[1].split() if ")" in text else None


def _start_ticks(pid: int) -> str | None:
    fields = stat_fields(pid)
    return fields[19] if fields else None


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""
