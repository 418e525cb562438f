import numpy as np

from benchmark.api import FitContext, PredictRequest, Recommender, ScoreRequest, TrainData


class MostPopular(Recommender):
    def __init__(self, prior_strength: float = 10.0, **hyperparameters) -> None:
        super().__init__(prior_strength=prior_strength, **hyperparameters)
        self.prior_strength = float(prior_strength)

    def fit(self, train: TrainData, ctx: FitContext) -> None:
        items = train.interactions["item_id"].to_numpy()
        self.counts = np.bincount(items, minlength=train.n_items).astype(np.float32)
        if "label" in train.interactions:  # CTR: each item's positive rate, smoothed
            labels = train.interactions["label"].to_numpy().astype(np.float64)
            positives = np.bincount(items, weights=labels, minlength=train.n_items)
            overall = labels.mean() if len(labels) else 0.5
            # Beta prior centred on the overall rate, worth `prior_strength` rows: an
            # unseen item gets the overall rate, a frequent one nearly its own.
            self.rates = (positives + self.prior_strength * overall) / (self.counts + self.prior_strength)

    def score(self, request: ScoreRequest) -> np.ndarray:
        if request.candidates is None:
            return np.broadcast_to(self.counts, (len(request.users), self.counts.size)).copy()
        return self.counts[request.candidates]

    def predict(self, request: PredictRequest) -> np.ndarray:
        return self.rates[np.asarray(request.items, dtype=np.int64)].astype(np.float64)
