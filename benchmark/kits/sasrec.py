"""The SASRec network (Kang & McAuley, ICDM 2018, "Self-Attentive Sequential
Recommendation"): item + learned positional embeddings, embedding dropout, `blocks`
pre-LayerNorm blocks of causal multi-head self-attention and a point-wise feed-forward
network, each with a residual connection, and a final LayerNorm. A SequenceNetwork of
benchmark.kits.nextitem, used by the `sasrec` submission and, with text-based item
representations in place of its item embedding table, by `text-sasrec`."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from benchmark.kits.nextitem import Dropout, SequenceNetwork


class CausalSelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"SASRec: hidden ({hidden}) must be divisible by heads ({heads})")
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.dropout = Dropout(dropout)  # on the attention weights

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = x.shape
        size = hidden // self.heads
        q, k, v = self.qkv(x).view(batch, length, 3, self.heads, size).permute(2, 0, 3, 1, 4)
        weights = (q @ k.transpose(-1, -2)).mul_(size ** -0.5).add_(mask).softmax(dim=-1)
        y = self.dropout(weights) @ v
        return self.out(y.transpose(1, 2).reshape(batch, length, hidden))


class FeedForward(nn.Module):
    """The point-wise feed-forward network: Linear-ReLU-Linear with dropout."""

    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.inner = nn.Linear(hidden, hidden)
        self.outer = nn.Linear(hidden, hidden)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.outer(self.dropout(F.relu(self.inner(x)))))


class Block(nn.Module):
    """x + Dropout(Attention(LN(x))), then x + FFN(LN(x))."""

    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(hidden, eps=1e-8)
        self.attention = CausalSelfAttention(hidden, heads, dropout)
        self.attention_dropout = Dropout(dropout)
        self.ffn_norm = nn.LayerNorm(hidden, eps=1e-8)
        self.ffn = FeedForward(hidden, dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attention_dropout(self.attention(self.attention_norm(x), mask))
        return x + self.ffn(self.ffn_norm(x))


class SASRecNetwork(SequenceNetwork):
    """Item sequences [B, L] -> hidden states [B, L, hidden]. `item_embedding` may be
    replaced after construction by any module that looks ids up like nn.Embedding and
    has a `weight` [n_items + 1, hidden] (text-sasrec's text-based items)."""

    def __init__(self, n_items: int, hidden: int, blocks: int, heads: int, max_len: int,
                 dropout: float) -> None:
        super().__init__()
        self.max_len = max_len
        self.item_embedding = nn.Embedding(n_items + 1, hidden, padding_idx=0)
        self.position_embedding = nn.Embedding(max_len, hidden)
        self.embedding_dropout = Dropout(dropout)
        self.blocks = nn.ModuleList(Block(hidden, heads, dropout) for _ in range(blocks))
        self.final_norm = nn.LayerNorm(hidden, eps=1e-8)
        self.scale = math.sqrt(hidden)
        self.register_buffer("causal", torch.ones(max_len, max_len, dtype=torch.bool).tril(),
                             persistent=False)
        self.register_buffer("diagonal", torch.eye(max_len, dtype=torch.bool), persistent=False)
        nn.init.normal_(self.item_embedding.weight, std=hidden ** -0.5)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        length = seqs.shape[1]
        real = seqs > 0
        # Positions count back from the newest item (the sequences are left-padded).
        positions = self.position_embedding.weight[self.max_len - length:]
        x = self.embedding_dropout(self.item_embedding(seqs) * self.scale + positions)
        # Position t attends to the real items up to t, and to itself: a padding row is
        # never attended by a real one (so its values do not matter and are never
        # used) and never has an empty softmax.
        allowed = self.causal[:length, :length] & (real.unsqueeze(1) | self.diagonal[:length, :length])
        mask = torch.zeros(allowed.shape, dtype=x.dtype).masked_fill_(~allowed, -math.inf).unsqueeze(1)
        for block in self.blocks:
            x = block(x, mask)
        return self.final_norm(x)
