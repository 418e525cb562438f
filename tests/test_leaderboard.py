"""The leaderboard on a real fixture store: runs made by the harness on small synthetic
tasks (finished, failed, partial (--limit-users), several seeds, a budget study),
zero-shot runs with trust metrics and LLM identity logged through the ResultsStore (one
verified and one self-reported among them), and a submission whose card carries HTML and
Markdown injection. The snapshot, the significance tests, the export
and every page of the Streamlit app (streamlit.testing) are checked on it."""
from __future__ import annotations

import html
import json
import os
import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, shipped, synthetic_task
from leaderboard_fixtures import APP, snapshot_fixtures

INJECTION = "<script>alert(1)</script> **bold** [link](javascript:alert(1))"
# A name logged straight to the store (MLflow does not check names): escaped everywhere.
HOSTILE = "<b>evil</b>**x**"
# Rows on another's word: tagged as `llm4rec verify` (the maintainer's sandboxed re-run)
# and `llm4rec store import` (no re-run) tag them.
VERIFIED, SELF_REPORTED = "vetted-llm", "claimed-llm"
VERIFIED_TAGS = {"sandbox": "true", "provenance": "verified", "verified": "true", "bundle_hash": "f00d"}
SELF_REPORTED_TAGS = {"sandbox": "true", "provenance": "self-reported", "bundle_hash": "beef"}

NOISY_POP = """
import numpy as np
from benchmark.api import Recommender

class Model(Recommender):
    def __init__(self, noise: float = 0.5, train_samples: int | None = None):
        super().__init__(noise=noise, train_samples=train_samples)
        self.noise, self.train_samples = noise, train_samples

    def fit(self, train, ctx):
        items = train.interactions["item_id"].to_numpy()
        if self.train_samples:
            items = items[: self.train_samples]
        self.counts = np.bincount(items, minlength=train.n_items).astype(np.float32)
        self.rng = np.random.default_rng(ctx.seed)

    def score(self, request):
        base = self.counts if request.candidates is None else self.counts[request.candidates]
        base = np.broadcast_to(base, (len(request.users), request.n_candidates))
        return (base + self.noise * self.rng.random(base.shape)).astype(np.float32)
"""

NAN_SCORES = """
import numpy as np
from benchmark.api import Recommender

class Model(Recommender):
    def score(self, request):
        return np.full((len(request.users), request.n_candidates), np.nan, dtype=np.float32)
"""


def write_submission(root: Path, name: str, code: str, **card) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    fields = {"name": name, "version": "1", "paradigm": "id-from-scratch", "authors": ["tests"],
              "description": f"test submission {name}", "license": "MIT", "entrypoint": "model:Model"} | card
    (folder / "submission.yaml").write_text(yaml.safe_dump(fields))
    (folder / "model.py").write_text(textwrap.dedent(code))
    return folder


def ctr_task(**changes):
    return synthetic_task(task="ctr/synthetic", family="ctr", split={"method": "global_time"},
                          ctr={"label_min_rating": 4, "user_features": ["group"], "item_features": ["genre"]},
                          metrics=["AUC", "GAUC", "LogLoss"], main_score="AUC", batch_size=50, **changes)


def _log_zero_shot(store, seed: int, name: str, quality: float, paradigm: str = "zero-shot",
                   partial: bool = False, accelerator: str | None = None, extra_tags: dict | None = None) -> None:
    """A zero-shot LLM run as the zero-shot runner logs it: trust metrics, llm.* tags,
    per-user metrics. (That runner is built elsewhere; the store format is the contract.)"""
    rng = np.random.default_rng(seed)
    per_user = pd.DataFrame({"user": np.arange(50), "NDCG@10": np.clip(rng.normal(quality, 0.2, 50), 0, 1)})
    tags = {"task": "zeroshot/synthetic", "task_version": 1, "family": "zeroshot", "dataset": "synthetic",
            "submission": name, "submission_version": "1", "seed": seed,
            "paradigm": paradigm,
            "main_score": "NDCG@10", "llm.model": "SmolLM2-135M-Instruct", "llm.quantization": "Q4_1",
            "llm.decoding": "greedy", "llm.prompt_hash": "abc123", "harness_git_sha": "deadbeef"}
    params = {"seed": seed}
    if accelerator:
        tags["env.accelerator"] = accelerator
    tags |= extra_tags or {}
    if partial:
        tags["partial"], params["limit_users"] = "true", 20
    run_id = store.start("zeroshot/synthetic@v1", f"{name} seed={seed}", tags, params)
    metrics = {"NDCG@10": float(per_user["NDCG@10"].mean()), "HR@10": quality + 0.1,
               "trust.PosGap": 0.12, "trust.kendall_tau": 0.4, "trust.hallucination_rate": 0.05,
               "trust.compliance": 0.97, "trust.duplicate_rate": 0.01, "trust.ARP@10": 120.0,
               "cost.fit_seconds": 0.0, "cost.score_seconds": 30.0, "cost.tokens": 12345,
               "cost.total_parameters": 134_515_008}
    metrics |= {f"trust.pos_{p}.NDCG@10": quality * (1.2 - p / 40) for p in (1, 5, 10, 15, 20)}
    store.log_metrics(run_id, metrics)
    store.log_artifacts(run_id, {"per_user_metrics.parquet": per_user})
    store.end(run_id)


def build_fixture_store(root: Path) -> str:
    """The fixture store: returns its tracking URI."""
    from benchmark.runner import evaluate
    from benchmark.tracking import ResultsStore

    uri = f"sqlite:///{root / 'mlflow.db'}"
    subs = root / "submissions"
    inject = write_submission(subs, "inject", NOISY_POP, description=INJECTION, paradigm="pretrain-finetune",
                              hyperparameters={"noise": 0.5})
    broken = write_submission(subs, "broken", NAN_SCORES)
    sequential = synthetic_task(seeds=[0, 1])
    evaluate([shipped("random"), shipped("pop"), inject, broken], sequential, tracking_uri=uri)
    evaluate([shipped("random"), shipped("pop")], ctr_task(seeds=[0, 1]), tracking_uri=uri)
    for budget in (100, 400):  # a budget study: one submission version, two hyperparameter sets
        study = write_submission(subs, "study", NOISY_POP, hyperparameters={"noise": 0.1, "train_samples": budget})
        evaluate(study, sequential, seeds=[0], tracking_uri=uri, sandbox=False)  # shown as unsandboxed
    hasty = write_submission(subs, "hasty", NOISY_POP)
    evaluate(hasty, sequential, seeds=[0], tracking_uri=uri, limit_users=10)  # partial: never ranked
    store = ResultsStore(uri)
    for seed in (0, 1):
        # seeds split between machines, as with `llm4rec store merge`
        _log_zero_shot(store, seed, "llm-zs", 0.3, accelerator=("cuda: NVIDIA H100 80GB HBM3", "cpu: 2 cores")[seed])
        _log_zero_shot(store, seed, "pop", 0.2, "non-personalized")
    _log_zero_shot(store, 0, HOSTILE, 0.05, "in-context")
    _log_zero_shot(store, 0, "llm-quick", 0.9, partial=True)  # a --limit-users look: never ranked
    _log_zero_shot(store, 0, VERIFIED, 0.15, extra_tags=VERIFIED_TAGS)
    _log_zero_shot(store, 0, SELF_REPORTED, 0.1, extra_tags=SELF_REPORTED_TAGS)
    return uri


@pytest.fixture(scope="module")
def fixture_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("leaderboard-store")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LLM4REC_CACHE", str(root / "cache"))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        return build_fixture_store(root)


snapshot_dir, snap, app = snapshot_fixtures("fixture_store", "snapshot")


@pytest.fixture(scope="module")
def boards(snap):
    from leaderboard.tables import all_leaderboards

    return all_leaderboards(snap)


SEQ, CTR, ZS = "sequential/synthetic@v1", "ctr/synthetic@v1", "zeroshot/synthetic@v1"


# ---------------------------------------------------------------- snapshot


def test_snapshot_holds_every_run_with_its_state(snap):
    runs = snap.runs
    seq = runs[runs["experiment"] == SEQ]
    states = seq.groupby("submission")["state"].agg(lambda s: sorted(set(s))).to_dict()
    assert states == {"random": ["finished"], "pop": ["finished"], "inject": ["finished"], "study": ["finished"],
                      "broken": ["failed"], "hasty": ["partial"]}
    assert "rule 'finite'" in seq.loc[seq["submission"] == "broken", "failure_reason"].iloc[0]
    # Metric names are the task's ('@', not MLflow's '_at_'), tags and params kept.
    assert {"metric:NDCG@5", "metric:cost.fit_seconds", "param:hp.train_samples", "tag:harness_git_sha",
            "tag:llm.model", "metric:trust.pos_5.NDCG@10"} <= set(runs.columns)
    assert not any("_at_" in c for c in runs.columns)
    assert snap.meta["n_runs"] == len(runs) == 23


def test_snapshot_keeps_per_user_metrics_of_ranked_runs_only(snap):
    from benchmark.tracking.results import counted_runs

    ranked = counted_runs(snap.runs)
    assert set(snap.per_user["run_id"].astype(str)) == set(ranked["run_id"])
    assert not ranked["state"].ne("finished").any() and not ranked["submission"].isin(["hasty", "broken"]).any()
    pop = ranked[(ranked["experiment"] == SEQ) & (ranked["submission"] == "pop")]
    rows = snap.per_user[snap.per_user["run_id"].astype(str).isin(pop["run_id"])]
    assert len(rows) == 2 * 60  # two seeds, 60 users
    # The per-user values average to the logged metric.
    first = pop.iloc[0]
    users = rows[rows["run_id"].astype(str) == first["run_id"]]
    assert users["NDCG@5"].mean() == pytest.approx(first["metric:NDCG@5"])


def test_snapshot_cards_and_task_specs(snap):
    cards = snap.cards.set_index("submission")
    assert json.loads(cards.loc["inject", "card"])["description"] == INJECTION
    assert set(snap.tasks["experiment"]) == {SEQ, CTR}  # the zero-shot runs logged no task.json
    assert json.loads(snap.tasks.set_index("experiment").loc[CTR, "spec"])["main_score"] == "AUC"


def test_snapshot_rebuild_swaps_the_folder_and_changes_the_stamp(fixture_store, tmp_path):
    from leaderboard.snapshot import build_snapshot, load_snapshot, snapshot_stamp

    folder = build_snapshot(fixture_store, tmp_path / "snap")
    first = snapshot_stamp(folder)
    build_snapshot(fixture_store, folder)
    assert snapshot_stamp(folder) != first
    assert [p.name for p in tmp_path.iterdir()] == ["snap"]  # no staging folders left behind
    assert len(load_snapshot(folder).runs) == 23


def test_partial_by_limit_users_param_and_tag():
    from benchmark.tracking.results import normalize_runs

    runs = normalize_runs(pd.DataFrame({
        "run_id": list("abcd"), "experiment": ["t@v1"] * 4, "status": ["FINISHED"] * 3 + ["RUNNING"],
        "start_time": [1, 2, 3, 4], "end_time": [1, 2, 3, None],
        "tag:partial": ["true", "false", None, None], "param:limit_users": [None, None, "10", None]}))
    assert runs["state"].tolist() == ["partial", "finished", "partial", "running"]
    assert runs["task"].tolist() == ["t"] * 4 and runs["task_version"].tolist() == ["1"] * 4


# ---------------------------------------------------------------- tables and significance


def test_rows_group_seeds_like_llm4rec_results(fixture_store, boards):
    from benchmark.tracking import ResultsStore, finished_runs, summarize

    board = boards[SEQ].set_index("submission")
    reference = summarize(finished_runs(ResultsStore(fixture_store), synthetic_task(seeds=[0, 1])),
                          synthetic_task(seeds=[0, 1])).set_index("submission")
    for name in ("random", "pop", "inject"):
        assert board.loc[name, "score"] == pytest.approx(reference.loc[name, "NDCG@5"])
        assert board.loc[name, "score_std"] == pytest.approx(reference.loc[name, "NDCG@5 std"])
        assert board.loc[name, "seeds"] == 2
    assert board.loc["pop", "score_std"] == 0 and board.loc["random", "score_std"] > 0
    assert "hasty" not in board.index and "broken" not in board.index  # partial and failed: not ranked
    # The budget study: one version, two hyperparameter sets, two rows.
    assert sorted(board.loc["study", "variant"]) == ["train_samples=100", "train_samples=400"]
    assert boards[SEQ]["score"].is_monotonic_decreasing
    assert boards[SEQ]["rank"].tolist() == [1, 2, 3, 4, 5]
    assert boards[SEQ]["reference"].sum() == 2


def test_metric_direction_and_ctr_ranking(boards):
    from benchmark.eval.registry import higher_is_better

    assert higher_is_better("AUC") and higher_is_better("NDCG@10") and higher_is_better("trust.compliance")
    assert not higher_is_better("LogLoss") and not higher_is_better("cost.fit_seconds")
    ctr = boards[CTR]
    assert ctr["main_score"].iloc[0] == "AUC" and ctr["score"].is_monotonic_decreasing
    assert {"AUC", "GAUC", "LogLoss", "LogLoss std"} <= set(ctr.columns)


def test_budget_lines_join_a_study_s_named_variants():
    from leaderboard.tables import _budget_lines

    budget = pd.DataFrame({"submission": ["sasrec-n100@1", "sasrec-n1000@1", "sasrec@1", "recbole-sasrec@1",
                                          "x-a@1", "x-b@1"], "train_samples": [100, 1000, 5000, 300, 5, 5]})
    assert _budget_lines(budget).tolist() == ["sasrec@1", "sasrec@1", "sasrec@1", "recbole-sasrec@1", "x-a@1", "x-b@1"]


def test_lower_is_better_main_score_ranks_ascending():
    from leaderboard.tables import leaderboard

    ranked = pd.DataFrame({"run_id": ["a", "b"], "experiment": ["t@v1"] * 2, "submission": ["x", "y"],
                           "version": ["1", "1"], "config": ["{}", "{}"], "paradigm": ["id-from-scratch"] * 2,
                           "task": ["t"] * 2, "task_version": ["1"] * 2, "family": ["ctr"] * 2,
                           "dataset": ["d"] * 2, "main_score": ["LogLoss"] * 2, "metric:LogLoss": [0.7, 0.5]})
    board = leaderboard(ranked, pd.DataFrame(columns=["run_id", "user"]), "t@v1")
    assert board["submission"].tolist() == ["y", "x"] and board["delta"].iloc[1] == pytest.approx(0.2)
    assert board["verdict"].tolist() == ["leader", "—"]  # no per-user metrics: no test


def test_holm_and_the_paired_test():
    from scipy import stats

    from benchmark.eval.significance import compare_to_reference, holm, paired_pvalue

    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, np.nan, 0.01]) == pytest.approx([0.5, np.nan, 0.02], nan_ok=True)
    rng = np.random.default_rng(0)
    a, b = rng.random(200), rng.random(200)
    assert paired_pvalue(a, b) == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert paired_pvalue(a, a) == 1.0 and paired_pvalue(a, a - 0.1) == 0.0
    assert np.isnan(paired_pvalue(a[:1], b[:1]))
    users = pd.Index(range(200), name="user")
    matrix = pd.DataFrame({"lead": pd.Series(a + 0.2, users), "close": pd.Series(a + 0.19 + rng.normal(0, .1, 200), users),
                           "far": pd.Series(b, users), "same": pd.Series(a + 0.2, users)}).T
    matrix.loc["far", :9] = np.nan  # a row evaluated on fewer users: tested on the common ones
    matrix.index = pd.MultiIndex.from_arrays([matrix.index, ["0"] * len(matrix)], names=["key", "draw"])  # one seed
    table = compare_to_reference(matrix, "lead").set_index("key")
    matrix = matrix.droplevel("draw")
    for key in ("close", "far"):
        common = matrix.loc[key].notna()
        expected = stats.ttest_rel(matrix.loc["lead", common], matrix.loc[key, common]).pvalue
        assert table.loc[key, "p_value"] == pytest.approx(expected, rel=1e-9)
    assert table.loc["far", "n_users"] == 190 and table.loc["same", "p_value"] == 1.0
    assert table["p_holm"].tolist() == pytest.approx(holm(table["p_value"]).tolist())
    assert bool(table.loc["far", "significant"]) and not bool(table.loc["same", "significant"])


def test_significance_against_the_leader_on_per_user_metrics(snap, boards):
    from benchmark.eval.significance import paired_pvalue

    def per_user_means(per_user, run_ids, column):
        rows = per_user[per_user["run_id"].isin(list(run_ids))]
        return rows.groupby("user", sort=True)[column].mean().dropna()

    zs = boards[ZS].set_index("submission")
    assert zs.index[0] == "llm-zs" and zs.loc["llm-zs", "verdict"] == "leader"
    assert bool(zs.loc["pop", "significant"]) and zs.loc["pop", "verdict"].startswith("worse")
    # Seeds are averaged per user before the test.
    ids = lambda name: zs.loc[name, "run_ids"]  # noqa: E731
    lead, other = per_user_means(snap.per_user, ids("llm-zs"), "NDCG@10"), per_user_means(snap.per_user, ids("pop"), "NDCG@10")
    assert len(lead) == 50
    raw = paired_pvalue(lead.to_numpy(), other.to_numpy())
    assert zs.loc["pop", "p_value"] == pytest.approx(raw)
    assert zs.loc["pop", "p_holm"] == pytest.approx(min(1.0, 2 * raw)) or zs.loc["pop", "p_holm"] >= raw
    # CTR: tested on the per-user AUC column.
    assert np.isfinite(boards[CTR]["p_value"].iloc[1])


def test_overview_tables_one_per_family(snap, boards):
    from leaderboard.tables import overview_tables

    tables = overview_tables(snap, boards)
    assert list(tables) == ["sequential", "ctr", "zeroshot"]
    seq = tables["sequential"]
    assert seq.loc[0, "submission"] == "pop (reference)" and seq.loc[0, "vs leader"] == "leader"
    provenance = dict(zip(seq["submission"], seq["provenance"]))
    assert provenance["study"] == "unsandboxed" and provenance["pop (reference)"] == "sandboxed"  # study: --no-sandbox
    assert seq.loc[0, "score (mean ± std)"] == f"{boards[SEQ]['score'].iloc[0]:.4f} ± 0.0000"
    assert {"fit s", "inference s", "trainable params", "paradigm", "rank", "Δ leader"} <= set(seq.columns)
    # Seconds compare only within a device: each row says where its runs ran.
    assert set(seq["ran on"]) == {f"CPU ({os.cpu_count()} cores)"}  # the harness tags its runs
    ran_on = tables["zeroshot"].set_index("submission")["ran on"]
    assert ran_on["llm-zs"] == "CPU (2 cores) + H100 80GB HBM3" and ran_on[HOSTILE] == "?"  # ? = no tag


def test_each_row_s_provenance_in_the_fixture(boards):
    def provenance(experiment: str) -> dict:
        return dict(zip(boards[experiment]["submission"], boards[experiment]["provenance"]))

    assert provenance(ZS) == {"llm-zs": "unsandboxed", "pop": "unsandboxed", HOSTILE: "unsandboxed",
                              VERIFIED: "verified", SELF_REPORTED: "self-reported"}  # logged without a sandbox tag
    assert provenance(SEQ) == {"pop": "sandboxed", "random": "sandboxed", "inject": "sandboxed", "study": "unsandboxed"}


def test_verified_only_ranks_the_maintainer_s_rows_anew(snap, boards):
    from leaderboard.tables import all_leaderboards
    from leaderboard.ui import maintainer_snapshot

    verified = all_leaderboards(maintainer_snapshot(snap, boards))
    assert list(verified) == [SEQ, CTR, ZS]
    zs = verified[ZS]
    assert zs["submission"].tolist() == [VERIFIED] and zs["rank"].tolist() == [1]
    assert zs["verdict"].tolist() == ["leader"]
    assert boards[ZS].set_index("submission").loc[VERIFIED, "rank"] > 1  # behind unsandboxed rows on the full board
    seq = verified[SEQ].set_index("submission")
    assert set(seq.index) == {"pop", "random", "inject"} and set(seq["provenance"]) == {"sandboxed"}
    full = boards[SEQ].set_index("submission")
    assert seq["score"].to_dict() == pytest.approx(full.loc[seq.index, "score"].to_dict())  # the same rows


# ---------------------------------------------------------------- export


def test_export_html_md_csv_escape_submitter_text(snap, tmp_path):
    from leaderboard.export import export

    files = export(snap, tmp_path, ["html", "md", "csv"])
    assert [f.name for f in files] == ["leaderboard.html", "leaderboard.md", "leaderboard.csv"]
    page = (tmp_path / "leaderboard.html").read_text()
    assert "&lt;b&gt;evil&lt;/b&gt;**x**" in page and "<b>evil</b>" not in page
    assert "cdn.plot.ly" not in page.split("</script>", 1)[1] and "Plotly.newPlot" in page  # plotly.js inlined
    assert page.count("<table class=\"sortable\">") == 3 and "llm-zs@1" in page
    markdown = (tmp_path / "leaderboard.md").read_text()
    assert "\\<b\\>evil\\</b\\>\\*\\*x\\*\\*" in markdown and "### sequential/synthetic\\@v1 · NDCG\\@5" in markdown
    csv = pd.read_csv(tmp_path / "leaderboard.csv")
    assert set(csv["task"]) == {SEQ, CTR, ZS} and HOSTILE in set(csv["submission"])
    assert {"score", "score_std", "p_holm", "NDCG@5", "NDCG@5 std", "AUC"} <= set(csv.columns)


def _html_row(page: str, submission: str) -> str:
    """The first row of a task's table in the HTML export whose submission cell is
    `submission`."""
    return next(row for row in re.findall(r"<tr[ >].*?</tr>", page) if f'data-sort="{submission}">' in row)


def test_export_carries_the_provenance_badge(snap, tmp_path):
    from leaderboard.export import export
    from leaderboard.tables import PROVENANCE_BADGES

    export(snap, tmp_path, ["html", "md", "csv"])
    page = (tmp_path / "leaderboard.html").read_text()
    badge = 'class="badge provenance provenance-{}" style="background:{}"'
    for submission, provenance in ((VERIFIED, "verified"), (SELF_REPORTED, "self-reported"), ("study", "unsandboxed"),
                                   ("inject", "sandboxed")):
        row = _html_row(page, submission)
        assert badge.format(provenance, PROVENANCE_BADGES[provenance].color) in row, row
        assert f">{PROVENANCE_BADGES[provenance].label}</span>" in row
    assert page.count("<th>provenance</th>") == 4  # the leaders and each task's table
    assert all(f"<dd>{html.escape(b.meaning, quote=True)}</dd>" in page for b in PROVENANCE_BADGES.values())  # legend

    markdown = (tmp_path / "leaderboard.md").read_text()
    assert markdown.count("| rank | submission | provenance | version |") == 3
    rows = {line.split(" | ")[1]: line.split(" | ")[2] for line in markdown.splitlines() if line.startswith("| ")}
    assert rows[VERIFIED] == "✓ verified" and rows[SELF_REPORTED] == "self-reported"
    assert rows["study"] == "unsandboxed" and rows["inject"] == "sandboxed"
    assert "**self-reported**: imported from a submitter's bundle without a re-run" in markdown

    raw = (tmp_path / "leaderboard.csv").read_text()
    assert '"provenance"' in raw and '"self-reported"' in raw  # written by spreadsheet_csv: text quoted
    csv = pd.read_csv(tmp_path / "leaderboard.csv")
    provenance = csv.set_index(["task", "submission"])["provenance"]
    assert provenance[(ZS, VERIFIED)] == "verified" and provenance[(ZS, SELF_REPORTED)] == "self-reported"
    assert set(provenance[(SEQ, "study")]) == {"unsandboxed"} and provenance[(SEQ, "pop")] == "sandboxed"
    assert set(csv["provenance"]) == set(PROVENANCE_BADGES)


def test_chart_labels_are_escaped(boards):
    from leaderboard.charts import score_bars

    figure = score_bars(boards[ZS])
    labels = [y for trace in figure.data for y in trace.y]
    assert "&lt;b&gt;evil&lt;/b&gt;**x**@1" in labels and not any("<b>" in y for y in labels)


# ---------------------------------------------------------------- the CLI


def llm4rec(*args: str, cwd: Path):
    import subprocess
    import sys

    env = os.environ | {"PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "benchmark.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("command", ["leaderboard", "leaderboard snapshot", "leaderboard serve", "leaderboard export"])
def test_leaderboard_commands_have_help(command, tmp_path):
    done = llm4rec(*command.split(), "--help", cwd=tmp_path)
    assert done.returncode == 0 and "Usage:" in done.stdout


def test_cli_snapshot_then_export(fixture_store, tmp_path):
    done = llm4rec("leaderboard", "snapshot", "--tracking-uri", fixture_store, "--out", "snap", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "23 runs" in done.stderr and (tmp_path / "snap" / "runs.parquet").is_file()
    done = llm4rec("leaderboard", "export", "--snapshot", "snap", "-f", "md", "-f", "csv", "--out", "site", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "site").iterdir()) == ["leaderboard.csv", "leaderboard.md"]


# ---------------------------------------------------------------- the app (streamlit.testing)


def page(app, name: str):
    app.run()
    if name != "overview":
        app.switch_page(f"views/{name}.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def markdown_text(app) -> str:
    return "\n".join(m.value for m in app.markdown)


def assert_no_raw_injection(app) -> None:
    """Nothing that Streamlit renders as Markdown carries the injected markup unescaped."""
    for element in [*app.markdown, *app.caption, *app.header, *app.subheader, *app.title]:
        for raw in ("<script>", "<b>evil", "**bold**", "[link](javascript", "**x**"):
            assert raw not in element.value, (raw, element.value)


def test_overview_page(app, boards):
    page(app, "overview")
    text = markdown_text(app)
    assert "llm\\-zs\\@1" in text and "0\\.3144" not in text or "0\\." in text
    for leader in ("pop\\@1\\.0", "llm\\-zs\\@1"):
        assert leader in text
    frames = [d.value for d in app.dataframe]
    assert len(frames) == 3  # one table per family
    shown = pd.concat(frames)
    assert not shown["submission"].str.contains("hasty|broken|llm-quick").any()
    assert "pop (reference)" in set(shown["submission"])
    assert any("not ranked" in i.value for i in app.info)
    assert_no_raw_injection(app)


def provenance_shown(frame: pd.DataFrame) -> dict:
    return dict(zip(frame["submission"], frame["provenance"]))


def family_frame(app, experiment: str) -> pd.DataFrame:
    return next(f for f in (d.value for d in app.dataframe) if f["task"].str.startswith(experiment).all())


def provenance_config(app) -> dict:
    """The column config of every table's provenance column."""
    configs = [json.loads(d.proto.columns).get("provenance") for d in app.dataframe]
    assert configs and all(configs)
    return configs[0]


def leader_line(app, experiment: str) -> str:
    from leaderboard.ui import esc

    return next(line for line in markdown_text(app).splitlines() if line.startswith(f"- **{esc(experiment)}**"))


def test_overview_shows_provenance_badges_and_verified_only(app):
    from leaderboard.tables import PROVENANCE_BADGES

    page(app, "overview")
    assert app.toggle(key="verified_only").value is False  # off by default
    assert provenance_shown(family_frame(app, ZS)) == {"llm-zs": "unsandboxed", "pop (reference)": "unsandboxed",
                                                       HOSTILE: "unsandboxed", VERIFIED: "✓ verified",
                                                       SELF_REPORTED: "self-reported"}
    assert provenance_shown(family_frame(app, SEQ))["study"] == "unsandboxed"
    # Drawn as coloured pills, one colour per badge, the meanings in the header's tooltip.
    config = provenance_config(app)
    assert config["type_config"]["type"] == "multiselect"
    assert {o["value"]: o["color"] for o in config["type_config"]["options"]} == {
        b.label: b.color for b in PROVENANCE_BADGES.values()}
    assert "re\\-run by the maintainer" in config["help"]
    legend = next(c.value for c in app.caption if c.value.startswith("Provenance of each row"))
    assert ":green-badge[✓ verified]" in legend and ":gray-badge[self\\-reported]" in legend
    assert ":blue-badge[sandboxed]" in leader_line(app, SEQ) and ":orange-badge[unsandboxed]" in leader_line(app, ZS)

    app.toggle(key="verified_only").set_value(True).run()
    assert not app.exception
    shown = pd.concat([d.value for d in app.dataframe])
    assert set(shown["provenance"]) == {"✓ verified", "sandboxed"}
    assert not shown["submission"].isin(["study", "llm-zs", HOSTILE, SELF_REPORTED]).any()
    zs = family_frame(app, ZS)
    assert zs["submission"].tolist() == [VERIFIED] and zs["vs leader"].tolist() == ["leader"]  # ranked anew
    assert "vetted\\-llm\\@1" in leader_line(app, ZS) and ":green-badge[✓ verified]" in leader_line(app, ZS)
    assert_no_raw_injection(app)


def test_task_page_shows_provenance_and_filters_verified_only(app):
    page(app, "task")
    app.selectbox(key="task").set_value(ZS).run()
    table = app.dataframe[0].value
    assert table.columns[:4].tolist() == ["rank", "submission", "provenance", "version"]
    assert provenance_shown(table) == {"llm-zs": "unsandboxed", "pop": "unsandboxed", HOSTILE: "unsandboxed",
                                       VERIFIED: "✓ verified", SELF_REPORTED: "self-reported"}
    assert provenance_config(app)["type_config"]["type"] == "multiselect"
    assert any(c.value.startswith("Provenance of each row") for c in app.caption)

    app.toggle(key="verified_only").set_value(True).run()
    app.selectbox(key="task").set_value(ZS).run()
    table = app.dataframe[0].value
    assert table["submission"].tolist() == [VERIFIED] and table["rank"].tolist() == [1]
    app.selectbox(key="task").set_value(SEQ).run()
    assert set(app.dataframe[0].value["submission"]) == {"pop", "random", "inject"}  # the --no-sandbox study hidden
    assert set(app.dataframe[0].value["provenance"]) == {"sandboxed"}


def test_task_page_filters_metrics_chart_and_csv(app):
    page(app, "task")
    app.selectbox(key="task").set_value(CTR).run()
    table = app.dataframe[0].value
    assert {"AUC", "AUC std", "GAUC", "LogLoss", "vs leader", "p (Holm)"} <= set(table.columns)
    assert pd.api.types.is_float_dtype(table["AUC"])  # numeric: the columns sort by value
    assert len(app.get("download_button")) == 1 and len(app.get("plotly_chart")) == 1
    app.selectbox(key="task").set_value(SEQ).run()
    app.multiselect(key="paradigm").set_value(["pretrain-finetune"]).run()
    assert app.dataframe[0].value["submission"].tolist() == ["inject"]
    app.multiselect(key="paradigm").set_value([]).run()
    app.multiselect(key="family").set_value(["zeroshot"]).run()
    assert app.selectbox(key="task").options == [ZS]
    app.multiselect(key="size").set_value(["100M–1B"]).run()
    assert len(app.dataframe[0].value) == 5  # 134.5M parameters
    app.multiselect(key="size").set_value(["< 1M"]).run()
    assert any("No submission matches" in i.value for i in app.info)


def test_paradigms_page(app):
    page(app, "paradigms")
    pivot = app.dataframe[0].value
    assert {"non-personalized", "pretrain-finetune", "id-from-scratch", "zero-shot"} <= set(pivot.columns)
    app.selectbox(key="paradigm_task").set_value(SEQ).run()
    assert len(app.get("plotly_chart")) == 3  # by paradigm, against cost, against budget
    assert app.dataframe[-1].value["train_samples"].tolist() == [100.0, 400.0]
    app.selectbox(key="paradigm_task").set_value(CTR).run()
    assert any("training budget" in i.value for i in app.info)


def test_trust_page(app):
    page(app, "trust")
    assert [h.value for h in app.header] == [ZS]
    columns = set().union(*(d.value.columns for d in app.dataframe))
    assert {"trust.PosGap", "trust.kendall_tau", "trust.hallucination_rate", "trust.compliance",
            "trust.duplicate_rate", "trust.ARP@10"} <= columns
    assert len(app.get("plotly_chart")) == 1  # position bias curve
    # A partial run's diagnostics are shown, as its own row; it is never ranked.
    assert "llm-quick@1 (partial)" in set(app.dataframe[0].value["submission"])


def test_overview_lists_tasks_without_ranked_runs(snap, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from leaderboard.snapshot import Snapshot, write_snapshot

    runs = snap.runs.copy()
    runs.loc[runs["experiment"] == CTR, "state"] = "partial"
    folder = write_snapshot(Snapshot(runs, snap.per_user, snap.cards, snap.tasks, snap.meta), tmp_path / "snap")
    monkeypatch.setenv("LLM4REC_LEADERBOARD_SNAPSHOT", str(folder))
    app = page(AppTest.from_file(str(APP), default_timeout=60), "overview")
    assert len(app.dataframe) == 2
    captions = [c.value for c in app.caption]
    assert any("no finished, complete runs yet" in c and "4 partial" in c for c in captions), captions


def test_detail_page_shows_the_card_as_text(app):
    page(app, "detail")
    app.selectbox(key="detail_task").set_value(SEQ).run()
    app.selectbox(key="detail_sub").set_value("inject").run()
    assert not app.exception
    assert INJECTION in [t.value for t in app.text]
    assert_no_raw_injection(app)
    frames = [d.value for d in app.dataframe]
    assert any("harness_git_sha" in f.columns for f in frames)
    assert any("hp.noise" in f.columns for f in frames)  # hyperparameters
    runs = next(f for f in frames if "state" in f.columns)
    # where each run ran and how busy the machine was: the context of its seconds
    assert set(runs["ran on"]) == {f"CPU ({os.cpu_count()} cores)"} and (runs["load avg"] >= 0).all()
    assert len(app.get("plotly_chart")) == 1  # per-user distribution
    app.selectbox(key="detail_task").set_value(ZS).run()
    app.selectbox(key="detail_sub").set_value(HOSTILE).run()
    assert not app.exception
    assert_no_raw_injection(app)
    frames = [d.value for d in app.dataframe]
    provenance = next(f for f in frames if "llm.model" in f.columns)
    assert set(provenance["llm.model"]) == {"SmolLM2-135M-Instruct"} and "llm.prompt_hash" in provenance


def test_status_page(app):
    page(app, "status")
    status = app.dataframe[1].value
    assert set(status["state"]) == {"failed", "partial"}
    assert status.loc[status["state"] == "failed", "reason"].str.contains("rule 'finite'").all()
    app.multiselect(key="states").set_value(["partial"]).run()
    assert set(app.dataframe[1].value["submission"]) == {"hasty", "llm-quick"}


def parses_as_llm4rec(command: str) -> bool:
    """The command line names options the CLI has: parsed with --help added, so that
    nothing runs (an unknown option fails the parse before --help is handled)."""
    import shlex

    from typer.testing import CliRunner

    from benchmark.cli import app as cli

    words = shlex.split(command)
    return words[0] == "llm4rec" and CliRunner().invoke(cli, [*words[1:], "--help"]).exit_code == 0


def test_submit_page_walks_through_submit_and_verify(app):
    from leaderboard.tables import PROVENANCE_BADGES
    from leaderboard.ui import esc, provenance_markdown

    page(app, "submit")
    commands = [line.split("#")[0].strip() for code in app.code for line in code.value.splitlines()]
    submit = "llm4rec submit ./my-model --task sequential/ml-100k --out my-model.bundle.tar.gz --archive"
    for command in ("llm4rec validate ./my-model", submit, "llm4rec verify my-model.bundle.tar.gz",
                    "llm4rec verify my-model.bundle.tar.gz --seeds 1", "llm4rec leaderboard snapshot",
                    "llm4rec store import my-model.bundle.tar.gz"):
        assert command in commands, command
        assert parses_as_llm4rec(command), command
    assert commands.index(submit) < commands.index("llm4rec verify my-model.bundle.tar.gz")
    assert not parses_as_llm4rec("llm4rec submit ./my-model --bundle x")  # the check can fail
    text = markdown_text(app)
    for name, badge in PROVENANCE_BADGES.items():  # what each badge means
        assert f"- {provenance_markdown(name)} {esc(badge.meaning)}" in text
    assert "verified and sandboxed" in text and "docs/submitting.md" in text and "adapter" in text.lower()


def test_missing_snapshot_says_how_to_build_one(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("LLM4REC_LEADERBOARD_SNAPSHOT", str(tmp_path / "none"))
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not app.exception
    assert app.error and "No leaderboard snapshot" in app.error[0].value
    assert "llm4rec leaderboard snapshot" in app.code[0].value


def test_an_empty_store_gives_an_empty_board_on_every_page(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from leaderboard.snapshot import build_snapshot

    folder = build_snapshot(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path / "snap")
    monkeypatch.setenv("LLM4REC_LEADERBOARD_SNAPSHOT", str(folder))
    app = AppTest.from_file(str(APP), default_timeout=60)
    for name in ("overview", "task", "paradigms", "trust", "detail", "status", "submit"):
        page(app, name)
    app.switch_page("views/overview.py").run()
    assert any("No finished, complete runs yet" in i.value for i in app.info)
