from benchmark.kits.recbole import RecBoleCTR


class LR(RecBoleCTR):
    """RecBole's LR; its configuration is the card's hyperparameters."""
