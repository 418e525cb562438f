"""The data layer: atomic files, canonical tables, ids, filtering, splits, caching."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.data import prepare
from benchmark.data import pipeline as prepare_module
from benchmark.data.datasets.atomic import AtomicFileError, read_atomic, read_atomic_folder
from benchmark.data.dataset import fingerprint, from_atomic_tables, k_core
from benchmark.data.splits import TEST, TRAIN, VALID
from benchmark.data.views import build_views
from conftest import synthetic_task

HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"


def write_atomic(folder: Path, rows: list[tuple], items: list[tuple] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [HEADER] + ["\t".join(map(str, row)) + "\n" for row in rows]
    (folder / f"{folder.name}.inter").write_text("".join(lines))
    if items is not None:
        text = "item_id:token\tmovie_title:token_seq\n" + "".join(f"{i}\t{t}\n" for i, t in items)
        (folder / f"{folder.name}.item").write_text(text)
    return folder


def path_task(folder: Path, **changes):
    changes.setdefault("dataset", {"name": folder.name, "path": str(folder)})
    return synthetic_task(**changes)


def test_atomic_reader_maps_recbole_fields(tmp_path):
    folder = write_atomic(tmp_path / "toy", [("7", "a", 4, 10), ("7", "b", 3, 11)],
                          items=[("a", "Alpha (1990)"), ("b", "Beta")])
    tables = read_atomic_folder(folder)
    assert list(tables["interactions"].columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert tables["interactions"]["user_id"].tolist() == ["7", "7"]
    assert tables["items"]["title"].tolist() == ["Alpha (1990)", "Beta"]


@pytest.mark.parametrize("header, rule", [
    ("user_id\titem_id:token\n", "'user_id' must be 'name:type'"),
    ("user_id:token\titem_id:tokn\n", "'item_id:tokn' must be 'name:type'"),
])
def test_atomic_reader_names_the_bad_header(tmp_path, header, rule):
    path = tmp_path / "bad.inter"
    path.write_text(header + "1\t2\n")
    with pytest.raises(AtomicFileError) as error:
        read_atomic(path)
    assert str(path) in str(error.value) and rule in str(error.value)


def test_atomic_reader_names_a_bad_value(tmp_path):
    path = tmp_path / "bad.inter"
    path.write_text(HEADER + "1\t2\tfive\t100\n")
    with pytest.raises(AtomicFileError, match="bad.inter"):
        read_atomic(path)


def test_folder_without_inter_file(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AtomicFileError, match="no empty.inter"):
        read_atomic_folder(tmp_path / "empty")


def test_timestamp_ties_are_broken_by_row_order_not_item_id(tmp_path):
    # User u's last two interactions share a timestamp; the file lists item z before
    # item a, so z comes first in time and a (the later row) is the test target,
    # although sorting by item id would say the opposite.
    rows = [("u", "m", 5, 1), ("u", "n", 5, 2), ("u", "z", 5, 9), ("u", "a", 5, 9),
            ("v", "m", 5, 1), ("v", "a", 5, 2), ("v", "n", 5, 3)]
    folder = write_atomic(tmp_path / "ties", rows)
    prepared = prepare(path_task(folder))
    ids = dict(zip(prepared.dataset.items["original_id"], prepared.dataset.items["item_id"]))
    seq = prepared.sequence
    u = seq[seq["user_id"] == 0]
    assert u["item_id"].tolist() == [ids["m"], ids["n"], ids["z"], ids["a"]]
    assert u["part"].tolist() == [TRAIN, TRAIN, VALID, TEST]
    assert prepared.summary["users_with_tied_last_two_timestamps"] == 1


def test_dense_ids_follow_first_appearance_and_are_deterministic(tmp_path):
    rows = [("u2", "b", 5, 1), ("u1", "a", 5, 2), ("u2", "c", 5, 3), ("u1", "b", 5, 4),
            ("u1", "c", 5, 5), ("u2", "a", 5, 6)]
    folder = write_atomic(tmp_path / "ids", rows)
    first = prepare(path_task(folder))
    assert first.dataset.users["original_id"].tolist() == ["u2", "u1"]
    assert first.dataset.items["original_id"].tolist() == ["b", "a", "c"]
    again = prepare_module._process(
        from_atomic_tables("ids", read_atomic_folder(folder)), path_task(folder), "x")
    pd.testing.assert_frame_equal(first.sequence, again.sequence)


def test_k_core_is_applied_until_stable():
    inter = pd.DataFrame({"user": ["a", "a", "a", "b", "b", "c"], "item": ["x", "y", "z", "x", "y", "x"]})
    # 2-core: c (1 interaction) goes, then z (1) goes, leaving a and b with x and y.
    kept = k_core(inter, 2, 2)
    assert sorted(zip(kept["user"], kept["item"])) == [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")]


def test_implicit_threshold_keeps_high_ratings(tmp_path):
    rows = [("u", f"i{k}", rating, k) for k, rating in enumerate([5, 1, 4, 2, 5, 4])]
    folder = write_atomic(tmp_path / "implicit", rows)
    prepared = prepare(path_task(folder, dataset={"name": "implicit", "path": str(folder),
                                                  "implicit": {"min_rating": 4}}))
    assert len(prepared.sequence) == 4
    assert (prepared.sequence["rating"] >= 4).all()


def test_fingerprints_change_with_the_data(tmp_path):
    rows = [("u", "a", 5, 1), ("u", "b", 5, 2), ("u", "c", 5, 3)]
    one = prepare(path_task(write_atomic(tmp_path / "one", rows)))
    two = prepare(path_task(write_atomic(tmp_path / "two", rows[:2] + [("u", "c", 4, 3)])))
    assert one.dataset_fingerprint != two.dataset_fingerprint
    assert one.split_fingerprint != two.split_fingerprint
    assert fingerprint(pd.DataFrame({"a": [1]})) == fingerprint(pd.DataFrame({"a": [1]}))


def test_prepared_data_is_cached_and_not_recomputed(monkeypatch):
    task = synthetic_task()
    first = prepare(task)

    def fail(*_):
        raise AssertionError("recomputed a cached split")

    monkeypatch.setattr(prepare_module, "_process", fail)
    second = prepare(task)
    assert second.split_fingerprint == first.split_fingerprint
    pd.testing.assert_frame_equal(second.sequence, first.sequence)
    pd.testing.assert_frame_equal(second.dataset.interactions, first.dataset.interactions)


def test_no_leakage_from_targets_or_later_interactions():
    task = synthetic_task(history={"max_len": 5, "exclude_seen": False})
    prepared = prepare(task)
    views = build_views(task, prepared)
    seq = prepared.sequence
    train = views.train.interactions
    # Nothing at or after a user's validation row is in train.
    for user, rows in seq.groupby("user_id"):
        held_out = rows[rows["part"] != TRAIN]
        user_train = train[train["user_id"] == user]
        assert len(user_train) == len(rows) - len(held_out)
        assert user_train["row"].isin(rows.loc[rows["part"] == TRAIN, "row"]).all()
    # Test histories are exactly what precedes the target, oldest first.
    for user, history, target in zip(views.test.users, views.test.histories, views.test.targets):
        rows = seq[seq["user_id"] == user]
        assert history.tolist() == rows["item_id"].tolist()[:-1]
        assert target == rows["item_id"].iloc[-1]
    # Validation histories end before the validation target, which is not in train.
    for user, history in zip(views.validation.users, views.validation.histories):
        assert history.tolist() == train.loc[train["user_id"] == user, "item_id"].tolist()
    # Requests and training data are read-only.
    with pytest.raises(ValueError):
        views.test.histories[0][0] = 1


def test_ml100k_summary_reports_tied_last_two():
    from benchmark.tasks import load_task

    prepared = prepare(load_task("sequential/ml-100k"))
    summary = prepared.summary
    assert summary["n_users"] == 943 and summary["n_items"] == 1682
    assert summary["n_interactions"] == 100_000
    assert summary["users_with_tied_last_two_timestamps"] == 415
    assert summary["n_test_users"] == 943
    assert np.isclose(summary["density"], 100_000 / (943 * 1682), atol=1e-6)
