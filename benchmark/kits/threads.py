"""Torch's intra-op thread count for a block of model code."""
from __future__ import annotations

import torch


class torch_threads:
    """Run a block with n intra-op threads (0: leave torch's setting). Small batches
    gain nothing from more threads on an idle machine and lose much on a busy one."""

    def __init__(self, n: int) -> None:
        self.n = int(n)

    def __enter__(self) -> None:
        self.previous = torch.get_num_threads()
        if self.n > 0:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc) -> None:
        torch.set_num_threads(self.previous)
