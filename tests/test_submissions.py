"""Finding and loading submissions: by path, by name, by entry point; card errors."""
from __future__ import annotations

import sys

import pytest
import yaml

from benchmark.api import PARADIGMS, Recommender, available_submissions, find_submission
from benchmark.specs import SpecError
from conftest import REPO

MINIMAL = """
from benchmark.api import Recommender
class Model(Recommender):
    pass
"""


def test_every_shipped_card_is_valid_and_named_like_its_folder():
    found = {name: folder for name, folder in available_submissions().items()
             if folder.parent == REPO / "submissions"}
    assert {"random", "pop"} <= set(found)
    for name, folder in found.items():
        submission = find_submission(folder)
        assert submission.card.name == name
        assert submission.card.paradigm in PARADIGMS
        assert issubclass(submission.model_class(), Recommender)


def test_found_by_name_with_did_you_mean():
    assert find_submission("pop").folder == REPO / "submissions" / "pop"
    with pytest.raises(SpecError, match="unknown submission 'popp'. Did you mean: pop"):
        find_submission("popp")


def test_found_by_path_and_hyperparameters_reach_the_constructor(make_submission):
    folder = make_submission("tuned", MINIMAL, hyperparameters={"depth": 3})
    model = find_submission(str(folder)).build()
    assert model.hyperparameters == {"depth": 3}


def test_two_submissions_may_both_have_model_py(make_submission):
    one = make_submission("one", MINIMAL.replace("pass", "kind = 'one'"))
    two = make_submission("two", MINIMAL.replace("pass", "kind = 'two'"))
    assert find_submission(one).model_class().kind == "one"
    assert find_submission(two).model_class().kind == "two"


def test_found_through_an_entry_point(tmp_path, monkeypatch):
    # An installed distribution declaring a submission in group llm4rec.submissions.
    package = tmp_path / "site" / "acme_rec"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text(MINIMAL)
    (package / "submission.yaml").write_text(yaml.safe_dump({
        "name": "acme", "version": "2", "paradigm": "zero-shot", "authors": ["ACME"],
        "description": "installed", "license": "MIT", "entrypoint": "model:Model"}))
    dist = tmp_path / "site" / "acme_rec-2.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-rec\nVersion: 2\n")
    (dist / "entry_points.txt").write_text("[llm4rec.submissions]\nacme = acme_rec\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert "acme" in available_submissions()
    submission = find_submission("acme")
    assert submission.card.paradigm == "zero-shot"
    assert issubclass(submission.model_class(), Recommender)
    sys.modules.pop("acme_rec", None)


@pytest.mark.parametrize("card, field", [
    ({"paradigm": "fine-tuning"}, "paradigm"),
    ({"entrypoint": "model"}, "entrypoint"),
    ({"authors": []}, "authors"),
    ({"name": "Has Spaces"}, "name"),
])
def test_card_errors_name_the_field(make_submission, card, field):
    folder = make_submission("bad", MINIMAL, **card)
    with pytest.raises(SpecError) as error:
        find_submission(folder).card
    assert str(folder / "submission.yaml") in str(error.value)
    assert f"field '{field}'" in str(error.value)


def test_entrypoint_must_be_a_recommender(make_submission):
    folder = make_submission("notrec", "class Model:\n    pass\n")
    with pytest.raises(SpecError, match="not a subclass of benchmark.api.Recommender"):
        find_submission(folder).model_class()
    folder = make_submission("nomodule", MINIMAL, entrypoint="missing:Model")
    with pytest.raises(SpecError, match="cannot import module 'missing'"):
        find_submission(folder).model_class()


def test_folder_without_card(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecError, match="no submission.yaml"):
        find_submission(tmp_path / "empty").card


def test_variants_in_a_package_folder_share_code(tmp_path, monkeypatch):
    group = tmp_path / "subs" / "family"
    (group / "small").mkdir(parents=True)
    (group / "__init__.py").write_text("")
    (group / "shared.py").write_text(MINIMAL.replace("pass", "size = 'shared'"))
    (group / "small" / "__init__.py").write_text("")
    (group / "small" / "model.py").write_text("from ..shared import Model\n")
    (group / "small" / "submission.yaml").write_text(yaml.safe_dump({
        "name": "family-small", "version": "1", "paradigm": "id-from-scratch", "authors": ["t"],
        "description": "a variant", "license": "MIT", "entrypoint": "model:Model"}))
    monkeypatch.setenv("LLM4REC_SUBMISSIONS", str(tmp_path / "subs"))
    submission = find_submission("family-small")
    assert submission.folder == (group / "small").resolve()
    assert submission.model_class().size == "shared"


def test_a_variant_changes_hyperparameters_and_optionally_the_name():
    from benchmark.api import find_submission

    base = find_submission("sasrec")
    budget = base.variant("e2", epochs=2)
    assert budget.card.name == "sasrec-e2" and budget.card.hyperparameters["epochs"] == 2
    assert budget.build().epochs == 2
    same_name = base.variant(epochs=3)
    assert same_name.card.name == "sasrec" and same_name.card.hyperparameters["epochs"] == 3
    assert base.card.hyperparameters["epochs"] == 40  # the card itself is untouched
