"""The paradigm study: the grid per mode, the paired tests, and `llm4rec study paradigms
--quick` end to end on the synthetic tasks with a tiny Llama and a tiny BERT (every
cell an MLflow run, reused on the second invocation, and a report with its tables and
figures)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from benchmark.cli import app
from benchmark.study.grid import build_config
from benchmark.eval.significance import holm, pairwise
from paradigm_fixtures import make_tiny_encoder, make_tiny_llama, write_tasks


def test_holm_adjusts_step_down():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, float("nan")])[0] == 0.5 and np.isnan(holm([0.5, float("nan")])[1])
    assert holm([0.3, 0.4]) == pytest.approx([0.6, 0.6])  # monotone
    assert holm([0.9, 0.8]).tolist() == [1.0, 1.0]  # capped at 1


def one_seed(rows: dict[str, pd.Series]) -> pd.DataFrame:
    """Rows x users, each row one run of seed 0 (the matrix the study's paired test reads)."""
    matrix = pd.DataFrame(rows).T
    matrix.index = pd.MultiIndex.from_arrays([matrix.index, ["0"] * len(matrix)], names=["key", "draw"])
    return matrix


def paired_test(a: pd.Series, b: pd.Series) -> pd.Series:
    return pairwise(one_seed({"a": a, "b": b})).iloc[0]


def test_paired_test_uses_common_users_only():
    rng = np.random.default_rng(0)
    a = pd.Series(rng.random(60), index=range(60))
    b = pd.Series(a.to_numpy()[10:] - 0.2, index=range(10, 60))  # 50 users in common, a better on each
    result = paired_test(a, b)
    assert result["n_users"] == 50 and result["diff"] == pytest.approx(0.2) and result["p_value"] < 1e-6
    assert paired_test(a, a)["p_value"] == 1.0
    table = pairwise(one_seed({"x": a, "y": b, "z": a + 0.01}))
    assert list(zip(table["a"], table["b"])) == [("x", "y"), ("x", "z"), ("y", "z")]
    assert (table["p_holm"] >= table["p_value"]).all() and table["significant"].all()


def test_the_grid_per_mode():
    gpu = build_config("ml-100k", "gpu")
    assert gpu.reductions == [] and gpu.budgets == [0, 16, 64, 256, 1024] and not gpu.partial
    names = [e.name for e in gpu.entries]
    assert {"sasrec", "text-sasrec", "pop", "lr", "deepfm", "tallrec-lite-n0", "tallrec-lite-e4-n1024",
            "softprompt-e4-n16"} <= set(names)
    assert gpu.tasks == {"sequential": "sequential/ml-100k", "zeroshot": "zeroshot/ml-100k",
                         "ctr": "ctr/ml-100k-sample"}
    cpu = build_config("ml-100k", "cpu")
    assert cpu.budgets == [0, 16, 64] and cpu.reductions and "tallrec-lite-b2-e1-n64" in [e.name for e in cpu.entries]
    assert any("zeroshot/ml-100k: only the first 50" in r for r in cpu.reductions)
    quick = build_config("ml-100k", "quick")
    assert quick.partial and quick.budgets == [16] and all(e.seeds == (0,) for e in quick.entries)
    custom = build_config("ml-100k", "quick", llms=["/some/model"])
    assert all(e.name.startswith(("tallrec-lite-e1-m", "softprompt-e1-m")) and e.name.endswith("-n16")
               for e in custom.entries if e.budget is not None)
    with pytest.raises(ValueError, match="'tallrec-lite' is not installed"):
        build_config("ml-100k", "cpu", available={"pop", "sasrec", "lr", "deepfm", "text-sasrec"})


def test_quick_study_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM4REC_TASKS", str(write_tasks(tmp_path / "tasks")))
    llm = make_tiny_llama(tmp_path / "tiny-llama")
    encoder = make_tiny_encoder(tmp_path / "tiny-bert")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "report"
    args = ["study", "paradigms", "--dataset", "synthetic", "--quick", "--out", str(out), "--tracking-uri", uri,
            "--llm", llm, "--text-encoder", encoder]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)

    md = (out / "report.md").read_text()
    for heading in ("## Main table: accuracy per paradigm and task, with cost", "## Who wins, at what cost",
                    "## Few-shot curve", "## Accuracy against cost", "## Paired significance between paradigms",
                    "## Settings reduced by compute", "Quick look: partial runs"):
        assert heading in md, heading
    assert "## Failed or missing cells" not in md, md
    for row in ("| non-personalized | pop |", "| id-from-scratch | sasrec-e3 |", "| id-from-scratch | lr |",
                "| pretrain-finetune | text-sasrec-e3-m", "| instruction-tuning | tallrec-lite-e1-m",
                "| prompt-tuning | softprompt-e1-m"):
        assert row in md, row
    assert ("sequential/synthetic NDCG@5 (first 100 users) | zeroshot/synthetic NDCG@5 (first 10 users) | "
            "ctr/synthetic-sample AUC (first 50 rows)") in md
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "plotly" in html.lower() and "<table>" in html
    assert "<script src=" not in html  # plotly.js is inline: the file stands alone
    for png in ("accuracy.png", "fewshot.png", "cost.png"):
        assert (out / png).stat().st_size > 1000

    # The tables come from the MLflow runs: every run id of runs.csv is a finished run
    # there, with the cost metrics beside the accuracy.
    runs = pd.read_csv(out / "runs.csv")
    client = MlflowClient(uri)
    assert len(runs) == 14 and runs["partial"].all()
    for run_id in runs["run_id"]:
        assert client.get_run(run_id).info.status == "FINISHED"
    tuned = runs[runs["entry"].str.startswith(("tallrec-lite", "softprompt"))]
    assert (tuned["cost.train_samples"] == 16).all() and (tuned["cost.tokens"] > 0).all()
    assert (tuned["cost.trainable_parameters"] > 0).all()

    # A second invocation reuses every finished cell: no new run.
    experiments = client.search_experiments()
    before = sum(len(client.search_runs([e.experiment_id])) for e in experiments)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    after = sum(len(client.search_runs([e.experiment_id])) for e in client.search_experiments())
    assert after == before

    # --report-only runs nothing and reports the same table from the store.
    result = CliRunner().invoke(app, args + ["--report-only", "--out", str(tmp_path / "again")])
    assert result.exit_code == 0, result.output
    table = md.split("## Main table")[1].split("![accuracy]")[0]
    assert table == (tmp_path / "again" / "report.md").read_text().split("## Main table")[1].split("![accuracy]")[0]


def test_a_study_can_run_some_rows_and_names_unknown_ones():
    from benchmark.specs import SpecError
    from benchmark.study.grid import only_rows

    gpu = build_config("ml-100k", "gpu")
    tuned = only_rows(gpu, ["tallrec-lite", "sasrec"])
    assert {e.submission for e in tuned.entries} == {"tallrec-lite", "sasrec"}
    assert len([e for e in tuned.entries if e.submission == "tallrec-lite"]) == 5  # every budget
    assert [e.name for e in only_rows(gpu, ["softprompt-e4-n64"]).entries] == ["softprompt-e4-n64"]
    with pytest.raises(SpecError, match="Did you mean: tallrec-lite"):
        only_rows(gpu, ["tallrec"])
    # Budgets chosen by hand are a reduction the report names; budget 0 is the untuned
    # model for tallrec-lite, and no row for softprompt (an untrained soft prompt).
    chosen = build_config("ml-100k", "gpu", budgets=[0, 16])
    names = [e.name for e in chosen.entries]
    assert "tallrec-lite-n0" in names and not any(n.startswith("softprompt-n0") for n in names)
    assert any("training budgets [0, 16] instead of [0, 16, 64, 256, 1024]" in r for r in chosen.reductions)


def test_the_sizes_mode_runs_every_llm_row_once_per_model_on_the_users_its_budget_affords(monkeypatch):
    from benchmark.study import sizes
    from benchmark.study.grid import SIZE_LLMS, study_task

    monkeypatch.setattr(sizes, "measure_seconds_per_token", lambda model: 1 / 264)  # SmolLM2 on this CPU, fp32
    config = build_config("ml-100k", "sizes")
    assert set(config.tasks) == {"zeroshot", "ctr"} and not config.trust_passes and config.partial
    # 25 min per size: the three smallest fit at 10 users; the 1.5B does not and says what it would take.
    assert config.limit_users == {"sequential": None, "zeroshot": 10, "ctr": 50}
    assert config.llms == SIZE_LLMS[:3]
    left_out = [row for row in config.size_plan if not row["runs"]]
    assert [row["model"] for row in left_out] == ["qwen2.5-coder-1.5b"]
    assert any(r.startswith("qwen2.5-coder-1.5b left out: estimated") and "a full run of it would take" in r
               for r in config.reductions)
    names = [e.name for e in config.entries]
    for model in SIZE_LLMS[1:3]:
        for row in ("smollm2-pointwise", "smollm2-icl", "smollm2-listwise", "tallrec-lite", "softprompt-b2-e1"):
            assert any(n.startswith(f"{row}-") and model in n for n in names), (row, model)
    assert {"pop", "random", "sasrec", "lr", "smollm2-pointwise", "tallrec-lite-n0",
            "tallrec-lite-gemma-3-270m-n0", "softprompt-b2-e1-qwen2.5-coder-0.5b-n16"} <= set(names)
    qwen = next(e for e in config.entries if e.name == "smollm2-icl-qwen2.5-coder-0.5b")
    assert qwen.llm == "qwen2.5-coder-0.5b" and qwen.overrides == {"model": "qwen2.5-coder-0.5b"}
    # A larger budget buys more users, for every row alike; a bigger machine runs every size.
    assert build_config("ml-100k", "sizes", size_budget_minutes=40).limit_users["zeroshot"] == 20
    # The speed is measured once per machine: a later invocation on a busier (or idler)
    # machine plans the same users, so it finds the finished runs' keys.
    monkeypatch.setattr(sizes, "measure_seconds_per_token", lambda model: 1 / 2000)
    assert build_config("ml-100k", "sizes").limit_users == config.limit_users
    monkeypatch.setattr(sizes, "machine_seconds_per_token", lambda model: 1 / 50_000)  # a GPU
    fast = build_config("ml-100k", "sizes")
    assert fast.limit_users["zeroshot"] == 200 and fast.llms == SIZE_LLMS
    # The trust passes are off through the task itself: its own digest, so its own run keys.
    task = study_task(config, "zeroshot")
    assert task.trust is None and task.task == "zeroshot/ml-100k"
    assert task.digest() != study_task(build_config("ml-100k", "gpu"), "zeroshot").digest()


def test_sizes_planner_refuses_models_of_unknown_size():
    from benchmark.study.sizes import plan_sizes

    with pytest.raises(ValueError, match=r"\['/my/model'\] are not LLM assets with a known size"):
        plan_sizes(["smollm2", "/my/model"], seconds_per_token=0.004)


def test_a_variant_naming_a_model_asset_has_it_mounted_and_the_card_cannot_name_one_of_its_own(tmp_path):
    from benchmark.api import find_submission
    from benchmark.executors.sandbox import granted_assets

    pointwise = find_submission("smollm2-pointwise")
    assert granted_assets(pointwise) == []  # `model: smollm2` is the card's own value: declared in `assets:`
    assert granted_assets(pointwise.variant("qwen2.5-coder-0.5b", model="qwen2.5-coder-0.5b")) == ["qwen2.5-coder-0.5b"]
    assert granted_assets(pointwise.variant("x", model="not-an-asset")) == []
