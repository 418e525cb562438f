"""The submission card (`submission.yaml`), validated by pydantic."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from benchmark.api.types import Paradigm
from benchmark.specs import SpecError, load_spec

CARD_FILE = "submission.yaml"


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

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, (int, float)) else value


def load_card(folder: Path) -> SubmissionCard:
    path = folder / CARD_FILE
    if not path.is_file():
        raise SpecError(f"{folder}: no {CARD_FILE} (a submission is a folder with a card and code)")
    return load_spec(SubmissionCard, path)
