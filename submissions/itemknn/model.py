"""Item-based k-nearest-neighbour collaborative filtering (Sarwar et al. 2001), as
RecBole's ItemKNN: cosine similarity between the items' user vectors, shrunk by
`shrink` in the denominator, keeping each item's `k` most similar neighbours; a user's
score for item i is the sum of i's similarities to the items in the user's history."""
from __future__ import annotations

import numpy as np
import torch

from benchmark.api import FitContext, Recommender, ScoreRequest, TrainData


class ItemKNN(Recommender):
    def __init__(self, k: int = 200, shrink: float = 10.0, popularity_tiebreak: float = 1e-6,
                 **hyperparameters) -> None:
        super().__init__(k=k, shrink=shrink, popularity_tiebreak=popularity_tiebreak, **hyperparameters)
        self.k = int(k)
        self.shrink = float(shrink)
        self.tiebreak = float(popularity_tiebreak)

    def fit(self, train: TrainData, ctx: FitContext) -> None:
        n_items = train.n_items
        pairs = train.interactions[["user_id", "item_id"]].drop_duplicates()
        users = torch.from_numpy(pairs["user_id"].to_numpy(dtype=np.int64, copy=True))
        items = torch.from_numpy(pairs["item_id"].to_numpy(dtype=np.int64, copy=True))
        # Binary user x item matrix (implicit feedback), dense: ml-scale catalogues fit easily.
        matrix = torch.zeros((train.n_users, n_items), dtype=torch.float64)
        matrix[users, items] = 1.0
        co = matrix.T @ matrix  # co-occurrence counts [items, items]
        norms = co.diagonal().sqrt()
        sim = co / (norms[:, None] * norms[None, :] + self.shrink + 1e-12)
        sim.fill_diagonal_(0.0)
        # Keep, for every item (column), its k most similar items, as RecBole does.
        k = min(self.k, n_items - 1)
        if 0 < k < n_items:
            top = torch.topk(sim, k, dim=0).indices
            keep = torch.zeros_like(sim, dtype=torch.bool)
            keep.scatter_(0, top, True)
            sim = torch.where(keep & (sim > 0), sim, torch.zeros_like(sim))
        self.sim = sim.to(torch.float32).numpy()
        counts = np.bincount(train.interactions["item_id"].to_numpy(), minlength=n_items).astype(np.float64)
        # Popularity in [0, 1): breaks ties among items no history item points to, and
        # ranks items for users with an empty history.
        self.popularity = (counts / (counts.max() + 1.0)).astype(np.float32)

    def score(self, request: ScoreRequest) -> np.ndarray:
        n_users = len(request.users)
        profile = np.zeros((n_users, self.sim.shape[0]), dtype=np.float32)
        for row, history in enumerate(request.histories):
            if len(history):
                profile[row, np.unique(history)] = 1.0
        scores = profile @ self.sim + self.tiebreak * self.popularity
        empty = profile.sum(axis=1) == 0
        scores[empty] = self.popularity  # no history: most popular first
        if request.candidates is not None:
            scores = np.take_along_axis(scores, np.asarray(request.candidates, dtype=np.int64), axis=1)
        return np.ascontiguousarray(scores, dtype=np.float32)
