"""Early stopping for torch models that train on the harness's validation score."""
from __future__ import annotations

import copy
import math

import torch


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
