"""Finding submissions: by folder path, by name among the submissions folders, or
through an installed package's entry point (group `llm4rec.submissions`)."""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmark.api.card import CARD_FILE, SubmissionCard, load_card
from benchmark.api.recommender import Recommender
from benchmark.paths import search_dirs
from benchmark.specs import SpecError, unknown_name_error

ENTRY_POINT_GROUP = "llm4rec.submissions"


@dataclass(frozen=True)
class Submission:
    """A submission folder: its card and the code the card's entrypoint names."""

    folder: Path

    @cached_property
    def card(self) -> SubmissionCard:
        return load_card(self.folder)

    @property
    def name(self) -> str:
        return self.card.name

    def model_class(self) -> type[Recommender]:
        module_name, class_name = self.card.entrypoint.split(":")
        package = _import_folder_as_package(self.folder)
        try:
            module = importlib.import_module(f"{package.__name__}.{module_name}")
        except ModuleNotFoundError as error:
            raise SpecError(
                f"{self.folder / CARD_FILE}: field 'entrypoint': cannot import module "
                f"'{module_name}' from {self.folder} ({error})"
            ) from None
        cls = getattr(module, class_name, None)
        if not (isinstance(cls, type) and issubclass(cls, Recommender)):
            raise SpecError(
                f"{self.folder / CARD_FILE}: field 'entrypoint': '{class_name}' in "
                f"{module_name} is not a subclass of benchmark.api.Recommender"
            )
        return cls

    def build(self, **overrides: Any) -> Recommender:
        return self.model_class()(**(self.card.hyperparameters | overrides))

    def variant(self, suffix: str | None = None, **hyperparameters: Any) -> "Submission":
        """The same code with some hyperparameters changed. With a suffix it is its own
        submission, `<name>-<suffix>` (e.g. a training budget of a study), so results
        never mix it with the card's defaults; without one it keeps the name (the run
        key still tells the runs apart)."""
        card = self.card
        update = {"hyperparameters": card.hyperparameters | hyperparameters}
        if suffix:
            update["name"] = f"{card.name}-{suffix}"
        clone = Submission(self.folder)
        clone.__dict__["card"] = card.model_copy(update=update)  # the cached_property's slot
        return clone


def _import_folder_as_package(folder: Path) -> ModuleType:
    """Import a submission folder as a uniquely named package, so that every
    submission may have its own `model.py` and use relative imports. A folder inside a
    package folder (one with __init__.py, e.g. submissions/recbole/) becomes its
    subpackage, so variants can share code with relative imports."""
    folder = folder.resolve()
    if (folder.parent / "__init__.py").is_file():
        parent = _import_folder_as_package(folder.parent)
        return _import_package(f"{parent.__name__}.{_identifier(folder.name)}", folder)
    digest = hashlib.sha1(str(folder).encode()).hexdigest()[:12]
    return _import_package(f"llm4rec_submission_{digest}", folder)


def _identifier(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def _import_package(name: str, folder: Path) -> ModuleType:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )
        package = importlib.util.module_from_spec(spec)
        sys.modules[name] = package
        if (folder / "__init__.py").is_file():
            spec.loader.exec_module(package)
    return sys.modules[name]


def entry_point_submissions() -> dict[str, Path]:
    """name -> folder for installed packages that declare a submission. The entry
    point names a module (or package) whose folder holds a submission.yaml."""
    found = {}
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        module = importlib.import_module(entry.module)
        found[entry.name] = Path(module.__file__).resolve().parent
    return found


def available_submissions() -> dict[str, Path]:
    """name -> folder for every submission found; folders first, then entry points."""
    found: dict[str, Path] = {}
    for root in search_dirs("LLM4REC_SUBMISSIONS", "submissions"):
        cards = sorted(root.glob(f"*/{CARD_FILE}")) + sorted(root.glob(f"*/*/{CARD_FILE}"))
        for card in cards:
            found.setdefault(_card_name(card.parent), card.parent)
    for name, folder in entry_point_submissions().items():
        found.setdefault(name, folder)
    return found


def _card_name(folder: Path) -> str:
    """The card's name; the folder's when the card is invalid (it is reported on use)."""
    try:
        return load_card(folder).name
    except SpecError:
        return folder.name


def find_submission(ref: str | Path) -> Submission:
    """A submission by folder path or by name, with a did-you-mean error."""
    path = Path(ref).expanduser()
    if path.is_dir():
        return Submission(path.resolve())
    known = available_submissions()
    if str(ref) in known:
        return Submission(known[str(ref)])
    raise unknown_name_error("submission", str(ref), known)
