"""What one run of a submission may take: the task's `limits:` lowered by the card's.

The task (benchmark.tasks.schema.LimitsSpec) sets each limit and its default; a card's
`limits:` block may lower any of them, never raise one: the effective limit is the
minimum. The worker boundary enforces them (benchmark.executors.isolated); a run that
exceeds one fails with the limit named.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class LimitExceeded(RuntimeError):
    """A run went past one of its limits; the message names it ("limit: ...")."""


@dataclass(frozen=True)
class Limits:
    fit_seconds: float
    call_seconds: float
    memory_mb: int
    processes: int

    @classmethod
    def effective(cls, task_limits: Any = None, card_limits: Any = None) -> "Limits":
        """The task's limits (default: a task's defaults), each lowered by the card's
        where it sets one."""
        if task_limits is None:
            from benchmark.tasks.schema import LimitsSpec  # the one home of the defaults

            task_limits = LimitsSpec()
        values = {}
        for name in cls.__dataclass_fields__:
            value = getattr(task_limits, name)
            lowered = getattr(card_limits, name, None) if card_limits is not None else None
            values[name] = value if lowered is None else min(value, lowered)
        return cls(**values)

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_mb) * 2**20

    # The wording of each breach, one place for all of them.
    def fit_breach(self) -> str:
        return f"limit: fit took more than {_seconds(self.fit_seconds)}"

    def start_breach(self) -> str:
        return f"limit: start-up took more than {_seconds(self.fit_seconds)}"

    def call_breach(self, call: str) -> str:
        return f"limit: {call} took more than {_seconds(self.call_seconds)}"

    def memory_breach(self) -> str:
        return f"limit: memory above {self.memory_mb} MB"

    def processes_breach(self) -> str:
        return f"limit: more than {self.processes} processes and threads at once"


def _seconds(value: float) -> str:
    return f"{value:g} s"
