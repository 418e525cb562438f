"""The suite's one paired test (benchmark.eval.significance) as the leaderboard and the
study use it: the verdict's direction, pairing seed by seed on the same candidate sets,
and the label of a std that includes candidate re-draws."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.eval.significance import pairwise, paired_tests, seed_matrix

EXPERIMENT = "t@v1"


def ranked(rows: list[dict], family: str, main: str) -> pd.DataFrame:
    """Counted runs as the snapshot holds them: one dict per run (submission, seed,
    metric values, optional candidate-set hash)."""
    frame = pd.DataFrame(rows)
    frame["run_id"] = [f"{r['submission']}-{r['seed']}" for r in rows]
    frame = frame.assign(experiment=EXPERIMENT, version="1", config="{}", paradigm="id-from-scratch", task="t",
                         task_version="1", family=family, dataset="d", main_score=main)
    return frame.rename(columns={c: f"metric:{c}" for c in frame.columns if c in (main, "NDCG@10", "AUC")})


def per_user(values: dict[str, np.ndarray], column: str) -> pd.DataFrame:
    """run id -> per-user values (users 0..n-1)."""
    return pd.concat([pd.DataFrame({"run_id": run, "user": np.arange(len(v)), column: v})
                      for run, v in values.items()], ignore_index=True)


def test_a_row_better_than_the_leader_on_the_tested_statistic_is_never_worse():
    """CTR rows are ranked by global AUC but tested on per-user AUC: the two can disagree."""
    from leaderboard.tables import leaderboard

    rng = np.random.default_rng(0)
    base = rng.uniform(0.4, 0.8, 80)
    runs = ranked([{"submission": "global", "seed": 0, "AUC": 0.80}, {"submission": "local", "seed": 0, "AUC": 0.70}],
                  "ctr", "AUC")
    users = per_user({"global-0": base, "local-0": base + 0.1 + rng.normal(0, 0.02, 80)}, "auc")
    board = leaderboard(runs, users, EXPERIMENT).set_index("submission")
    assert board.index.tolist() == ["global", "local"]  # ranked by global AUC
    local = board.loc["local"]
    assert bool(local["significant"]) and local["p_holm"] < 0.05
    assert local["verdict"].startswith("better on per-user AUC (p=") and "worse" not in local["verdict"]
    assert local["verdict"].endswith(", 1 seed)") and local["tested"] == "per-user AUC"
    # The sign is kept too where the row is worse on the tested statistic.
    users = per_user({"global-0": base, "local-0": base - 0.1 + rng.normal(0, 0.02, 80)}, "auc")
    board = leaderboard(runs, users, EXPERIMENT).set_index("submission")
    assert board.loc["local", "verdict"].startswith("worse on per-user AUC (p=")


def zero_shot_board(other_hash: str = "h0"):
    """The leader ran seeds 0, 1, 2 (each on its own candidate set), `other` seed 0 only.
    On seed 0 both score every user exactly alike; seeds 1 and 2 drew easier candidates."""
    from leaderboard.tables import leaderboard

    rng = np.random.default_rng(1)
    seed0 = rng.uniform(0, 1, 100)
    easier = {s: np.clip(seed0 + 0.3 + rng.normal(0, 0.05, 100), 0, 1) for s in (1, 2)}
    rows = [{"submission": "lead", "seed": s, "NDCG@10": float(np.mean(v)), "tag:candidate_set_hash": f"h{s}"}
            for s, v in ((0, seed0), (1, easier[1]), (2, easier[2]))]
    rows.append({"submission": "other", "seed": 0, "NDCG@10": float(seed0.mean()),
                 "tag:candidate_set_hash": other_hash})
    values = {"lead-0": seed0, "lead-1": easier[1], "lead-2": easier[2], "other-0": seed0}
    return leaderboard(ranked(rows, "zeroshot", "NDCG@10"), per_user(values, "NDCG@10"), EXPERIMENT)


def test_zero_shot_rows_are_paired_only_on_the_seeds_they_share():
    board = zero_shot_board().set_index("submission")
    other = board.loc["other"]
    # Paired on seed 0 alone (same candidates): no difference at all.
    assert other["test_seeds"] == 1 and other["p_value"] == 1.0 and not bool(other["significant"])
    assert other["verdict"] == "not significant on per-user NDCG@10 (p=1, 1 seed)"
    # A seed whose candidate sets differ is not shared: no test.
    board = zero_shot_board(other_hash="another draw").set_index("submission")
    assert board.loc["other", "test_seeds"] == 0 and np.isnan(board.loc["other", "p_value"])
    assert board.loc["other", "verdict"] == "not tested: no seed in common with the leader"


def test_the_paired_value_is_the_mean_over_shared_seeds_of_the_difference():
    rng = np.random.default_rng(2)
    a = {s: rng.uniform(0, 1, 30) for s in (0, 1, 2)}
    b = {s: rng.uniform(0, 1, 30) for s in (0, 1)}
    values = per_user({f"a-{s}": v for s, v in a.items()} | {f"b-{s}": v for s, v in b.items()}, "HR@5")
    runs = pd.DataFrame({"run_id": ["a-0", "a-1", "a-2", "b-0", "b-1"], "key": ["a", "a", "a", "b", "b"],
                         "seed": [0, 1, 2, 0, 1], "draw": ["x0", "x1", "x2", "x0", "x1"]})
    test = paired_tests(seed_matrix(values, runs, "HR@5"), "a").iloc[0]
    expected = ((a[0] - b[0]) + (a[1] - b[1])) / 2
    assert test["test_seeds"] == 2 and test["n_users"] == 30
    assert test["diff"] == pytest.approx(expected.mean())
    from scipy import stats

    assert test["p_value"] == pytest.approx(stats.ttest_1samp(expected, 0).pvalue)
    # Seed 1 on another draw: only seed 0 is shared.
    runs.loc[4, "draw"] = "y1"
    test = pairwise(seed_matrix(values, runs, "HR@5")).iloc[0]
    assert (test["a"], test["b"], test["test_seeds"]) == ("a", "b", 1)
    assert test["diff"] == pytest.approx((a[0] - b[0]).mean())


def test_the_std_over_seeds_is_labelled_where_candidates_are_redrawn(tmp_path):
    from benchmark.tracking.results import REDRAW_NOTE
    from leaderboard.export import to_csv, to_markdown
    from leaderboard.snapshot import Snapshot
    from leaderboard.tables import std_note

    redrawn = zero_shot_board()
    assert redrawn["std_includes_candidate_redraws"].all() and std_note(redrawn).startswith(REDRAW_NOTE)
    same = zero_shot_board().assign(std_includes_candidate_redraws=False, experiment="s@v1")
    assert std_note(same) == ""
    boards = {EXPERIMENT: redrawn, "s@v1": same}
    markdown = to_markdown(Snapshot(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), {}), boards)
    section, other = markdown.split("### s\\@v1")
    assert "± std over seeds (includes candidate re-draws)" in section and "re-draws" not in other
    csv = to_csv(boards).set_index("task")
    assert csv.loc[EXPERIMENT, "std_includes_candidate_redraws"].all()
    assert not csv.loc["s@v1", "std_includes_candidate_redraws"].any()
