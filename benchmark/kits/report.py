"""Model reports for torch models: the parameter counts a model tells the harness
through `Recommender.report()` (benchmark.api.ModelReport)."""
from __future__ import annotations

import sys
from typing import Any

from benchmark.api import ModelReport


def held_modules(model: Any) -> list:
    """The torch modules a model holds as attributes (its networks)."""
    torch = sys.modules.get("torch")  # a model without torch holds no modules
    if torch is None:
        return []
    return [value for value in vars(model).values() if isinstance(value, torch.nn.Module)]


def trainable_parameters(model: Any) -> int | None:
    """Trainable parameters over the torch modules the model holds; None without any."""
    modules = held_modules(model)
    if not modules:
        return None
    return int(sum(p.numel() for module in modules for p in module.parameters() if p.requires_grad))


class ReportsParameters:
    """Mixin for Recommender subclasses: report() counts the trainable parameters of
    the torch modules the model holds (what the harness used to count for every model)."""

    def report(self) -> ModelReport:
        return ModelReport(trainable_parameters=trainable_parameters(self))
