"""The paradigm study's report on LLM sizes (several `llms`): the size figure, the
verdicts against pop and random, the plain-words list, the cost table, and no such
section for a single LLM. Synthetic runs; nothing is read from MLflow."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.kits.llm.models import ASSET_MODELS
from benchmark.study import report
from benchmark.study.grid import Entry, StudyConfig

LLMS = ["smollm2", "gemma-3-270m", "qwen2.5-coder-0.5b"]
TASKS = {"zeroshot": "zeroshot/ml-100k", "ctr": "ctr/ml-100k-sample"}
MAIN = {"zeroshot": "NDCG@10", "ctr": "AUC"}
PARADIGMS = {"pop": "non-personalized", "random": "non-personalized", "sasrec": "id-from-scratch",
             "lr": "id-from-scratch", "smollm2-pointwise": "zero-shot", "tallrec-lite": "instruction-tuning"}
BASELINES = {"zeroshot": {"pop": 0.30, "random": 0.10, "sasrec": 0.35},
             "ctr": {"pop": 0.50, "random": 0.49, "lr": 0.70}}
# (submission, budget, family) -> score per LLM, smallest first.
LLM_SCORES = {("smollm2-pointwise", None, "zeroshot"): [0.05, 0.20, 0.40],
              ("tallrec-lite", 0, "zeroshot"): [0.08, 0.09, 0.12],
              ("tallrec-lite", 16, "zeroshot"): [0.31, 0.33, 0.50],
              ("tallrec-lite", 0, "ctr"): [0.48, 0.51, 0.52],
              ("tallrec-lite", 16, "ctr"): [0.55, 0.45, 0.60]}
USERS = 60


def _entries(llms: list[str]) -> list[Entry]:
    entries = [Entry(name, tuple(f for f in TASKS if name in BASELINES[f]), seeds=(0,)) for name in
               ("pop", "random", "sasrec", "lr")]
    for (name, budget, _), _ in LLM_SCORES.items():
        for llm in llms:
            overrides = {} if llm == "smollm2" else {"model": llm}
            overrides |= {"epochs": 1, "batch_size": 2} if budget else {}
            entry = Entry(name, ("zeroshot", "ctr") if budget is not None else ("zeroshot",), budget, overrides, (0,),
                          "model", "llm", llm=llm)
            if entry not in entries:
                entries.append(entry)
    return entries


def make_config(llms: list[str] = LLMS, mode: str = "sizes") -> StudyConfig:
    plan = [{"model": m, "label": ASSET_MODELS[m].label, "parameters": ASSET_MODELS[m].parameters,
             "tuning": ASSET_MODELS[m].tuning, "seconds_per_token": 1e-3 * (i + 1),
             "estimated_minutes": 10.0 * (i + 1), "full_run_hours": 20.0 * (i + 1), "runs": True, "reason": None}
            for i, m in enumerate(llms)]
    plan.append({"model": "qwen2.5-coder-1.5b", "label": ASSET_MODELS["qwen2.5-coder-1.5b"].label,
                 "parameters": ASSET_MODELS["qwen2.5-coder-1.5b"].parameters, "tuning": "coder-instruct",
                 "seconds_per_token": 0.01, "estimated_minutes": 60.0, "full_run_hours": 200.0, "runs": False,
                 "reason": "estimated 60 min at 60 users, over the 25-minute budget per size"})
    limits = {"sequential": None, "zeroshot": USERS, "ctr": 100}
    return StudyConfig("ml-100k", mode, dict(TASKS), _entries(llms), limits, [0, 16], ["a reduction"],
                       ["a departure"], list(llms), mode != "sizes", plan if mode == "sizes" and len(llms) > 1 else [])


def make_runs(config: StudyConfig) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """One run per cell (seed 0), and per family the per-user values: each user's value
    is the row's score plus the same user noise for every row, plus a little own noise."""
    rng = np.random.default_rng(0)
    user_noise = rng.normal(0, 0.05, USERS)
    rows, per_user = [], {f: [] for f in TASKS}
    for entry in config.entries:
        for family in entry.families:
            if entry.llm is None:
                score = BASELINES[family][entry.submission]
            else:
                score = LLM_SCORES[(entry.submission, entry.budget, family)][config.llms.index(entry.llm)]
            run_id = f"{entry.name}-{family}"
            rows.append({"entry": entry.name, "base": entry.submission, "family": family, "task": TASKS[family],
                         "submission": entry.name, "paradigm": PARADIGMS[entry.submission], "budget": entry.budget,
                         "llm": entry.llm, "seed": 0, "run_id": run_id, "main_score": MAIN[family], "main": score,
                         "partial": True, "llm_model": "", "llm_parameters": None,
                         "accelerator": "cpu: 2 cores", "hp_train_samples": None,
                         "cost.fit_seconds": 10.0 if entry.budget else 0.5, "cost.score_seconds": 20.0,
                         "cost.tokens": 1000.0 if entry.llm else np.nan, "cost.trainable_parameters": 0.0,
                         "cost.train_samples": float(entry.budget or 0), "cost.peak_rss_mb": 500.0,
                         "artifact_uri": "", "draw": np.nan, "tag:candidate_set_hash": None})
            values = score + user_noise + rng.normal(0, 0.05, USERS)
            per_user[family].append(pd.DataFrame({"run_id": run_id, "user": range(USERS), MAIN[family]: values}))
    return pd.DataFrame(rows), {f: pd.concat(v, ignore_index=True) for f, v in per_user.items()}


@pytest.fixture(scope="module")
def sizes():
    config = make_config()
    runs, per_user = make_runs(config)
    summary = report.summarize(runs)
    return config, runs, summary, report.size_section(summary, runs, config, per_user)


def test_the_size_figure_has_one_line_per_kind_over_parameters_and_the_baselines_as_lines(sizes):
    config, runs, summary, section = sizes
    fig = section.figures["sizes"]
    parameters = [ASSET_MODELS[m].parameters for m in LLMS]
    zeroshot = [t for t in fig.data if (t.xaxis or "x") == "x"]
    assert [t.name for t in zeroshot] == ["tallrec-lite n0", "tallrec-lite n16", "pointwise"]  # paradigm order
    for trace in zeroshot:
        assert list(trace.x) == parameters
    assert list(zeroshot[2].y) == LLM_SCORES[("smollm2-pointwise", None, "zeroshot")]
    assert zeroshot[0].line.dash == "dot" and zeroshot[1].line.dash == "solid"  # budget 0: untuned
    assert [t.name for t in fig.data if t.xaxis == "x2"] == ["tallrec-lite n0", "tallrec-lite n16"]
    lines = [(s.yref, s.y0) for s in fig.layout.shapes]
    assert sorted(lines) == sorted([("y", v) for v in BASELINES["zeroshot"].values()] +
                                   [("y2", v) for v in BASELINES["ctr"].values()])
    assert {a.text for a in fig.layout.annotations} >= {"pop", "random", "sasrec", "lr"}
    assert fig.layout.xaxis.type == "log" and list(fig.layout.xaxis.tickvals) == parameters
    assert "Qwen2.5-Coder-0.5B-Instruct<br>(coder-tuned)<br>494M" in fig.layout.xaxis.ticktext


def test_the_table_says_where_each_row_passes_pop_and_random(sizes):
    config, runs, summary, section = sizes
    table = section.table.frame.set_index(["row", "task"])
    labels = [ASSET_MODELS[m].label for m in LLMS]
    assert list(table.columns) == ["paradigm", *labels]  # the labels say coder-tuned / base
    pointwise = table.xs("pointwise", level="row").iloc[0]
    assert pointwise[labels[0]].startswith("0.0500 (< pop*, p=") and "< random*" in pointwise[labels[0]]
    assert pointwise[labels[1]].startswith("0.2000 (< pop*") and "> random*" in pointwise[labels[1]]
    assert pointwise[labels[2]].startswith("0.4000 (> pop*") and "> random*" in pointwise[labels[2]]
    near = table.xs("tallrec-lite n16", level="row")
    zeroshot = near[near.index.str.startswith("zeroshot")].iloc[0]
    assert "> pop," in zeroshot[labels[0]]  # 0.31 against 0.30: better, not significant
    ctr = near[near.index.str.startswith("ctr")].iloc[0]
    assert ctr[labels[1]].startswith("0.4500 (< pop")
    assert "zeroshot/ml-100k NDCG@10 (pop 0.3000, random 0.1000)" in set(table.index.get_level_values("task"))
    assert "Holm" in section.table.note and "paired t-test" in section.table.note


def test_the_plain_words_name_the_sizes(sizes):
    *_, section = sizes
    lines = {line.split(" on ")[0] + " on " + line.split(" on ")[1].split(":")[0]: line for line in section.findings}
    pointwise = lines["**pointwise** (zero-shot) on zeroshot/ml-100k"]
    assert "passes pop at: Qwen2.5-Coder-0.5B-Instruct (coder-tuned)*;" in pointwise
    assert "passes random at: Gemma-3-270M (base)*, Qwen2.5-Coder-0.5B-Instruct (coder-tuned)*." in pointwise
    untuned = lines["**tallrec-lite n0** (instruction-tuning) on zeroshot/ml-100k"]
    assert "passes pop at: never" in untuned
    tuned = lines["**tallrec-lite n16** (instruction-tuning) on zeroshot/ml-100k"]
    assert "passes pop at: every size: SmolLM2-135M-Instruct, " in tuned  # 0.31 > 0.30, not significant
    ctr = lines["**tallrec-lite n16** (instruction-tuning) on ctr/ml-100k-sample"]
    assert "passes pop at: SmolLM2-135M-Instruct*, Qwen2.5-Coder-0.5B-Instruct (coder-tuned)*;" in ctr


def test_the_few_shot_curve_and_the_cost_per_size(sizes):
    *_, section = sizes
    fig = section.figures["fewshot_sizes"]
    names = [t.name for t in fig.data if (t.xaxis or "x") == "x"]
    assert names == [f"tallrec-lite · {ASSET_MODELS[m].label}" for m in LLMS]
    assert list(fig.data[0].x) == ["0", "16"] and list(fig.layout.xaxis.categoryarray) == ["0", "16"]
    cost = section.cost.frame.set_index("LLM")
    smollm2 = cost.loc["SmolLM2-135M-Instruct"]
    # zero-shot: pointwise, n0, n16; ctr: n0, n16 -> 5 runs, 2 of them trained (10 s), each 20 s of inference.
    assert smollm2["runs"] == 5 and smollm2["fit + inference seconds"] == "121.5 CPU s (2 cores)"
    assert smollm2["tokens"] == "5k" and smollm2["s per 1k tokens"] == "24.300 CPU s (2 cores)"
    assert smollm2["planned minutes"] == "10" and smollm2["planned s per 1k tokens"] == "1.000"
    left_out = cost.loc["Qwen2.5-Coder-1.5B-Instruct (coder-tuned)"]
    assert left_out["runs"] == 0 and "over the 25-minute budget" in left_out["left out because"]


def _build(tmp_path, monkeypatch, config: StudyConfig) -> str:
    import benchmark.tracking.results as results

    runs, per_user = make_runs(config)
    everything = pd.concat(per_user.values(), ignore_index=True)
    monkeypatch.setattr(report, "read_runs", lambda *a: (runs, pd.DataFrame()))
    monkeypatch.setattr(report, "write_png", lambda fig, path: "none")
    monkeypatch.setattr(results, "read_per_user", lambda chosen, uri: everything[everything["run_id"].isin(
        set(chosen["run_id"]))])
    report.build_report(pd.DataFrame(), config, None, tmp_path)
    return (tmp_path / "report.md").read_text()


def test_the_report_has_the_size_sections_only_with_several_llms(tmp_path, monkeypatch):
    md = _build(tmp_path / "sizes", monkeypatch, make_config())
    for heading in ("## Accuracy against LLM size", "### LLM rows at each size",
                    "### At which size each LLM paradigm passes pop and random", "## Few-shot curve per size",
                    "## Cost per size", "![accuracy against LLM size](sizes.png)"):
        assert heading in md, heading
    assert "**Every run is partial, by design.**" in md and "Quick look" not in md
    assert "the first 60 users of zeroshot/ml-100k and the first 100 rows of ctr/ml-100k-sample" in md
    assert "Gemma-3-270M (base) (268M parameters; rows such as `smollm2-pointwise-gemma-3-270m`)" in md
    assert "## Few-shot curve\n" not in md  # the curve per size replaces it
    html = (tmp_path / "sizes" / "report.html").read_text()
    assert "Accuracy against LLM size" in html and html.count("class=\"plotly-graph-div\"") == 4

    single = _build(tmp_path / "single", monkeypatch, make_config(["smollm2"], mode="quick"))
    assert "LLM size" not in single and "Cost per size" not in single and "Quick look: partial runs" in single
    assert "## Few-shot curve\n" in single and "LLMs of the LLM rows" not in single


def test_without_pop_and_random_the_rows_still_show_their_scores():
    config = make_config()
    runs, per_user = make_runs(config)
    runs = runs[~runs["base"].isin(["pop", "random"])]
    summary = report.summarize(runs)
    section = report.size_section(summary, runs, config, per_user)
    pointwise = section.table.frame.set_index("row").loc["pointwise"]
    assert pointwise["SmolLM2-135M-Instruct"] == "0.0500" and "(no pop or random run)" in pointwise["task"]
    assert any(line.endswith("zeroshot/ml-100k: no pop or random run on this task.") for line in section.findings)
    assert len(section.figures["sizes"].layout.shapes) == 2  # sasrec and lr remain
