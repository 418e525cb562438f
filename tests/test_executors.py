"""Submissions in a worker process (sandboxed by default; in their own environment when
the card has requirements): the cached virtualenv builder, the worker process and its
protocol, failures surfacing as FAILED runs with their reasons. The sandbox's walls and
limits are tested in test_sandbox.py."""
from __future__ import annotations

import gc
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from benchmark.api import FitContext, ModelReport, PredictRequest, ScoreRequest, find_submission
from benchmark.api.types import Catalog, TrainData, ValidationSet
from benchmark.data import prepare
from benchmark.data.views import build_views
from benchmark.executors import build_model, protocol
from benchmark.executors.envs import (ensure_env, env_key, envs_root,
                                      install_plan)
from benchmark.executors.isolated import SubprocessRecommender, WorkerError
from benchmark.executors.watchdog import process_tree
from benchmark.recommendations import RecommendationReader, RecommendationScorer
from benchmark.runner import evaluate
from benchmark.scoring import ContractViolation
from conftest import synthetic_task

# Environments are expensive to build, so every test shares one folder of them (the
# user's cache, or $LLM4REC_ENVS), unlike the per-test cache of processed data.
SHARED_ENVS = str(envs_root())
# A small pure-Python package from the registry, plus the pins that make the worker's
# numpy and pandas differ from the harness's (numpy 2, pandas 3): arrays must cross.
REQUIREMENTS = ["six==1.17.0", "numpy<2", "pandas<3"]


@pytest.fixture(autouse=True)
def shared_envs(monkeypatch):
    monkeypatch.setenv("LLM4REC_ENVS", SHARED_ENVS)


PROBE = '''
import hashlib, importlib.util, os, sys
import numpy as np
from benchmark.api import Recommender


def digest(*parts):
    h = hashlib.sha256()
    for part in parts:
        h.update(np.ascontiguousarray(part).tobytes() if isinstance(part, np.ndarray) else repr(part).encode())
    return float(int(h.hexdigest()[:12], 16))  # exactly representable in a float64


class Model(Recommender):
    def fit(self, train, ctx):
        print("stdout noise from fit")  # must land on stderr, not in the protocol
        print("progress from fit", file=sys.stderr)
        for _ in ctx.progress(range(3), description="epochs", total=3):
            pass
        inter = train.interactions
        v = train.validation
        ctx.log_metric("probe.train_digest", digest(
            *(inter[c].to_numpy() for c in inter.columns), list(inter.columns), train.n_users,
            train.catalog.n_items, train.catalog.items.astype(str).values.tolist(),
            v.users, *v.histories, v.targets), 0)
        ctx.log_metric("probe.numpy_major", float(np.__version__.split(".")[0]), 0)
        ctx.log_metric("probe.has_six", float(importlib.util.find_spec("six") is not None), 0)
        self.weights = np.random.default_rng(ctx.seed).standard_normal(train.n_items)
        if ctx.evaluate_validation is not None:
            ctx.log_metric("probe.validation", ctx.evaluate_validation(self.score), 0)
        {fit}

    def score(self, request):
        {score}
        scores = np.tile(self.weights, (len(request.users), 1))
        scores += np.asarray([len(h) + h.sum() for h in request.histories], dtype=np.float64)[:, None] * 1e-3
        scores[:, 0] = -0.0
        scores[:, 1] = 5e-324  # the smallest subnormal
        scores[:, 2] = 1e300
        return scores
'''


def probe(make_submission, name="probe", fit="pass", score="pass", requirements=REQUIREMENTS, **card):
    code = PROBE.replace("{fit}", fit).replace("{score}", score)
    return make_submission(name, code, requirements=list(requirements), **card)


def running(pid) -> bool:
    """Whether a process exists and is not a zombie (an exited child nobody reaped yet)."""
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def views_of(task):
    return build_views(task, prepare(task, log=lambda _: None))


def collecting_ctx(seed: int = 0, evaluate_validation=None):
    logged: dict[str, float] = {}
    ctx = FitContext(seed=seed, evaluate_validation=evaluate_validation,
                     log_metric=lambda name, value, step: logged.__setitem__(name, value))
    return ctx, logged


def test_scores_and_training_data_round_trip_exactly(make_submission):
    folder = probe(make_submission)
    views = views_of(synthetic_task())
    submission = find_submission(folder)
    request = ScoreRequest(users=views.test.users[:7], histories=views.test.histories[:7], candidates=None,
                           catalog=views.train.catalog)
    local, remote = submission.build(), build_model(submission)
    assert isinstance(remote, SubprocessRecommender) and remote.alive
    try:
        local_ctx, local_logged = collecting_ctx(evaluate_validation=lambda score: 0.25)
        remote_ctx, remote_logged = collecting_ctx(evaluate_validation=lambda score: 0.25)
        local.fit(views.train, local_ctx)
        remote.fit(views.train, remote_ctx)
        expected, got = local.score(request), remote.score(request)
        # What the class implements, as the worker saw it (the proxy defines every call).
        assert [c for c in ("score", "recommend", "predict") if remote.implements(c)] == ["score"]
        assert remote.report() == local.report() == ModelReport()
    finally:
        remote.close()
    # Nothing about the model is read off the proxy: the worker's memory is the harness's
    # own measurement, parameters come in the report.
    assert not hasattr(remote, "trainable_parameters") and not hasattr(remote, "worker_peak_rss_mb")
    assert got.dtype == expected.dtype == np.float64 and got.shape == expected.shape
    assert got.tobytes() == expected.tobytes()  # bit for bit, -0.0 and subnormals included
    # The worker saw exactly the training part the harness holds...
    assert remote_logged["probe.train_digest"] == local_logged["probe.train_digest"]
    # ...in its own environment: numpy 1.x there, six installed there.
    assert remote_logged["probe.numpy_major"] == 1 and remote_logged["probe.has_six"] == 1
    assert remote_logged["probe.validation"] == 0.25
    assert not remote.alive


def test_an_isolated_run_matches_the_in_process_run_and_logs_its_curve(make_submission, tracking_uri,
                                                                       capfd):
    task = synthetic_task()
    folder = probe(make_submission)
    isolated = evaluate(folder, task, tracking_uri=tracking_uri)
    in_process = evaluate(probe(make_submission, name="probe-local", requirements=[]), task, store=False)
    assert isolated.loc[0, "status"] == "FINISHED", isolated.loc[0, "reason"]
    for metric in task.metrics:
        assert isolated.loc[0, metric] == in_process.loc[0, metric]
    run = MlflowClient(tracking_uri).get_run(isolated.loc[0, "run_id"])
    # ctx.log_metric and ctx.evaluate_validation crossed back to the harness; the
    # model's own curves are stored under train/.
    assert run.data.metrics["train/probe.numpy_major"] == 1
    assert 0 < run.data.metrics["train/probe.validation"] <= 1
    assert run.data.tags["sandbox"] == "true"
    err = capfd.readouterr().err
    # The worker's stderr (its prints and ctx.progress) reaches the user.
    assert "[probe] stdout noise from fit" in err and "[probe] progress from fit" in err
    assert "[probe] probe epochs: 3/3" in err


def test_an_exception_in_the_worker_fails_the_run_with_its_traceback(make_submission, tracking_uri):
    folder = probe(make_submission, name="raises", fit="raise RuntimeError('boom in fit')")
    runs = evaluate(folder, synthetic_task(), tracking_uri=tracking_uri)
    assert runs.loc[0, "status"] == "FAILED"
    reason = runs.loc[0, "reason"]
    assert "submission 'raises': WorkerError: RuntimeError: boom in fit" in reason
    assert "traceback in the worker of 'raises'" in reason and ", in fit" in reason
    stored = MlflowClient(tracking_uri).get_run(runs.loc[0, "run_id"])
    assert "boom in fit" in stored.data.tags["failure_reason"]


def test_a_worker_that_dies_fails_the_run_with_its_last_lines(make_submission):
    dies = "print('about to die', file=sys.stderr, flush=True); os._exit(7)"
    runs = evaluate(probe(make_submission, name="dies", score=dies), synthetic_task(), store=False)
    assert runs.loc[0, "status"] == "FAILED"
    reason = runs.loc[0, "reason"]
    # It dies in score(), first called for the validation score that fit() asks for.
    assert "WorkerCrashed: the worker process of 'dies' exited with code 7 during validation scoring" in reason
    assert "about to die" in reason


def test_a_crash_while_importing_the_submission_surfaces_at_start(make_submission):
    folder = make_submission("bad-import", "import not_a_module_anywhere\n", requirements=REQUIREMENTS)
    with pytest.raises(WorkerError, match="ModuleNotFoundError|not_a_module_anywhere"):
        build_model(find_submission(folder))


def test_a_bad_requirement_fails_the_run_with_the_installers_message(make_submission, monkeypatch, tmp_path):
    monkeypatch.setenv("LLM4REC_ENVS", str(tmp_path / "envs"))
    folder = probe(make_submission, name="unbuildable", requirements=["this-package-does-not-exist==0"])
    runs = evaluate([folder], synthetic_task(), store=False)
    assert runs.loc[0, "status"] == "FAILED"
    reason = runs.loc[0, "reason"]
    assert "EnvironmentBuildError" in reason and "`uv pip compile` exited with code 1" in reason
    assert "this-package-does-not-exist" in reason and "was not found in the package registry" in reason
    # Nothing half-built is left to be mistaken for a finished environment.
    assert not [p for p in (tmp_path / "envs").iterdir() if p.is_dir()]


def test_the_environment_is_built_once_and_reused():
    first = ensure_env(REQUIREMENTS, name="probe", log=lambda _: None)
    again = ensure_env(["  six==1.17.0  # a comment", "", "numpy<2", "pandas<3"], name="probe",
                       log=lambda _: None)
    assert again.built is False and again.folder == first.folder
    assert (again.folder / ".complete").is_file()
    assert "six==1.17.0" in again.lock_file.read_text().splitlines()
    assert env_key(REQUIREMENTS) != env_key(REQUIREMENTS + ["iniconfig"])


def test_torch_is_pinned_and_installed_first():
    first, rest, constraints = install_plan(["recbole==1.2.1", "torch"])
    assert first == ["torch==2.13.0"] and constraints == ["torch==2.13.0"]
    assert rest[:2] == ["recbole==1.2.1", "torch"] and {"numpy", "pandas", "pyyaml"} <= set(rest)
    first, _, constraints = install_plan(["torch==2.13.0", "recbole==1.2.1"])
    assert first == ["torch==2.13.0"] and constraints == ["torch==2.13.0"]
    # A requirement that does not name torch still resolves it under the pin.
    assert install_plan(["six"])[0] == [] and install_plan(["six"])[2] == ["torch==2.13.0"]


def test_the_worker_stops_when_the_model_is_dropped(make_submission):
    model = build_model(find_submission(probe(make_submission)))
    process, cgroup = model._process.process, model._process.cgroup
    pids = process_tree(process.pid)
    assert process.poll() is None and len(pids) >= 3  # bwrap, the namespace's init, the worker
    del model
    gc.collect()
    process.wait(timeout=15)
    assert not any(map(running, pids))
    assert cgroup is None or not any(folder.exists() for folder in cgroup.folders.values())


def test_an_unsandboxed_environment_worker_removes_its_scratch_folder(make_submission):
    model = build_model(find_submission(probe(make_submission)), sandbox=False)
    workdir = model._process.workdir
    assert isinstance(model, SubprocessRecommender) and workdir.is_dir()
    model.close()
    assert not workdir.exists() and not model.alive


def test_ctr_predict_requests_cross_too(make_submission):
    code = '''
import numpy as np
from benchmark.api import Recommender

class Model(Recommender):
    def fit(self, train, ctx):
        self.fields = list(train.feature_fields)
        self.users = train.users

    def predict(self, request):
        genre = request.features["genre"].astype(str).str.len().to_numpy()
        return (genre + request.features["user_id"].to_numpy()) / 100.0
'''
    folder = make_submission("ctr-probe", code, requirements=REQUIREMENTS)
    catalog = Catalog(3, pd.DataFrame({"item_id": [0, 1, 2], "title": ["a", "b c", None]}))
    users = pd.DataFrame({"user_id": [0, 1], "age": pd.array(["18", None], dtype="string")})
    inter = pd.DataFrame({"user_id": [0, 1], "item_id": [1, 2], "label": np.array([1, 0], dtype="int8"),
                          "genre": pd.array(["Drama Comedy", "War"], dtype="string")})
    train = TrainData(inter, 2, catalog, users=users, feature_fields=["genre"])
    request = PredictRequest(inter[["user_id", "item_id", "genre"]], ["genre"], catalog)
    model = build_model(find_submission(folder))
    try:
        model.fit(train, FitContext(seed=0))
        np.testing.assert_array_equal(model.predict(request), [0.12, 0.04])
    finally:
        model.close()


RECOMMENDER = '''
import numpy as np
from benchmark.api import ModelReport, Recommender


class Model(Recommender):
    def fit(self, train, ctx):
        self.texts = train.catalog.item_texts()

    def recommend(self, request):
        out = []
        for row, candidates in enumerate(request.candidates):
            if row % 2:  # item ids as numpy ints (numpy 1.x in the worker)
                out.append(np.asarray(candidates[::-1])[:3])
            else:
                out.append(f"1. {self.texts[candidates[1]]}\\n2. Not A Real Movie\\n3. {self.texts[candidates[1]]}")
        return out

    def report(self):
        return ModelReport(trainable_parameters=7, tokens=11, train_samples=3, llm={"llm.model": "probe"})
'''


def test_recommendations_and_the_report_cross(make_submission):
    submission = find_submission(make_submission("recommender", RECOMMENDER, requirements=REQUIREMENTS))
    catalog = Catalog(6, pd.DataFrame({"item_id": range(6), "title": [f"Movie {c}" for c in "ABCDEF"]}))
    train = TrainData(pd.DataFrame({"user_id": [0], "item_id": [1]}), 4, catalog)
    request = ScoreRequest(users=np.arange(4), histories=[np.array([0])] * 4,
                           candidates=np.array([[1, 2, 3], [3, 4, 5], [5, 0, 1], [2, 4, 0]]), catalog=catalog)
    local, remote = submission.build(), build_model(submission)
    try:
        assert [c for c in ("score", "recommend", "predict") if remote.implements(c)] == ["recommend"]
        local.fit(train, FitContext(seed=0))
        remote.fit(train, FitContext(seed=0))
        expected, got = local.recommend(request), remote.recommend(request)
        report = remote.report()
    finally:
        remote.close()
    assert got[0] == expected[0] == "1. Movie C\n2. Not A Real Movie\n3. Movie C"
    assert got[1] == expected[1].tolist() == [5, 4, 3] and all(type(i) is int for i in got[1])
    reader = RecommendationReader(catalog)
    (local_scores, local_counts), (scores, counts) = reader.read(expected, request, "l"), reader.read(got, request, "r")
    assert scores.tobytes() == local_scores.tobytes() and counts == local_counts
    assert report == local.report() == ModelReport(trainable_parameters=7, tokens=11, train_samples=3,
                                                   llm={"llm.model": "probe"})


MALFORMED = '''
import numpy as np
from benchmark.api import ModelReport, Recommender

CASES = [{"a": 1}, np.arange(3), [{"ids": [0]}], [[0, 6.5]], [[True]], [object()], ["a", "b"], [[np.int64(2)]]]


class Lying(ModelReport):
    def to_json(self):
        return {"tokens": "many"}


class Model(Recommender):
    calls = 0
    reports = 0

    def recommend(self, request):
        self.calls += 1
        return CASES[self.calls - 1]

    def report(self):
        self.reports += 1
        return {"tokens": 5} if self.reports == 1 else Lying()
'''


def test_malformed_recommendations_and_reports_fail_with_the_rule(make_submission):
    submission = find_submission(make_submission("malformed", MALFORMED, requirements=REQUIREMENTS))
    catalog = Catalog(3, pd.DataFrame({"item_id": range(3), "title": ["A", "B", "C"]}))
    request = ScoreRequest(users=np.array([7]), histories=[np.array([0])], candidates=np.array([[1, 2]]),
                           catalog=catalog)
    local, remote = submission.build(), build_model(submission)

    def failures(model):
        scorer = RecommendationScorer(model.recommend, catalog, name="malformed")
        messages = []
        for _ in range(7):
            with pytest.raises(ContractViolation) as error:
                scorer(request)
            messages.append(str(error.value))
        scorer(request)  # [[2]]: valid
        return messages

    try:
        remote_messages = failures(remote)
        with pytest.raises(WorkerError, match="report\\(\\) must return a benchmark.api.ModelReport, got dict"):
            remote.report()
        with pytest.raises(protocol.ProtocolError, match="the worker of 'malformed' sent a malformed model report"):
            remote.report()
    finally:
        remote.close()
    # The same rule, named the same way, whether the model runs here or in its worker.
    assert remote_messages == failures(local)
    assert [m.split("rule ")[1].split(":")[0] for m in remote_messages] == (
        ["'type'"] * 2 + ["'recommendation'"] * 4 + ["'length'"])
    assert "got ndarray" in remote_messages[1] and "the entry for user 7 is a object" in remote_messages[5]


def test_frames_cross_without_pickle():
    frame = pd.DataFrame({
        "i": np.array([1, 2, 3], dtype=np.int64),
        "f": [0.5, np.nan, -0.0],
        "b": [True, False, True],
        "s": pd.array(["x", None, "z y"], dtype="string"),
        "o": ["a", 1, None],
        "c": pd.Categorical(["u", "v", "u"]),
        "t": pd.to_datetime(["2020-01-01", "2021-06-30", "1999-12-31"]),
    })
    buffer = io.BytesIO()
    header, arrays = protocol.pack_frame(frame, "x.")
    protocol.write_message(buffer, {"op": "test", "frame": header}, arrays)
    buffer.seek(0)
    got_header, got_arrays = protocol.read_message(buffer)
    got = protocol.unpack_frame(got_header["frame"], got_arrays, "x.")
    assert list(got.columns) == list(frame.columns)
    np.testing.assert_array_equal(got["i"], frame["i"])
    assert np.array_equal(got["f"].to_numpy(), frame["f"].to_numpy(), equal_nan=True)
    assert got["s"].tolist() == ["x", None, "z y"] and got["o"].tolist() == ["a", 1, None]
    assert got["c"].dtype == "category" and (got["t"] == frame["t"]).all()
    with pytest.raises(TypeError, match="pickle"):
        protocol.write_message(io.BytesIO(), {"op": "x"}, {"bad": np.array([{"a": 1}], dtype=object)})


def test_every_training_field_has_a_wire_format():
    catalog = Catalog(2, pd.DataFrame({"item_id": [0, 1]}))
    train = TrainData(pd.DataFrame({"user_id": [0], "item_id": [1]}), 1, catalog,
                      ValidationSet(np.array([0]), [np.array([1])], [np.array([0, 1])]))
    header, arrays = protocol.pack_train(train)
    buffer = io.BytesIO()
    protocol.write_message(buffer, {"op": "fit", "train": header}, arrays)
    buffer.seek(0)
    got_header, got_arrays = protocol.read_message(buffer)
    got = protocol.unpack_train(got_header["train"], got_arrays)
    assert [t.tolist() for t in got.validation.targets] == [[0, 1]]
    assert json.dumps(got_header)  # headers are plain JSON


@pytest.mark.parametrize("sandbox", [True, False])
def test_the_worker_exits_and_cleans_up_when_the_harness_dies(make_submission, tmp_path, sandbox):
    # A harness process that is killed outright (no finalizers) leaves no worker behind:
    # the sandbox dies with it; an unsandboxed worker notices and removes its scratch.
    folder = probe(make_submission)
    script = tmp_path / "harness.py"
    script.write_text(f"""
import time
from benchmark.api import find_submission
from benchmark.executors import build_model
from benchmark.executors.watchdog import process_tree
model = build_model(find_submission({str(folder)!r}), sandbox={sandbox})
print(" ".join(map(str, process_tree(model.pid))), model._process.workdir, flush=True)
time.sleep(60)
""")
    harness = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                               env=os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    *pids, workdir = harness.stdout.readline().split()
    harness.kill()
    harness.wait()
    deadline = time.time() + 20
    while time.time() < deadline and (any(map(running, pids)) or Path(workdir).exists()):
        time.sleep(0.2)
    assert len(pids) >= (3 if sandbox else 1) and not any(map(running, pids))
    assert workdir == "None" if sandbox else not Path(workdir).exists()
