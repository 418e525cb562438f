"""The RecBole bridge (benchmark/kits/recbole.py, cards in submissions/recbole/): parity between our evaluator on the
scores RecBole's models give our requests and RecBole's own evaluator on the same
split, and a RecBole model run end to end through the harness.

These tests build the RecBole environment with the harness's own builder (a few
minutes the first time; then it is reused from the shared environment cache), and
train tiny configurations for one epoch: parity needs identical scores, not a good
model.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

from benchmark.api import find_submission
from benchmark.data import prepare
from benchmark.data.views import build_views
from benchmark.executors import protocol
from benchmark.executors.envs import ensure_env, envs_root
from benchmark.runner import evaluate
from benchmark.scoring import evaluate_part
from benchmark.tasks import load_task
from conftest import REPO, synthetic_task

SHARED_ENVS = str(envs_root())  # built once, shared by every test (see test_executors.py)
RECBOLE = REPO / "submissions" / "recbole"
TOLERANCE = 1e-4
# RecBole's metric names for ours, where the definitions coincide.
NAMES = {"HR": "hit", "NDCG": "ndcg", "MRR": "mrr", "Recall": "recall", "Precision": "precision", "MAP": "map"}


@pytest.fixture(autouse=True)
def shared_envs(monkeypatch):
    monkeypatch.setenv("LLM4REC_ENVS", SHARED_ENVS)


@pytest.fixture(scope="module")
def recbole_python() -> Path:
    """The RecBole environment's Python, built through the harness's builder."""
    card = find_submission(RECBOLE / "sasrec").card
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LLM4REC_ENVS", SHARED_ENVS)
        return ensure_env(card.requirements, name=card.name).python


# Runs in the RecBole environment: fit the bridge on our training part, score the
# harness's requests, then run RecBole's evaluator on the test split we give it.
PARITY_SCRIPT = r'''
import sys
from pathlib import Path
import numpy as np
from benchmark.api import FitContext, ScoreRequest, Submission
from benchmark.executors import protocol

with open(sys.argv[1], "rb") as handle:
    header, arrays = protocol.read_message(handle)
train = protocol.unpack_train(header["train"], arrays)
submission = Submission(Path(header["folder"]))
model = submission.model_class()(**(submission.card.hyperparameters | header["overrides"]))
model.fit(train, FitContext(seed=header["seed"]))
requests = protocol.unpack_ragged(arrays, "req.hist.")
users = arrays["req.users"]
scores = np.concatenate([
    model.score(ScoreRequest(users[a:a + 256], requests[a:a + 256], None, train.catalog))
    for a in range(0, len(users), 256)])
targets = protocol.unpack_ragged(arrays, "test.tgt.")
if header["single_target"]:
    targets = np.array([t[0] for t in targets])
rb = model.recbole_evaluate(arrays["test.users"], protocol.unpack_ragged(arrays, "test.hist."), targets,
                            header["topk"])
out = {"ours": scores, "recbole_scores": rb["scores"], "recbole_users": rb["users"]}
out |= {f"per_user.{k}": np.asarray(v, dtype=np.float64) for k, v in rb["per_user"].items()}
with open(sys.argv[2], "wb") as handle:
    protocol.write_message(handle, {"result": rb["result"]}, out)
'''


def run_parity(python: Path, tmp_path: Path, task_name: str, variant: str, overrides: dict, topk: list[int]):
    """(task, views, test users compared, our evaluation, RecBole's metrics, RecBole's
    outputs, its log) on one task's test split."""
    task = load_task(task_name)
    views = build_views(task, prepare(task, log=lambda _: None))
    # Users RecBole knows from training (a row in its train or validation file): a user
    # first seen in the test period has no embedding in a trained RecBole model, so
    # RecBole cannot score it at all (the bridge gives it the padding user's scores).
    known = np.union1d(views.train.interactions["user_id"].unique(), views.train.validation.users)
    test = views.test.subset(np.flatnonzero(np.isin(views.test.users, known)))
    keep = task.history.max_len
    single = task.family == "sequential"
    targets = [np.atleast_1d(t) for t in test.targets]
    header, arrays = protocol.pack_train(views.train)
    arrays |= {"req.users": test.users, "test.users": test.users}
    arrays |= protocol.pack_ragged([h[-keep:] if keep else h for h in test.histories], "req.hist.")
    arrays |= protocol.pack_ragged(list(test.histories), "test.hist.")
    arrays |= protocol.pack_ragged(targets, "test.tgt.")
    request_file, result_file, script = tmp_path / "in.l4r", tmp_path / "out.l4r", tmp_path / "parity.py"
    with open(request_file, "wb") as handle:
        protocol.write_message(handle, {"train": header, "folder": str(RECBOLE / variant), "seed": 0,
                                        "overrides": overrides, "topk": topk, "single_target": single}, arrays)
    script.write_text(PARITY_SCRIPT)
    env = _worker_environment(tmp_path)
    done = subprocess.run([str(python), str(script), str(request_file), str(result_file)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-5000:]
    with open(result_file, "rb") as handle:
        result_header, out = protocol.read_message(handle)
    # Our evaluator, through the harness's own scoring path, on the bridge's scores.
    row_of = {int(u): i for i, u in enumerate(test.users)}
    ours_scores = out["ours"]
    evaluation = evaluate_part(lambda request: ours_scores[[row_of[int(u)] for u in request.users]],
                               test, task, views.train, variant, "test")
    return task, views, test, evaluation, result_header["result"], out, done.stderr


def _worker_environment(tmp_path: Path) -> dict:
    """What the harness gives its workers: only the benchmark package on PYTHONPATH."""
    shim = tmp_path / "pythonpath"
    shim.mkdir(exist_ok=True)
    (shim / "benchmark").symlink_to(REPO / "benchmark", target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return env | {"PYTHONPATH": str(shim), "PYTHONNOUSERSITE": "1"}


def _compare(ours: dict, recbole: dict, metrics: list[str]) -> dict[str, tuple[float, float]]:
    pairs = {}
    for name in metrics:
        base, _, k = name.partition("@")
        if base in NAMES and k:
            pairs[name] = (ours[name], recbole[f"{NAMES[base]}@{k}"])
    return pairs


def test_sequential_parity_with_recboles_evaluator(recbole_python, tmp_path):
    # SASRec, tiny and one epoch: parity needs identical scores, not a good model.
    overrides = {"epochs": 1, "hidden_size": 16, "inner_size": 32, "n_layers": 1, "n_heads": 1,
                 "MAX_ITEM_LIST_LENGTH": 10, "train_batch_size": 1024}
    task, views, test, evaluation, recbole, out, log = run_parity(
        recbole_python, tmp_path, "sequential/ml-100k", "sasrec", overrides, [5, 10, 20])
    # Same protocol: full ranking, one target per user, no history masking (the task's
    # exclude_seen is false, and RecBole masks nothing for sequential models).
    assert not task.history.exclude_seen and len(test) == len(views.test) == 943
    assert (out["recbole_users"] == test.users).all()
    # RecBole ranked the very scores the bridge returns to the harness.
    np.testing.assert_allclose(out["recbole_scores"], out["ours"], rtol=0, atol=1e-5)
    per_user = evaluation.per_user()
    assert (per_user["ties"] == 0).all(), "a tie with the target would make RecBole's ranks arbitrary"
    compared = _compare(evaluation.summary(), recbole, task.metrics)
    assert len(compared) == 12
    for name, (ours, theirs) in compared.items():
        assert ours == pytest.approx(theirs, abs=TOLERANCE), (name, ours, theirs)
    # User by user, against RecBole's own metric classes.
    for name in ("HR@10", "NDCG@10", "MRR@10", "Recall@20"):
        base, _, k = name.partition("@")
        np.testing.assert_allclose(per_user[name], out[f"per_user.{NAMES[base]}@{k}"], rtol=0, atol=1e-9)
    print("\nsequential parity, SASRec (ours, RecBole):",
          json.dumps({n: [round(a, 6), round(b, 6)] for n, (a, b) in compared.items()}))


@pytest.mark.parametrize("task_name, n_users", [("topk/ml-100k", 90), ("topk/ml-100k-ratio", 943)])
def test_general_parity_with_recboles_evaluator(recbole_python, tmp_path, task_name, n_users):
    task, views, test, evaluation, recbole, out, log = run_parity(
        recbole_python, tmp_path, task_name, "bpr", {"epochs": 1}, [10, 20])
    # Same protocol: full ranking over the catalogue, the user's earlier (training and
    # validation) items excluded from its ranking (RecBole masks them with -inf), its
    # test-period items as the targets. (On topk/ml-100k, 76 of the 166 test users are
    # new in the test period: RecBole has no embedding for them, see run_parity.)
    assert task.history.exclude_seen and len(test) == n_users
    order = np.argsort(out["recbole_users"])
    assert (out["recbole_users"][order] == test.users).all()
    recbole_scores = out["recbole_scores"][order]
    ranked = np.isfinite(recbole_scores)
    for row, history in enumerate(test.histories):  # RecBole masks exactly our exclusions
        assert set(np.flatnonzero(~ranked[row])) == set(history.tolist())
    np.testing.assert_allclose(recbole_scores[ranked], out["ours"][ranked], rtol=0, atol=1e-5)
    compared = _compare(evaluation.summary(), recbole, task.metrics)
    assert len(compared) == 12  # all but ItemCoverage and ARP, which RecBole does not compute per user
    for name, (ours, theirs) in compared.items():
        assert ours == pytest.approx(theirs, abs=TOLERANCE), (name, ours, theirs)
    per_user = evaluation.per_user()
    for name in ("HR@10", "NDCG@10", "MRR@10", "Recall@20"):
        base, _, k = name.partition("@")
        np.testing.assert_allclose(per_user[name], out[f"per_user.{NAMES[base]}@{k}"][order], rtol=0,
                                   atol=1e-9)
    print(f"\ngeneral parity, BPR on {task_name} (ours, RecBole):",
          json.dumps({n: [round(a, 6), round(b, 6)] for n, (a, b) in compared.items()}))


CHECKED_MODEL = '''
import sys
from benchmark.kits.recbole import BASE


class Checked(BASE):
    """The bridge, reporting what it did to its environment."""

    def fit(self, train, ctx):
        super().fit(train, ctx)
        try:
            import ray  # noqa: F401
            blocked = 0.0
        except ImportError:
            blocked = 1.0
        import psutil
        process = psutil.Process()
        connections = getattr(process, "net_connections", process.connections)(kind="inet")
        ctx.log_metric("check.ray_blocked", blocked, 0)
        ctx.log_metric("check.ray_imported", float(any(m.split(".")[0] == "ray" for m in sys.modules)), 0)
        ctx.log_metric("check.inet_sockets", float(len(connections)), 0)
        ctx.log_metric("check.anomaly_detection", float(self.rt.torch.is_anomaly_enabled()), 0)
        ctx.log_metric("check.scratch_in_worker_folder", float(str(self.workdir).startswith(__import__("os").getcwd())), 0)
'''


def checked_variant(tmp_path: Path, model: str, overrides: dict) -> Path:
    """A copy of the bridge package with one variant: the shipped card's requirements
    (so the same environment), a small configuration, and the checks above."""
    package = tmp_path / "recbole_copy"
    package.mkdir(exist_ok=True)
    shutil.copy(RECBOLE / "__init__.py", package / "__init__.py")
    folder = package / model.lower()
    folder.mkdir()
    (folder / "model.py").write_text(CHECKED_MODEL.replace("BASE", "RecBoleCTR" if model == "LR" else "RecBoleRanker"))
    card = yaml.safe_load((RECBOLE / "sasrec" / "submission.yaml").read_text())
    card |= {"name": f"check-{model.lower()}", "entrypoint": "model:Checked",
             "hyperparameters": {"model": model} | overrides}
    (folder / "submission.yaml").write_text(yaml.safe_dump(card))
    return folder


@pytest.mark.parametrize("model, overrides, task", [
    ("SASRec", {"epochs": 2, "hidden_size": 8, "inner_size": 16, "n_layers": 1, "n_heads": 1,
                "MAX_ITEM_LIST_LENGTH": 8}, "synthetic"),
    ("ItemKNN", {"epochs": 1, "k": 20}, "topk/ml-100k"),
    ("LR", {"epochs": 2, "embedding_size": 4}, "ctr/ml-100k"),
])
def test_recbole_models_run_through_the_harness_in_their_environment(recbole_python, tmp_path, tracking_uri,
                                                                     model, overrides, task):
    folder = checked_variant(tmp_path, model, overrides)
    spec = synthetic_task(metrics=["HR@5", "NDCG@5", "MRR"]) if task == "synthetic" else load_task(task)
    runs = evaluate(folder, spec, seeds=[0], tracking_uri=tracking_uri)
    assert runs.loc[0, "status"] == "FINISHED", runs.loc[0, "reason"]
    metrics = MlflowClient(tracking_uri).get_run(runs.loc[0, "run_id"]).data.metrics
    checks = {k.removeprefix("train/check."): v for k, v in metrics.items() if k.startswith("train/check.")}
    assert checks["ray_blocked"] == 1 and checks["ray_imported"] == 0  # a model's own points: under train/
    assert checks["inet_sockets"] == 0  # nothing listening, nothing connected
    assert checks["anomaly_detection"] == 0
    assert checks["scratch_in_worker_folder"] == 1
    assert "train/recbole.train_loss" in metrics or model == "ItemKNN"
    assert "recbole" not in sys.modules  # never imported by the harness
    main = spec.main_score
    assert 0 < runs.loc[0, main] <= 1


def test_the_bridge_never_imports_recbole_in_the_harness():
    for card in sorted(RECBOLE.glob("*/submission.yaml")):
        submission = find_submission(card.parent)
        assert submission.card.name == f"recbole-{card.parent.name}"
        assert submission.card.paradigm == "id-from-scratch"
        # One environment for all of them: identical requirement lists.
        assert submission.card.requirements == find_submission(RECBOLE / "sasrec").card.requirements
        model = submission.build()
        assert model.model_name == submission.card.hyperparameters["model"]
    assert "recbole" not in sys.modules
    if importlib.util.find_spec("recbole") is None:
        with pytest.raises(RuntimeError, match="own environment"):
            model.fit(None, None)
