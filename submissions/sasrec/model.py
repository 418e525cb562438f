"""SASRec (Kang & McAuley, ICDM 2018, "Self-Attentive Sequential Recommendation"): a
causal self-attention encoder over the user's item sequence. The network is
benchmark.kits.sasrec's; training, early stopping and scoring are the shared next-item
machinery of benchmark.kits.nextitem."""
from __future__ import annotations

from benchmark.kits.nextitem import NextItemModel
from benchmark.kits.sasrec import SASRecNetwork


class SASRec(NextItemModel):
    defaults = NextItemModel.defaults | {
        "hidden": 64,
        "blocks": 2,
        "heads": 2,
        "dropout": 0.2,
    }

    def build_network(self, n_items: int) -> SASRecNetwork:
        return SASRecNetwork(n_items, self.hidden, self.blocks, self.heads, self.max_len, self.dropout)
