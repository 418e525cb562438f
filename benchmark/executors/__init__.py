"""Where a submission runs.

- In process (the default): `submission.build()`.
- In its own environment, in a worker process: for cards that declare `requirements`
  (or every card when LLM4REC_ISOLATE=1). The harness builds and caches a virtualenv
  for the requirements (benchmark.executors.envs) and talks to the worker
  (benchmark.executors.worker) through a narrow protocol (benchmark.executors.protocol)
  via a proxy model (benchmark.executors.isolated.SubprocessRecommender).

This package's __init__ stays import-light: the worker imports it inside a
submission's environment, where only numpy, pandas, pydantic and PyYAML are present.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmark.api import Recommender, Submission


def runs_isolated(submission: "Submission") -> bool:
    """Whether this submission runs in a worker process in its own environment."""
    return bool(submission.card.requirements) or os.environ.get("LLM4REC_ISOLATE", "") == "1"


def build_model(submission: "Submission", isolate: bool | None = None) -> "Recommender":
    """The submission's model: built in process, or a proxy to a worker process in the
    submission's own (cached) environment when it declares requirements."""
    if not (runs_isolated(submission) if isolate is None else isolate):
        return submission.build()
    from benchmark.executors.envs import ensure_env
    from benchmark.executors.isolated import SubprocessRecommender

    environment = ensure_env(submission.card.requirements, name=submission.card.name)
    return SubprocessRecommender(submission, environment)


__all__ = ["build_model", "runs_isolated"]
