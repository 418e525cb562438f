import numpy as np

from benchmark.api import FitContext, PredictRequest, Recommender, ScoreRequest, TrainData


class RandomScores(Recommender):
    def fit(self, train: TrainData, ctx: FitContext) -> None:
        self.rng = np.random.default_rng(ctx.seed)

    def score(self, request: ScoreRequest) -> np.ndarray:
        return self.rng.random((len(request.users), request.n_candidates), dtype=np.float32)

    def predict(self, request: PredictRequest) -> np.ndarray:
        return self.rng.random(len(request.features))
