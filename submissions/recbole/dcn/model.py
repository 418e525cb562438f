from benchmark.kits.recbole import RecBoleCTR


class DCN(RecBoleCTR):
    """RecBole's DCN; its configuration is the card's hyperparameters."""
