from ..bridge import RecBoleRanker


class BPR(RecBoleRanker):
    """RecBole's BPR; its configuration is the card's hyperparameters."""
