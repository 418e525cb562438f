"""The model kits (benchmark/kits): early stopping written once for every trained
first-party model, and each model kind's report() against a parameter count worked
out from its architecture."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from benchmark.api import Catalog, FitContext, ModelReport, TrainData, find_submission
from benchmark.kits.report import trainable_parameters
from benchmark.kits.training import train_with_early_stopping
from conftest import shipped


# --- early stopping --------------------------------------------------------------------

class Weight(nn.Module):
    """One parameter; each epoch sets it to the epoch's number, so the weights say
    which epoch they come from."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))


def run(epochs: range, patience: int, scores: dict[int, float] | None, every: int = 1):
    """Train a Weight with train_with_early_stopping; validation scores by epoch (None:
    no validation). Returns (best epoch, network, epochs trained, logged points,
    progress loops)."""
    network = Weight()
    trained, logged, loops = [], [], []
    model_call = object()  # stands for the model's score / predict

    def train_epoch(epoch: int) -> float:
        assert network.training
        with torch.no_grad():
            network.w.fill_(epoch)
        trained.append(epoch)
        return epoch / 10

    def evaluate_validation(call) -> float:
        assert call is model_call and not network.training
        return scores[int(network.w.item())]

    def progress(iterable, description="", total=None):
        loops.append((description, total))
        return iter(iterable)

    ctx = FitContext(seed=0, evaluate_validation=evaluate_validation if scores is not None else None,
                     progress=progress, log_metric=lambda name, value, step: logged.append((name, value, step)))
    best = train_with_early_stopping(network, train_epoch, ctx, model_call, epochs, patience, every=every)
    return best, network, trained, logged, loops


def test_early_stopping_stops_after_patience_validations_and_restores_the_best_weights():
    # Epoch 4 only ties the best (0.5): not an improvement.
    scores = {1: 0.2, 2: 0.5, 3: 0.4, 4: 0.5, 5: 0.1, 6: 0.9}
    best, network, trained, logged, loops = run(range(1, 11), 3, scores)
    assert trained == [1, 2, 3, 4, 5]  # three validations without improvement after epoch 2
    assert best == 2 and network.w.item() == 2.0 and not network.training
    assert loops == [("epochs", 10)]
    assert logged == [point for epoch in trained
                      for point in (("loss", epoch / 10, epoch), ("valid.main_score", scores[epoch], epoch))]


def test_early_stopping_validates_every_nth_epoch_and_counts_patience_in_validations():
    scores = {2: 0.3, 4: 0.2, 6: 0.1}
    best, network, trained, logged, _ = run(range(1, 9), 2, scores, every=2)
    assert trained == [1, 2, 3, 4, 5, 6]
    assert best == 2 and network.w.item() == 2.0
    assert [step for name, _, step in logged if name == "valid.main_score"] == [2, 4, 6]


def test_without_validation_every_epoch_runs_and_the_last_weights_stay():
    best, network, trained, logged, loops = run(range(0, 4), 1, None)
    assert trained == [0, 1, 2, 3] and best == 3 and network.w.item() == 3.0 and not network.training
    assert [name for name, _, _ in logged] == ["loss"] * 4 and loops == [("epochs", 4)]


# --- reports ---------------------------------------------------------------------------

N_USERS, N_ITEMS, GENRES = 12, 10, 3


def sequences_task() -> TrainData:
    """Each user steps through the items from its own start, one per time step."""
    rows = [(user, (user + t) % N_ITEMS, float(t)) for user in range(N_USERS) for t in range(8)]
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    interactions["row"] = np.arange(len(interactions))
    items = pd.DataFrame({"item_id": range(N_ITEMS), "original_id": [str(i) for i in range(N_ITEMS)]})
    return TrainData(interactions, N_USERS, Catalog(N_ITEMS, items))


def ctr_task() -> TrainData:
    """The same rows with a label and one categorical feature field (GENRES values)."""
    train = sequences_task()
    interactions = train.interactions.assign(
        label=((train.interactions["user_id"] + train.interactions["item_id"]) % 2).astype("int8"),
        genre=[f"g{item % GENRES}" for item in train.interactions["item_id"]])
    return TrainData(interactions, N_USERS, train.catalog, feature_fields=["genre"])


def fitted(name: str, train: TrainData, **hyperparameters):
    model = find_submission(shipped(name)).build(**hyperparameters)
    model.fit(train, FitContext(seed=0))
    return model


def linear(inputs: int, outputs: int) -> int:
    return inputs * outputs + outputs


def layer_norm(width: int) -> int:
    return 2 * width


def test_sasrec_reports_its_parameters():
    h, blocks, max_len = 8, 2, 5
    model = find_submission(shipped("sasrec")).build(hidden=h, blocks=blocks, heads=2, max_len=max_len, epochs=2,
                                                     batch_size=16, threads=1)
    assert model.report() == ModelReport()  # nothing to tell before fit
    model.fit(sequences_task(), FitContext(seed=0))
    block = layer_norm(h) + linear(h, 3 * h) + linear(h, h) + layer_norm(h) + 2 * linear(h, h)
    expected = (N_ITEMS + 1) * h + max_len * h + blocks * block + layer_norm(h)
    assert model.report() == ModelReport(trainable_parameters=expected)


def test_gru4rec_reports_its_parameters():
    e, h = 6, 8
    model = fitted("gru4rec", sequences_task(), embedding_size=e, hidden=h, max_len=5, epochs=2, batch_size=16,
                   threads=1)
    gru = 3 * h * e + 3 * h * h + 2 * 3 * h
    assert model.report() == ModelReport(trainable_parameters=(N_ITEMS + 1) * e + gru + linear(h, e))


def test_bpr_reports_its_parameters():
    d = 4
    model = fitted("bpr", sequences_task(), embedding_size=d, max_epochs=2)
    expected = N_USERS * d + N_ITEMS * d + N_ITEMS  # user and item embeddings, item biases
    assert model.report() == ModelReport(trainable_parameters=expected)


def test_ctr_field_models_report_their_parameters():
    d, hidden = 4, [8, 6]
    tokens = 1 + N_USERS + N_ITEMS + GENRES  # padding, then every field's values
    fields = 3  # user_id, item_id, genre
    deepfm = fitted("deepfm", ctr_task(), embedding_size=d, mlp_hidden_size=hidden, max_epochs=2)
    mlp = linear(fields * d, 8) + linear(8, 6) + linear(6, 1)
    assert deepfm.report() == ModelReport(trainable_parameters=tokens + 1 + tokens * d + mlp)
    lr = fitted("lr", ctr_task(), max_epochs=2)
    assert lr.report() == ModelReport(trainable_parameters=tokens + 1)


@pytest.mark.parametrize("name", ["pop", "random", "itemknn"])
def test_models_without_a_network_report_nothing(name):
    assert fitted(name, ctr_task()).report() == ModelReport()


def test_only_trainable_parameters_of_held_modules_count():
    class Holder:
        def __init__(self) -> None:
            self.trained = nn.Linear(3, 2)
            self.frozen = nn.Linear(4, 4).requires_grad_(False)
            self.weights = torch.zeros(100)  # a tensor, not a module

    class Empty:
        pass

    assert trainable_parameters(Holder()) == linear(3, 2)
    assert trainable_parameters(Empty()) is None
