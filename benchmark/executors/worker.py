"""The worker: `python -m benchmark.executors.worker`, run by the harness with a
submission environment's Python (see benchmark.executors.isolated).

It reads messages (benchmark.executors.protocol) from stdin and answers on stdout.
Before anything else it moves the protocol to private file descriptors and points
fd 1 at stderr and fd 0 at /dev/null, so whatever the submission prints (Python or C
code alike) lands on stderr, which the harness shows to the user, and cannot corrupt
the protocol stream by accident. Score arrays are not sent down the pipe: the harness
reads them from this process's memory, or from the shared buffer whose file descriptor
is in $LLM4REC_SHM_FD (benchmark.executors.transfer).

By default the worker runs in the sandbox (benchmark.executors.sandbox): nothing of the
harness is reachable from here but what the harness sends.

Conversation (the harness asks, the worker answers each request with "ok" or "error"):
  init  {folder, hyperparameters}   import the submission's model class; the reply lists
                                    the calls it implements ("capabilities") and where
                                    the harness can test-read this process ("probe")
  fit   {seed, device, ...train}    seed Python/NumPy/torch, construct the model, fit;
                                    meanwhile the worker may send "log_metric" and,
                                    when the harness offers validation, "evaluate"
                                    (the harness then sends "score" requests for the
                                    validation users and finally "evaluated")
  catalog {...}                     replace the catalogue that requests refer to
  score {...request, answer}        scores for one request ("scores_answer": where they
                                    are, in this process's memory or the shared buffer,
                                    as `answer` says; described when they cannot be)
  recommend {...request}            ranked lists for one request ("recommendations":
                                    texts and id lists, in the JSON header)
  predict {...rows}                 CTR probabilities for feature rows (an array "scores")
  complete {prompts, max_new_tokens} continuations ("completions": texts in the JSON
                                    header, each cut to CompletionRequest.MAX_CHARS)
  report                            model.report() as JSON ("report")
  close                             exit
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import os
import random
import shutil
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator

import numpy as np

from benchmark.api.registry import Submission
from benchmark.api.types import FitContext, ModelReport
from benchmark.executors import protocol
from benchmark.executors.transfer import AnswerWriter
from benchmark.ticks import throttled

SANDBOX_ASSET_HINT = ("in the sandbox only the offline assets the card declares (`assets:` in "
                      "submission.yaml) are available")


class Aborted(RuntimeError):
    """The harness abandoned the current request."""


class Worker:
    def __init__(self, incoming: BinaryIO, outgoing: BinaryIO, answers: AnswerWriter | None = None) -> None:
        self.incoming, self.outgoing = incoming, outgoing
        self.answers = answers or AnswerWriter(None)
        self.model_class: type | None = None
        self.hyperparameters: dict[str, Any] = {}
        self.model = None
        self.catalog = None
        self.name = "submission"

    # --- plumbing ---
    def send(self, header: dict[str, Any], arrays: protocol.Arrays | None = None) -> None:
        protocol.write_message(self.outgoing, header, arrays)

    def receive(self) -> tuple[dict[str, Any], protocol.Arrays]:
        message = protocol.read_message(self.incoming)
        self.answers.release()  # the harness has read the last answer
        return message

    def serve(self) -> int:
        while True:
            try:
                header, arrays = self.receive()
            except protocol.ConnectionClosed:  # the harness went away without "close"
                _remove_scratch()
                return 0
            op = header.get("op")
            if op == "close":
                return 0
            handler = getattr(self, f"on_{op}", None)
            try:
                if handler is None:
                    raise protocol.ProtocolError(f"unknown request {op!r}")
                reply, reply_arrays = handler(header, arrays)
            except (Exception, SystemExit) as error:  # reported to the harness; the worker goes on
                self.send(error_message(error))
                continue
            self.send({"op": "ok"} | reply, reply_arrays)

    # --- requests ---
    def on_init(self, header, arrays):
        self.name = header.get("name", self.name)
        self.hyperparameters = header.get("hyperparameters", {})
        self.model_class = Submission(Path(header["folder"])).model_class()
        capabilities = [call for call in protocol.CALLS if self.model_class.implements(call)]
        return {"python": sys.version.split()[0], "pid": os.getpid(), "capabilities": capabilities,
                "probe": self.answers.probe_address}, None

    def on_fit(self, header, arrays):
        train = protocol.unpack_train(header["train"], arrays)
        self.catalog = train.catalog
        seed = int(header["seed"])
        seed_everything(seed)
        self.model = self.model_class(**self.hyperparameters)
        ctx = FitContext(
            seed=seed,
            device=header.get("device", "cpu"),
            evaluate_validation=self.evaluate_validation if header.get("has_evaluate") else None,
            progress=stderr_progress(self.name),
            log_metric=lambda name, value, step: self.send(
                {"op": "log_metric", "name": str(name), "value": float(value), "step": int(step)}),
        )
        started = time.perf_counter()
        self.model.fit(train, ctx)
        return {"fit_seconds": time.perf_counter() - started}, None

    def on_catalog(self, header, arrays):
        self.catalog = protocol.unpack_catalog(header["catalog"], arrays)
        return {}, None

    def on_score(self, header, arrays):
        return self._answer(header, arrays, lambda request: self.model.score(request),
                            lambda scores: self._output(scores, header.get("answer")))

    def on_recommend(self, header, arrays):
        return self._answer(header, arrays, lambda request: self.model.recommend(request), _recommendations)

    def on_predict(self, header, arrays):
        return self._answer(header, arrays, lambda request: self.model.predict(request),
                            lambda scores: self._output(scores, header.get("answer")))

    def on_complete(self, header, arrays):
        return self._answer(header, arrays, lambda request: self.model.complete(request), _completions)

    def on_report(self, header, arrays):
        report = self.model.report() if self.model is not None else ModelReport()
        if not isinstance(report, ModelReport):
            raise TypeError(f"report() must return a benchmark.api.ModelReport, got {type(report).__name__}")
        return {"report": report.to_json()}, None

    def _answer(self, header, arrays, call, pack):
        if self.catalog is None and header["op"] != "complete":  # text in, text out: no catalogue
            raise protocol.ProtocolError(f"{header['op']} before the catalogue was sent")
        if self.model is None:  # called without fit: construct it as the harness would
            self.model = self.model_class(**self.hyperparameters)
        return pack(call(self._request(header, arrays)))

    def _output(self, scores, where: str | None) -> tuple[dict[str, Any], protocol.Arrays | None]:
        """Scores as the harness reads them: a float array handed over `where` the harness
        said (benchmark.executors.transfer); anything else described (its type, or its
        dtype and shape), so that the harness's check names the contract rule it breaks."""
        if not isinstance(scores, np.ndarray):
            return {"scores_type": type(scores).__name__}, None
        handed = self.answers.describe(scores, str(where))
        if handed is not None:
            return {"scores_answer": handed}, None
        return {"scores_array": {"dtype": str(scores.dtype), "shape": [int(n) for n in scores.shape]}}, None

    def _request(self, header, arrays):
        if header["op"] == "complete":
            return protocol.unpack_completion(header)
        if header["op"] == "predict":
            return protocol.unpack_predict(header, arrays, self.catalog)
        return protocol.unpack_request(arrays, self.catalog, header)

    # --- calls back into the harness during fit ---
    def evaluate_validation(self, score: Callable) -> float:
        """The harness's validation score for `score`: it sends the validation users'
        requests here, one batch at a time, and then the value."""
        self.send({"op": "evaluate"})
        while True:
            header, arrays = self.receive()
            op = header.get("op")
            if op == "evaluated":
                return float(header["value"])
            if op == "abort":
                raise Aborted(header.get("reason", "the harness abandoned the evaluation"))
            if op not in ("score", "predict"):
                raise protocol.ProtocolError(f"expected a request or 'evaluated' during evaluation, got {op!r}")
            try:
                reply, reply_arrays = self._output(score(self._request(header, arrays)), header.get("answer"))
            except (Exception, SystemExit) as error:
                self.send(error_message(error))
                raise
            self.send({"op": "ok"} | reply, reply_arrays)


def _recommendations(outputs) -> tuple[dict[str, Any], None]:
    return {"recommendations": protocol.pack_recommendations(outputs)}, None


def _completions(outputs) -> tuple[dict[str, Any], None]:
    return {"completions": protocol.pack_completions(outputs)}, None


def error_message(error: BaseException) -> dict[str, Any]:
    message = str(error)
    if isinstance(error, SystemExit):
        message = f"the submission called sys.exit({error.code!r})"
    elif type(error).__name__ == "AssetError" and os.environ.get("LLM4REC_SANDBOX") == "1":
        message = f"{message} ({SANDBOX_ASSET_HINT})"
    return {"op": "error", "type": type(error).__name__, "message": message,
            "traceback": "".join(traceback.format_exception(type(error), error, error.__traceback__))}


def stderr_progress(name: str, every: float = 2.0):
    """ctx.progress for the worker: plain lines on stderr (the harness forwards them),
    at most one per `every` seconds, and the last one."""

    def progress(iterable: Iterable, description: str = "training", total: int | None = None) -> Iterator:
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)
        of = f"/{total}" if total is not None else ""

        def emit(done: int, elapsed: float) -> None:
            print(f"{name} {description}: {done}{of} [{elapsed:.1f}s]", file=sys.stderr, flush=True)

        return throttled(iterable, total, every, emit)

    return progress


def seed_everything(seed: int) -> None:
    """As the harness seeds its own process (benchmark.runner.seed_everything). torch is
    seeded now if the submission imported it, else right after its first import (so a
    model that needs no torch does not pay seconds to import it)."""
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)
    else:
        sys.meta_path.insert(0, _SeedTorchOnImport(seed))


class _SeedTorchOnImport(importlib.abc.MetaPathFinder):
    """Seeds torch as soon as it is first imported."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def find_spec(self, name, path=None, target=None):
        if name != "torch":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        load, seed = spec.loader.exec_module, self.seed

        def exec_module(module):
            load(module)
            module.manual_seed(seed)

        spec.loader.exec_module = exec_module
        return spec


def _exit_with_parent() -> None:
    """Stop when the harness dies (its pipes may stay open in a grandchild), removing
    the scratch folder the harness could not remove."""
    parent = os.getppid()
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            _remove_scratch()
            os._exit(3)


def _remove_scratch() -> None:
    scratch = os.environ.get("LLM4REC_WORKER_SCRATCH")
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> int:
    # The protocol gets private copies of fd 0 and 1; fd 1 becomes stderr, fd 0 /dev/null.
    incoming = os.fdopen(os.dup(0), "rb")
    outgoing = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdout = sys.stderr
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    shared_fd = os.environ.get("LLM4REC_SHM_FD")
    return Worker(incoming, outgoing, AnswerWriter(int(shared_fd) if shared_fd else None)).serve()


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    os._exit(code)  # no interpreter teardown (seconds with torch loaded): the harness waits for it
