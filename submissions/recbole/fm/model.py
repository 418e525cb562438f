from benchmark.kits.recbole import RecBoleCTR


class FM(RecBoleCTR):
    """RecBole's FM; its configuration is the card's hyperparameters."""
