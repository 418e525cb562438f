"""Logistic regression over one-hot / multi-hot fields: user id, item id and each of
the task's feature fields (multi-valued fields such as genres averaged over their
tokens), trained with binary cross-entropy, L2 and early stopping on validation AUC."""
from __future__ import annotations

import torch
from torch import nn

from benchmark.api import FitContext
from benchmark.kits.ctr_fields import FieldEncoder, FieldModel, pooled


class LinearNet(nn.Module):
    def __init__(self, encoder: FieldEncoder) -> None:
        super().__init__()
        self.weights = nn.Embedding(encoder.n_tokens, 1, padding_idx=0)
        self.bias = nn.Parameter(torch.zeros(()))
        self.register_buffer("pooling", encoder.pooling())
        with torch.no_grad():
            self.weights.weight.zero_()

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gathered = self.weights(ids)  # [n, slots, 1]
        per_field = pooled(gathered, ids, self.pooling)  # [n, fields, 1]
        logits = self.bias + per_field.sum(dim=(1, 2))
        return logits, gathered.pow(2).sum() / len(ids)


class LogisticRegression(FieldModel):
    def __init__(self, learning_rate: float = 0.01, batch_size: int = 2048, reg_weight: float = 1e-4,
                 max_epochs: int = 50, patience: int = 3, numeric_buckets: int = 10, num_threads: int = 1,
                 **hyperparameters) -> None:
        super().__init__(learning_rate, batch_size, reg_weight, max_epochs, patience, numeric_buckets,
                         num_threads, **hyperparameters)

    def build_network(self, encoder: FieldEncoder, ctx: FitContext) -> nn.Module:
        return LinearNet(encoder)
