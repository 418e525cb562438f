from benchmark.kits.recbole import RecBoleCTR


class DeepFM(RecBoleCTR):
    """RecBole's DeepFM; its configuration is the card's hyperparameters."""
