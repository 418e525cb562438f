from benchmark.kits.recbole import RecBoleRanker


class LightGCN(RecBoleRanker):
    """RecBole's LightGCN; its configuration is the card's hyperparameters."""
