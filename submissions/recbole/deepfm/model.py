from ..bridge import RecBoleCTR


class DeepFM(RecBoleCTR):
    """RecBole's DeepFM; its configuration is the card's hyperparameters."""
