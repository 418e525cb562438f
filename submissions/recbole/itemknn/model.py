from benchmark.kits.recbole import RecBoleRanker


class ItemKNN(RecBoleRanker):
    """RecBole's ItemKNN; its configuration is the card's hyperparameters."""
