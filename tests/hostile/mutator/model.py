"""Hostile: corrupt every array and table it is given, and what lies behind them."""
import numpy as np

from benchmark.api import Recommender


def smash(array) -> int:
    """Zero `array` and every array it is a view of; how many it could write."""
    written = 0
    while isinstance(array, np.ndarray):
        try:
            array.flags.writeable = True
            array[...] = 0
            written += 1
        except (ValueError, TypeError):
            pass
        array = array.base
    return written


class Mutator(Recommender):
    def fit(self, train, ctx) -> None:
        written = 0
        inter = train.interactions
        for column in inter.columns:
            written += smash(inter[column].to_numpy())
        inter["item_id"] = 0
        del inter["timestamp"]
        items = train.catalog.items
        if "title" in items:
            items["title"] = "corrupted"
        items["item_id"] = items["item_id"][::-1].to_numpy()
        if train.users is not None:
            train.users.loc[:, "user_id"] = -1
            del train.users[train.users.columns[-1]]
        if train.validation is not None:
            written += sum(smash(h) for h in train.validation.histories)
            written += smash(train.validation.users)
            written += smash(train.validation.targets) if isinstance(train.validation.targets, np.ndarray) else 0
        if ctx.evaluate_validation is not None:
            ctx.evaluate_validation(self.score)
        ctx.log_metric("written", float(written), 0)

    def score(self, request):
        for history in request.histories:
            smash(history)
        smash(request.users)
        if request.candidates is not None:
            smash(request.candidates)
        request.catalog.items.loc[:, "item_id"] = -1
        return np.zeros((len(request.users), request.n_candidates))
