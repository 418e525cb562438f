from benchmark.kits.recbole import RecBoleRanker


class BERT4Rec(RecBoleRanker):
    """RecBole's BERT4Rec; its configuration is the card's hyperparameters."""
