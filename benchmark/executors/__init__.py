"""Where a submission runs.

- In a sandboxed worker process (the default): bubblewrap namespaces, limits, only
  copies crossing (benchmark.executors.sandbox, .isolated, .worker, .protocol). The
  worker runs the harness's own Python, or, for cards that declare `requirements`,
  the Python of a cached virtualenv built for them (benchmark.executors.envs).
- In the harness's process (`sandbox=False`, `llm4rec run --no-sandbox`), for
  debugging one's own model: behind copies, with no security boundary
  (benchmark.executors.inprocess). Cards with requirements still get a worker (in
  their environment, unsandboxed).

docs/sandbox.md has the threat model. This package's __init__ stays import-light: the
worker imports it inside a submission's environment, where only numpy, pandas,
pydantic and PyYAML are present.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmark.api import Recommender, Submission
    from benchmark.executors.limits import Limits


def runs_in_worker(submission: "Submission", sandbox: bool = True) -> bool:
    """Whether this submission runs in a worker process (sandboxed, or in its own environment)."""
    return sandbox or bool(submission.card.requirements)


def require_sandbox() -> None:
    """Raise SandboxUnavailable (saying how to install bubblewrap, or to pass
    --no-sandbox) where the sandbox cannot run."""
    from benchmark.executors.sandbox import check_sandbox

    check_sandbox()


def build_model(submission: "Submission", sandbox: bool = True, limits: "Limits | None" = None) -> "Recommender":
    """The submission's model: a proxy to its worker process (sandboxed unless
    sandbox=False; in its cached environment when it declares requirements), or, with
    sandbox=False and no requirements, the model in this process behind copies."""
    if not runs_in_worker(submission, sandbox):
        from benchmark.executors.inprocess import InProcessRecommender

        return InProcessRecommender(submission.build())
    from benchmark.executors.isolated import SubprocessRecommender
    from benchmark.executors.limits import Limits

    environment = None
    if submission.card.requirements:
        from benchmark.executors.envs import ensure_env

        environment = ensure_env(submission.card.requirements, name=submission.card.name)
    if sandbox:
        require_sandbox()
    limits = limits or Limits.effective(None, submission.card.limits)
    return SubprocessRecommender(submission, environment, limits=limits, sandboxed=sandbox)


def worker_peak_rss_mb(model: "Recommender") -> float | None:
    """The peak memory of a model's worker processes as the harness measured it (None
    for a model in this process)."""
    from benchmark.executors.isolated import SubprocessRecommender

    return model.peak_rss_mb if isinstance(model, SubprocessRecommender) else None


def close_model(model: "Recommender") -> None:
    """Stop a model's worker now (a model in this process has none)."""
    from benchmark.executors.isolated import SubprocessRecommender

    if isinstance(model, SubprocessRecommender):
        model.close()


__all__ = ["build_model", "close_model", "require_sandbox", "runs_in_worker", "worker_peak_rss_mb"]
