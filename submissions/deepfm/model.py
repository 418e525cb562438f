"""DeepFM (Guo et al. 2017): one embedding per field value shared by a factorisation
machine (first-order weights + pairwise interactions of the field embeddings) and an
MLP over the concatenated field embeddings; the three logits are summed. Inputs: user
id, item id and each of the task's feature fields (multi-valued fields such as genres
mean-pooled), trained with binary cross-entropy, L2 and early stopping on validation AUC."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from benchmark.api import FitContext, PredictRequest, Recommender, TrainData

from benchmark.api.ctr_fields import CTRTrainer, FieldEncoder, init_embedding, labels_of, pooled
from benchmark.api.threads import torch_threads


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


class DeepFM(Recommender):
    def __init__(self, embedding_size: int = 10, mlp_hidden_size: list[int] = (128, 128, 128),
                 dropout_prob: float = 0.2, learning_rate: float = 0.001, batch_size: int = 2048,
                 reg_weight: float = 1e-4, max_epochs: int = 50, patience: int = 3, numeric_buckets: int = 10,
                 num_threads: int = 1, **hyperparameters) -> None:
        super().__init__(embedding_size=embedding_size, mlp_hidden_size=list(mlp_hidden_size),
                         dropout_prob=dropout_prob, learning_rate=learning_rate, batch_size=batch_size,
                         reg_weight=reg_weight, max_epochs=max_epochs, patience=patience,
                         numeric_buckets=numeric_buckets, num_threads=num_threads, **hyperparameters)
        self.dim = int(embedding_size)
        self.hidden = [int(h) for h in mlp_hidden_size]
        self.dropout = float(dropout_prob)
        self.trainer = CTRTrainer(learning_rate, batch_size, reg_weight, max_epochs, patience)
        self.numeric_buckets = int(numeric_buckets)
        self.num_threads = int(num_threads)

    def fit(self, train: TrainData, ctx: FitContext) -> None:
        with torch_threads(self.num_threads):
            torch.manual_seed(ctx.seed)  # dropout masks
            frame = train.interactions
            self.encoder = FieldEncoder(frame, ["user_id", "item_id", *train.feature_fields],
                                        self.numeric_buckets)
            generator = torch.Generator().manual_seed(ctx.seed)
            self.network = DeepFMNet(self.encoder, self.dim, self.hidden, self.dropout, generator)
            validate = (lambda: ctx.evaluate_validation(self.predict)) if ctx.evaluate_validation else None
            self.best_epoch = self.trainer.train(self.network, self.encoder.encode(frame), labels_of(frame),
                                                 ctx, validate)

    def predict(self, request: PredictRequest) -> np.ndarray:
        with torch_threads(self.num_threads), torch.no_grad():
            logits, _ = self.network(self.encoder.encode(request.features))
            return torch.sigmoid(logits.double()).numpy()
