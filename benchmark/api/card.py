"""The submission card (`submission.yaml`), validated by pydantic."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from benchmark.api.types import Paradigm
from benchmark.specs import SpecError, load_spec

CARD_FILE = "submission.yaml"


class CardLimits(BaseModel):
    """A card may lower the task's limits (never raise them: the effective limit is the
    minimum of the two); fields as in the task's `limits:` block."""

    model_config = ConfigDict(extra="forbid")

    fit_seconds: float | None = Field(default=None, gt=0)
    call_seconds: float | None = Field(default=None, gt=0)
    memory_mb: int | None = Field(default=None, ge=64)
    processes: int | None = Field(default=None, ge=1)


class CardResources(BaseModel):
    """What one run of the submission needs from a cluster node (`--executor ray`
    schedules each cell with it); the sandbox's limits are the task's `limits:`."""

    model_config = ConfigDict(extra="forbid")

    cpus: float = Field(default=1, gt=0)
    gpus: float = Field(default=0, ge=0)
    memory_gb: float | None = Field(default=None, gt=0)


class SubmissionCard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    version: str
    paradigm: Paradigm
    authors: list[str] = Field(min_length=1)
    description: str
    license: str
    entrypoint: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    code_url: str | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    training_data: str = "the task's training part"
    # pip requirement lines: the submission then runs in its own cached virtualenv, in
    # a subprocess (for packages that cannot share the harness's environment).
    requirements: list[str] = Field(default_factory=list)
    # Offline assets (benchmark.data.assets, e.g. smollm2, minilm) the model loads: the
    # only ones mounted (read-only) in its sandbox.
    assets: list[str] = Field(default_factory=list)
    limits: CardLimits = Field(default_factory=CardLimits)
    resources: CardResources = Field(default_factory=CardResources)

    @field_validator("assets")
    @classmethod
    def _asset_names(cls, assets: list[str]) -> list[str]:
        for name in assets:
            if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name):
                raise ValueError(f"asset name {name!r}: expected a name such as 'smollm2'")
        return list(dict.fromkeys(assets))

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, (int, float)) else value


def load_card(folder: Path) -> SubmissionCard:
    path = folder / CARD_FILE
    if not path.is_file():
        raise SpecError(f"{folder}: no {CARD_FILE} (a submission is a folder with a card and code)")
    return load_spec(SubmissionCard, path)
