"""Task specs: every shipped file validates; bad files give errors naming the field."""
from __future__ import annotations

import pytest
import yaml

from benchmark.specs import SpecError
from benchmark.tasks import available_tasks, load_task
from benchmark.families import FAMILIES
from benchmark.validate import TASKS_DIR
from benchmark.tasks import load_task_file

GOOD = {
    "task": "sequential/toy", "family": "sequential", "version": 1,
    "dataset": {"name": "ml-100k"}, "split": {"method": "leave_one_out"},
    "history": {"max_len": 50, "exclude_seen": False},
    "metrics": ["NDCG@10", "HR@10"], "main_score": "NDCG@10", "seeds": [0],
}


def test_every_shipped_task_validates():
    found = available_tasks()
    assert "sequential/ml-100k" in found
    for task_id in found:
        assert load_task(task_id).task == task_id
    for task_family in FAMILIES.values():
        assert load_task_file(TASKS_DIR / task_family.contract_task).family == task_family.name


def test_ml100k_sequential_protocol():
    task = load_task("sequential/ml-100k")
    assert task.split.method == "leave_one_out"
    assert task.history.max_len == 50 and task.candidates.mode == "full"
    assert task.main_score == "NDCG@10" and task.seeds == [0, 1, 2]
    assert set(task.metrics) == {f"{m}@{k}" for m in ("HR", "NDCG", "MRR", "Recall") for k in (5, 10, 20)}


@pytest.mark.parametrize("change, field, words", [
    ({"metrics": ["NDGC@10"]}, "metrics", "did you mean 'NDCG@10'"),
    ({"main_score": "MRR@10"}, "(top level)", "main_score 'MRR@10' is not one of metrics"),
    ({"family": "sequentail"}, "family", "Input should be 'sequential'"),
    ({"history": {"max_len": 0, "exclude_seen": False}}, "history.max_len", "greater than or equal to 1"),
    ({"split": {"method": "random"}}, "split", "'leave_one_out', 'global_time', 'ratio'"),
    ({"split": {"method": "global_time"}}, "(top level)", "split.method 'global_time' does not fit family 'sequential'"),
    ({"split": {"method": "ratio", "ratios": [0.8, 0.1, 0.2]}}, "split.ratio.ratios", "sum to 1"),
    ({"seeds": []}, "seeds", "at least 1 item"),
    ({"colour": "blue"}, "colour", "Extra inputs are not permitted"),
    ({"task": "toy"}, "task", "should match pattern"),
])
def test_schema_errors_name_the_file_and_field(tmp_path, change, field, words):
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(GOOD | change))
    with pytest.raises(SpecError) as error:
        load_task(path)
    message = str(error.value)
    assert str(path) in message
    assert f"field '{field}'" in message
    assert words in message


def test_missing_field_is_named(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in GOOD.items() if k != "dataset"}))
    with pytest.raises(SpecError, match="field 'dataset': Field required"):
        load_task(path)


def test_not_a_mapping(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(SpecError, match="expected a mapping"):
        load_task(path)


def test_unknown_task_suggests_the_close_one():
    with pytest.raises(SpecError, match="unknown task 'sequential/ml-100'. Did you mean: sequential/ml-100k"):
        load_task("sequential/ml-100")


def test_task_id_must_match_its_place(tmp_path, monkeypatch):
    folder = tmp_path / "tasks" / "sequential"
    folder.mkdir(parents=True)
    (folder / "other.yaml").write_text(yaml.safe_dump(GOOD))
    monkeypatch.setenv("LLM4REC_TASKS", str(tmp_path / "tasks"))
    with pytest.raises(SpecError, match="must match the file's place 'sequential/other'"):
        load_task("sequential/other")
