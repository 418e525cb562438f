"""A submission in a worker process, behind a proxy that the runner uses like any other
model. By default the worker runs in the sandbox (benchmark.executors.sandbox), with
the harness's own Python, or its environment's when the card declares requirements
(benchmark.executors.envs); with --no-sandbox only such cards still get a worker.

What crosses the boundary (benchmark.executors.protocol): the card's folder and
hyperparameters; copies of the training part (interactions, catalogue, validation users
with their histories and targets, exactly what an in-process model's TrainData holds);
then score, recommend and predict requests (users, histories, candidates; CTR rows)
and complete requests (text prompts). What comes back: which of those calls the model
implements, scores (read from the worker's memory or a shared buffer,
benchmark.executors.transfer), ranked lists (texts or ids), completions (texts, each
cut to CompletionRequest.MAX_CHARS by the worker), the model's report
(ModelReport), training-curve points (ctx.log_metric) and, when the harness offers
validation, requests to score validation batches (ctx.evaluate_validation). Test
targets never leave the harness, nor anything else of its state (store, views, other
submissions). Every message from the worker is size-bounded; anything malformed ends
the worker and fails the run.

Limits (benchmark.executors.limits): the worker is put in its cgroup before it starts
(it waits at a gate until then), so the kernel enforces memory and process limits on
everything it forks; a watchdog times each exchange (a fit, a call) and, without
cgroups, measures memory and processes itself; a breach kills the whole sandbox and
fails the run with the limit named. The worker's stderr is forwarded, bounded
(benchmark.executors.output). The worker is stopped when the proxy is closed or
garbage-collected, and dies with the harness.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmark.api import (CompletionRequest, FitContext, ModelReport, PredictRequest, Recommendation, Recommender,
                           ScoreRequest, Submission, TrainData)
from benchmark.api.types import Catalog
from benchmark.executors import protocol, sandbox
from benchmark.executors.cgroups import WorkerCgroup, remove_stale_groups
from benchmark.executors.envs import Environment
from benchmark.executors.limits import LimitExceeded, Limits
from benchmark.executors.output import OutputForwarder
from benchmark.executors.transfer import AnswerReader
from benchmark.executors.watchdog import Watchdog, process_tree

# The largest message the harness reads from a worker (scores travel in shared memory).
REPLY_LIMIT = 64 * 2**20
# How long a worker may take to exit after "close" before it is killed.
CLOSE_SECONDS = 5.0
WORKER_ARGS = ["-P", "-m", "benchmark.executors.worker"]  # after the interpreter's path


class WorkerError(RuntimeError):
    """The submission raised in its worker; the message ends with the worker's traceback."""


class WorkerCrashed(RuntimeError):
    """The worker process died (or broke the protocol); the message has its last stderr lines."""


def _tail(text: str, lines: int = 20, chars: int = 3000) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])[-chars:]


class WorkerProcess:
    """The worker: launched behind a gate, put in its cgroup, then let go; its pipes, its
    forwarded stderr and its watchdog. Holds no reference to the proxy, so that dropping
    the proxy stops it (weakref.finalize)."""

    def __init__(self, submission: Submission, environment: Environment | None, limits: Limits,
                 sandboxed: bool, log: Callable[[str], None]) -> None:
        card = submission.card
        self.name, self.limits, self.sandboxed = card.name, limits, sandboxed
        self.workdir: Path | None = None
        # Exchanges under way (nested during fit); one left unfinished by an error means a
        # worker that is not listening: it is killed, not asked to close.
        self.open_exchanges = 0
        self._lock = threading.Lock()
        python = environment.python if environment is not None else Path(sys.executable)
        view = sandbox.build_view(python, submission.folder, card.assets + sandbox.granted_assets(submission),
                                  environment.folder if environment is not None else None,
                                  sandbox.granted_paths(submission)) if sandboxed else None
        remove_stale_groups()
        self.answers = AnswerReader()
        self.cgroup = WorkerCgroup.create(limits.memory_bytes, limits.processes)
        try:
            self._launch(python, view, log)
        except BaseException:
            if hasattr(self, "process"):
                self.kill()
                self.wait(30)
            self.answers.close()
            if self.cgroup is not None:
                self.cgroup.remove()
            if self.workdir is not None:
                shutil.rmtree(self.workdir, ignore_errors=True)
            raise

    def _launch(self, python: Path, view: "sandbox.SandboxView | None", log: Callable[[str], None]) -> None:
        """Start the launcher at its gate, put it in the cgroup, open the gate."""
        command = [str(python), *WORKER_ARGS]
        keep: list[int] = []
        if view is not None:
            passwd, group = _data_pipe(sandbox.PASSWD), _data_pipe(sandbox.GROUP)
            keep += [passwd, group]
            command = sandbox.bwrap_command(view, command, self.limits.memory_bytes, passwd, group)
            env = sandbox.worker_environment(view, sandbox.benchmark_package().parent,
                                             {"LLM4REC_SHM_FD": str(self.answers.fd)})
            cwd = None
        else:
            env, cwd = self._unsandboxed_environment()
        gate_read, gate_write = os.pipe()
        stderr_read, stderr_write = os.pipe()
        keep += [gate_read, stderr_write]
        launcher = ["/bin/sh", "-c", f'read -r _ < /proc/self/fd/{gate_read} && exec "$@"', "llm4rec-worker"]
        try:
            self.process = subprocess.Popen(
                launcher + command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr_write, cwd=cwd,
                env=env, pass_fds=(gate_read, self.answers.fd, *keep), start_new_session=True)
        except BaseException:
            os.close(gate_write)
            os.close(stderr_read)
            raise
        finally:
            for fd in keep:
                os.close(fd)
        self._enter_cgroup()
        os.write(gate_write, b"go\n")
        os.close(gate_write)
        self.output = OutputForwarder(stderr_read, self.name, log)
        self.watchdog = Watchdog(self.process.pid, self.limits, self.cgroup, self.kill)

    def _unsandboxed_environment(self) -> tuple[dict[str, str], Path]:
        """A submission environment's worker without the sandbox (--no-sandbox): the
        harness's environment variables, a scratch folder as its working folder."""
        self.workdir = Path(tempfile.mkdtemp(prefix="llm4rec-worker-"))
        # PYTHONPATH holds only the harness package (through a link), never the folder
        # it is installed in, which may be the main environment's site-packages.
        shim = self.workdir / "pythonpath"
        shim.mkdir()
        (shim / "benchmark").symlink_to(sandbox.benchmark_package(), target_is_directory=True)
        run = self.workdir / "run"
        run.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env |= {"PYTHONPATH": str(shim), "PYTHONNOUSERSITE": "1", "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1", "LLM4REC_WORKER": "1", "LLM4REC_WORKER_SCRATCH": str(self.workdir),
                "LLM4REC_SHM_FD": str(self.answers.fd)}
        return env, run

    def _enter_cgroup(self) -> None:
        """Put the launcher (still waiting at its gate) in the cgroup; without one the
        watchdog measures instead."""
        if self.cgroup is None:
            return
        try:
            self.cgroup.add(self.process.pid)
        except OSError:
            self.cgroup.remove()
            self.cgroup = None

    @property
    def alive(self) -> bool:
        with self._lock:
            return self.process.poll() is None

    def worker_pid(self) -> int | None:
        """The worker's pid as the harness sees it: the topmost process of the tree that
        runs the worker module (the launcher itself, or bwrap's grandchild)."""
        workers = {pid for pid in process_tree(self.process.pid) if _runs_worker(pid)}
        tops = [pid for pid in workers if _parent(pid) not in workers]
        return tops[0] if len(tops) == 1 else None

    def kill(self) -> None:
        """SIGKILL the worker and everything it started (the cgroup's processes; the
        launcher's process group; in the sandbox its PID namespace ends with it)."""
        with self._lock:  # never signal a pid that was reaped (and may be reused)
            if self.process.returncode is None:
                # Unsandboxed, its children are found through it before it dies (then
                # they are orphans); sandboxed, its PID namespace ends with bwrap.
                for pid in () if self.sandboxed else process_tree(self.process.pid):
                    _signal(pid)
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        if self.cgroup is not None:
            self.cgroup.kill_all()

    def wait(self, timeout: float) -> int | None:
        """The exit status once the worker ended (None if it is still running)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                code = self.process.poll()
            if code is not None or time.monotonic() >= deadline:
                return code
            time.sleep(0.02)

    def stop(self) -> None:
        """Ask the worker to exit, then end whatever is left; remove what it used."""
        if self.alive and not self.open_exchanges:
            try:
                protocol.write_message(self.process.stdin, {"op": "close"})
                self.process.stdin.close()
            except (OSError, ValueError):
                pass
            self.wait(CLOSE_SECONDS)
        self.kill()
        self.wait(30)
        self.watchdog.stop()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        self.output.join(timeout=5)
        self.answers.close()
        if self.cgroup is not None:
            self.cgroup.remove()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def failure(self, during: str, cause: BaseException | None = None) -> RuntimeError:
        """Why the worker stopped answering: a limit it went past, else how it ended."""
        code = self.wait(10)
        if code is None:  # alive but talking nonsense: stop it
            self.kill()
            code = self.wait(30)
        self.output.join(timeout=5)
        breach = self.watchdog.check()
        if breach is not None:
            return LimitExceeded(breach)
        if isinstance(cause, protocol.ProtocolError) and not isinstance(cause, protocol.ConnectionClosed):
            what = f"broke the protocol during {during} ({cause}) and was stopped"
        else:
            detail = f" ({cause})" if cause is not None and not isinstance(cause, protocol.ConnectionClosed) else ""
            what = f"{self._how(code)} during {during}{detail}"
        lines = self.output.text() or "(it wrote nothing on stderr)"
        return WorkerCrashed(f"the worker process of '{self.name}' {what}; its last lines on stderr:\n{_tail(lines)}")

    def _how(self, code: int | None) -> str:
        if code is None:
            return "did not end"
        if code < 0 or (self.sandboxed and code > 128):  # bwrap reports a signal as 128 + its number
            number = -code if code < 0 else code - 128
            try:
                return f"was killed by signal {signal.Signals(number).name}"
            except ValueError:
                return f"was killed by signal {number}"
        return f"exited with code {code}"


def _runs_worker(pid: int) -> bool:
    """Whether a process is a worker's interpreter (not bwrap, whose arguments hold it too)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:4] == [a.encode() for a in WORKER_ARGS]
    except OSError:
        return False


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _signal(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _data_pipe(text: str) -> int:
    """A pipe's read end holding `text` (for bwrap's --ro-bind-data)."""
    read, write = os.pipe()
    os.write(write, text.encode())
    os.close(write)
    return read


class SubprocessRecommender(Recommender):
    """Proxy for a submission that runs in a worker process."""

    def __init__(self, submission: Submission, environment: Environment | None = None, *,
                 limits: Limits | None = None, sandboxed: bool = True,
                 log: Callable[[str], None] | None = None) -> None:
        if log is None:
            from benchmark.progress import log
        card = submission.card
        super().__init__(**card.hyperparameters)
        self.submission_name = card.name
        self.limits = limits or Limits.effective(None, card.limits)
        self._catalog: Catalog | None = None
        self._process = WorkerProcess(submission, environment, self.limits, sandboxed, log)
        self._finalizer = weakref.finalize(self, self._process.stop)
        try:  # starting (importing the submission, its libraries) counts as fitting would
            reply, _ = self._call({"op": "init", "name": card.name, "folder": str(Path(submission.folder).resolve()),
                                   "hyperparameters": card.hyperparameters},
                                  during="start-up (importing the submission)", seconds=self.limits.fit_seconds,
                                  breach=self.limits.start_breach())
        except BaseException:
            self.close()
            raise
        pid = self._process.worker_pid()  # answers straight from its memory, where the kernel allows
        if pid is None or not self._process.answers.try_worker_memory(pid, reply.get("probe")):
            log(f"{card.name}: scores pass through a shared buffer (the harness cannot read the worker's memory)")
        capabilities = reply.get("capabilities", ())
        self.capabilities: tuple[str, ...] = tuple(c for c in capabilities if c in protocol.CALLS) \
            if isinstance(capabilities, list) else ()

    # --- the Recommender interface ---
    def fit(self, train: TrainData, ctx: FitContext) -> None:
        header, arrays = protocol.pack_train(train)
        handlers = {"log_metric": lambda message, _: ctx.log_metric(message.get("name"), message.get("value"),
                                                                    message.get("step"))}
        if ctx.evaluate_validation is not None:
            handlers["evaluate"] = lambda message, _: self._evaluate(ctx)
        self._catalog = train.catalog  # the worker keeps the training part's catalogue
        self._call({"op": "fit", "seed": ctx.seed, "device": ctx.device, "train": header,
                    "has_evaluate": ctx.evaluate_validation is not None},
                   arrays, handlers=handlers, during="fit", seconds=self.limits.fit_seconds,
                   breach=self.limits.fit_breach())

    def score(self, request: ScoreRequest) -> np.ndarray:
        return self._scores(*self._remote(request, "score"))

    def recommend(self, request: ScoreRequest) -> list[Recommendation]:
        reply, _ = self._remote(request, "recommend")
        return protocol.unpack_recommendations(reply.get("recommendations"))

    def predict(self, request: PredictRequest) -> np.ndarray:
        return self._scores(*self._remote(request, "predict"))

    def complete(self, request: CompletionRequest) -> list[str]:
        header, arrays = protocol.pack_call("complete", request)
        reply, _ = self._call(header, arrays, during="complete", call="a complete() call")
        # Texts; what could not travel as a text comes back as a stand-in of its type.
        return protocol.unpack_recommendations(reply.get("completions"))

    def report(self) -> ModelReport:
        reply, _ = self._call({"op": "report"}, during="report", call="report()")
        try:
            return ModelReport.from_json(reply.get("report"))
        except (TypeError, ValueError) as error:
            raise protocol.ProtocolError(f"the worker of '{self.submission_name}' sent a malformed model "
                                         f"report: {error}") from None

    def implements(self, capability: str) -> bool:  # type: ignore[override]
        """Whether the submission's class implements `capability`, as its worker said (this
        proxy defines every call, to forward it)."""
        return capability in self.capabilities

    def close(self) -> None:
        """Stop the worker (also done when the proxy is garbage-collected)."""
        self._finalizer()

    @property
    def alive(self) -> bool:
        return self._process.alive

    @property
    def pid(self) -> int:
        """The launcher's pid (bwrap's, in the sandbox)."""
        return self._process.process.pid

    @property
    def peak_rss_mb(self) -> float:
        """Peak memory of the worker's processes (their proportional resident memory,
        sampled by the harness, and now)."""
        self._process.watchdog.measure()
        return self._process.watchdog.peak_rss_mb

    # --- internals ---
    def _send_catalog(self, catalog: Catalog) -> None:
        if catalog is not self._catalog:
            header, arrays = protocol.pack_catalog(catalog)
            self._call({"op": "catalog", "catalog": header}, arrays, during="score", call="sending the catalogue")
            self._catalog = catalog

    def _evaluate(self, ctx: FitContext) -> None:
        """The worker's ctx.evaluate_validation(score): the harness scores the validation
        set by sending its batches to the worker, then sends the value."""

        def score(request: ScoreRequest | PredictRequest) -> Any:
            op = "predict" if isinstance(request, PredictRequest) else "score"
            return self._scores(*self._remote(request, op, during="validation scoring"))

        value = ctx.evaluate_validation(score)
        self._write({"op": "evaluated", "value": float(value)}, None, "validation scoring")

    def _remote(self, request: ScoreRequest | PredictRequest, op: str,
                during: str | None = None) -> tuple[dict, protocol.Arrays]:
        self._send_catalog(request.catalog)
        answers = self._process.answers
        if op != "recommend":  # room for a valid answer
            answers.reserve(len(request.features) if isinstance(request, PredictRequest)
                            else len(request.users) * request.n_candidates)
        header, arrays = protocol.pack_call(op, request)
        header["answer"] = "memory" if answers.worker_pid is not None else "shared"
        return self._call(header, arrays, during=during or op, call=f"a {op}() call")

    def _scores(self, reply: dict, out: protocol.Arrays) -> Any:
        """The answer as an array the harness owns; for an answer that is not a float
        array, a stand-in of its type, dtype and shape, so that the harness's contract
        check names the rule it breaks."""
        try:
            if "scores_answer" in reply:
                answer = reply["scores_answer"]
                return self._process.answers.read(answer["where"], answer["dtype"], answer["shape"],
                                                  answer.get("address"))
            if "scores_array" in reply:
                described = reply["scores_array"]
                return _stand_in_array(described["dtype"], described["shape"])
        except (ValueError, TypeError, KeyError, OSError) as error:
            self._process.kill()
            raise self._process.failure("scoring", protocol.ProtocolError(f"a malformed answer: {error}")) \
                from None
        return protocol.stand_in(str(reply.get("scores_type", "object")))

    def _write(self, header, arrays, during: str) -> None:
        try:
            protocol.write_message(self._process.process.stdin, header, arrays)
        except (BrokenPipeError, OSError, ValueError) as error:
            raise self._process.failure(during, error) from None

    def _call(self, header: dict, arrays: protocol.Arrays | None = None,
              handlers: dict[str, Callable] | None = None, during: str = "a request", call: str = "a request",
              seconds: float | None = None, breach: str | None = None):
        """Send one request within its time limit; serve the worker's messages until its
        answer comes."""
        if seconds is None:
            seconds, breach = self.limits.call_seconds, self.limits.call_breach(call)
        with self._process.watchdog.deadline(seconds, breach):
            reply, out = self._exchange(header, arrays, handlers, during)
        if self._process.watchdog.check() is not None:  # e.g. a child of the worker OOM-killed
            raise self._process.failure(during)
        return reply, out

    def _exchange(self, header, arrays, handlers, during: str):
        if not self.alive:
            raise self._process.failure(during)
        self._process.open_exchanges += 1
        reply = self._conversation(header, arrays, handlers, during)
        self._process.open_exchanges -= 1  # not on an error: see WorkerProcess.stop
        return reply

    def _conversation(self, header, arrays, handlers, during: str):
        self._write(header, arrays, during)
        while True:
            try:
                reply, out = protocol.read_message(self._process.process.stdout, limit=REPLY_LIMIT)
            except protocol.ProtocolError as error:
                self._process.kill()
                raise self._process.failure(during, error) from None
            op = reply.get("op")
            if op == "ok":
                return reply, out
            if op == "error":
                raise WorkerError(
                    f"{reply.get('type')}: {reply.get('message')}\n"
                    f"--- traceback in the worker of '{self.submission_name}' (last lines) ---\n"
                    f"{_tail(str(reply.get('traceback', '')))}")
            handler = (handlers or {}).get(op)
            if handler is None:
                self._process.kill()
                raise self._process.failure(during, protocol.ProtocolError(f"unexpected message {op!r}"))
            try:
                handler(reply, out)
            except BaseException:
                self._process.kill()  # mid-conversation: its state is unknown
                raise


def _stand_in_array(dtype: Any, shape: Any) -> np.ndarray:
    """A zero-memory array of the dtype and shape a worker described."""
    if not isinstance(shape, list) or len(shape) > 32 or not all(type(n) is int and n >= 0 for n in shape):
        raise ValueError(f"shape {shape!r}")
    try:
        kind = np.dtype(str(dtype))
    except TypeError:
        kind = np.dtype(object)
    return np.broadcast_to(np.zeros((), dtype=kind), tuple(shape))

