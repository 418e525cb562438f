"""The runner and the results store: failed runs recorded with reasons, the rest of the
batch finishing, idempotent reruns, and what each run logs to MLflow."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from benchmark.eval.metrics import chance_level
from benchmark.runner import evaluate
from benchmark.tracking import ResultsStore, finished_runs, summarize
from conftest import shipped, synthetic_task

BROKEN = {
    "nan": ("scores[0, 0] = np.nan", "rule 'finite'"),
    "shape": ("scores = scores[:, :-1]", "rule 'shape': expected"),
    "dtype": ("scores = scores.astype(np.int64)", "rule 'dtype': expected a float array, got int64"),
    "listtype": ("scores = scores.tolist()", "rule 'type': expected a numpy array, got list"),
}

TEMPLATE = """
import numpy as np
from benchmark.api import Recommender

class Model(Recommender):
    def fit(self, train, ctx):
        {fit}

    def score(self, request):
        scores = np.ones((len(request.users), request.n_candidates), dtype=np.float32)
        {mutate}
        return scores
"""


def broken_submission(make_submission, name: str, fit: str = "pass", mutate: str = "pass"):
    return make_submission(name, TEMPLATE.format(fit=fit, mutate=mutate))


def test_invalid_outputs_fail_their_runs_and_the_batch_goes_on(make_submission, tracking_uri):
    folders = [broken_submission(make_submission, name, mutate=line) for name, (line, _) in BROKEN.items()]
    folders.append(broken_submission(make_submission, "crash", fit="raise RuntimeError('boom in fit')"))
    folders.insert(2, shipped("pop"))
    runs = evaluate(folders, synthetic_task(), tracking_uri=tracking_uri)
    status = dict(zip(runs["submission"], runs["status"]))
    assert status.pop("pop") == "FINISHED"
    assert set(status.values()) == {"FAILED"}
    reasons = dict(zip(runs["submission"], runs["reason"]))
    for name, (_, rule) in BROKEN.items():
        assert f"submission '{name}'" in reasons[name] and rule in reasons[name]
    assert "RuntimeError: boom in fit" in reasons["crash"]
    # The store holds the failures with their reasons, and the finished run.
    client = MlflowClient(tracking_uri)
    stored = client.search_runs([client.get_experiment_by_name("sequential/synthetic@v1").experiment_id])
    by_name = {r.data.tags["submission"]: r for r in stored}
    assert by_name["pop"].info.status == "FINISHED"
    assert by_name["nan"].info.status == "FAILED"
    assert "rule 'finite'" in by_name["nan"].data.tags["failure_reason"]
    assert "RuntimeError" in by_name["crash"].data.tags["failure_reason"]


def test_a_constant_model_scores_exactly_chance(make_submission):
    folder = broken_submission(make_submission, "constant")
    task = synthetic_task()
    runs = evaluate(folder, task, store=False)
    n_items = 40
    for metric in task.metrics:
        assert runs.loc[0, metric] == pytest.approx(chance_level(n_items, metric), abs=1e-12)


def test_rerun_is_idempotent_and_a_failed_run_is_redone(make_submission, tracking_uri):
    task = synthetic_task(seeds=[0, 1])
    first = evaluate(shipped("random"), task, tracking_uri=tracking_uri)
    again = evaluate(shipped("random"), task, tracking_uri=tracking_uri)
    assert first["status"].tolist() == ["FINISHED", "FINISHED"]
    assert again["status"].tolist() == ["REUSED", "REUSED"]
    assert again["run_id"].tolist() == first["run_id"].tolist()
    pd.testing.assert_series_equal(again["NDCG@5"], first["NDCG@5"])
    store = ResultsStore(tracking_uri)
    assert len(store.runs(task.experiment_name)) == 2

    folder = broken_submission(make_submission, "flaky", fit="raise RuntimeError('flaky')")
    failed = evaluate(folder, task, seeds=[0], tracking_uri=tracking_uri)
    assert failed["status"].tolist() == ["FAILED"]
    (folder / "model.py").write_text(TEMPLATE.format(fit="pass", mutate="pass"))
    import sys
    for module in [m for m in sys.modules if m.startswith("llm4rec_submission_")]:
        del sys.modules[module]  # the fixed code must be re-imported
    fixed = evaluate(folder, task, seeds=[0], tracking_uri=tracking_uri)
    assert fixed["status"].tolist() == ["FINISHED"]
    runs = store.runs(task.experiment_name)
    flaky = runs[runs["tag.submission"] == "flaky"]
    # The failed run is kept beside the new finished one: nothing recorded is lost.
    assert sorted(flaky["status"]) == ["FAILED", "FINISHED"]


def test_a_run_logs_provenance_metrics_and_per_user_artifact(tracking_uri):
    task = synthetic_task()
    runs = evaluate(shipped("pop"), task, tracking_uri=tracking_uri)
    client = MlflowClient(tracking_uri)
    run = client.get_run(runs.loc[0, "run_id"])
    tags = run.data.tags
    for key in ("task", "family", "dataset", "submission", "submission_version", "paradigm", "seed",
                "run_key", "harness_version", "harness_git_sha", "dataset_fingerprint",
                "split_fingerprint", "task_version", "env.python", "env.torch", "env.accelerator"):
        assert tags.get(key), key
    assert tags["paradigm"] == "non-personalized" and tags["seed"] == "0"
    import torch
    assert tags["env.accelerator"].startswith("cuda: " if torch.cuda.is_available() else "cpu: ")
    metrics = run.data.metrics
    for key in ("HR_at_5", "NDCG_at_5", "MRR", "cost.fit_seconds", "cost.score_seconds", "cost.peak_rss_mb",
                "cost.load_average"):
        assert key in metrics, key
    assert 0 <= metrics["cost.load_average"] < 1000
    assert metrics["NDCG_at_5"] == pytest.approx(runs.loc[0, "NDCG@5"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"per_user_metrics.parquet", "task.json", "submission.json", "data_summary.json"} <= artifacts
    local = client.download_artifacts(run.info.run_id, "per_user_metrics.parquet")
    per_user = pd.read_parquet(local)
    assert len(per_user) == 60 and per_user["NDCG@5"].mean() == pytest.approx(metrics["NDCG_at_5"])


def test_results_table_ranks_by_main_score_with_mean_and_std(tracking_uri):
    task = synthetic_task(seeds=[0, 1, 2])
    evaluate([shipped("random"), shipped("pop")], task, tracking_uri=tracking_uri)
    table = summarize(finished_runs(ResultsStore(tracking_uri), task), task)
    assert table["seeds"].tolist() == [3, 3]
    assert table["NDCG@5"].is_monotonic_decreasing
    assert table["rank"].tolist() == [1, 2]
    random_row = table[table["submission"] == "random"].iloc[0]
    assert random_row["NDCG@5 std"] > 0  # random differs across seeds
    pop_row = table[table["submission"] == "pop"].iloc[0]
    assert pop_row["NDCG@5 std"] == 0  # pop does not depend on the seed


def test_a_metric_only_some_runs_log_has_no_std_elsewhere():
    task = synthetic_task()
    runs = pd.DataFrame({"submission": ["llm", "llm", "pop"], "version": "1", "paradigm": "p", "seed": [0, 1, 0],
                         "NDCG@5": [0.2, 0.3, 0.5], "trust.missing_rate": [0.8, 0.9, np.nan]})
    table = summarize(runs, task).set_index("submission")
    assert table.loc["llm", "trust.missing_rate std"] == pytest.approx(np.std([0.8, 0.9], ddof=1))
    assert table.loc["pop", "NDCG@5 std"] == 0.0  # one seed
    assert np.isnan(table.loc["pop", "trust.missing_rate"]) and np.isnan(table.loc["pop", "trust.missing_rate std"])


def test_same_seed_same_metrics():
    task = synthetic_task()
    one = evaluate(shipped("random"), task, store=False)
    two = evaluate(shipped("random"), task, store=False)
    pd.testing.assert_frame_equal(one[task.metrics], two[task.metrics])


CTR_TEMPLATE = """
import numpy as np
from benchmark.api import Recommender

class Model(Recommender):
    def predict(self, request):
        f = request.features
        p = np.where(f["group"].to_numpy() == f["genre"].to_numpy(), 0.8, 0.2)
        {mutate}
        return p
"""


def ctr_task():
    return synthetic_task(task="ctr/synthetic", family="ctr", split={"method": "global_time"},
                          ctr={"label_min_rating": 4, "user_features": ["group"], "item_features": ["genre"]},
                          metrics=["AUC", "GAUC", "LogLoss"], main_score="AUC", batch_size=50)


def test_ctr_predictions_are_checked_and_evaluated(make_submission):
    good = make_submission("genre", CTR_TEMPLATE.format(mutate="pass"))
    outside = make_submission("outside", CTR_TEMPLATE.format(mutate="p[3] = 1.5"))
    nan = make_submission("nanpred", CTR_TEMPLATE.format(mutate="p[0] = np.nan"))
    short = make_submission("short", CTR_TEMPLATE.format(mutate="p = p[:-1]"))
    runs = evaluate([good, outside, nan, short], ctr_task(), store=False).set_index("submission")
    assert runs.loc["genre", "status"] == "FINISHED"
    assert 0.7 < runs.loc["genre", "AUC"] < 1  # the generated ratings follow group == genre
    assert "rule 'probability'" in runs.loc["outside", "reason"] and "1.5" in runs.loc["outside", "reason"]
    assert "rule 'probability'" in runs.loc["nanpred", "reason"]
    assert "rule 'shape'" in runs.loc["short", "reason"]


def test_topk_runs_rank_with_seen_items_excluded():
    task = synthetic_task(task="topk/synthetic", family="topk", split={"method": "global_time"},
                          history={"max_len": None, "exclude_seen": True},
                          metrics=["Recall@5", "NDCG@5", "ItemCoverage@5", "ARP@5"], main_score="NDCG@5")
    runs = evaluate([shipped("pop"), shipped("random")], task, store=False).set_index("submission")
    assert set(runs["status"]) == {"FINISHED"}
    # pop recommends the same popular items to everyone: low coverage, high ARP.
    assert runs.loc["pop", "ItemCoverage@5"] < runs.loc["random", "ItemCoverage@5"]
    assert runs.loc["pop", "ARP@5"] > runs.loc["random", "ARP@5"]


BOASTFUL = """
import numpy as np
from benchmark.api import ModelReport, Recommender

class Model(Recommender):
    # Attributes the harness once read by name: none of them may reach the run now.
    trainable_parameters = 10**12
    total_parameters = 10**12
    tokens = 7
    train_samples = 3
    worker_peak_rss_mb = 0.0
    llm_identity = {"llm.model": "gpt-99"}
    llm_stats = {"users": 1, "hallucinated": 0, "items_named": 1}

    def score(self, request):
        return np.ones((len(request.users), request.n_candidates), dtype=np.float32)

    def report(self):
        return ModelReport(tokens=42, llm={"llm.model": "reported"})
"""


def test_what_a_model_says_about_itself_comes_only_from_its_report(make_submission, tracking_uri):
    folder = make_submission("boastful", BOASTFUL)
    runs = evaluate([folder], synthetic_task(), tracking_uri=tracking_uri)
    assert runs["status"].tolist() == ["FINISHED"]
    run = MlflowClient(tracking_uri).get_run(runs["run_id"][0])
    metrics, tags = run.data.metrics, run.data.tags
    assert metrics["cost.tokens"] == 42
    assert tags["llm.model"] == "reported"
    for unreported in ("cost.trainable_parameters", "cost.total_parameters", "cost.train_samples"):
        assert unreported not in metrics
    assert metrics["cost.worker_peak_rss_mb"] > 10  # the harness measured its worker; the 0.0 it claims is ignored
    assert not any(key.startswith("trust.") for key in metrics)


def test_a_report_of_the_wrong_type_fails_the_run(make_submission):
    code = BOASTFUL.replace('return ModelReport(tokens=42, llm={"llm.model": "reported"})',
                            'return {"tokens": 42}')
    runs = evaluate([make_submission("untyped", code)], synthetic_task(), store=False)
    assert runs["status"].tolist() == ["FAILED"]
    assert "report() must return a benchmark.api.ModelReport, got dict" in runs["reason"][0]
