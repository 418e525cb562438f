"""Request, training-data and context types that cross the harness/submission boundary.

Everything a model receives is read-only, and nothing here can reach a test target:
the harness builds these objects from the training part and the histories only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator, Literal, Sequence

import numpy as np
import pandas as pd

Paradigm = Literal[
    "non-personalized",
    "id-from-scratch",
    "pretrain-finetune",
    "prompt-tuning",
    "instruction-tuning",
    "zero-shot",
    "in-context",
]
PARADIGMS: tuple[str, ...] = Paradigm.__args__  # type: ignore[attr-defined]


def readonly(array: np.ndarray) -> np.ndarray:
    """A read-only view, so a model cannot alter what other models will see."""
    view = array.view()
    view.flags.writeable = False
    return view


@dataclass(frozen=True)
class Catalog:
    """The item catalogue: dense item ids 0..n_items-1 and their attributes."""

    n_items: int
    items: pd.DataFrame  # item_id (dense), original_id, then text fields / attributes

    def titles(self) -> list[str] | None:
        return self.items["title"].astype(str).tolist() if "title" in self.items else None

    def has_title(self) -> np.ndarray:
        """Per item: whether it has a title (not missing, not blank)."""
        if "title" not in self.items:
            return np.zeros(self.n_items, dtype=bool)
        titles = self.items["title"]
        return (titles.notna() & (titles.astype(str).str.strip() != "")).to_numpy()

    def item_texts(self) -> list[str]:
        """Each item as text for text and LLM models: its title with the release year
        when known ("Toy Story (1995)"), else "item <original id>" (also for an item whose
        title is missing: Amazon metadata lacks many)."""
        items = self.items
        ids = items["original_id"] if "original_id" in items else items["item_id"]
        fallback = "item " + ids.astype(str)
        if "title" not in items:
            return fallback.tolist()
        texts = items["title"].astype(str).where(self.has_title(), fallback)
        if "release_year" in items:
            year = items["release_year"].astype(str).str.strip()
            known = ~year.isin(["", "nan", "None", "<NA>", "0"])
            texts = texts.where(~known, texts + " (" + year + ")")
        return texts.tolist()


@dataclass(frozen=True)
class ScoreRequest:
    """Score every candidate of every user in a batch.

    `histories[i]` holds user i's items, oldest first, truncated to the task's
    `history.max_len`. `candidates` is None for full ranking over the catalogue (score
    all `catalog.n_items` items, column j = item j), else an int array
    [n_users, n_candidates] of item ids.
    """

    users: np.ndarray
    histories: list[np.ndarray]
    candidates: np.ndarray | None
    catalog: Catalog
    # Zero-shot tasks: the task's Jinja prompt template (variables `history` and
    # `candidates`: lists of item texts, candidates in column order). LLM submissions
    # render it; others ignore it.
    prompt_template: str | None = None

    @property
    def n_candidates(self) -> int:
        return self.catalog.n_items if self.candidates is None else self.candidates.shape[1]


# What recommend() returns for one user: a ranked list of item ids (best first), or
# free text naming items (a generative model's output, which the harness maps to the
# catalogue and checks).
Recommendation = Sequence[int] | str


@dataclass(frozen=True)
class CompletionRequest:
    """Continue text: for each prompt the model's greedy continuation (the text after
    the prompt, at most `max_new_tokens` tokens), one string per prompt. The harness
    asks this of models that implement `complete()` (its memorization probes, with
    `MovieID::Title`-style lines), and cuts each answer to MAX_CHARS characters. A
    model may end a continuation once it has written one of `stop` (the probes read
    the first line only)."""

    prompts: list[str]
    max_new_tokens: int
    stop: list[str] = field(default_factory=list)

    MAX_CHARS: ClassVar[int] = 4000


@dataclass(frozen=True)
class PredictRequest:
    """CTR: predict the click probability of each (user, item) row. `features` holds
    `user_id`, `item_id` and the task's feature fields (`feature_fields`), one row per
    prediction."""

    features: pd.DataFrame
    feature_fields: list[str]
    catalog: Catalog

    @property
    def users(self) -> np.ndarray:
        return self.features["user_id"].to_numpy()

    @property
    def items(self) -> np.ndarray:
        return self.features["item_id"].to_numpy()


@dataclass(frozen=True)
class ValidationSet:
    """Held-out interactions for model selection: user i's history, then its target
    (one item id per user on the sequential track, an array of item ids on top-K)."""

    users: np.ndarray
    histories: list[np.ndarray]
    targets: np.ndarray | list[np.ndarray]


@dataclass(frozen=True)
class TrainData:
    """The training part of a task.

    `interactions` holds (user_id, item_id, timestamp[, rating], row) sorted by user,
    then time, then original row order; it ends before each user's validation part.
    CTR tasks add `label` and the task's feature fields (`feature_fields`).
    """

    interactions: pd.DataFrame
    n_users: int
    catalog: Catalog
    validation: ValidationSet | None = None
    users: pd.DataFrame | None = None  # user_id, original_id, attributes
    feature_fields: list[str] = field(default_factory=list)

    @property
    def n_items(self) -> int:
        return self.catalog.n_items

    def sequences(self) -> list[np.ndarray]:
        """Each user's training items, oldest first (index = user id)."""
        users = self.interactions["user_id"].to_numpy()
        items = self.interactions["item_id"].to_numpy()
        bounds = np.searchsorted(users, np.arange(self.n_users + 1))
        return [readonly(items[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


@dataclass(frozen=True)
class ModelReport:
    """What a model tells the harness besides its outputs, returned by
    `Recommender.report()` after fit and the test pass (and carried over the worker
    protocol as JSON). Every field is optional: None means "not reported". The harness
    measures time, memory and output validity itself; none of that is reported here.

    - trainable_parameters / total_parameters: parameter counts (cost columns);
    - tokens: prompt and generated/scored tokens the model processed;
    - train_samples: training examples seen (the budget of a few-shot study);
    - llm: identity tags of a language model, each key `llm.<field>` (llm.model,
      llm.weights_sha256, llm.quantization, llm.dtype, llm.decoding, llm.prompt_hash).
    """

    trainable_parameters: int | None = None
    total_parameters: int | None = None
    tokens: int | None = None
    train_samples: int | None = None
    llm: dict[str, str] = field(default_factory=dict)

    COUNTS: ClassVar[tuple[str, ...]] = ("trainable_parameters", "total_parameters", "tokens", "train_samples")

    def __post_init__(self) -> None:
        for name in self.COUNTS:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                      or value < 0):
                raise TypeError(f"ModelReport.{name}: expected a count (int >= 0) or None, got {value!r}")
        if not isinstance(self.llm, dict) or not all(
                isinstance(k, str) and k.startswith("llm.") and isinstance(v, str) for k, v in self.llm.items()):
            raise TypeError("ModelReport.llm: expected {'llm.<field>': text, ...}")

    def costs(self) -> dict[str, float]:
        """The reported counts as the run's cost metrics (`cost.tokens`, ...)."""
        return {f"cost.{name}": float(getattr(self, name)) for name in self.COUNTS if getattr(self, name) is not None}

    def to_json(self) -> dict[str, Any]:
        return {name: (None if getattr(self, name) is None else int(getattr(self, name))) for name in self.COUNTS} | {
            "llm": dict(self.llm)}

    @classmethod
    def from_json(cls, data: Any) -> "ModelReport":
        """A report sent by a worker; anything but the documented fields is an error."""
        if not isinstance(data, dict) or set(data) - {*cls.COUNTS, "llm"}:
            raise TypeError(f"a model report must be an object with fields {', '.join((*cls.COUNTS, 'llm'))}")
        return cls(**data)


@dataclass
class FitContext:
    """What the harness offers a model while it trains."""

    seed: int
    device: str = "cpu"
    # evaluate_validation(fn) -> the task's main score on the validation part, computed
    # by the harness; fn is the model's score (ranking tasks) or predict (CTR).
    evaluate_validation: Callable[[Callable], float] | None = None
    # progress(iterable, description="epochs", total=n) wraps a loop in a progress bar.
    progress: Callable[..., Iterator] = field(default=lambda iterable, **_: iter(iterable))
    # log_metric(name, value, step) records a training curve point with the run, stored
    # under the harness's prefix `train/` ("loss" -> "train/loss"), so that it can never
    # overwrite a task metric or a cost.
    log_metric: Callable[[str, float, int], None] = field(default=lambda *_: None)
