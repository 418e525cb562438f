"""Score matrices from the worker to the harness without the pipe.

A model's answer (a float array; 200 MB for 256 users x 200,000 items) reaches the
harness in one of two ways, chosen when the worker starts:

- **from the worker's memory** (the default where the kernel allows it): the worker
  keeps its array and says where it is; the harness copies it with process_vm_readv
  straight into an array of its own. One copy.
- **through a shared buffer** (elsewhere): a memfd the harness makes and passes at
  start, sized by the harness before each call; the worker copies its array in, the
  harness copies it out. Two copies. The buffer is sealed against shrinking: a worker
  cannot truncate it under the harness's feet (which would crash the harness with
  SIGBUS).

Either way the harness checks and ranks only its own copy, made before any check: the
worker can change its memory or the buffer at any time, and that changes nothing. The
harness never reads more than room for a valid answer (the expected number of values,
in the widest float dtype), whatever the worker claims.
"""
from __future__ import annotations

import ctypes
import fcntl
import mmap
import os
import sys
from typing import Any

import numpy as np

MAX_ITEMSIZE = 16  # the widest float dtype (longdouble)
PROBE = b"llm4rec-transfer"  # what the worker holds for the harness's test read


class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


def _process_vm_readv():
    libc = ctypes.CDLL(None, use_errno=True)
    call = getattr(libc, "process_vm_readv", None)
    if call is not None:
        call.argtypes = [ctypes.c_int, ctypes.POINTER(_IoVec), ctypes.c_ulong, ctypes.POINTER(_IoVec),
                         ctypes.c_ulong, ctypes.c_ulong]
        call.restype = ctypes.c_ssize_t
    return call


def read_process_memory(pid: int, address: int, target: np.ndarray) -> None:
    """Fill `target` with the bytes at `address` in process `pid` (OSError if they
    cannot be read)."""
    call = _process_vm_readv()
    if call is None:
        raise OSError("process_vm_readv is not available")
    done, size = 0, target.nbytes
    while done < size:
        local, remote = _IoVec(target.ctypes.data + done, size - done), _IoVec(address + done, size - done)
        got = call(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
        if got <= 0:
            error = ctypes.get_errno()
            raise OSError(error, f"reading the worker's answer: {os.strerror(error)}")
        done += got


class AnswerReader:
    """The harness's side: room for each answer, and the copy of it the harness keeps."""

    def __init__(self) -> None:
        self.fd = os.memfd_create("llm4rec-scores", os.MFD_ALLOW_SEALING)
        fcntl.fcntl(self.fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL)
        self.size = 0  # of the shared buffer
        self.capacity = 0  # bytes of a valid answer, in the widest dtype
        self.worker_pid: int | None = None  # set when answers are read from the worker's memory
        self._map: mmap.mmap | None = None
        self._last: np.ndarray | None = None  # the last answer handed out

    def try_worker_memory(self, pid: int, probe_address: Any) -> bool:
        """Read answers from process `pid` from now on, if the kernel lets the harness
        read the probe the worker holds at `probe_address`."""
        if type(probe_address) is not int or probe_address <= 0:
            return False
        probe = np.zeros(len(PROBE), dtype=np.uint8)
        try:
            read_process_memory(pid, probe_address, probe)
        except OSError:
            return False
        if probe.tobytes() != PROBE:
            return False
        self.worker_pid = pid
        return True

    def reserve(self, elements: int) -> None:
        """Room for `elements` values of any float dtype (the shared buffer grows)."""
        self.capacity = max(int(elements), 1) * MAX_ITEMSIZE
        if self.worker_pid is not None or self.capacity <= self.size:
            return
        size = -(-max(self.capacity, 2 * self.size) // mmap.PAGESIZE) * mmap.PAGESIZE
        os.ftruncate(self.fd, size)
        if self._map is not None:
            self._map.close()
        self._map = mmap.mmap(self.fd, size)
        self.size = size

    def read(self, where: str, dtype: str, shape: list[int], address: Any = None) -> np.ndarray:
        """A private copy of the answer the worker described (ValueError when the
        description is malformed or larger than a valid answer; OSError when its memory
        cannot be read)."""
        kind = np.dtype(dtype)
        if kind.kind != "f" or not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
            raise ValueError(f"an answer of dtype {dtype} and shape {shape}")
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if count * kind.itemsize > self.capacity:
            raise ValueError(f"an answer of {count} values does not fit the room for a valid one")
        answer = self._recycled(kind, tuple(shape))
        if where == "memory" and self.worker_pid is not None and type(address) is int and address > 0:
            read_process_memory(self.worker_pid, address, answer)
        elif where == "shared" and self._map is not None:
            np.copyto(answer, np.frombuffer(self._map, dtype=kind, count=count).reshape(shape))
        else:
            raise ValueError(f"an answer {where!r} the harness did not offer")
        self._last = answer
        return answer

    def _recycled(self, kind: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        """The last answer's array when nothing holds it (or a view of it) anymore, else
        a new one: fresh pages of a large array cost more than the copy itself."""
        last, self._last = self._last, None
        # References: `last` and getrefcount's argument; a caller or a view would add one.
        if last is not None and last.dtype == kind and last.shape == shape and sys.getrefcount(last) == 2:
            return last
        return np.empty(shape, dtype=kind)

    def close(self) -> None:
        self._last = None
        if self._map is not None:
            self._map.close()
            self._map = None
        try:
            os.close(self.fd)
        except OSError:
            pass


class AnswerWriter:
    """The worker's side: hands a float answer over, by its address or through the
    shared buffer, as the harness chose."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd
        self.probe = np.frombuffer(bytearray(PROBE), dtype=np.uint8)  # kept for the harness's test read
        self._held: np.ndarray | None = None  # the last answer, until the harness has read it
        self._map: mmap.mmap | None = None

    @property
    def probe_address(self) -> int:
        return int(self.probe.__array_interface__["data"][0])

    def describe(self, array: np.ndarray, where: str) -> dict | None:
        """The answer's description for the harness (its memory held until the next
        request), or None when it is not a float array or cannot be handed over."""
        if array.dtype.kind != "f" or not array.dtype.isnative:
            return None
        description = {"where": where, "dtype": array.dtype.str, "shape": [int(n) for n in array.shape]}
        if where == "memory":
            self._held = np.ascontiguousarray(array)
            return description | {"address": int(self._held.__array_interface__["data"][0])}
        return description if where == "shared" and self._write_shared(array) else None

    def _write_shared(self, array: np.ndarray) -> bool:
        size = os.fstat(self.fd).st_size if self.fd is not None else 0
        if size == 0 or array.nbytes > size:
            return False
        if self._map is None or len(self._map) != size:
            if self._map is not None:
                self._map.close()
            self._map = mmap.mmap(self.fd, size)
        target = np.frombuffer(self._map, dtype=array.dtype, count=array.size).reshape(array.shape)
        np.copyto(target, array)
        del target
        return True

    def release(self) -> None:
        """The harness has moved on: the held answer may go."""
        self._held = None
