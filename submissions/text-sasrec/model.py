"""Text-SASRec: SASRec whose item representations come from a frozen pre-trained text
encoder (all-MiniLM-L6-v2 by default) through a trained adapter, after UniSRec (Hou et
al., KDD 2022, "Towards Universal Sequence Representation Learning for Recommender
Systems"): pre-train (the text encoder) + fine-tune (adapter and transformer on the
task).

item i's representation = W (t_i - b) [+ r_i]

t_i: the encoder's embedding of the item's text ("Title (year)"), frozen; b, W: the
parametric whitening and projection of UniSRec's adaptor (b starts at the mean text
embedding), trained; r_i: an optional learned ID residual, kept at exactly zero for
items with no training interaction, so an item never seen in training is scored by its
text alone (ID models cannot score it at all). The sequence encoder is SASRec's
(benchmark.kits.sasrec, the `sasrec` submission's network, with this item
representation in place of the ID embedding table); training (full softmax
cross-entropy, windows, early stopping) and scoring are benchmark.kits.nextitem's.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib

import numpy as np
import torch
from torch import nn

from benchmark.api import FitContext, ModelReport, TrainData
from benchmark.kits.nextitem import Dropout, NextItemModel, SequenceNetwork
from benchmark.kits.sasrec import SASRecNetwork


@functools.lru_cache(maxsize=4)
def _encode(encoder: str, texts: tuple[str, ...], digest: str) -> tuple[np.ndarray, int, int, dict]:
    """(embeddings [n, d], tokens encoded, encoder parameters, identity); cached per process
    (every seed of a run encodes the same catalogue)."""
    from benchmark.kits.llm import load_text_encoder

    model = load_text_encoder(encoder)
    embeddings, tokens = model.encode(list(texts))
    return embeddings, tokens, sum(p.numel() for p in model.model.parameters()), dict(model.identity)


class TextItemEmbedding(nn.Module):
    """Rows 1..n of `weight` are the items' representations, row 0 the padding (zero);
    `forward(ids)` looks them up. Stands in for the nn.Embedding of an ID model."""

    def __init__(self, text: torch.Tensor, seen: torch.Tensor, hidden: int, id_residual: bool,
                 dropout: float) -> None:
        super().__init__()
        self.register_buffer("text", text, persistent=False)  # frozen [n_items, d_text]
        self.register_buffer("seen", torch.cat([torch.zeros(1), seen.float()]).unsqueeze(1), persistent=False)
        self.whitening = nn.Parameter(text.mean(dim=0).clone())
        self.projection = nn.Linear(text.shape[1], hidden, bias=False)
        nn.init.normal_(self.projection.weight, std=text.shape[1] ** -0.5)
        self.dropout = Dropout(dropout)
        self.residual = nn.Embedding(len(text) + 1, hidden) if id_residual else None
        if self.residual is not None:
            nn.init.zeros_(self.residual.weight)

    @property
    def weight(self) -> torch.Tensor:
        items = self.dropout(self.projection(self.text - self.whitening))
        table = torch.cat([items.new_zeros(1, items.shape[1]), items])
        if self.residual is not None:
            table = table + self.residual.weight * self.seen  # zero for unseen items and padding
        return table

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.weight[ids]


class TextSASRec(NextItemModel):
    defaults = NextItemModel.defaults | {
        "hidden": 64,
        "blocks": 2,
        "heads": 2,
        "dropout": 0.2,
        "text_encoder": "minilm",  # transformers id, local path or asset name
        "id_residual": True,       # a learned ID offset for items seen in training
        "adapter_dropout": 0.1,
    }

    def __init__(self, **hyperparameters) -> None:
        super().__init__(**hyperparameters)
        self._encoder: tuple[int, int, dict[str, str]] | None = None  # tokens, parameters, identity

    def fit(self, train: TrainData, ctx: FitContext) -> None:
        texts = tuple(train.catalog.item_texts())
        digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()
        embeddings, tokens, encoder_parameters, identity = _encode(str(self.text_encoder), texts, digest)
        self._text = torch.from_numpy(embeddings)
        self._seen = torch.zeros(train.n_items, dtype=torch.bool)
        self._seen[torch.from_numpy(train.interactions["item_id"].to_numpy())] = True
        identity = {k: str(v) for k, v in identity.items()} | {"llm.role": "frozen item-text encoder"}
        self._encoder = (tokens, encoder_parameters, identity)
        super().fit(train, ctx)

    def report(self) -> ModelReport:
        """The network's trainable parameters; in total with the frozen encoder's; the
        tokens the encoder read; the encoder's identity."""
        report = super().report()
        if self._encoder is None or report.trainable_parameters is None:
            return report
        tokens, encoder_parameters, identity = self._encoder
        return dataclasses.replace(report, total_parameters=report.trainable_parameters + encoder_parameters,
                                   tokens=tokens, llm=identity)

    def build_network(self, n_items: int) -> SequenceNetwork:
        if len(self._text) != n_items:
            raise ValueError(f"text-sasrec: {len(self._text)} item texts for {n_items} items")
        network = SASRecNetwork(n_items, self.hidden, self.blocks, self.heads, self.max_len, self.dropout)
        network.item_embedding = TextItemEmbedding(self._text, self._seen, self.hidden, bool(self.id_residual),
                                                   self.adapter_dropout)
        return network
