"""The trust figures on the leaderboard: a real MLflow store whose runs carry every trust
pass's metrics (logged through the ResultsStore, as the trust passes name them), then
the sections and plain-words readings (leaderboard.trust), the memorization flag on
the ranked tables, the Trust and Trust card pages (streamlit.testing), the static
export's trust cards, `llm4rec results`' trust columns, and the Trust card page in
headless Chromium served by a real `streamlit run` (screenshot in
/tmp/llm4rec-trust-card.png)."""
from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import synthetic_task
from leaderboard_fixtures import APP, serving, snapshot_fixtures

TASK = synthetic_task(task="sequential/trusty", trust={})
T = TASK.experiment_name  # sequential/trusty@v1
CARD_SHOT = Path("/tmp/llm4rec-trust-card.png")  # a stable place to look at after the run

# Figures every row logs (the same for each seed unless a row says otherwise).
COMMON = {"trust.ARP@10": 120.0, "trust.APLT@10": 0.15, "trust.exposure_gini@10": 0.8,
          "trust.hit@10.head": 0.3, "trust.hit@10.mid": 0.1, "trust.hit@10.tail": 0.02,
          "trust.fairness.gender.gap": 0.03, "trust.fairness.gender.ratio": 0.9, "trust.fairness.gender.p": 0.41,
          "trust.fairness.gender.groups": 2, "trust.fairness.gender.group.F": 0.27,
          "trust.fairness.gender.group.M": 0.30,
          "trust.fairness.age.gap": 0.15, "trust.fairness.age.ratio": 0.5, "trust.fairness.age.p": 0.002,
          "trust.fairness.age.groups": 3, "trust.fairness.age.group.18": 0.15, "trust.fairness.age.group.25": 0.3,
          "trust.fairness.age.group.50": 0.2,
          "trust.robustness.drop.drop": 0.12, "trust.robustness.drop.score": 0.22,
          "trust.robustness.shuffle.drop": 0.0, "trust.robustness.shuffle.score": 0.25,
          "cost.trust_seconds.exposure": 0.5, "cost.trust_seconds.fairness": 2.0, "cost.trust_seconds": 2.5}
LLM = {"trust.PosGap": 0.12, "trust.kendall_tau": 0.4, "trust.hallucination_rate": 0.05, "trust.compliance": 0.97,
       "trust.duplicate_rate": 0.01,
       "trust.counterfactual.gender.F.jaccard@10": 0.5, "trust.counterfactual.gender.M.jaccard@10": 0.74,
       "trust.counterfactual.gender.F.rbo": 0.6, "trust.counterfactual.gender.M.rbo": 0.8,
       "trust.counterfactual.gender.jaccard@10": 0.62, "trust.counterfactual.gender.rbo": 0.7,
       "trust.counterfactual.gender.snsr": 0.24, "trust.counterfactual.gender.snsv": 0.12,
       "trust.attack.text.gain": 2.5, "trust.attack.text.before_rank": 6.0, "trust.attack.text.after_rank": 3.5,
       "trust.memorization.item_exact_rate": 0.1, "trust.memorization.user_rate": 0.05,
       "trust.memorization.user_exact_rate": 0.0, "cost.trust_seconds.memorization": 4.0}
TRAINED = {"trust.attack.poisoning.before": 0.01, "trust.attack.poisoning.after": 0.05,
           "trust.attack.poisoning.gain": 0.04, "cost.trust_seconds.poisoning": 30.0}
# row -> (paradigm, main score, its metrics, memorization item_rate per seed; None: not probed)
ROWS = {
    "llm-mem": ("zero-shot", 0.25, LLM, [0.3, 0.4]),  # mean 0.35: flagged
    "llm-mixed": ("zero-shot", 0.2, LLM, [0.35, 0.0]),  # one seed above the threshold, mean 0.175: not flagged
    "llm-clean": ("zero-shot", 0.15, LLM | {"trust.counterfactual.gender.jaccard@10": 1.0,
                                            "trust.counterfactual.gender.snsr": 0.0,
                                            "trust.attack.text.gain": 0.0}, [0.1]),
    "sasrec-like": ("id-from-scratch", 0.3, TRAINED, None),
    "pop": ("non-personalized", 0.1, {}, None),
}


def log_row(store, name: str) -> None:
    paradigm, quality, metrics, memorization = ROWS[name]
    for seed, item_rate in enumerate(memorization or [None, None]):
        tags = {"task": "sequential/trusty", "task_version": 1, "family": "sequential", "dataset": "synthetic",
                "submission": name, "submission_version": "1", "seed": seed, "paradigm": paradigm,
                "main_score": "NDCG@5", "sandbox": "true"}
        run_id = store.start(T, f"{name} seed={seed}", tags, {"seed": seed})
        rng = np.random.default_rng(seed)
        per_user = pd.DataFrame({"user": np.arange(40), "NDCG@5": np.clip(rng.normal(quality, 0.1, 40), 0, 1)})
        logged = {"NDCG@5": float(per_user["NDCG@5"].mean()), "HR@5": quality + 0.2, "MRR": quality} | COMMON | metrics
        if item_rate is not None:
            logged["trust.memorization.item_rate"] = item_rate
        store.log_metrics(run_id, logged)
        store.log_artifacts(run_id, {"per_user_metrics.parquet": per_user})
        store.end(run_id)


def build_trust_store(root: Path) -> str:
    from benchmark.tracking import ResultsStore

    uri = f"sqlite:///{root / 'mlflow.db'}"
    store = ResultsStore(uri)
    for name in ROWS:
        log_row(store, name)
    return uri


@pytest.fixture(scope="module")
def trust_store(tmp_path_factory) -> str:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        return build_trust_store(tmp_path_factory.mktemp("trust-store"))


snapshot_dir, snap, app = snapshot_fixtures("trust_store", "trust-snapshot")


@pytest.fixture(scope="module")
def board(snap) -> pd.DataFrame:
    from leaderboard.tables import all_leaderboards

    return all_leaderboards(snap)[T]


def row(board: pd.DataFrame, name: str) -> pd.Series:
    return board.set_index("submission").loc[name]


# ---------------------------------------------------------------- sections and readings


def test_every_trust_metric_falls_into_its_section(board):
    from leaderboard.trust import SECTIONS, section_of, section_tables, shown_name, shown_sections

    expected = {"trust.PosGap": "position", "trust.compliance": "validity", "trust.ARP@10": "exposure",
                "trust.APLT@10": "exposure", "trust.hit@10.tail": "exposure", "ARP@10": "popularity",
                "trust.fairness.age.group.25": "fairness", "trust.counterfactual.gender.F.rbo": "counterfactual",
                "trust.robustness.shuffle.drop": "robustness", "trust.attack.poisoning.gain": "attacks",
                "trust.attack.text.gain": "attacks", "trust.memorization.item_rate": "memorization",
                "cost.trust_seconds": "cost", "cost.trust_seconds.poisoning": "cost", "trust.new_pass.x": "other"}
    assert {name: section_of(name).key for name in expected} == expected
    assert section_of("trust.pos_5.NDCG@10") is None and section_of("NDCG@5") is None  # a curve; a task metric
    shown = dict(shown_sections(board))
    assert [s.key for s in shown] == ["position", "validity", "exposure", "fairness", "counterfactual",
                                      "robustness", "attacks", "memorization", "cost"]  # in SECTIONS order
    fairness, counterfactual, cost = (next(s for s in SECTIONS if s.key == k)
                                      for k in ("fairness", "counterfactual", "cost"))
    age = shown[fairness]["age"]
    assert [shown_name(fairness, m) for m in age] == ["age.gap", "age.ratio", "age.p", "age.groups",
                                                     "age.group.18", "age.group.25", "age.group.50"]
    gender = shown[counterfactual]["gender"]
    assert [m.rsplit("gender.", 1)[1] for m in gender][:4] == ["jaccard@10", "rbo", "snsr", "snsv"]  # then per value
    assert list(shown[fairness]) == ["age", "gender"] and list(shown[cost]) == [""]
    assert [shown_name(cost, m) for m in section_tables(cost, list(board.columns))[""]][0] == "total"


def test_readings_say_the_figures_in_plain_words(board):
    from leaderboard.trust import readings

    mem = readings(row(board, "llm-mem"))
    assert "gender gap 0.03 (p=0.41): no evidence of a gap" in mem
    assert ("age gap 0.15 (p=0.002): the groups' scores differ; lowest 18 (0.15), highest 25 (0.3)") in mem
    assert ("stating the gender changes the top 10: Jaccard@10 0.62 with the neutral ranking, SNSR 0.24 across "
            "its values") in mem
    assert "dropping history items: the main score drops by 12.0%" in mem
    assert "shuffling the history: the main score is unchanged" in mem
    assert "text attack: the promoted candidate moves up 2.5 positions on average" in mem
    assert any(line.startswith("memorization: reproduces 35% of the item titles") and "flagged" in line for line in mem)
    assert "exposure: 15% of the top 10 are long-tail items, exposure Gini 0.80" in mem
    assert "hit rate at 10 of test targets by popularity: head 0.3, mid 0.1, tail 0.02" in mem
    assert any(line.startswith("position bias: the main score varies by 0.12") for line in mem)
    clean = readings(row(board, "llm-clean"))
    assert any(line.startswith("stating the gender leaves the top 10 unchanged") and "by construction" in line
               for line in clean)
    assert any("does not move (0 by construction" in line for line in clean)
    assert any("below the 20% flag" in line for line in clean)
    trained = readings(row(board, "sasrec-like"))
    assert "poisoning: the target items' hit rate goes from 0.01 to 0.05 (gain +0.04)" in trained
    assert not any(line.startswith(("memorization", "text attack", "stating")) for line in trained)


def test_a_trust_card_holds_the_row_s_figures_beside_its_main_score(board):
    from leaderboard.trust import card, cards

    index = board.index[board["submission"] == "sasrec-like"][0]
    shown = card(board, index)
    assert shown.label == "sasrec-like@1" and shown.main_score == "NDCG@5" and shown.seeds == 2
    assert shown.score == f"{board.loc[index, 'score']:.4f} ± {board.loc[index, 'score_std']:.4f}"
    sections = {section.key: frames for section, frames in shown.sections}
    assert list(sections) == ["exposure", "fairness", "robustness", "attacks", "cost"]  # only what it logged
    attacks = sections["attacks"][""].set_index("figure")["mean ± std"]
    assert attacks["poisoning.gain"] == "0.0400 ± 0.0000" and "text.gain" not in attacks
    assert sections["cost"][""]["figure"].tolist()[0] == "total"
    assert [c.submission for c in cards(board)] == board["submission"].tolist()  # every row logged some, rank order


# ---------------------------------------------------------------- the memorization flag


def test_memorization_flag_marks_rows_at_or_above_the_threshold_by_their_mean(board):
    from leaderboard.tables import MEMORIZATION_THRESHOLD, MEMORIZED_MARK, leaders, overview_table, task_table

    flagged = dict(zip(board["submission"], board["memorized"]))
    assert flagged == {"llm-mem": True, "llm-mixed": False, "llm-clean": False, "sasrec-like": False, "pop": False}
    assert row(board, "llm-mixed")["trust.memorization.item_rate"] < MEMORIZATION_THRESHOLD  # one seed was above
    shown = overview_table(board)["submission"].tolist()
    assert f"llm-mem {MEMORIZED_MARK}" in shown and "llm-mixed" in shown and "pop (reference)" in shown
    assert sum(MEMORIZED_MARK in name for name in shown) == 1
    assert sum(MEMORIZED_MARK in name for name in task_table(board, ["NDCG@5"])["submission"]) == 1
    assert not leaders({T: board})["memorized"].iloc[0]  # sasrec-like leads


def test_export_flags_memorized_rows_and_writes_trust_cards(snap, tmp_path):
    from leaderboard.export import CARDS, export
    from leaderboard.tables import MEMORIZATION_NOTE, MEMORIZED_MARK

    files = export(snap, tmp_path, ["html", "md", "csv", "trust"])
    cards = sorted(p.name for p in (tmp_path / CARDS).iterdir())
    assert cards == sorted(f"sequential-trusty-v1--{name}-1.html" for name in ROWS)
    assert {p.name for p in files} == {"leaderboard.html", "leaderboard.md", "leaderboard.csv", *cards}
    page = (tmp_path / "leaderboard.html").read_text()
    assert re.findall(rf'data-sort="([^"]*{MEMORIZED_MARK})">', page) == [f"llm-mem {MEMORIZED_MARK}"]
    note = html.escape(MEMORIZATION_NOTE, quote=True)
    assert page.count(note) == 1  # under the task's table
    for name in ROWS:
        assert f'<a href="{CARDS}/sequential-trusty-v1--{name}-1.html">{name}@1</a>' in page
    markdown = (tmp_path / "leaderboard.md").read_text()
    assert f"| llm\\-mem {MEMORIZED_MARK} |" not in markdown and f"| llm-mem {MEMORIZED_MARK} |" in markdown
    assert f"[llm-mem\\@1]({CARDS}/sequential-trusty-v1--llm-mem-1.html)" in markdown
    csv = pd.read_csv(tmp_path / "leaderboard.csv").set_index("submission")
    assert csv["memorized"].to_dict() == {"llm-mem": True, "llm-mixed": False, "llm-clean": False,
                                          "sasrec-like": False, "pop": False}

    card = (tmp_path / CARDS / "sequential-trusty-v1--llm-mem-1.html").read_text()
    for text in ("Trust card: llm-mem@1", "main score NDCG@5", "gender gap 0.03 (p=0.41): no evidence of a gap",
                 "User-side fairness", "Counterfactual fairness", "Memorization", "0.3500 ± 0.0707",
                 note, 'href="../leaderboard.html"', "by construction"):
        assert text in card, text
    assert "<script" not in card
    other = (tmp_path / CARDS / "sequential-trusty-v1--sasrec-like-1.html").read_text()
    assert "poisoning.gain" in other and "Counterfactual fairness" not in other and note not in other

    export(snap, tmp_path / "plain", ["html", "md"])  # without "trust": no cards, no links
    assert not (tmp_path / "plain" / CARDS).exists()
    assert CARDS not in (tmp_path / "plain" / "leaderboard.html").read_text()


# ---------------------------------------------------------------- the app (streamlit.testing)


def page(app, name: str):
    app.run()
    app.switch_page(f"views/{name}.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def frame_with(app, column: str) -> pd.DataFrame:
    return next(d.value for d in app.dataframe if column in d.value.columns)


def test_trust_page_shows_every_logged_section(app):
    from leaderboard.tables import MEMORIZED_MARK
    from leaderboard.ui import esc

    page(app, "trust")
    assert [h.value for h in app.header] == [T]
    assert [s.value for s in app.subheader] == [
        "Position bias", "Output validity", "Exposure", "User-side fairness", "Counterfactual fairness",
        "Robustness", "Attacks", "Memorization", "Cost of the trust passes"]
    captions = "\n".join(c.value for c in app.caption)
    assert esc("Models that do not read prompt text score 1 and 0 by construction.") in captions
    assert esc("0 by construction for models that do not read titles") in captions
    exposure = frame_with(app, "trust.APLT@10").set_index("submission")
    assert exposure.loc["sasrec-like@1", "trust.APLT@10"] == "0.1500 ± 0.0000"
    assert {"trust.ARP@10", "trust.exposure_gini@10", "trust.hit@10.head"} <= set(exposure.columns)
    fairness = [d.value for d in app.dataframe if "age.gap" in d.value.columns][0].set_index("submission")
    assert fairness.loc["sasrec-like@1", "age.p"] == "0.0020 ± 0.0000" and "age.group.25" in fairness
    assert len(fairness) == 5  # every row logged fairness
    counterfactual = frame_with(app, "gender.snsr").set_index("submission")
    assert set(counterfactual.index) == {f"llm-mem@1 {MEMORIZED_MARK}", "llm-mixed@1", "llm-clean@1"}
    assert counterfactual.loc["llm-clean@1", "gender.jaccard@10"] == "1.0000 ± 0.0000"
    assert frame_with(app, "poisoning.gain").set_index("submission").loc["sasrec-like@1", "poisoning.gain"] \
        == "0.0400 ± 0.0000"
    memorization = frame_with(app, "item_rate").set_index("submission")
    assert memorization.loc["llm-mixed@1", "item_rate"] == "0.1750 ± 0.2475"
    assert "total" in frame_with(app, "poisoning").columns
    assert any(line == f"**{esc(attribute)}**" for attribute in ("age", "gender")
               for line in (m.value for m in app.markdown))
    assert len(app.get("plotly_chart")) == 0  # no trust.pos_* curve was logged


def test_overview_and_task_pages_flag_the_memorized_row(app):
    from leaderboard.tables import MEMORIZATION_NOTE, MEMORIZED_MARK
    from leaderboard.ui import esc

    page(app, "overview")
    shown = app.dataframe[0].value["submission"].tolist()
    assert [name for name in shown if MEMORIZED_MARK in name] == [f"llm-mem {MEMORIZED_MARK}"]
    assert f"{esc(T)}: {esc(MEMORIZATION_NOTE)}." in [c.value for c in app.caption]
    page(app, "task")
    shown = app.dataframe[0].value["submission"].tolist()
    assert [name for name in shown if MEMORIZED_MARK in name] == [f"llm-mem {MEMORIZED_MARK}"]
    assert any(MEMORIZATION_NOTE in c.value for c in app.caption)
    app.multiselect(key="paradigm").set_value(["id-from-scratch"]).run()  # the flagged row filtered out
    assert not any(MEMORIZATION_NOTE in c.value for c in app.caption)


def test_trust_card_page_reads_one_row(app):
    from leaderboard.tables import MEMORIZATION_NOTE
    from leaderboard.ui import esc

    page(app, "trust_card")
    assert app.selectbox(key="card_task").value == T
    assert app.selectbox(key="card_sub").options[0] == "sasrec-like@1"  # rank order
    app.selectbox(key="card_sub").set_value("llm-mem@1").run()
    assert not app.exception
    assert app.header[0].value == esc("llm-mem@1")
    score = app.metric[0]
    assert score.label == f"main score: {esc('NDCG@5')} (mean ± std)" and " ± " in score.value
    assert app.warning and app.warning[0].value == esc(MEMORIZATION_NOTE) + "."
    readings = "\n".join(m.value for m in app.markdown)
    assert f"- {esc('gender gap 0.03 (p=0.41): no evidence of a gap')}" in readings
    assert "Memorization" in [s.value for s in app.subheader] and "Attacks" in [s.value for s in app.subheader]
    tables = pd.concat([d.value for d in app.dataframe]).set_index("figure")["mean ± std"]
    assert tables["item_rate"] == "0.3500 ± 0.0707" and tables["text.gain"] == "2.5000 ± 0.0000"
    assert tables["age.gap"] == "0.1500 ± 0.0000"

    app.selectbox(key="card_sub").set_value("pop@1").run()
    assert not app.warning and "Memorization" not in [s.value for s in app.subheader]


def test_trust_card_preselects_from_the_query(app):
    app.query_params["task"] = T
    app.query_params["submission"] = "llm-clean"
    page(app, "trust_card")
    assert app.selectbox(key="card_sub").value == "llm-clean@1"


def test_an_empty_store_gives_an_empty_trust_card(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from leaderboard.snapshot import build_snapshot

    monkeypatch.setenv("LLM4REC_LEADERBOARD_SNAPSHOT", str(build_snapshot(f"sqlite:///{tmp_path / 'e.db'}",
                                                                          tmp_path / "snap")))
    app = page(AppTest.from_file(str(APP), default_timeout=60), "trust_card")
    assert any("No run logged trust metrics" in i.value for i in app.info)


# ---------------------------------------------------------------- llm4rec results


def results_table(trust_store: str, tmp_path: Path, *flags: str) -> str:
    from typer.testing import CliRunner

    from benchmark.cli import app as cli

    path = tmp_path / "trusty.yaml"
    path.write_text(yaml.safe_dump(TASK.model_dump(mode="json")))
    shown = CliRunner().invoke(cli, ["results", "--task", str(path), "--tracking-uri", trust_store, *flags])
    assert shown.exit_code == 0, shown.output
    return shown.output


def test_results_show_a_compact_set_of_trust_columns(trust_store, tmp_path):
    output = results_table(trust_store, tmp_path)
    header = next(line for line in output.splitlines() if "submission" in line)
    for column in ("PosGap", "tau", "ARP@10", "APLT@10", "halluc.", "comply", "dup.", "max gap", "poison", "text",
                   "memo"):
        assert re.search(rf"\b{re.escape(column)}(\s|┃)", header), (column, header)
    assert "gender.gap" not in output and "snsr" not in output  # the rest is for --all-metrics
    mem = next(line for line in output.splitlines() if "llm-mem" in line)
    assert "0.150 age" in mem and "0.350" in mem  # the largest gap with its attribute; memorization's mean
    sasrec = next(line for line in output.splitlines() if "sasrec-like" in line)
    assert "0.040" in sasrec  # its poisoning gain
    caption = " ".join(output.split())
    assert "max gap = largest fairness gap between user groups" in caption and "memo =" in caption


def test_results_all_metrics_shows_every_trust_metric(trust_store, tmp_path, board):
    from benchmark.cli import _shown_trust
    from benchmark.tracking import ResultsStore, finished_runs, summarize

    table = summarize(finished_runs(ResultsStore(trust_store), TASK), TASK)
    logged = sorted(c for c in board.columns if c.startswith("trust.") and not c.endswith(" std"))
    assert sorted(_shown_trust(TASK, table, True)) == logged and len(logged) > 40
    assert set(_shown_trust(TASK, table, False)) < set(logged) | {"trust.fairness.*.gap"}
    output = results_table(trust_store, tmp_path, "--all-metrics")
    assert "trust figures (docs/trust.md)" in output
    rows = [line.split("│")[1].strip() for line in output.splitlines() if line.count("│") > 2]
    assert [r for r in rows if r.startswith("fairness.")] and set(m.removeprefix("trust.") for m in logged) <= set(rows)
    metrics_header = next(line for line in output.splitlines() if "submission" in line)
    assert "gender.gap" not in metrics_header  # a table of their own, one row per figure


# ---------------------------------------------------------------- headless Chromium


@pytest.fixture(scope="module")
def served(snapshot_dir, tmp_path_factory):
    """`llm4rec leaderboard serve` (streamlit run on 127.0.0.1) over the trust snapshot;
    the server is always stopped."""
    with serving(snapshot_dir, tmp_path_factory.mktemp("trust-serve")) as url:
        yield url


def test_chromium_shows_the_trust_card(served, tmp_path):
    from test_leaderboard_browser import GRID_ROWS_JS, _require_browser, open_page

    from leaderboard.tables import MEMORIZATION_NOTE

    sync_playwright = _require_browser()
    shot = tmp_path / "trust-card.png"
    with sync_playwright() as playwright:
        browser, page = open_page(playwright, tmp_path / "chromium-profile", height=3200)
        try:
            page.goto(f"{served}trust_card?task={T}&submission=llm-mem", wait_until="domcontentloaded",
                      timeout=60_000)
            page.get_by_text("In plain words", exact=True).wait_for(timeout=90_000)
            page.locator('[data-testid="stMetricValue"]').first.wait_for(timeout=30_000)
            page.wait_for_selector('[data-testid="stDataFrame"] table[role=grid]', state="attached", timeout=30_000)
            page.wait_for_timeout(1500)  # let the canvas tables paint
            page.screenshot(path=str(shot), full_page=True)
            body = page.inner_text("body")
            figures = {row["figure"]: row["mean ± std"] for frame in page.locator('[data-testid="stDataFrame"]').all()
                       if frame.locator("table[role=grid]").count() for row in frame.evaluate(GRID_ROWS_JS)}
        finally:
            browser.close()
    shutil.copy(shot, CARD_SHOT)
    print(f"\ntrust card screenshot: {shot} (copied to {CARD_SHOT})")
    for text in ("Trust card", "llm-mem@1", "main score: NDCG@5 (mean ± std)",
                 "gender gap 0.03 (p=0.41): no evidence of a gap", "age gap 0.15 (p=0.002): the groups' scores differ", MEMORIZATION_NOTE, "User-side fairness",
                 "Counterfactual fairness", "by construction", "Robustness", "Attacks", "Memorization"):
        assert text in body, text
    assert figures["age.gap"] == "0.1500 ± 0.0000" and figures["trust.PosGap"] == "0.1200 ± 0.0000", figures
