"""Zero-shot ranking with a sentence encoder: a candidate scores the cosine similarity
between its text's embedding and the mean embedding of the user's history."""
from __future__ import annotations

import numpy as np

from benchmark.api import FitContext, TrainData
from benchmark.kits.threads import torch_threads
from benchmark.kits.llm.adapters import TextModel
from benchmark.kits.llm.models import load_text_encoder


class MiniLMZeroShot(TextModel):
    """The catalogue's texts are embedded once, in fit (unit vectors, mean pooling)."""

    def __init__(self, model: str = "minilm", batch_size: int = 128, **hyperparameters) -> None:
        super().__init__(model=model, batch_size=batch_size, **hyperparameters)
        self.batch_size = int(batch_size)

    def load(self, ctx: FitContext) -> dict[str, str]:
        self.encoder = load_text_encoder(self.model_name, self.device)
        self.network = self.encoder.model  # frozen: 0 trainable parameters
        return self.encoder.identity

    def decoding(self) -> str:
        return "cosine(mean of the history's embeddings, candidate embedding); mean-pooled, L2-normalised"

    def prompt_tag(self) -> str:
        return "none (item texts only)"

    def fit(self, train: TrainData, ctx: FitContext) -> None:
        super().fit(train, ctx)
        self._embed(self._texts)

    def _embed(self, texts: list[str]) -> None:
        """The catalogue's embeddings; a text embedded before (another catalogue that
        differs in a few titles) is not embedded again."""
        known = getattr(self, "_by_text", {})
        new = list(dict.fromkeys(t for t in texts if t not in known))
        if new:
            with torch_threads(self.threads):
                vectors, tokens = self.encoder.encode(new, batch_size=self.batch_size)
            known |= dict(zip(new, vectors))
            self.usage.prompt_tokens += tokens
            self.usage.computed_tokens += tokens
        self._by_text = known
        self.embeddings = np.stack([known[t] for t in texts])

    def item_texts(self, catalog):
        if catalog is not self._catalog:  # another catalogue than fit's: embed it too
            self._remember_catalog(catalog)
            self._embed(self._texts)
        return self._texts

    def score(self, request) -> np.ndarray:
        self.require_candidates(request)
        self.item_texts(request.catalog)
        candidates = np.asarray(request.candidates)
        scores = np.zeros(candidates.shape, dtype=np.float32)
        for row, history in enumerate(request.histories):
            if len(history) == 0:
                continue  # no history: every candidate ties
            profile = self.embeddings[np.asarray(history)].mean(axis=0)
            norm = np.linalg.norm(profile)
            if norm > 0:
                scores[row] = self.embeddings[candidates[row]] @ (profile / norm)
        return scores
