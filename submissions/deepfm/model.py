"""DeepFM (Guo et al. 2017): one embedding per field value shared by a factorisation
machine (first-order weights + pairwise interactions of the field embeddings) and an
MLP over the concatenated field embeddings; the three logits are summed. Inputs: user
id, item id and each of the task's feature fields (multi-valued fields such as genres
mean-pooled), trained with binary cross-entropy, L2 and early stopping on validation AUC."""
from __future__ import annotations

import torch
from torch import nn

from benchmark.api import FitContext
from benchmark.kits.ctr_fields import FieldEncoder, FieldModel, init_embedding, pooled


class DeepFMNet(nn.Module):
    def __init__(self, encoder: FieldEncoder, dim: int, hidden: list[int], dropout: float,
                 generator: torch.Generator) -> None:
        super().__init__()
        self.first = nn.Embedding(encoder.n_tokens, 1, padding_idx=0)
        self.bias = nn.Parameter(torch.zeros(()))
        self.embeddings = nn.Embedding(encoder.n_tokens, dim, padding_idx=0)
        self.register_buffer("pooling", encoder.pooling())
        layers, width = [], encoder.n_fields * dim
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)
        with torch.no_grad():
            self.first.weight.zero_()
            init_embedding(self.embeddings, 0.01, generator)
            for layer in self.mlp:
                if isinstance(layer, nn.Linear):  # xavier-normal, as RecBole's MLPLayers
                    std = (2.0 / (layer.in_features + layer.out_features)) ** 0.5
                    layer.weight.normal_(0.0, std, generator=generator)
                    layer.bias.zero_()

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gathered = self.embeddings(ids)  # [n, slots, d]
        fields = pooled(gathered, ids, self.pooling)  # [n, fields, d]
        weights = self.first(ids)
        first = self.bias + pooled(weights, ids, self.pooling).sum(dim=(1, 2))
        second = 0.5 * (fields.sum(1).pow(2) - fields.pow(2).sum(1)).sum(1)
        deep = self.mlp(fields.flatten(1)).squeeze(1)
        l2 = (gathered.pow(2).sum() + weights.pow(2).sum()) / len(ids)
        return first + second + deep, l2


class DeepFM(FieldModel):
    def __init__(self, embedding_size: int = 10, mlp_hidden_size: list[int] = (128, 128, 128),
                 dropout_prob: float = 0.2, learning_rate: float = 0.001, batch_size: int = 2048,
                 reg_weight: float = 1e-4, max_epochs: int = 50, patience: int = 3, numeric_buckets: int = 10,
                 num_threads: int = 1, **hyperparameters) -> None:
        super().__init__(learning_rate, batch_size, reg_weight, max_epochs, patience, numeric_buckets,
                         num_threads, embedding_size=embedding_size, mlp_hidden_size=list(mlp_hidden_size),
                         dropout_prob=dropout_prob, **hyperparameters)
        self.dim = int(embedding_size)
        self.hidden = [int(h) for h in mlp_hidden_size]
        self.dropout = float(dropout_prob)

    def build_network(self, encoder: FieldEncoder, ctx: FitContext) -> nn.Module:
        torch.manual_seed(ctx.seed)  # dropout masks
        generator = torch.Generator().manual_seed(ctx.seed)
        return DeepFMNet(encoder, self.dim, self.hidden, self.dropout, generator)
