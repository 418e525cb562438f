"""Shared machinery for ID-based next-item models (the `sasrec` and `gru4rec`
submissions; any submission may import it from benchmark.kits.nextitem).

A model subclasses `NextItemModel` and builds a `SequenceNetwork`: a module that maps
padded item sequences [B, L] to hidden states [B, L, d] without looking ahead (state t
sees items 0..t only). The score of item j after position t is the dot product of
hidden state t with item j's embedding, shared with the input. `NextItemModel` does
the rest, the same for every such network:

- training data: each user's training sequence cut into windows of `max_len` inputs
  that end at the sequence's end and every `window_stride` items before it, so long
  histories are not thrown away; every position predicts its next item, and where
  windows overlap (stride below max_len) each transition counts once per epoch, in
  the window where it has the longest context;
- loss: full softmax cross-entropy over the catalogue (`loss: ce`, Klenitskiy &
  Vasilev 2023), or binary cross-entropy against one uniformly sampled negative per
  position (`loss: bce`, as in the SASRec paper);
- Adam; after every epoch the harness's validation main score (ctx.evaluate_validation),
  early stopping after `patience` epochs without improvement, the best epoch's weights
  kept (benchmark.kits.training);
- scoring: the hidden state after the last history item against every item (or the
  request's candidates), in batches, in eval mode; with `exclude_history` the items
  already in the given history are ranked last ("auto": when fewer than 1% of the
  training interactions repeat an item the user had before, as in MovieLens).

Item ids inside the network are shifted by one: 0 is padding, item j is j + 1.
Sequences are left-padded, so the last position always holds the newest item.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from benchmark.api.recommender import Recommender
from benchmark.api.types import FitContext, ScoreRequest, TrainData
from benchmark.kits.report import ReportsParameters
from benchmark.kits.threads import torch_threads
from benchmark.kits.training import train_with_early_stopping

PADDING = 0


class SequenceNetwork(nn.Module):
    """Base for the networks of next-item models: `forward(seqs)` maps item sequences
    [B, L] (0 = padding, item j as j + 1, left-padded) to hidden states [B, L, d]
    where state t depends on items 0..t only. Subclasses create
    `self.item_embedding = nn.Embedding(n_items + 1, d, padding_idx=0)`, whose rows
    1..n_items are also the output embeddings."""

    item_embedding: nn.Embedding

    def item_weights(self) -> torch.Tensor:
        """The output embeddings of items 0..n_items-1: [n_items, d]."""
        return self.item_embedding.weight[1:]


class Dropout(nn.Module):
    """Inverted dropout whose keep-mask comes from random bytes: one 64-bit draw covers
    8 elements, several times cheaper on CPU than the bernoulli_ behind nn.Dropout.
    The rate is rounded to a multiple of 1/256 (0.2 -> 51/256); the rescaling is exact
    for the rounded rate. Draws from torch's global generator."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {p}")
        self.threshold = round(p * 256)
        self.scale = 256.0 / (256 - self.threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        n = x.numel()
        draws = torch.randint(-2**63, 2**63 - 1, ((n + 7) // 8,), dtype=torch.int64)
        keep = (draws.view(torch.uint8)[:n].view(x.shape) >= self.threshold).to(x.dtype).mul_(self.scale)
        return x * keep

    def extra_repr(self) -> str:
        return f"p={self.threshold}/256"


class _FullSoftmaxCrossEntropy(torch.autograd.Function):
    """mean_i CE(hidden_i @ weight.T, target_i), with the [N, n_items] logits, softmax
    and gradient computed in place in a caller-owned buffer: fresh buffers that large
    are slow to allocate (page faults) on every step."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, buffer):
        probs = buffer[: hidden.shape[0]]
        torch.matmul(hidden, weight.t(), out=probs)
        target_logit = probs.gather(1, targets.unsqueeze(1)).squeeze(1)
        top = probs.amax(dim=1, keepdim=True)
        probs.sub_(top).exp_()
        total = probs.sum(dim=1, keepdim=True)
        probs.div_(total)
        ctx.save_for_backward(hidden, weight, targets)
        ctx.probs = probs
        return (top.squeeze(1) + total.squeeze(1).log() - target_logit).mean()

    @staticmethod
    def backward(ctx, grad):
        hidden, weight, targets = ctx.saved_tensors
        probs = ctx.probs
        del ctx.probs
        probs[torch.arange(probs.shape[0]), targets] -= 1.0
        probs.mul_(grad / probs.shape[0])
        return probs @ weight, probs.t() @ hidden, None, None


def full_softmax_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                               buffer: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy of `hidden` [N, d] scored against every row of `weight`
    [n_items, d], targets [N] in 0..n_items-1. `buffer` (at least [N, n_items], float)
    holds the logits; it is overwritten."""
    if buffer is None or buffer.shape[0] < hidden.shape[0] or buffer.shape[1] != weight.shape[0]:
        buffer = torch.empty(hidden.shape[0], weight.shape[0], dtype=hidden.dtype)
    return _FullSoftmaxCrossEntropy.apply(hidden, weight, targets, buffer)


def sampled_binary_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                                 generator: torch.Generator) -> torch.Tensor:
    """The next item against one uniformly drawn other item, binary cross-entropy."""
    negatives = torch.randint(0, weight.shape[0] - 1, targets.shape, generator=generator)
    negatives += (negatives >= targets).long()  # never the positive itself
    positive = (hidden * weight[targets]).sum(-1)
    negative = (hidden * weight[negatives]).sum(-1)
    return nn.functional.softplus(-positive).mean() + nn.functional.softplus(negative).mean()


def sliding_windows(sequences: list[np.ndarray], length: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Training windows and the first target column each one counts.

    windows: int64 [n_windows, length + 1] of shifted ids (item + 1; 0 = padding,
    left-padded) that end at each sequence's end and every `stride` items before it,
    until one starts at the sequence's beginning (sequences shorter than 2 give none).
    Inputs are columns 0..length-1, targets columns 1..length.
    first_target: int64 [n_windows]. Where windows overlap (stride < length), a target
    counts only in the window where it has the longest context: the last `stride`
    targets of a window count, and every target of a window that starts at the
    sequence's beginning. So each transition is trained on exactly once per epoch."""
    if length < 1 or stride < 1:
        raise ValueError(f"window length and stride must be >= 1, got {length} and {stride}")
    spans = []
    for index, seq in enumerate(sequences):
        for end in range(len(seq), 1, -stride):
            start = max(0, end - length - 1)
            spans.append((index, start, end))
            if start == 0:
                break
    windows = np.zeros((len(spans), length + 1), dtype=np.int64)
    first_target = np.full(len(spans), max(0, length - stride), dtype=np.int64)
    for row, (index, start, end) in enumerate(spans):
        windows[row, length + 1 - (end - start):] = sequences[index][start:end] + 1
        if start == 0:
            first_target[row] = 0
    return windows, first_target


def repeat_share(sequences: list[np.ndarray]) -> float:
    """Share of interactions whose item the same user had before."""
    total = sum(len(seq) for seq in sequences)
    repeats = sum(len(seq) - len(np.unique(seq)) for seq in sequences)
    return repeats / total if total else 0.0


class NextItemModel(ReportsParameters, Recommender):
    """A next-item model: subclasses set `defaults` (their architecture's
    hyperparameters added to the training ones below) and implement `build_network`.
    Every hyperparameter becomes an attribute of the same name. report() counts the
    network's trainable parameters."""

    defaults: ClassVar[dict[str, Any]] = {
        "max_len": 50,          # inputs per window and per scored history
        "loss": "ce",           # ce: full softmax cross-entropy; bce: one sampled negative
        "lr": 0.005,            # Adam
        "weight_decay": 0.0,
        "batch_size": 256,      # windows per step
        "epochs": 40,           # at most
        "patience": 8,          # epochs without a better validation score before stopping
        "window_stride": 25,    # items between the ends of a sequence's training windows
        "exclude_history": "auto",  # rank items of the given history last: true, false, auto
        "score_batch": 512,     # users per forward pass when scoring
        "threads": 0,           # torch intra-op threads while fitting and scoring (0: as set)
    }

    def __init__(self, **hyperparameters: Any) -> None:
        unknown = sorted(set(hyperparameters) - set(self.defaults))
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown hyperparameters {unknown} "
                            f"(known: {sorted(self.defaults)})")
        values = self.defaults | hyperparameters
        super().__init__(**values)
        for name, value in values.items():
            setattr(self, name, value)
        if self.loss not in ("ce", "bce"):
            raise ValueError(f"{type(self).__name__}: loss must be 'ce' or 'bce', got {self.loss!r}")
        if self.exclude_history not in ("auto", True, False):
            raise ValueError(f"{type(self).__name__}: exclude_history must be true, false or 'auto', "
                             f"got {self.exclude_history!r}")
        self.network: SequenceNetwork | None = None
        self.mask_history = bool(self.exclude_history) if self.exclude_history != "auto" else None

    def build_network(self, n_items: int) -> SequenceNetwork:
        raise NotImplementedError(f"{type(self).__name__} does not implement build_network()")

    # --- training ---------------------------------------------------------------
    def fit(self, train: TrainData, ctx: FitContext) -> None:
        # Own generator state for the whole fit (initialisation, dropout, negatives),
        # seeded by the run's seed; the caller's global generator is left as it was.
        with torch_threads(self.threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(ctx.seed)
            self._fit(train, ctx)

    def _fit(self, train: TrainData, ctx: FitContext) -> None:
        sequences = train.sequences()
        if self.exclude_history == "auto":
            self.mask_history = repeat_share(sequences) < 0.01
        self.network = network = self.build_network(train.n_items)
        windows, first_target = map(torch.from_numpy, sliding_windows(sequences, self.max_len,
                                                                         self.window_stride))
        columns = torch.arange(self.max_len)
        optimizer = torch.optim.Adam(network.parameters(), lr=self.lr, betas=(0.9, 0.98),
                                     weight_decay=self.weight_decay)
        order_rng = np.random.default_rng(ctx.seed)
        negatives = torch.Generator().manual_seed(ctx.seed)
        buffer = torch.empty(self.batch_size * self.max_len, train.n_items) if self.loss == "ce" else None

        def train_epoch(epoch: int) -> float:
            order = torch.from_numpy(order_rng.permutation(len(windows)))
            total, count = 0.0, 0
            for start in range(0, len(order), self.batch_size):
                rows = order[start:start + self.batch_size]
                batch = windows[rows]
                inputs, targets = batch[:, :-1], batch[:, 1:]
                # A padded input has no context to predict from; overlapping targets
                # count once (see sliding_windows).
                counted = (inputs != PADDING) & (columns >= first_target[rows].unsqueeze(1))
                hidden, targets = network(inputs)[counted], targets[counted] - 1
                if self.loss == "ce":
                    loss = full_softmax_cross_entropy(hidden, network.item_weights(), targets, buffer)
                else:
                    loss = sampled_binary_cross_entropy(hidden, network.item_weights(), targets, negatives)
                optimizer.zero_grad(set_to_none=False)
                loss.backward()
                optimizer.step()
                total += loss.item() * len(targets)
                count += len(targets)
            return total / max(count, 1)

        train_with_early_stopping(network, train_epoch, ctx, self.score, range(self.epochs), self.patience)

    # --- scoring ----------------------------------------------------------------
    def padded(self, histories: list[np.ndarray]) -> torch.Tensor:
        """The last max_len items of each history as a left-padded [B, L] id tensor."""
        length = max(1, min(self.max_len, max((len(h) for h in histories), default=1)))
        seqs = np.zeros((len(histories), length), dtype=np.int64)
        for row, history in enumerate(histories):
            tail = np.asarray(history[len(history) - length:] if len(history) > length else history,
                              dtype=np.int64)
            if len(tail):
                seqs[row, length - len(tail):] = tail + 1
        return torch.from_numpy(seqs)

    def score(self, request: ScoreRequest) -> np.ndarray:
        if self.network is None:
            raise RuntimeError(f"{type(self).__name__}.score() called before fit()")
        network = self.network
        was_training = network.training
        network.eval()
        out = np.empty((len(request.users), request.n_candidates), dtype=np.float32)
        try:
            with torch_threads(self.threads), torch.inference_mode():
                weight = network.item_weights()
                for start in range(0, len(request.users), self.score_batch):
                    stop = start + self.score_batch
                    last = network(self.padded(request.histories[start:stop]))[:, -1]
                    if request.candidates is None:
                        torch.matmul(last, weight.t(), out=torch.from_numpy(out[start:stop]))
                    else:
                        candidates = torch.from_numpy(np.asarray(request.candidates[start:stop], dtype=np.int64))
                        out[start:stop] = torch.einsum("bd,bcd->bc", last, weight[candidates]).numpy()
        finally:
            network.train(was_training)
        if self.mask_history:
            self._rank_history_last(out, request)
        return out

    @staticmethod
    def _rank_history_last(out: np.ndarray, request: ScoreRequest) -> None:
        """Give the items of each history a score below all others (finite, tied)."""
        rows, cols = [], []
        for row, history in enumerate(request.histories):
            if len(history) == 0:
                continue
            if request.candidates is None:
                hit = np.asarray(history, dtype=np.int64)
            else:
                hit = np.flatnonzero(np.isin(request.candidates[row], history))
            rows.append(np.full(len(hit), row))
            cols.append(hit)
        if rows:
            rows, cols = np.concatenate(rows), np.concatenate(cols)
            floor = out.min(axis=1)
            floor -= np.maximum(1.0, np.abs(floor) * 1e-3)
            out[rows, cols] = floor[rows]
