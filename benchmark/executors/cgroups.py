"""A cgroup (v1) per worker: its memory and process limits, enforced by the kernel.

The group is made under the harness's own groups (so whatever limits those carry still
apply) in the `memory` and `pids` hierarchies: memory.limit_in_bytes (and
memory.memsw.limit_in_bytes where swap is accounted) and pids.max. The harness puts the
worker in before the worker starts anything (see benchmark.executors.isolated), so every
process it forks is in it too. Where the hierarchies are missing or not writable,
`WorkerCgroup.create` returns None and the watchdog measures instead
(benchmark.executors.watchdog).
"""
from __future__ import annotations

import itertools
import os
import signal
import time
from pathlib import Path

CONTROLLERS = ("memory", "pids")
_counter = itertools.count()


def _mount_points() -> dict[str, Path]:
    """controller -> where its v1 hierarchy is mounted (from /proc/self/mountinfo)."""
    found: dict[str, Path] = {}
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split(" - ")
        if len(fields) != 2 or not fields[1].startswith("cgroup "):
            continue
        mount = Path(fields[0].split()[4])
        options = fields[1].split()[-1].split(",")
        for controller in CONTROLLERS:
            if controller in options:
                found.setdefault(controller, mount)
    return found


def _own_groups() -> dict[str, str]:
    """controller -> this process's group path in it (from /proc/self/cgroup)."""
    groups: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return groups
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            if controller in CONTROLLERS:
                groups[controller] = path
    return groups


class WorkerCgroup:
    """The memory and pids groups of one worker."""

    def __init__(self, folders: dict[str, Path]) -> None:
        self.folders = folders

    @classmethod
    def create(cls, memory_bytes: int, processes: int) -> "WorkerCgroup | None":
        """Both groups with their limits, or None where either cannot be made."""
        mounts, own = _mount_points(), _own_groups()
        if not all(c in mounts and c in own for c in CONTROLLERS):
            return None
        name = f"llm4rec-{os.getpid()}-{next(_counter)}"
        made: dict[str, Path] = {}
        try:
            for controller in CONTROLLERS:
                folder = mounts[controller] / own[controller].lstrip("/") / name
                folder.mkdir()
                made[controller] = folder
            memory = made["memory"]
            (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
            swap = memory / "memory.memsw.limit_in_bytes"
            if swap.exists():
                swap.write_text(str(memory_bytes))
            (made["pids"] / "pids.max").write_text(str(processes))
        except OSError:
            cls(made).remove()
            return None
        return cls(made)

    def add(self, pid: int) -> None:
        """Move a process (before it forks anything) into both groups."""
        for folder in self.folders.values():
            (folder / "cgroup.procs").write_text(str(pid))

    def _read(self, controller: str, file: str) -> str:
        try:
            return (self.folders[controller] / file).read_text()
        except (OSError, KeyError):
            return ""

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the group for the memory limit."""
        stats = dict(line.split() for line in self._read("memory", "memory.oom_control").splitlines()
                     if len(line.split()) == 2)
        if "oom_kill" in stats:
            return int(stats["oom_kill"]) > 0
        return stats.get("under_oom") == "1"  # kernels without the counter

    def pids_refused(self) -> bool:
        """Whether a fork or a new thread was refused for the process limit."""
        for line in self._read("pids", "pids.events").splitlines():
            key, _, value = line.partition(" ")
            if key == "max":
                return int(value or 0) > 0
        return False

    def pids(self) -> set[int]:
        return {int(p) for c in self.folders for p in self._read(c, "cgroup.procs").split()}

    def kill_all(self) -> None:
        """SIGKILL every process in the group, again until none is left (a process may
        fork meanwhile: pids.max bounds how many there can be)."""
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)

    def remove(self) -> None:
        """Remove the groups (once their processes are gone)."""
        for folder in self.folders.values():
            for _ in range(100):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # still busy: its last processes are exiting
                    time.sleep(0.05)


def remove_stale_groups() -> None:
    """Remove empty groups left by a harness process that was killed (llm4rec-<pid>-N
    whose pid is gone), under this process's own groups."""
    mounts, own = _mount_points(), _own_groups()
    for controller in CONTROLLERS:
        if controller not in mounts or controller not in own:
            continue
        parent = mounts[controller] / own[controller].lstrip("/")
        try:
            stale = [p for p in parent.glob("llm4rec-*-*") if not _alive(p.name.split("-")[1])]
        except OSError:
            continue
        for folder in stale:
            try:
                folder.rmdir()
            except OSError:
                pass


def _alive(pid: str) -> bool:
    return pid.isdigit() and Path(f"/proc/{pid}").exists()
