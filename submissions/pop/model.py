import numpy as np

from benchmark.api import FitContext, Recommender, ScoreRequest, TrainData


class MostPopular(Recommender):
    def fit(self, train: TrainData, ctx: FitContext) -> None:
        items = train.interactions["item_id"].to_numpy()
        self.counts = np.bincount(items, minlength=train.n_items).astype(np.float32)

    def score(self, request: ScoreRequest) -> np.ndarray:
        if request.candidates is None:
            return np.broadcast_to(self.counts, (len(request.users), self.counts.size)).copy()
        return self.counts[request.candidates]
