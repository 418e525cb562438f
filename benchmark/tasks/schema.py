"""The task spec: one YAML file per task, validated by pydantic. Adding a task needs
no code."""
from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from benchmark.eval.metrics import parse_metric


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImplicitSpec(Strict):
    min_rating: float


class FilterSpec(Strict):
    """k-core filtering, applied repeatedly until every user and item qualifies."""

    min_user_interactions: int = Field(default=0, ge=0)
    min_item_interactions: int = Field(default=0, ge=0)


class SyntheticSpec(Strict):
    """A generated dataset for contract checks and tests: users mostly step to the next
    item id, so a sequential model can learn something."""

    n_users: int = Field(ge=3)
    n_items: int = Field(ge=3)
    interactions_per_user: int = Field(ge=3)
    seed: int = 0


class DatasetSpec(Strict):
    name: str
    # A folder of RecBole atomic files; None means a registered dataset (ml-100k).
    path: str | None = None
    synthetic: SyntheticSpec | None = None
    implicit: ImplicitSpec | None = None
    filters: FilterSpec = FilterSpec()


class SplitSpec(Strict):
    method: Literal["leave_one_out"]
    # Users with fewer interactions (after filtering) are used for training only.
    min_user_interactions: int = Field(default=3, ge=3)


class CandidateSpec(Strict):
    mode: Literal["full"] = "full"


class HistorySpec(Strict):
    max_len: int = Field(ge=1)
    exclude_seen: bool


class EvalUsersSpec(Strict):
    sample: int | None = Field(default=None, ge=1)  # None: every eligible user
    seed: int = 0


class TaskSpec(Strict):
    task: str = Field(pattern=r"^[a-z0-9_-]+/[A-Za-z0-9._-]+$")
    family: Literal["sequential"]
    version: int = Field(ge=1)
    description: str = ""
    dataset: DatasetSpec
    split: SplitSpec
    candidates: CandidateSpec = CandidateSpec()
    history: HistorySpec
    eval_users: EvalUsersSpec = EvalUsersSpec()
    metrics: list[str] = Field(min_length=1)
    main_score: str
    seeds: list[int] = Field(min_length=1)
    batch_size: int = Field(default=256, ge=1)  # users per score() call

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, metrics: list[str]) -> list[str]:
        for name in metrics:
            parse_metric(name)
        if len(set(metrics)) != len(metrics):
            raise ValueError("metrics are listed twice")
        return metrics

    @model_validator(mode="after")
    def _consistent(self) -> "TaskSpec":
        if self.main_score not in self.metrics:
            raise ValueError(f"main_score '{self.main_score}' is not one of metrics {self.metrics}")
        if not self.task.startswith(self.family + "/"):
            raise ValueError(f"task id '{self.task}' must start with its family '{self.family}/'")
        if self.dataset.path and self.dataset.synthetic:
            raise ValueError("dataset: give either 'path' or 'synthetic', not both")
        return self

    @property
    def experiment_name(self) -> str:
        return f"{self.task}@v{self.version}"

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(), sort_keys=True).encode()).hexdigest()
