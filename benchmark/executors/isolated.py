"""A submission running in its own environment, in a worker process, behind a proxy
that the runner uses like any other model.

What crosses the boundary (benchmark.executors.protocol): the card's folder and
hyperparameters; the training part (interactions, catalogue, validation users with
their histories and targets, exactly what an in-process model's TrainData holds); then
score, recommend and predict requests (users, histories, candidates; CTR rows). What
comes back: which of those calls the model implements, scores, ranked lists (texts or
ids), the model's report (ModelReport), training-curve points (ctx.log_metric), and,
when the harness offers validation, requests to score validation batches
(ctx.evaluate_validation). Test targets never leave the harness, nor anything else of
its state (store, views, other submissions). The worker's memory is measured by the
harness from outside, never taken from the worker's word.

The worker's stderr is forwarded line by line to the harness's console (that is where
ctx.progress and the submission's own logging go). A worker that raises fails the run
with its exception and traceback tail; a worker that dies fails it with its exit code
and the last lines it wrote. The worker is stopped when the proxy is closed or
garbage-collected (the runner drops it when the run ends, also on error) and when the
harness exits.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import weakref
from collections import deque
from pathlib import Path
from typing import Any, Callable

import numpy as np

import benchmark
from benchmark.api import (FitContext, ModelReport, PredictRequest, Recommendation, Recommender, ScoreRequest,
                           Submission, TrainData)
from benchmark.api.types import Catalog
from benchmark.executors import protocol
from benchmark.executors.envs import Environment

STDERR_TAIL_LINES = 40


class WorkerError(RuntimeError):
    """The submission raised in its worker; the message ends with the worker's traceback."""


class WorkerCrashed(RuntimeError):
    """The worker process died (or broke the protocol); the message has its last stderr lines."""


def _tail(text: str, lines: int = 20, chars: int = 3000) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])[-chars:]


class _Process:
    """The worker process, its pipes and the thread forwarding its stderr. Holds no
    reference to the proxy, so that dropping the proxy stops it (weakref.finalize)."""

    def __init__(self, python: Path, name: str, log: Callable[[str], None]) -> None:
        self.name = name
        self.workdir = Path(tempfile.mkdtemp(prefix="llm4rec-worker-"))
        # PYTHONPATH holds only the harness package (through a link), never the folder
        # it is installed in, which may be the main environment's site-packages.
        shim = self.workdir / "pythonpath"
        shim.mkdir()
        (shim / "benchmark").symlink_to(Path(benchmark.__file__).resolve().parent, target_is_directory=True)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env |= {"PYTHONPATH": str(shim), "PYTHONNOUSERSITE": "1", "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1", "LLM4REC_WORKER": "1",
                "LLM4REC_WORKER_SCRATCH": str(self.workdir)}
        # Its working folder is scratch space (removed when it stops); -P keeps that
        # folder off sys.path.
        run = self.workdir / "run"
        run.mkdir()
        self.process = subprocess.Popen(
            [str(python), "-P", "-m", "benchmark.executors.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=run, env=env,
        )
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self.reader = threading.Thread(target=_forward_stderr,
                                       args=(self.process.stderr, self.stderr_tail, name, log), daemon=True)
        self.reader.start()

    def stop(self) -> None:
        process = self.process
        if process.poll() is None:
            try:
                protocol.write_message(process.stdin, {"op": "close"})
                process.stdin.close()
            except (OSError, ValueError):
                pass
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        for stream in (process.stdin, process.stdout):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        self.reader.join(timeout=5)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def crashed(self, during: str, cause: BaseException | None = None) -> WorkerCrashed:
        try:
            code = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # alive but talking nonsense: stop it
            self.process.kill()
            code = self.process.wait()
        self.reader.join(timeout=5)
        if code < 0:
            try:
                how = f"was killed by signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        detail = f" ({cause})" if cause is not None and not isinstance(cause, protocol.ConnectionClosed) else ""
        lines = "\n".join(self.stderr_tail).rstrip() or "(it wrote nothing on stderr)"
        return WorkerCrashed(f"the worker process of '{self.name}' {how} during {during}{detail}; "
                             f"its last lines on stderr:\n{_tail(lines)}")


def _forward_stderr(stream, tail: deque, name: str, log: Callable[[str], None]) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        tail.append(line)
        log(f"  [{name}] {line}")
    stream.close()


class SubprocessRecommender(Recommender):
    """Proxy for a submission that runs in a worker process in its own environment."""

    def __init__(self, submission: Submission, environment: Environment,
                 log: Callable[[str], None] | None = None) -> None:
        if log is None:
            from benchmark.progress import log
        card = submission.card
        super().__init__(**card.hyperparameters)
        self.submission_name = card.name
        self.environment = environment
        self._catalog: Catalog | None = None
        self._process = _Process(environment.python, card.name, log)
        self._finalizer = weakref.finalize(self, self._process.stop)
        reply, _ = self._call({"op": "init", "name": card.name, "folder": str(submission.folder),
                               "hyperparameters": card.hyperparameters},
                              during="start-up (importing the submission)")
        self.capabilities: tuple[str, ...] = tuple(reply.get("capabilities", ()))

    # --- the Recommender interface ---
    def fit(self, train: TrainData, ctx: FitContext) -> None:
        header, arrays = protocol.pack_train(train)
        handlers = {"log_metric": lambda message, _: ctx.log_metric(message["name"], message["value"],
                                                                    message["step"])}
        if ctx.evaluate_validation is not None:
            handlers["evaluate"] = lambda message, _: self._evaluate(ctx)
        self._catalog = train.catalog  # the worker keeps the training part's catalogue
        self._call({"op": "fit", "seed": ctx.seed, "device": ctx.device, "train": header,
                    "has_evaluate": ctx.evaluate_validation is not None},
                   arrays, handlers=handlers, during="fit")

    def score(self, request: ScoreRequest) -> np.ndarray:
        return self._scores(*self._remote(request, "score"))

    def recommend(self, request: ScoreRequest) -> list[Recommendation]:
        reply, _ = self._remote(request, "recommend")
        return protocol.unpack_recommendations(reply.get("recommendations"))

    def predict(self, request: PredictRequest) -> np.ndarray:
        return self._scores(*self._remote(request, "predict"))

    def report(self) -> ModelReport:
        reply, _ = self._call({"op": "report"}, during="report")
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
        return self._process.process.poll() is None

    @property
    def pid(self) -> int:
        return self._process.process.pid

    # --- internals ---
    def _send_catalog(self, catalog: Catalog) -> None:
        if catalog is not self._catalog:
            header, arrays = protocol.pack_catalog(catalog)
            self._call({"op": "catalog", "catalog": header}, arrays, during="score")
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
        header, arrays = protocol.pack_call(op, request)
        return self._call(header, arrays, during=during or op)

    @staticmethod
    def _scores(reply: dict, out: protocol.Arrays) -> Any:
        if "scores" in out:
            return out["scores"]
        # Not an array in the worker: return a stand-in of that type, so the harness's
        # contract check names the rule ("expected a numpy array, got list").
        return protocol.stand_in(reply.get("scores_type", "object"))

    def _write(self, header, arrays, during: str) -> None:
        try:
            protocol.write_message(self._process.process.stdin, header, arrays)
        except (BrokenPipeError, OSError, ValueError) as error:
            raise self._process.crashed(during, error) from None

    def _call(self, header: dict, arrays: protocol.Arrays | None = None,
              handlers: dict[str, Callable] | None = None, during: str = "a request"):
        """Send one request; serve the worker's messages until its answer comes."""
        if not self.alive:
            raise self._process.crashed(during)
        self._write(header, arrays, during)
        while True:
            try:
                reply, out = protocol.read_message(self._process.process.stdout)
            except protocol.ProtocolError as error:
                raise self._process.crashed(during, error) from None
            op = reply.get("op")
            if op == "ok":
                return reply, out
            if op == "error":
                raise WorkerError(
                    f"{reply.get('type')}: {reply.get('message')}\n"
                    f"--- traceback in the worker of '{self.submission_name}' (last lines) ---\n"
                    f"{_tail(reply.get('traceback', ''))}")
            handler = (handlers or {}).get(op)
            if handler is None:
                self._process.process.kill()
                raise self._process.crashed(during, protocol.ProtocolError(f"unexpected message {op!r}"))
            try:
                handler(reply, out)
            except BaseException:
                self._process.process.kill()  # mid-conversation: its state is unknown
                raise
