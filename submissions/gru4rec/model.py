"""GRU4Rec (Hidasi et al., ICLR 2016, "Session-based Recommendations with Recurrent
Neural Networks") on user sequences: item embeddings through a GRU, the state after
each item projected back to the embedding space and scored against the (shared) item
embeddings. Training, early stopping and scoring are the shared next-item machinery of
benchmark.kits.nextitem."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from benchmark.kits.nextitem import Dropout, NextItemModel, SequenceNetwork


class GRU4RecNetwork(SequenceNetwork):
    def __init__(self, n_items: int, embedding_size: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.item_embedding = nn.Embedding(n_items + 1, embedding_size, padding_idx=0)
        self.embedding_dropout = Dropout(dropout)
        self.gru = nn.GRU(embedding_size, hidden, layers, batch_first=True)
        self.projection = nn.Linear(hidden, embedding_size)
        nn.init.normal_(self.item_embedding.weight, std=embedding_size ** -0.5)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        batch, length = seqs.shape
        lengths = (seqs > 0).sum(dim=1)
        shift = (length - lengths).unsqueeze(1)  # padding in front of each row
        steps = torch.arange(length).unsqueeze(0)
        # The GRU starts at each row's first real item: move the padding to the end,
        # run the packed rows, and move the states back under their items.
        front = seqs.gather(1, (steps + shift) % length)
        x = self.embedding_dropout(self.item_embedding(front))
        packed = pack_padded_sequence(x, lengths.clamp(min=1), batch_first=True, enforce_sorted=False)
        states, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=length)
        back = ((steps - shift) % length).unsqueeze(-1).expand(-1, -1, states.shape[-1])
        states = states.gather(1, back) * (seqs > 0).unsqueeze(-1).to(states.dtype)  # padding: 0
        return self.projection(states)


class GRU4Rec(NextItemModel):
    defaults = NextItemModel.defaults | {
        "embedding_size": 64,
        "hidden": 128,
        "layers": 1,
        "dropout": 0.3,
    }

    def build_network(self, n_items: int) -> GRU4RecNetwork:
        return GRU4RecNetwork(n_items, self.embedding_size, self.hidden, self.layers, self.dropout)
