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


def read_with_includes(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A YAML mapping with its `include:` resolved (lm-evaluation-harness style): the
    included file (a path relative to this one; it may include another) gives the
    defaults, this file's fields override them; mappings merge field by field (see
    merge_fields), lists and values are replaced."""
    data = read_yaml_mapping(path)
    include = data.pop("include", None)
    if include is None:
        return data
    if not isinstance(include, str):
        raise SpecError(f"{path}: field 'include': a path to a YAML file, got {include!r}")
    base = (path.parent / include).resolve()
    if base in _seen or base == path.resolve():
        raise SpecError(f"{path}: field 'include': {include} includes itself (through {' -> '.join(map(str, _seen))})")
    if not base.is_file():
        raise SpecError(f"{path}: field 'include': no file {base}")
    return merge_fields(read_with_includes(base, (*_seen, path.resolve())), data)


def merge_fields(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` over `base`, mapping by mapping; a mapping with another `method` (a
    split of another kind) replaces the base's whole, as its fields differ."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) \
                and value.get("method", merged[key].get("method")) == merged[key].get("method"):
            merged[key] = merge_fields(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_spec(model: type[Model], path: Path, overrides: dict[str, Any] | None = None) -> Model:
    data = read_with_includes(path) | (overrides or {})
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise SpecError(describe_validation_error(path, error)) from None
