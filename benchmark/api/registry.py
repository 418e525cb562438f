"""Finding submissions: by folder path, by name among the submissions folders, or
through an installed package's entry point (group `llm4rec.submissions`).

A name means one submission: a name found in two folders of the search path, or two
submissions of one command with one name from different folders or files, is an
error naming both paths, never a silent choice. A submission's identity in the run key
is its name and version plus `Submission.digest`, a hash of its files, so a card that
copies another submission's name and version never shares its results."""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import stat
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable

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

    @cached_property
    def digest(self) -> str:
        """sha256 of the submission's files: code, card, declared requirements and
        anything else in its folder (see `submission_files`). Part of the run key, so
        changed code never reuses a stale run."""
        return files_digest(submission_files(self.folder))

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
        if "digest" in self.__dict__:  # the same files: no need to read them again
            clone.__dict__["digest"] = self.digest
        return clone


def check_distinct(submissions: Iterable[Submission]) -> None:
    """One name, one submission in a command: entries that share a name must be the
    same folder with the same files (variants of one card are), else a SpecError names
    both paths."""
    seen: dict[str, Submission] = {}
    for submission in submissions:
        first = seen.setdefault(submission.name, submission)
        if first.folder.resolve() != submission.folder.resolve():
            raise SpecError(f"two submissions are named '{submission.name}': {first.folder} and "
                            f"{submission.folder}; rename one (the `name` of its {CARD_FILE})")
        if first.digest != submission.digest:
            raise SpecError(f"submission '{submission.name}' at {submission.folder} changed while the command "
                            "was starting (its files hash differently); run it again")


# Never part of a submission's identity: caches Python writes on import, and dot-files
# (editor and VCS state, .venv).
def _ignored(name: str) -> bool:
    return name.startswith(".") or name == "__pycache__" or name.endswith(".pyc")


def submission_files(folder: Path) -> list[tuple[str, Path]]:
    """(relative path, path) of every file that makes up the submission at `folder`,
    sorted: its folder, and where it sits in a package folder (whose shared code it
    may import, see `_import_folder_as_package`), that package's files too, but not
    its sibling submissions' folders. Symbolic links are listed, never walked into."""
    folder = folder.resolve()
    root = package_root(folder)
    keep = {folder, *folder.parents}  # the way down from the package root to the submission
    found = []
    for directory, subdirs, files in os.walk(root):  # does not descend into linked folders
        here = Path(directory)
        subdirs[:] = [d for d in subdirs if not _ignored(d) and not _other_submission(here / d, keep)]
        linked_folders = [d for d in subdirs if (here / d).is_symlink()]
        found += [((here / name).relative_to(root).as_posix(), here / name)
                  for name in files + linked_folders if not _ignored(name)]
    return sorted(found)


def package_root(folder: Path) -> Path:
    """The topmost package folder holding `folder` (itself when its parent is no package)."""
    while (folder.parent / "__init__.py").is_file() and folder.parent != folder:
        folder = folder.parent
    return folder


def _other_submission(directory: Path, keep: set[Path]) -> bool:
    return directory not in keep and not directory.is_symlink() and (directory / CARD_FILE).is_file()


def files_digest(files: list[tuple[str, Path]]) -> str:
    """sha256 over (kind, relative path, content hash) of each file, in order. A
    symbolic link counts as its target's text (and, for a link to a regular file, its
    bytes); a FIFO, socket or device counts as its kind only and is never read."""
    digest = hashlib.sha256()
    for relative, path in files:
        kind, content = _file_identity(path)
        digest.update(f"{kind}\0{relative}\0{content}\n".encode())
    return digest.hexdigest()


def _file_identity(path: Path) -> tuple[str, str]:
    try:
        if path.is_symlink():
            return "link", f"{os.readlink(path)}\0{_regular_file_hash(path, follow=True) or ''}"
        content = _regular_file_hash(path, follow=False)
    except OSError as error:
        raise SpecError(f"{path}: cannot read this file of the submission ({error.strerror})") from None
    return ("file", content) if content is not None else ("special", "")


def _regular_file_hash(path: Path, follow: bool) -> str | None:
    """sha256 of a regular file's bytes; None for anything else (checked on the open
    descriptor, which O_NONBLOCK keeps from hanging on a FIFO)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError:
        if follow:  # a dangling link, or one to what we may not read: its text is its identity
            return None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    with os.fdopen(fd, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


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
    point names a module (or package) whose folder holds a submission.yaml; it is
    located, not imported, so listing submissions runs none of their code."""
    found = {}
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found[entry.name] = _entry_point_folder(entry)
    return found


def _entry_point_folder(entry: importlib.metadata.EntryPoint) -> Path:
    where = f"entry point '{entry.name}' (group {ENTRY_POINT_GROUP}, module {entry.module})"
    try:
        spec = importlib.util.find_spec(entry.module)
    except (ImportError, ValueError) as error:
        raise SpecError(f"{where}: cannot be located ({error})") from None
    if spec is None:
        raise SpecError(f"{where}: no such module is installed")
    if spec.origin and spec.origin not in ("namespace", "built-in", "frozen"):
        return Path(spec.origin).resolve().parent
    if spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0]).resolve()
    raise SpecError(f"{where}: not a module with a folder")


def submission_folders() -> dict[str, list[Path]]:
    """name -> every distinct folder holding a submission of that name: the search
    path's folders ($LLM4REC_SUBMISSIONS, else ./submissions and the repo's), then
    entry points. More than one folder for a name is an error on use."""
    found: dict[str, list[Path]] = {}
    for root in search_dirs("LLM4REC_SUBMISSIONS", "submissions"):
        cards = sorted(root.glob(f"*/{CARD_FILE}")) + sorted(root.glob(f"*/*/{CARD_FILE}"))
        for card in cards:
            _add_folder(found, _card_name(card.parent), card.parent)
    for name, folder in entry_point_submissions().items():
        _add_folder(found, name, folder)
    return found


def _add_folder(found: dict[str, list[Path]], name: str, folder: Path) -> None:
    folders = found.setdefault(name, [])
    if folder.resolve() not in folders:  # one folder reached twice (./submissions is the repo's) is one
        folders.append(folder.resolve())


def available_submissions() -> dict[str, Path]:
    """name -> folder for every submission found; a SpecError if a name is found in
    more than one folder."""
    found = submission_folders()
    for name, folders in found.items():
        if len(folders) > 1:
            raise _ambiguous_name(name, folders)
    return {name: folders[0] for name, folders in found.items()}


def _ambiguous_name(name: str, folders: list[Path]) -> SpecError:
    return SpecError(f"submission name '{name}' is found in {len(folders)} folders: "
                     f"{' and '.join(map(str, folders))}; rename one (the `name` of its {CARD_FILE}), "
                     "or pass the folder's path instead of the name")


def _card_name(folder: Path) -> str:
    """The card's name; the folder's when the card is invalid (it is reported on use)."""
    try:
        return load_card(folder).name
    except SpecError:
        return folder.name


def find_submission(ref: str | Path) -> Submission:
    """A submission by folder path or by name, with a did-you-mean error; a name found
    in two folders is an error naming both."""
    path = Path(ref).expanduser()
    if path.is_dir():
        return Submission(path.resolve())
    known = submission_folders()
    folders = known.get(str(ref), [])
    if len(folders) > 1:
        raise _ambiguous_name(str(ref), folders)
    if folders:
        return Submission(folders[0])
    raise unknown_name_error("submission", str(ref), known)
