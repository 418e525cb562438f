from benchmark.kits.recbole import RecBoleRanker


class SASRec(RecBoleRanker):
    """RecBole's SASRec; its configuration is the card's hyperparameters."""
