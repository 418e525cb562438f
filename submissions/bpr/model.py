"""Matrix factorisation trained with the BPR loss (Rendle et al. 2009): for every
observed (user, item) pair and an item drawn uniformly among those the user has not
interacted with, maximise log sigmoid(s(u, i) - s(u, j)) with s(u, i) = p_u . q_i
(+ b_i when `item_bias`). Adam, L2 on the embeddings of each batch, early stopping on
the task's main score over the validation part (every `eval_every` epochs)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from benchmark.api import FitContext, Recommender, ScoreRequest, TrainData
from benchmark.kits.report import ReportsParameters
from benchmark.kits.threads import torch_threads
from benchmark.kits.training import train_with_early_stopping


class BPRMF(nn.Module):
    def __init__(self, n_users: int, n_items: int, dim: int, item_bias: bool, generator: torch.Generator):
        super().__init__()
        self.users = nn.Embedding(n_users, dim)
        self.items = nn.Embedding(n_items, dim)
        self.bias = nn.Embedding(n_items, 1) if item_bias else None
        with torch.no_grad():  # RecBole's BPR initialises with xavier_normal_
            for table in (self.users, self.items):
                fan = table.weight.shape[0] + table.weight.shape[1]
                table.weight.normal_(0.0, (2.0 / fan) ** 0.5, generator=generator)
            if self.bias is not None:
                self.bias.weight.zero_()

    def item_scores(self, user_vectors: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """user_vectors [b, d], items [b] or [b, n] -> scores of the same shape as items."""
        vectors = self.items(items)
        if items.dim() == 1:
            scores = (user_vectors * vectors).sum(-1)
        else:
            scores = torch.einsum("bd,bnd->bn", user_vectors, vectors)
        if self.bias is not None:
            scores = scores + self.bias(items).squeeze(-1)
        return scores


class BPR(ReportsParameters, Recommender):
    def __init__(self, embedding_size: int = 64, learning_rate: float = 5e-3, batch_size: int = 2048,
                 reg_weight: float = 1e-2, item_bias: bool = True, max_epochs: int = 200,
                 eval_every: int = 2, patience: int = 5, num_threads: int = 1, **hyperparameters) -> None:
        super().__init__(embedding_size=embedding_size, learning_rate=learning_rate, batch_size=batch_size,
                         reg_weight=reg_weight, item_bias=item_bias, max_epochs=max_epochs,
                         eval_every=eval_every, patience=patience, num_threads=num_threads, **hyperparameters)
        self.dim = int(embedding_size)
        self.lr = float(learning_rate)
        self.batch_size = int(batch_size)
        self.reg = float(reg_weight)
        self.item_bias = bool(item_bias)
        self.max_epochs = int(max_epochs)
        self.eval_every = max(1, int(eval_every))
        self.patience = int(patience)
        self.num_threads = int(num_threads)

    # ------------------------------------------------------------------ training
    def fit(self, train: TrainData, ctx: FitContext) -> None:
        with torch_threads(self.num_threads):
            self._fit(train, ctx)

    def _fit(self, train: TrainData, ctx: FitContext) -> None:
        n_users, n_items = train.n_users, train.n_items
        pairs = train.interactions[["user_id", "item_id"]].drop_duplicates()
        users = pairs["user_id"].to_numpy(dtype=np.int64, copy=True)
        items = pairs["item_id"].to_numpy(dtype=np.int64, copy=True)
        positives = np.sort(users * n_items + items)
        counts = np.bincount(items, minlength=n_items).astype(np.float64)
        self.popularity = (counts / (counts.max() + 1.0)).astype(np.float32)
        self.known_users = np.bincount(users, minlength=n_users) > 0

        rng = np.random.default_rng(ctx.seed)
        generator = torch.Generator().manual_seed(ctx.seed)
        self.model = BPRMF(n_users, n_items, self.dim, self.item_bias, generator)
        optimiser = torch.optim.Adam(self.model.parameters(), lr=self.lr)

        def train_epoch(epoch: int) -> float:
            order = rng.permutation(len(users))
            negatives = _sample_negatives(users, n_items, positives, rng)
            total = 0.0
            for start in range(0, len(order), self.batch_size):
                batch = order[start:start + self.batch_size]
                u = torch.from_numpy(users[batch])
                i = torch.from_numpy(items[batch])
                j = torch.from_numpy(negatives[batch])
                user_vectors = self.model.users(u)
                diff = self.model.item_scores(user_vectors, i) - self.model.item_scores(user_vectors, j)
                loss = -nn.functional.logsigmoid(diff).mean()
                reg = (user_vectors.pow(2).sum() + self.model.items(i).pow(2).sum()
                       + self.model.items(j).pow(2).sum()) / len(batch)
                loss = loss + self.reg * reg
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += loss.item() * len(batch)
            return total / len(order)

        self.best_epoch = train_with_early_stopping(self.model, train_epoch, ctx, self.score,
                                                    range(1, self.max_epochs + 1), self.patience,
                                                    every=self.eval_every, loss_metric="train.bpr_loss")

    # ------------------------------------------------------------------ scoring
    def score(self, request: ScoreRequest) -> np.ndarray:
        with torch_threads(self.num_threads), torch.no_grad():
            return self._score(request)

    def _score(self, request: ScoreRequest) -> np.ndarray:
        users = np.array(request.users, dtype=np.int64)
        user_table = self.model.users.weight
        item_table = self.model.items.weight
        vectors = user_table[torch.from_numpy(users)].clone()
        known = self.known_users[users]
        empty = np.zeros(len(users), dtype=bool)
        for row, history in enumerate(request.histories):
            if known[row]:
                continue
            if len(history):  # not trained on: the mean of its history items' embeddings
                vectors[row] = item_table[torch.from_numpy(np.unique(history).astype(np.int64))].mean(0)
            else:
                empty[row] = True
        scores = vectors @ item_table.T
        if self.model.bias is not None:
            scores = scores + self.model.bias.weight.T
        scores = scores.numpy()
        scores[empty] = self.popularity  # nothing to go by: most popular first
        if request.candidates is not None:
            scores = np.take_along_axis(scores, np.asarray(request.candidates, dtype=np.int64), axis=1)
        return np.ascontiguousarray(scores, dtype=np.float32)


def _sample_negatives(users: np.ndarray, n_items: int, positives: np.ndarray, rng: np.random.Generator,
                      tries: int = 10) -> np.ndarray:
    """One item per row, uniform among the items the row's user has no training
    interaction with (redrawn up to `tries` times; a rare leftover keeps its draw)."""
    negatives = rng.integers(0, n_items, size=len(users))
    redo = np.arange(len(users))
    for _ in range(tries):
        codes = users[redo] * n_items + negatives[redo]
        hit = positives[np.minimum(np.searchsorted(positives, codes), len(positives) - 1)] == codes
        redo = redo[hit]
        if not len(redo):
            break
        negatives[redo] = rng.integers(0, n_items, size=len(redo))
    return negatives
