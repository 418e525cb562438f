"""Early stopping for torch models that train on the harness's validation score,
written once for every first-party model that has it (next-item models, CTR field
models, BPR)."""
from __future__ import annotations

import copy
import math
from typing import Callable

import torch

from benchmark.api.types import FitContext


class BestEpoch:
    """Keeps the weights of the best validation epoch, and says when `patience`
    validations in a row have brought no improvement."""

    def __init__(self, network: torch.nn.Module, patience: int) -> None:
        self.network = network
        self.patience = int(patience)
        self.best = -math.inf
        self.epoch = 0  # the best epoch so far (0: none validated yet)
        self._state: dict | None = None
        self._waited = 0

    @property
    def validated(self) -> bool:
        """Whether an epoch's weights are kept (restore() then loads them)."""
        return self._state is not None

    def should_stop(self, value: float, epoch: int) -> bool:
        if value > self.best:
            self.best, self.epoch, self._waited = value, epoch, 0
            self._state = copy.deepcopy(self.network.state_dict())
            return False
        self._waited += 1
        return self._waited >= self.patience

    def restore(self) -> None:
        """Load the best epoch's weights (if any epoch was validated); eval mode."""
        if self._state is not None:
            self.network.load_state_dict(self._state)
        self.network.eval()


def train_with_early_stopping(network: torch.nn.Module, train_epoch: Callable[[int], float], ctx: FitContext,
                              model_call: Callable, epochs: range, patience: int, every: int = 1,
                              loss_metric: str = "loss") -> int:
    """Train `network` in place over `epochs` (the epoch numbers, logged as steps) and
    return the best epoch (the last one trained when none was validated).

    Each epoch runs `train_epoch(epoch)` in train mode (it returns the epoch's mean
    loss, logged as `loss_metric`; the harness stores a model's curves under
    `train/`: `train/loss`). After every epoch number divisible by `every`, the
    harness scores `model_call` (the model's score or predict) on the validation part
    (ctx.evaluate_validation) in eval mode, logged as `valid.main_score`; training stops
    after `patience` validations without a better score. The best validated epoch's
    weights are restored, and the network is left in eval mode. Without
    ctx.evaluate_validation every epoch runs and the last weights stay."""
    stopper = BestEpoch(network, patience)
    last = 0
    for epoch in ctx.progress(epochs, description="epochs", total=len(epochs)):
        network.train()
        ctx.log_metric(loss_metric, train_epoch(epoch), epoch)
        last = epoch
        if ctx.evaluate_validation is None or epoch % every:
            continue
        network.eval()
        value = ctx.evaluate_validation(model_call)
        ctx.log_metric("valid.main_score", value, epoch)
        if stopper.should_stop(value, epoch):
            break
    stopper.restore()
    return stopper.epoch if stopper.validated else last
