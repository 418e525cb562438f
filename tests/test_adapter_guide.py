"""The adapter guide's complete example, run exactly as the guide shows it."""
from __future__ import annotations

import re

import yaml

from benchmark.runner import evaluate
from benchmark.validate import validate_submission
from conftest import REPO, shipped, synthetic_task

GUIDE = REPO / "docs" / "adapter_guide.md"


def guide_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(), flags=re.S)


def test_the_guide_example_validates_and_beats_popularity(tmp_path):
    folder = tmp_path / "markov"
    folder.mkdir()
    (folder / "model.py").write_text(guide_blocks("python")[0])
    card = guide_blocks("yaml")[0]
    assert yaml.safe_load(card)["name"] == "markov"
    (folder / "submission.yaml").write_text(card)

    report = validate_submission(str(folder))
    assert all(check.ok for check in report), [(c.name, c.detail) for c in report]

    # The generated task mostly steps to the next item: a Markov chain learns that.
    task = synthetic_task()
    runs = evaluate([folder, shipped("pop")], task, store=False).set_index("submission")
    assert runs.loc["markov", "status"] == "FINISHED"
    assert runs.loc["markov", "NDCG@5"] > 2 * runs.loc["pop", "NDCG@5"]


def test_the_guide_recommend_example_validates_on_candidate_sets(tmp_path):
    folder = tmp_path / "first-three"
    folder.mkdir()
    (folder / "model.py").write_text(guide_blocks("python")[1])
    card = {"name": "first-three", "version": "1", "paradigm": "zero-shot", "authors": ["tests"],
            "description": "the guide's recommend() example", "license": "MIT", "entrypoint": "model:FirstThree"}
    (folder / "submission.yaml").write_text(yaml.safe_dump(card))
    report = validate_submission(str(folder))
    assert all(check.ok for check in report), [(c.name, c.detail) for c in report]
    families = [check.name for check in report if "fit and" in check.name]
    assert families == ["zeroshot: fit and recommend (type, dtype, shape, range on every batch)"]
