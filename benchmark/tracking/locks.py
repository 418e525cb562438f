"""Inter-process locks on lock files (fcntl.flock), for the results store.

The kernel holds a flock for exactly as long as the file stays open in the holding
process, so a lock can never outlive its holder: `kill -9` releases it. Lock files are
never deleted (unlinking a lock file while another process waits on it would let two
processes hold "the same" lock); there is one small file per run key ever claimed.
flock works between processes of one machine, and on NFSv4 between machines; it does
not on every network filesystem.
"""
from __future__ import annotations

import fcntl
import os
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from benchmark.tracking.owner import describe_owner, owner_tags

SAFE_LOCK_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_HELD = threading.local()  # the lock files each thread holds


@contextmanager
def file_lock(path: Path, wait: bool = True, on_busy: Callable[[str], None] | None = None) -> Iterator[bool]:
    """Hold an exclusive lock on `path` for the block; yields True when held. When
    another process holds it: waits (wait=True) or yields False at once. `on_busy`
    hears, before the wait, who holds it (as written in the file by its holder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    held_here = _held_by_this_thread()
    if path.resolve() in held_here:  # waiting for ourselves would never end
        raise RuntimeError(f"{path}: this thread holds this lock already")
    try:  # never through a link: the holder's line is written into the file
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    except OSError as error:
        raise OSError(f"{path}: cannot open this lock file ({error.strerror})") from None
    try:
        held = _try_lock(fd)
        if not held and on_busy is not None:
            on_busy(_holder(fd))
        if not held and wait:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = True
        if held:
            _write_holder(fd)
            held_here.add(path.resolve())
        yield held
    finally:
        held_here.discard(path.resolve())
        os.close(fd)  # closing the last descriptor releases the lock


def key_lock_path(lock_dir: Path, key: str) -> Path:
    """The lock file of one run key; the key becomes a file name, so it is checked."""
    if not SAFE_LOCK_NAME.match(key) or key.startswith("."):
        raise ValueError(f"run key {key!r} cannot name a lock file (letters, digits, '_', '-', '.' only)")
    return lock_dir / f"{key}.lock"


def _held_by_this_thread() -> set[Path]:
    """flock locks are per open file, so a second open by the same process waits for
    the first like any other process: right between threads, a deadlock within one."""
    if not hasattr(_HELD, "paths"):
        _HELD.paths = set()
    return _HELD.paths


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _holder(fd: int) -> str:
    text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    return text or "another process"


def _write_holder(fd: int) -> None:
    """Who holds the lock, for the messages of those who find it busy."""
    text = describe_owner(owner_tags()).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, text, 0)
