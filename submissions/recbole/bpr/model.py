from benchmark.kits.recbole import RecBoleRanker


class BPR(RecBoleRanker):
    """RecBole's BPR; its configuration is the card's hyperparameters."""
