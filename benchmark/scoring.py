"""Calling a model on one part of a task (validation or test) and evaluating what it
returns: requests in batches, every response checked against the adapter contract,
metrics accumulated chunk by chunk. Ground truth stays on this side."""
from __future__ import annotations

from typing import Callable, Protocol

import numpy as np
import pandas as pd

from benchmark.api import CompletionRequest, PredictRequest, ScoreRequest, TrainData
from benchmark.data.views import EvalSet, LabelledRows
from benchmark.eval.candidates import target_columns
from benchmark.progress import track
from benchmark.tasks.schema import TaskSpec


class ContractViolation(RuntimeError):
    """A submission's output broke a rule of the adapter contract."""


class Evaluation(Protocol):
    def summary(self) -> dict[str, float]: ...

    def per_user(self) -> pd.DataFrame: ...


def evaluate_part(model_call: Callable, part: EvalSet | LabelledRows, task: TaskSpec, train: TrainData,
                  name: str, label: str, show_progress: bool = False) -> Evaluation:
    """Run `model_call` (the model's score or predict) over a task part; return its metrics."""
    from benchmark.families import family

    return family(task.family).evaluate_part(model_call, part, task, train, name, label, show_progress)


def _batches(iterable, count: int, size: int, description: str, show_progress: bool):
    return track(iterable, description, -(-count // size)) if show_progress else iterable


def score_users(score: Callable, evaluator, part: EvalSet, task: TaskSpec, train: TrainData, name: str,
                label: str, show_progress: bool) -> Evaluation:
    """Score a ranking part batch by batch into `evaluator` (the family's)."""
    batches = _batches(part.batches(task.batch_size), len(part), task.batch_size,
                       f"{name} scoring {label}", show_progress)
    for index, (users, histories, targets, candidates) in enumerate(batches):
        scores = score_batch(score, task, train, users, histories, candidates,
                             f"submission '{name}': score() on {label} batch {index}")
        if candidates is not None:  # the metrics rank the target's column among the candidates
            targets = target_columns(candidates, targets)
        exclude = histories if task.history.exclude_seen else None
        evaluator.add(users, scores, targets, exclude=exclude)
        observe = getattr(score, "observe", None)  # the test pass's recorder (benchmark.trust.recording)
        if observe is not None:
            observe(users, scores, candidates, targets, exclude)
    return evaluator


def score_batch(score: Callable, task: TaskSpec, train: TrainData, users: np.ndarray,
                histories: list[np.ndarray], candidates: np.ndarray | None, where: str) -> np.ndarray:
    """One checked score() call: histories cut to the task's length, the task's prompt."""
    keep = task.history.max_len
    request = ScoreRequest(users=users, histories=[h[-keep:] if keep else h for h in histories],
                           candidates=candidates, catalog=train.catalog, prompt_template=task.prompt)
    scores = score(request)
    check_scores(scores, request, where)
    return scores


def predict_rows(predict: Callable, part: LabelledRows, task: TaskSpec, train: TrainData, name: str,
                 label: str, show_progress: bool) -> Evaluation:
    """Predict a CTR part batch by batch; its metrics."""
    size = task.batch_size
    starts = _batches(range(0, len(part), size), len(part), size, f"{name} predicting {label}", show_progress)
    predictions = np.empty(len(part), dtype=np.float64)
    for index, start in enumerate(starts):
        rows = part.features.iloc[start:start + size].reset_index(drop=True)
        request = PredictRequest(rows, train.feature_fields, train.catalog)
        output = predict(request)
        check_predictions(output, request, f"submission '{name}': predict() on {label} batch {index}")
        predictions[start:start + size] = output
    from benchmark.eval.ctr import CTREvaluator

    evaluator = CTREvaluator(task.metrics)
    evaluator.add(part.features["user_id"].to_numpy(), part.labels, predictions)
    return evaluator


def _check_array(output: object, expected: tuple[int, ...], where: str) -> np.ndarray:
    if not isinstance(output, np.ndarray):
        raise ContractViolation(f"{where}: rule 'type': expected a numpy array, got {type(output).__name__}")
    if not np.issubdtype(output.dtype, np.floating):
        raise ContractViolation(f"{where}: rule 'dtype': expected a float array, got {output.dtype}")
    if output.shape != expected:
        raise ContractViolation(f"{where}: rule 'shape': expected {expected}, got {output.shape}")
    return output


def check_scores(scores: object, request: ScoreRequest, where: str) -> None:
    """The adapter contract for score(): a finite float array [n_users, n_candidates]."""
    scores = _check_array(scores, (len(request.users), request.n_candidates), where)
    finite = np.isfinite(scores)
    if not finite.all():
        row = int(np.flatnonzero(~finite.all(axis=1))[0])
        raise ContractViolation(
            f"{where}: rule 'finite': {int((~finite).sum())} NaN/inf scores (first for user "
            f"{int(request.users[row])})")


def check_completions(completions: object, request: CompletionRequest, where: str) -> list[str]:
    """The adapter contract for complete(): a list (or tuple) of str, one per prompt.
    Returns the texts, each cut to CompletionRequest.MAX_CHARS characters."""
    if not isinstance(completions, (list, tuple)):
        raise ContractViolation(f"{where}: rule 'type': expected a list with one text per prompt, "
                                f"got {type(completions).__name__}")
    if len(completions) != len(request.prompts):
        raise ContractViolation(f"{where}: rule 'length': expected {len(request.prompts)} completions "
                                f"(one per prompt), got {len(completions)}")
    for index, text in enumerate(completions):
        if not isinstance(text, str):
            raise ContractViolation(f"{where}: rule 'text': completion {index} is a {type(text).__name__}, "
                                    "not a str")
    return [str(text[:CompletionRequest.MAX_CHARS]) for text in completions]


def check_predictions(predictions: object, request: PredictRequest, where: str) -> None:
    """The adapter contract for predict(): probabilities in [0, 1], one per row."""
    predictions = _check_array(predictions, (len(request.features),), where)
    bad = ~((predictions >= 0) & (predictions <= 1))  # NaN fails both comparisons
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ContractViolation(
            f"{where}: rule 'probability': {int(bad.sum())} predictions are NaN or outside [0, 1] "
            f"(first: {predictions[row]!r} for user {int(request.users[row])}, item {int(request.items[row])})")
