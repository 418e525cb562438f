"""Helpers for CTR adapters: encoding feature fields as embedding-table indices, and a
training loop with early stopping on the harness's validation AUC (used by the `lr` and
`deepfm` baselines; any submission may import them from benchmark.kits.ctr_fields).

Every field (user_id, item_id and the task's feature fields) is categorical: its values
as text are tokens; a field whose training values contain whitespace is multi-valued
(e.g. genres "Comedy Drama"), each of its tokens one slot. A numeric field (every
training value a number, e.g. age or release year) with more than `numeric_buckets`
distinct values is cut into that many quantile buckets of its training values first, so
that each token is backed by many users or items. Token ids are global over fields,
1..n_tokens; 0 is padding and "not seen in training", whose weight is fixed at 0.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import torch

from benchmark.api.recommender import Recommender
from benchmark.api.types import FitContext, PredictRequest, TrainData
from benchmark.kits.report import ReportsParameters
from benchmark.kits.threads import torch_threads
from benchmark.kits.training import train_with_early_stopping


class FieldEncoder:
    def __init__(self, frame: pd.DataFrame, fields: list[str], numeric_buckets: int = 0,
                 id_fields: tuple[str, ...] = ("user_id", "item_id")) -> None:
        self.fields = list(fields)
        self.vocab: list[dict[str, int]] = []
        self.multi: list[bool] = []
        self.width: list[int] = []
        self.edges: dict[str, np.ndarray] = {}  # numeric field -> inner bucket edges
        next_id = 1
        for name in self.fields:
            if numeric_buckets > 0 and name not in id_fields:
                numbers = _numbers(frame[name])
                if numbers is not None and len(np.unique(numbers[~np.isnan(numbers)])) > numeric_buckets:
                    known = numbers[~np.isnan(numbers)]
                    quantiles = np.quantile(known, np.linspace(0, 1, numeric_buckets + 1)[1:-1])
                    self.edges[name] = np.unique(quantiles)
            uniques = [_text(v) for v in pd.unique(self._column(frame, name))]
            multi = any(len(text.split()) > 1 for text in uniques if text is not None)
            tokens = sorted({t for text in uniques if text is not None for t in _split(text, multi)})
            self.vocab.append({token: next_id + k for k, token in enumerate(tokens)})
            self.multi.append(multi)
            self.width.append(max((len(_split(t, multi)) for t in uniques if t is not None), default=1) or 1)
            next_id += len(tokens)
        self.n_tokens = next_id  # table size, padding included
        # slot -> field, for pooling the slots of a multi-valued field
        self.slot_field = np.repeat(np.arange(len(self.fields)), self.width)

    @property
    def n_fields(self) -> int:
        return len(self.fields)

    def encode(self, frame: pd.DataFrame) -> torch.Tensor:
        """LongTensor [len(frame), n_slots] of token ids (0: padding or unknown)."""
        columns = []
        for name, vocab, multi, width in zip(self.fields, self.vocab, self.multi, self.width):
            codes, uniques = pd.factorize(self._column(frame, name), use_na_sentinel=True)
            table = np.zeros((len(uniques) + 1, width), dtype=np.int64)  # last row: missing
            for row, value in enumerate(uniques):
                text = _text(value)
                if text is None:
                    continue
                ids = [vocab.get(t, 0) for t in _split(text, multi)][:width]
                table[row, :len(ids)] = ids
            columns.append(table[np.where(codes < 0, len(uniques), codes)])
        return torch.from_numpy(np.concatenate(columns, axis=1))

    def _column(self, frame: pd.DataFrame, name: str) -> pd.Series:
        """The field's values; a bucketed numeric field's bucket numbers (NaN stays NaN)."""
        if name not in self.edges:
            return frame[name]
        numbers = _numbers(frame[name], strict=False)
        buckets = np.searchsorted(self.edges[name], numbers, side="right").astype(np.float64)
        buckets[np.isnan(numbers)] = np.nan
        return pd.Series(buckets, index=frame.index)

    def pooling(self) -> torch.Tensor:
        """[n_slots, n_fields] 0/1 matrix: which field each slot belongs to."""
        matrix = np.zeros((len(self.slot_field), self.n_fields), dtype=np.float32)
        matrix[np.arange(len(self.slot_field)), self.slot_field] = 1.0
        return torch.from_numpy(matrix)


def _numbers(column: pd.Series, strict: bool = True) -> np.ndarray | None:
    """The column as floats (missing -> NaN); None when a present value is not a number
    (with strict=False such values become NaN instead)."""
    numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    if strict and (np.isnan(numbers) & column.notna().to_numpy()).any():
        return None
    return numbers


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    return str(value).strip()


def _split(text: str, multi: bool) -> list[str]:
    return text.split() if multi else [text]


def pooled(embeddings: torch.Tensor, ids: torch.Tensor, pooling: torch.Tensor) -> torch.Tensor:
    """Mean of each field's token embeddings: embeddings [n, slots, d] -> [n, fields, d]
    (a field with no known token pools to zeros)."""
    present = (ids > 0).to(embeddings.dtype)
    counts = (present @ pooling).clamp_min(1.0)
    summed = torch.einsum("nsd,sf->nfd", embeddings * present.unsqueeze(-1), pooling)
    return summed / counts.unsqueeze(-1)


class CTRTrainer:
    """The training loop both CTR submissions share: binary cross-entropy on the
    training rows, Adam, L2 on the embedding rows each batch uses, early stopping on the
    task's main score (AUC) over the validation part, best epoch kept."""

    def __init__(self, learning_rate: float, batch_size: int, reg_weight: float, max_epochs: int,
                 patience: int) -> None:
        self.lr = float(learning_rate)
        self.batch_size = int(batch_size)
        self.reg = float(reg_weight)
        self.max_epochs = int(max_epochs)
        self.patience = int(patience)

    def train(self, network: torch.nn.Module, ids: torch.Tensor, labels: torch.Tensor, ctx: FitContext,
              predict: Callable) -> int:
        """Train `network` (forward(ids) -> (logits, l2)) in place, validating the model's
        `predict` after every epoch; return the best epoch (the last one when there is
        no validation)."""
        rng = np.random.default_rng(ctx.seed)
        optimiser = torch.optim.Adam(network.parameters(), lr=self.lr)

        def train_epoch(epoch: int) -> float:
            order = torch.from_numpy(rng.permutation(len(labels)))
            total = 0.0
            for start in range(0, len(order), self.batch_size):
                batch = order[start:start + self.batch_size]
                logits, l2 = network(ids[batch])
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels[batch])
                optimiser.zero_grad()
                (loss + self.reg * l2).backward()
                optimiser.step()
                total += loss.item() * len(batch)
            return total / len(order)

        return train_with_early_stopping(network, train_epoch, ctx, predict, range(1, self.max_epochs + 1),
                                         self.patience, loss_metric="logloss")


def labels_of(frame: pd.DataFrame) -> torch.Tensor:
    return torch.from_numpy(frame["label"].to_numpy(dtype=np.float32, copy=True))


def init_embedding(table: torch.nn.Embedding, std: float, generator: torch.Generator) -> None:
    with torch.no_grad():
        table.weight.normal_(0.0, std, generator=generator)
        table.weight[0].zero_()  # padding / unknown


class FieldModel(ReportsParameters, Recommender):
    """Base of CTR models over encoded fields (user id, item id and the task's feature
    fields): a subclass builds the network (forward(ids) -> (logits, l2)); encoding,
    training with CTRTrainer, predicting and report() (the network's trainable
    parameters) are shared."""

    def __init__(self, learning_rate: float, batch_size: int, reg_weight: float, max_epochs: int,
                 patience: int, numeric_buckets: int, num_threads: int, **hyperparameters) -> None:
        super().__init__(learning_rate=learning_rate, batch_size=batch_size, reg_weight=reg_weight,
                         max_epochs=max_epochs, patience=patience, numeric_buckets=numeric_buckets,
                         num_threads=num_threads, **hyperparameters)
        self.trainer = CTRTrainer(learning_rate, batch_size, reg_weight, max_epochs, patience)
        self.numeric_buckets = int(numeric_buckets)
        self.num_threads = int(num_threads)

    def build_network(self, encoder: FieldEncoder, ctx: FitContext) -> torch.nn.Module:
        raise NotImplementedError

    def fit(self, train: TrainData, ctx: FitContext) -> None:
        with torch_threads(self.num_threads):
            frame = train.interactions
            self.encoder = FieldEncoder(frame, ["user_id", "item_id", *train.feature_fields],
                                        self.numeric_buckets)
            self.network = self.build_network(self.encoder, ctx)
            self.best_epoch = self.trainer.train(self.network, self.encoder.encode(frame), labels_of(frame),
                                                 ctx, self.predict)

    def predict(self, request: PredictRequest) -> np.ndarray:
        with torch_threads(self.num_threads), torch.no_grad():
            logits, _ = self.network(self.encoder.encode(request.features))
            return torch.sigmoid(logits.double()).numpy()
