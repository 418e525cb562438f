from benchmark.kits.recbole import RecBoleRanker


class NeuMF(RecBoleRanker):
    """RecBole's NeuMF; its configuration is the card's hyperparameters."""
