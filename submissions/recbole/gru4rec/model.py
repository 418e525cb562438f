from benchmark.kits.recbole import RecBoleRanker


class GRU4Rec(RecBoleRanker):
    """RecBole's GRU4Rec; its configuration is the card's hyperparameters."""
