"""Run identity: a submission is its name, version and the hash of its files. A card
that copies another submission's name never passes for it, and a name found twice is
an error naming both folders, never a silent choice."""
from __future__ import annotations

import os
import shutil
import sys

import pytest
import yaml

from benchmark.api import available_submissions, find_submission
from benchmark.api.registry import check_distinct, submission_files, submission_folders
from benchmark.specs import SpecError
from conftest import REPO, shipped

MINIMAL = """
from benchmark.api import Recommender
class Model(Recommender):
    pass
"""


def card(name: str, **changes) -> str:
    return yaml.safe_dump({"name": name, "version": "1", "paradigm": "id-from-scratch", "authors": ["t"],
                           "description": "test", "license": "MIT", "entrypoint": "model:Model"} | changes)


def test_a_card_copying_pops_name_and_version_has_its_own_digest(tmp_path):
    impostor = tmp_path / "pop"
    shutil.copytree(shipped("pop"), impostor)
    (impostor / "model.py").write_text((impostor / "model.py").read_text() + "\n# a different model\n")
    real, fake = find_submission(shipped("pop")), find_submission(impostor)
    assert (fake.card.name, fake.card.version) == (real.card.name, real.card.version)
    assert fake.digest != real.digest
    same_bytes = tmp_path / "copy" / "pop"
    shutil.copytree(shipped("pop"), same_bytes)
    assert find_submission(same_bytes).digest == real.digest  # the identity is the files, not the folder


def test_the_digest_covers_code_card_and_requirements_but_not_caches(make_submission):
    folder = make_submission("ident", MINIMAL)
    def digest() -> str:  # a fresh Submission each time: nothing cached
        return find_submission(folder).digest

    before = digest()
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"\x00compiled")
    (folder / "stale.pyc").write_bytes(b"\x00")
    (folder / ".DS_Store").write_bytes(b"editor state")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    assert digest() == before
    changes = [
        lambda: (folder / "model.py").write_text(MINIMAL + "\nEPOCHS = 2\n"),
        lambda: (folder / "submission.yaml").write_text(card("ident", requirements=["numpy<2"])),
        lambda: (folder / "helpers.py").write_text("X = 1\n"),
        lambda: (folder / "helpers.py").rename(folder / "helpers2.py"),
        lambda: (folder / "data").mkdir() or (folder / "data" / "weights.bin").write_bytes(b"\x01\x02"),
    ]
    seen = {before}
    for change in changes:
        change()
        seen.add(digest())
    assert len(seen) == len(changes) + 1  # every change gave a new digest


def test_variants_in_a_package_hash_the_shared_code_but_not_their_siblings(tmp_path):
    group = tmp_path / "family"
    for variant in ("small", "large"):
        (group / variant).mkdir(parents=True)
        (group / variant / "__init__.py").write_text("")
        (group / variant / "model.py").write_text("from ..shared import Model\n")
        (group / variant / "submission.yaml").write_text(card(f"family-{variant}"))
    (group / "__init__.py").write_text("")
    (group / "shared.py").write_text(MINIMAL)

    def small() -> str:
        return find_submission(group / "small").digest

    assert [relative for relative, _ in submission_files(group / "small")] == \
        ["__init__.py", "shared.py", "small/__init__.py", "small/model.py", "small/submission.yaml"]
    before = small()
    (group / "large" / "model.py").write_text("from ..shared import Model  # tuned\n")
    assert small() == before
    (group / "shared.py").write_text(MINIMAL + "\nVERSION = 2\n")
    assert small() != before


def test_hostile_files_neither_hang_nor_leak_into_the_digest(make_submission, tmp_path):
    folder = make_submission("hostile", MINIMAL)
    os.mkfifo(folder / "pipe")                        # opening it to read would block forever
    (folder / "zeros").symlink_to("/dev/zero")        # reading it would never end
    (folder / "loop").symlink_to(folder)              # walking into it would never end
    (folder / "dangling").symlink_to(tmp_path / "nothing-here")
    outside = tmp_path / "outside.txt"
    outside.write_text("one")
    (folder / "linked.txt").symlink_to(outside)
    before = find_submission(folder).digest
    assert [r for r, _ in submission_files(folder)] == \
        ["dangling", "linked.txt", "loop", "model.py", "pipe", "submission.yaml", "zeros"]
    outside.write_text("two")  # a linked file counts with its bytes
    assert find_submission(folder).digest != before


def test_a_name_in_two_submission_folders_is_an_error_naming_both(tmp_path, monkeypatch):
    for root in ("mine", "theirs"):
        (tmp_path / root / "pop").mkdir(parents=True)
        (tmp_path / root / "pop" / "model.py").write_text(MINIMAL)
        (tmp_path / root / "pop" / "submission.yaml").write_text(card("pop"))
    monkeypatch.setenv("LLM4REC_SUBMISSIONS", os.pathsep.join([str(tmp_path / "mine"), str(tmp_path / "theirs")]))
    for look_up in (lambda: find_submission("pop"), available_submissions):
        with pytest.raises(SpecError) as error:
            look_up()
        message = str(error.value)
        assert "'pop' is found in 2 folders" in message
        assert str(tmp_path / "mine" / "pop") in message and str(tmp_path / "theirs" / "pop") in message
    assert find_submission(tmp_path / "mine" / "pop").folder == tmp_path / "mine" / "pop"  # a path is unambiguous


def test_a_local_submissions_folder_shadowing_the_repos_is_an_error(tmp_path, monkeypatch):
    monkeypatch.delenv("LLM4REC_SUBMISSIONS", raising=False)
    local = tmp_path / "submissions" / "my-pop"
    local.mkdir(parents=True)
    (local / "model.py").write_text(MINIMAL)
    (local / "submission.yaml").write_text(card("pop", version="1.0"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError, match="'pop' is found in 2 folders") as error:
        find_submission("pop")
    assert str(local) in str(error.value) and str(REPO / "submissions" / "pop") in str(error.value)
    assert find_submission("random").folder == REPO / "submissions" / "random"  # other names are unaffected


def test_the_repos_own_folder_reached_twice_is_one_submission(monkeypatch):
    monkeypatch.delenv("LLM4REC_SUBMISSIONS", raising=False)
    monkeypatch.chdir(REPO)  # ./submissions is the repo's
    assert submission_folders()["pop"] == [REPO / "submissions" / "pop"]
    assert available_submissions()["pop"] == REPO / "submissions" / "pop"


def test_an_entry_point_is_located_without_running_its_code(tmp_path, monkeypatch):
    package = tmp_path / "site" / "trap_rec"
    package.mkdir(parents=True)
    marker = tmp_path / "imported"
    (package / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (package / "model.py").write_text(MINIMAL)
    (package / "submission.yaml").write_text(card("pop"))
    dist = tmp_path / "site" / "trap_rec-1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: trap-rec\nVersion: 1\n")
    (dist / "entry_points.txt").write_text("[llm4rec.submissions]\npop = trap_rec\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("LLM4REC_SUBMISSIONS", str(REPO / "submissions"))
    with pytest.raises(SpecError, match="'pop' is found in 2 folders") as error:
        find_submission("pop")
    assert str(package) in str(error.value)
    assert not marker.exists()
    sys.modules.pop("trap_rec", None)


def test_one_command_cannot_hold_two_submissions_of_one_name(tmp_path):
    impostor = tmp_path / "pop"
    shutil.copytree(shipped("pop"), impostor)
    real = find_submission(shipped("pop"))
    with pytest.raises(SpecError) as error:
        check_distinct([real, find_submission("random"), find_submission(impostor)])
    assert "two submissions are named 'pop'" in str(error.value)
    assert str(shipped("pop")) in str(error.value) and str(impostor) in str(error.value)
    # The same folder twice, or a variant of one card that keeps its name, is one submission.
    check_distinct([real, find_submission(shipped("pop")), real.variant(None, unused=1)])
