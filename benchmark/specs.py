"""Reading YAML specs (task files, submission cards) into pydantic models, with errors
that name the file and the field."""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Iterable, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class SpecError(ValueError):
    """A spec file that cannot be used; the message names the file and the field."""


def did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def unknown_name_error(kind: str, name: str, known: Iterable[str]) -> SpecError:
    known = sorted(known)
    return SpecError(
        f"unknown {kind} '{name}'.{did_you_mean(name, known)} Known: {', '.join(known) or '(none)'}"
    )


def describe_validation_error(source: Path | str, error: ValidationError) -> str:
    lines = [f"{source}: invalid"]
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"  field '{where}': {item['msg']}")
    return "\n".join(lines)


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise SpecError(f"{path}: not valid YAML: {error}") from None
    except (OSError, UnicodeDecodeError) as error:  # a folder, no permission, not text
        raise SpecError(f"{path}: cannot be read: {error}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping of fields at the top level")
    return data


def load_spec(model: type[Model], path: Path, overrides: dict[str, Any] | None = None) -> Model:
    data = read_yaml_mapping(path) | (overrides or {})
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise SpecError(describe_validation_error(path, error)) from None
