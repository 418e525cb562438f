"""The evaluation boundary, tried as a hostile submitter would (tests/hostile/): the
sandbox keeps the truth, the store and other runs out of reach; limits end runs with
the limit named; only copies cross, in both modes; the harness alone writes results;
a batch survives anything one submission does. Each hostile run ends at chance level or
FAILED with its reason, while `pop` in the same command keeps its exact score."""
from __future__ import annotations

import json
import os
import signal
import socket
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from benchmark.api import Submission
from benchmark.api.card import CardLimits
from benchmark.cli import app
from benchmark.data import prepare
from benchmark.data.synthetic import synthetic_dataset
from benchmark.data.views import build_views
from benchmark.eval.metrics import chance_level
from benchmark.executors import protocol
from benchmark.executors.cgroups import WorkerCgroup
from benchmark.executors.limits import Limits
from benchmark.executors.output import LINE_CHARS, TAIL_LINES, OutputForwarder
from benchmark.executors.sandbox import SandboxUnavailable
from benchmark.executors.transfer import AnswerReader
from benchmark.runner import curve_name, evaluate, run_one
from benchmark.tasks.schema import LimitsSpec
from conftest import REPO, shipped, synthetic_task

HOSTILE = Path(__file__).resolve().parent / "hostile"
N_ITEMS = 40  # synthetic_task's catalogue


def hostile(name: str, suffix: str | None = None, **hyperparameters) -> Submission:
    """A hostile submission of tests/hostile, told what it needs (paths, ports)."""
    base = Submission(HOSTILE / name)
    return base.variant(suffix, **hyperparameters) if suffix or hyperparameters else base


def by_name(runs: pd.DataFrame) -> pd.DataFrame:
    return runs.set_index("submission")


def assert_chance(row: pd.Series, task) -> None:
    assert row["status"] == "FINISHED", row["reason"]
    for metric in task.metrics:
        assert row[metric] == pytest.approx(chance_level(N_ITEMS, metric), abs=1e-12), metric


def curves(tracking_uri: str, run_id: str) -> dict[str, float]:
    return {k: v for k, v in MlflowClient(tracking_uri).get_run(run_id).data.metrics.items() if k.startswith("train/")}


@pytest.fixture
def pop_alone():
    """pop's metrics on a task, run alone (the reference every hostile batch is held to)."""

    def run(task) -> pd.Series:
        return evaluate(shipped("pop"), task, store=False, sandbox=False).iloc[0]

    return run


def assert_pop_unharmed(runs: pd.DataFrame, task, reference: pd.Series) -> None:
    pop = by_name(runs).loc["pop"]
    assert pop["status"] == "FINISHED", pop["reason"]
    for metric in task.metrics:
        assert pop[metric] == reference[metric], metric  # exactly


# ------------------------------------------------------------------ reaching the truth

@pytest.fixture
def data_task(tmp_path):
    """synthetic_task's data as raw RecBole atomic files in a folder of their own (a
    task with `dataset.path`, like any dataset on disk)."""
    raw = synthetic_dataset("hostile-data", n_users=60, n_items=40, interactions_per_user=15, seed=0)
    folder = tmp_path / "raw-data"
    folder.mkdir()
    inter = raw.interactions
    (folder / "hostile-data.inter").write_text(
        "user_id:token\titem_id:token\ttimestamp:float\trating:float\n"
        + "".join(f"{u}\t{i}\t{t}\t{r}\n" for u, i, t, r in zip(inter["user"], inter["item"], inter["timestamp"],
                                                                inter["rating"])))
    return synthetic_task(task="sequential/hostile-data", dataset={"name": "hostile-data", "path": str(folder)}), folder


@pytest.fixture
def truth_server(data_task):
    """A TCP server on the machine's loopback that hands out the test targets."""
    task, _ = data_task
    views = build_views(task, prepare(task, log=lambda _: None))
    truth = json.dumps({int(u): int(t) for u, t in zip(views.test.users, views.test.targets)}).encode()
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            with connection:
                connection.sendall(truth)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


ROUTES = ["cache", "subprocess", "prepare", "raw", "network", "memory", "proc", "store", "base"]


def seekers(task, data_folder: Path, cache: Path, store: Path, port: int, routes=ROUTES) -> list[Submission]:
    known = {"cache": str(cache), "data": str(data_folder), "store": str(store), "port": port,
             "harness_pid": os.getpid(), "task": task.model_dump()}
    # Told as one object, not as paths of their own: a variant's path values would be the
    # operator lending them to the model (see test_only_the_operator_can_hand_a_model_a_local_path).
    return [hostile("truth-seeker", route.replace("_", "-"), route=route, known=known) for route in routes]


def test_in_the_sandbox_no_route_reaches_the_truth_the_store_or_other_runs(
        data_task, truth_server, isolated_cache, tracking_uri, tmp_path, pop_alone):
    task, folder = data_task
    store = tmp_path / "mlflow.db"
    submissions = seekers(task, folder, isolated_cache, store, truth_server, ROUTES + ["store_write"])
    runs = evaluate(submissions + [shipped("pop")], task, tracking_uri=tracking_uri)
    table = by_name(runs)
    for route in ROUTES + ["store_write"]:
        name = f"truth-seeker-{route.replace('_', '-')}"
        assert_chance(table.loc[name], task)
        assert curves(tracking_uri, table.loc[name, "run_id"]) == {"train/leaked": 0.0}, name
    assert_pop_unharmed(runs, task, pop_alone(task))
    stored = MlflowClient(tracking_uri).get_run(table.loc["pop", "run_id"])
    assert stored.data.metrics["NDCG_at_5"] == table.loc["pop", "NDCG@5"]  # not rewritten
    assert stored.data.tags["sandbox"] == "true"


def test_in_process_the_same_routes_do_reach_the_truth(data_task, truth_server, isolated_cache, tracking_uri,
                                                      tmp_path):
    """The control: unsandboxed (--no-sandbox, for debugging one's own model) nothing
    stops code in the harness's process; the attacks above are real. Only the copies
    hold in both modes: no history is a view of anything past its end."""
    task, folder = data_task
    store = tmp_path / "mlflow.db"
    evaluate(shipped("pop"), task, tracking_uri=tracking_uri, sandbox=False)  # the store file exists
    runs = by_name(evaluate(seekers(task, folder, isolated_cache, store, truth_server), task,
                            tracking_uri=tracking_uri, sandbox=False))
    for route in ("cache", "subprocess", "prepare", "network", "memory"):
        assert runs.loc[f"truth-seeker-{route}", "NDCG@5"] == 1.0, route
    for route in ("raw", "proc", "store"):
        assert curves(tracking_uri, runs.loc[f"truth-seeker-{route}", "run_id"])["train/leaked"] > 0, route
    assert_chance(runs.loc["truth-seeker-base"], task)
    tags = MlflowClient(tracking_uri).get_run(runs.loc["truth-seeker-cache", "run_id"]).data.tags
    assert tags["sandbox"] == "false"


# ------------------------------------------------------------------ forging, mutating

@pytest.mark.parametrize("sandbox", [True, False])
def test_forged_metrics_land_under_train_and_mutations_reach_nothing(sandbox, tracking_uri, pop_alone):
    task = synthetic_task()
    runs = evaluate([hostile("forger"), hostile("mutator"), shipped("pop")], task, tracking_uri=tracking_uri,
                    sandbox=sandbox)
    table = by_name(runs)
    assert_chance(table.loc["forger"], task)
    assert_chance(table.loc["mutator"], task)
    assert_pop_unharmed(runs, task, pop_alone(task))
    client = MlflowClient(tracking_uri)
    forger = client.get_run(table.loc["forger", "run_id"])
    metrics = forger.data.metrics
    # The task's metrics and costs are the harness's, logged once; the forgeries sit under train/.
    assert metrics["NDCG_at_5"] == pytest.approx(chance_level(N_ITEMS, "NDCG@5"))
    assert len(client.get_metric_history(forger.info.run_id, "NDCG_at_5")) == 1
    assert metrics["cost.peak_rss_mb"] > 0
    assert metrics["train/NDCG_at_5"] == metrics["train/cost.fit_seconds"] + 1 == 1.0
    assert {k for k in metrics if "NDCG" in k} == {"NDCG_at_5", "train/NDCG_at_5", "train/_/NDCG_at_5",
                                                   "train/_/_/NDCG_at_5"}
    assert all(k.startswith(("train/", "cost.", "HR_", "NDCG_", "MRR")) for k in metrics), sorted(metrics)
    assert curves(tracking_uri, table.loc["mutator", "run_id"])["train/written"] >= 1  # it did write: into its own copies
    assert forger.data.tags["sandbox"] == str(sandbox).lower()


@pytest.mark.parametrize("sandbox", [True, False])
def test_what_a_model_writes_into_never_changes_the_harness_views(sandbox):
    task = synthetic_task()
    prepared = prepare(task, log=lambda _: None)
    views = build_views(task, prepared)

    def digest() -> str:
        parts = [views.train.interactions.to_json(), views.train.catalog.items.to_json(),
                 views.train.users.to_json(), *(h.tobytes() for h in views.test.histories),
                 np.asarray(views.test.targets).tobytes(), *(h.tobytes() for h in views.validation.histories)]
        return str(hash(tuple(p if isinstance(p, bytes) else p.encode() for p in parts)))

    before = digest()
    pop = run_one(Submission(shipped("pop")), task, 0, prepared, views, None, sandbox=sandbox)
    run_one(hostile("mutator"), task, 0, prepared, views, None, sandbox=sandbox)
    again = run_one(Submission(shipped("pop")), task, 0, prepared, views, None, sandbox=sandbox)
    assert digest() == before
    assert again.metrics == pop.metrics


# ------------------------------------------------------------------ a batch survives anything

CRASH_REASONS = {
    "exit": "WorkerError: SystemExit: the submission called sys.exit(3)",
    "os-exit": "exited with code 5 during score",
    "signal": "was killed by signal SIGTERM during fit",
    "sigkill": "was killed by signal SIGKILL during score",
    "hang": "limit: a score() call took more than 2 s",
    "memory": "limit: memory above 300 MB",
    "fork-bomb": "limit: more than 48 processes and threads at once",
    "garbage": "expected a message starting with b'L4R1'",
    "huge-message": "a message larger than the 67,108,864 bytes allowed",
    "lie": "a malformed answer: an answer of 1000000000000 values does not fit the room for a valid one",
}
LIMITED = {"fit_seconds": 60, "call_seconds": 2, "memory_mb": 300, "processes": 48}


def crashers(*modes: str) -> list[Submission]:
    return [hostile("crasher", mode, mode=mode) for mode in modes]


def test_a_batch_survives_exits_crashes_signals_hangs_bombs_floods_and_garbage(tracking_uri, pop_alone, capfd):
    # A real fork bomb only where the kernel bounds it (the pids cgroup); the watchdog
    # alone could be outrun (see test_without_cgroups_...).
    probe = WorkerCgroup.create(2**30, 8)
    assert probe is not None, "this test needs the v1 memory and pids cgroups, writable (run as root)"
    probe.remove()
    task = synthetic_task(limits=LIMITED)
    modes = [*CRASH_REASONS, "flood", "scribble"]
    runs = evaluate(crashers(*modes) + [shipped("pop")], task, tracking_uri=tracking_uri)
    table = by_name(runs)
    for mode, reason in CRASH_REASONS.items():
        row = table.loc[f"crasher-{mode}"]
        assert row["status"] == "FAILED" and reason in row["reason"], (mode, row["reason"])
        assert row["reason"].startswith(f"submission 'crasher-{mode}': ")
    assert_chance(table.loc["crasher-flood"], task)
    scribble = table.loc["crasher-scribble"]  # NaN written after the copy can never count
    assert (scribble["status"] == "FAILED" and "rule 'finite'" in scribble["reason"]) or \
        scribble["NDCG@5"] == pytest.approx(chance_level(N_ITEMS, "NDCG@5"))
    assert_pop_unharmed(runs, task, pop_alone(task))
    statuses = MlflowClient(tracking_uri).search_runs(
        [MlflowClient(tracking_uri).get_experiment_by_name(task.experiment_name).experiment_id])
    assert {r.info.status for r in statuses} == {"FINISHED", "FAILED"}  # none left RUNNING
    err = capfd.readouterr().err
    assert "lines not shown" in err and len(err) < 3_000_000  # 200,000 lines and 20 MB came out


def test_a_fit_past_its_limit_fails_and_no_process_outlives_the_run(tracking_uri):
    task = synthetic_task(limits={"fit_seconds": 10})
    runs = evaluate(crashers("hang-fit"), task, tracking_uri=tracking_uri)
    assert runs.loc[0, "status"] == "FAILED"
    assert runs.loc[0, "reason"] == "submission 'crasher-hang-fit': limit: fit took more than 10 s"
    assert not sandboxes_of(HOSTILE / "crasher")


def test_without_cgroups_the_watchdog_enforces_memory_and_processes(monkeypatch, pop_alone):
    # Never a real fork bomb here: without the pids cgroup nothing but the watchdog
    # counts, and a bomb can outrun it (docs/sandbox.md).
    monkeypatch.setattr(WorkerCgroup, "create", classmethod(lambda cls, *_: None))
    task = synthetic_task(limits=LIMITED)
    table = by_name(evaluate(crashers("memory", "threads") + [shipped("pop")], task, store=False))
    assert CRASH_REASONS["memory"] in table.loc["crasher-memory", "reason"]
    assert CRASH_REASONS["fork-bomb"] in table.loc["crasher-threads", "reason"]
    assert_pop_unharmed(table.reset_index(), task, pop_alone(task))


def test_sys_exit_in_process_fails_the_run_and_the_batch_goes_on(pop_alone):
    task = synthetic_task()
    table = by_name(evaluate(crashers("exit") + [shipped("pop")], task, store=False, sandbox=False))
    assert table.loc["crasher-exit", "status"] == "FAILED"
    assert "SystemExit: the submission called sys.exit(3)" in table.loc["crasher-exit", "reason"]
    assert_pop_unharmed(table.reset_index(), task, pop_alone(task))


def sandboxes_of(folder: Path) -> list[int]:
    """Live processes whose command line mounts `folder` (bwrap of its sandbox)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if str(folder) in entry.joinpath("cmdline").read_bytes().decode(errors="replace") and \
                    "zombie" not in entry.joinpath("status").read_text():
                found.append(int(entry.name))
        except (OSError, ValueError):
            continue
    return found


def test_an_interrupted_command_records_its_run_killed_and_stops_the_worker(tracking_uri, monkeypatch):
    import benchmark.runner

    task = synthetic_task()
    timer = threading.Timer(3.0, lambda: os.kill(os.getpid(), signal.SIGINT))

    def log(line: str) -> None:  # Ctrl-C once the hanging fit has started (not mid-way through the store's setup)
        if line.endswith("crasher-hang-fit seed 0: fit"):
            timer.start()

    monkeypatch.setattr(benchmark.runner, "log", log)
    # A shell's background job starts Python with SIGINT ignored (no KeyboardInterrupt
    # ever): give the test Ctrl-C's usual meaning whatever launched it.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            evaluate(crashers("hang-fit"), task, tracking_uri=tracking_uri)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    client = MlflowClient(tracking_uri)
    stored = client.search_runs([client.get_experiment_by_name(task.experiment_name).experiment_id])
    assert [(r.info.status, r.data.tags["failure_reason"]) for r in stored] == [("KILLED", "interrupted by the user")]
    assert not sandboxes_of(HOSTILE / "crasher")


# ------------------------------------------------------------------ the filesystem view

VIEW_PROBE = '''
import glob, os, socket
import numpy as np
from benchmark.api import Recommender

def can_read(path):
    try:
        with open(path, "rb") as handle:
            return len(handle.read(1)) >= 0
    except OSError:
        return False

def can_write(folder):
    try:
        with open(os.path.join(folder, "written-by-the-sandbox"), "w") as handle:
            handle.write("x")
        return True
    except OSError:
        return False

class Model(Recommender):
    def __init__(self, paths=None, **rest):
        super().__init__(paths=paths, **rest)
        self.paths = paths or {}

    def fit(self, train, ctx):
        p = self.paths
        checks = {
            "sees_cache": os.path.exists(p["cache"]),
            "sees_raw_dataset": bool(glob.glob(p["assets"] + "/ml-100k-*")),
            "sees_declared_asset": bool(glob.glob(p["assets"] + "/minilm-*/config.json")),
            "sees_private_files": sum(os.path.exists(path) for path in p["private"]),
            "sees_other_repo_folders": os.path.exists(p["repo"] + "/tasks") or os.path.exists(p["repo"] + "/submissions/pop"),
            "sees_store": os.path.exists(p["store"]),
            "reads_harness_package": can_read(p["package"] + "/runner.py"),
            "writes_own_folder": can_write(p["own"]),
            "writes_asset": can_write(glob.glob(p["assets"] + "/minilm-*")[0]) if glob.glob(p["assets"] + "/minilm-*") else False,
            "writes_scratch": can_write(os.getcwd()) and can_write("/tmp"),
            "pid_namespace": os.getpid() < 10,
            "environment_clean": not any(k.startswith(("MLFLOW", "PYTEST")) for k in os.environ)
                                 and os.environ["LLM4REC_CACHE"] != p["cache"],
            "network_interfaces": len(socket.if_nameindex()),
        }
        for name, value in checks.items():
            ctx.log_metric(name, float(value), 0)

    def score(self, request):
        return np.zeros((len(request.users), request.n_candidates))
'''


def private_files(folder: Path) -> list[str]:
    """What $HOME and the default llm4rec cache hold besides the way to what the sandbox
    shows (the Python, the assets): the user's files, the processed data, the envs."""
    import sys

    from benchmark.paths import assets_root

    shown = [Path(sys.prefix), Path(sys.base_prefix), assets_root(), REPO / "benchmark", folder]
    home = Path.home()
    roots = [home, home / ".cache", home / ".cache" / "llm4rec"]
    return sorted(str(p) for root in roots if root.is_dir() for p in root.iterdir()
                  if not any(p == s or p in s.parents for s in shown))


def test_the_sandbox_shows_only_python_the_package_the_submission_and_its_assets(
        make_submission, isolated_cache, tracking_uri, tmp_path):
    from benchmark.data.assets import fetch_asset
    from benchmark.paths import assets_root

    fetch_asset("minilm", log=lambda _: None)
    folder = make_submission("view-probe", VIEW_PROBE, assets=["minilm"])
    paths = {"cache": str(isolated_cache), "assets": str(assets_root()), "own": str(folder),
             "repo": str(REPO), "store": str(tmp_path / "mlflow.db"), "package": str(REPO / "benchmark"),
             "private": private_files(folder)}
    probe = Submission(folder).variant(paths=paths)
    runs = evaluate(probe, synthetic_task(), tracking_uri=tracking_uri)
    assert runs.loc[0, "status"] == "FINISHED", runs.loc[0, "reason"]
    seen = {k.removeprefix("train/"): v for k, v in curves(tracking_uri, runs.loc[0, "run_id"]).items()}
    assert paths["private"]  # something of $HOME to hide
    assert seen == {"sees_cache": 0, "sees_raw_dataset": 0, "sees_declared_asset": 1, "sees_private_files": 0,
                    "sees_other_repo_folders": 0, "sees_store": 0, "reads_harness_package": 1,
                    "writes_own_folder": 0, "writes_asset": 0, "writes_scratch": 1, "pid_namespace": 1,
                    "environment_clean": 1, "network_interfaces": 1}  # a loopback of its own
    assert not (folder / "written-by-the-sandbox").exists()


GRANT_PROBE = """
import os
import numpy as np
from benchmark.api import Recommender

class Model(Recommender):
    def __init__(self, weights="", **rest):
        super().__init__(weights=weights, **rest)
        self.weights = weights

    def fit(self, train, ctx):
        ctx.log_metric("reads_weights", float(os.path.isfile(os.path.join(self.weights, "w.bin"))), 0)

    def score(self, request):
        return np.zeros((len(request.users), request.n_candidates))
"""


def test_only_the_operator_can_hand_a_model_a_local_path(make_submission, tmp_path, tracking_uri, isolated_cache):
    """A variant (a study grid, the operator's code) may point a hyperparameter at local
    weights, which are then mounted read-only; a card's own value is never mounted, and
    nothing may expose the harness's data cache."""
    theirs, ours = tmp_path / "card-says", tmp_path / "operator-says"
    for folder in (theirs, ours):
        folder.mkdir()
        (folder / "w.bin").write_bytes(b"weights")
    card = Submission(make_submission("grant-probe", GRANT_PROBE, hyperparameters={"weights": str(theirs)}))
    granted = card.variant("granted", weights=str(ours))
    cache = card.variant("cache", weights=str(isolated_cache / "processed"))
    (isolated_cache / "processed").mkdir(exist_ok=True)
    table = by_name(evaluate([card, granted, cache], synthetic_task(), tracking_uri=tracking_uri))
    assert curves(tracking_uri, table.loc["grant-probe", "run_id"]) == {"train/reads_weights": 0.0}
    assert curves(tracking_uri, table.loc["grant-probe-granted", "run_id"]) == {"train/reads_weights": 1.0}
    assert table.loc["grant-probe-cache", "status"] == "FAILED"
    assert "would expose the harness's data cache" in table.loc["grant-probe-cache", "reason"]


def test_a_card_cannot_mount_a_datasets_raw_files(make_submission):
    folder = make_submission("wants-raw", VIEW_PROBE, assets=["ml-100k"])
    runs = evaluate(folder, synthetic_task(), store=False)
    assert runs.loc[0, "status"] == "FAILED"
    assert "card field 'assets': 'ml-100k' is the source of dataset 'ml-100k'" in runs.loc[0, "reason"]


def test_without_bubblewrap_the_error_says_how_to_install_it_or_to_opt_out(monkeypatch, tmp_path):
    from benchmark.executors import sandbox

    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    with pytest.raises(SandboxUnavailable, match=r"apt-get install bubblewrap.*--no-sandbox"):
        evaluate(shipped("pop"), synthetic_task(), store=False)
    task_file = tmp_path / "task.yaml"
    task_file.write_text(json.dumps(synthetic_task().model_dump()))
    result = CliRunner().invoke(app, ["run", "-t", str(task_file), "-s", str(shipped("pop")),
                                      "--tracking-uri", f"sqlite:///{tmp_path / 'db.sqlite'}"])
    assert result.exit_code == 2 and "apt-get install bubblewrap" in result.output


# ------------------------------------------------------------------ the command

def test_the_command_counts_failures_prints_reasons_literally_and_tags_unsandboxed_runs(make_submission, tmp_path):
    task_file = tmp_path / "task.yaml"
    task_file.write_text(json.dumps(synthetic_task().model_dump()))
    markup = make_submission("markup", '''
from benchmark.api import Recommender

class Model(Recommender):
    def fit(self, train, ctx):
        raise RuntimeError("[/] [red]not markup[/red] [bold]")
''')
    uri = f"sqlite:///{tmp_path / 'db.sqlite'}"
    result = CliRunner().invoke(app, ["run", "-t", str(task_file), "-s", str(markup), "-s", str(shipped("pop")),
                                      "--tracking-uri", uri])
    assert result.exit_code == 1, result.output
    assert "RuntimeError: [/] [red]not markup[/red] [bold]" in result.output
    assert "runs: 2 (1 finished, 1 failed)" in result.output
    again = CliRunner().invoke(app, ["run", "-t", str(task_file), "-s", str(shipped("random")), "--no-sandbox",
                                     "--tracking-uri", uri])
    assert again.exit_code == 0 and "runs: 1 (1 finished, 0 failed)" in again.output
    client = MlflowClient(uri)
    stored = client.search_runs([client.get_experiment_by_name("sequential/synthetic@v1").experiment_id])
    assert {r.data.tags["submission"]: r.data.tags["sandbox"] for r in stored} == {
        "markup": "true", "pop": "true", "random": "false"}


# ------------------------------------------------------------------ the parts

def test_a_card_may_lower_a_limit_never_raise_it():
    task = LimitsSpec(fit_seconds=100, call_seconds=10, memory_mb=1000, processes=20)
    limits = Limits.effective(task, CardLimits(fit_seconds=30, memory_mb=4000))
    assert limits == Limits(fit_seconds=30, call_seconds=10, memory_mb=1000, processes=20)
    assert Limits.effective(task, CardLimits()) == Limits(100, 10, 1000, 20)
    assert limits.fit_breach() == "limit: fit took more than 30 s"


def test_curve_names_go_under_train():
    assert curve_name("NDCG@10") == "train/NDCG@10"
    assert curve_name("cost.fit_seconds") == "train/cost.fit_seconds"
    assert curve_name("train/loss") == "train/loss"
    assert curve_name("a;b{c}") == "train/a_b_c_"
    with pytest.raises(TypeError, match="non-empty str"):
        curve_name(7)


def test_the_output_forwarder_stays_bounded():
    read, write = os.pipe()
    shown: list[str] = []
    forwarder = OutputForwarder(read, "flood", shown.append)
    with os.fdopen(write, "wb") as stream:
        stream.write(b"".join(b"line %d\n" % i for i in range(20_000)))
        stream.write(b"y" * 5_000_000 + b"\n" + b"last words")
    forwarder.join(timeout=30)
    assert len(forwarder.tail) == TAIL_LINES and forwarder.tail[-1] == "last words"
    assert max(map(len, forwarder.tail)) <= LINE_CHARS + 2
    assert forwarder.hidden > 10_000 and len(shown) < 1_000
    assert any("lines not shown" in line for line in shown)


def test_the_harness_reads_no_unbounded_or_malformed_message():
    import io
    import struct

    def read(raw: bytes):
        return protocol.read_message(io.BytesIO(raw), limit=1000)

    with pytest.raises(protocol.ProtocolError, match="larger than the 1,000 bytes allowed"):
        read(b"L4R1" + struct.pack(">I", 2**31) + b"{}")
    with pytest.raises(protocol.ProtocolError, match="not JSON"):
        read(b"L4R1" + struct.pack(">I", 3) + b"{x}")
    with pytest.raises(protocol.ProtocolError, match="list of \\[name, size\\] arrays"):
        read(b"L4R1" + struct.pack(">I", 20) + b'{"arrays": [["a"]]} ')
    with pytest.raises(protocol.ProtocolError, match="larger than"):
        header = json.dumps({"arrays": [["a", 5000]]}).encode()
        read(b"L4R1" + struct.pack(">I", len(header)) + header)


def test_the_shared_buffer_cannot_be_shrunk_and_no_claim_reads_past_a_valid_answer():
    answers = AnswerReader()
    try:
        answers.reserve(1000)
        with pytest.raises(PermissionError):
            os.ftruncate(answers.fd, 0)  # what a worker would do to crash the harness (SIGBUS)
        assert answers.read("shared", "<f8", [10, 100]).shape == (10, 100)
        with pytest.raises(ValueError, match="does not fit"):
            answers.read("shared", "<f8", [1000, 1000])
        with pytest.raises(ValueError, match="did not offer"):
            answers.read("memory", "<f8", [10, 10], address=4096)  # not offered: no worker memory
    finally:
        answers.close()


@pytest.mark.parametrize("worker_memory", [True, False])
def test_answers_cross_from_the_workers_memory_or_through_the_shared_buffer(worker_memory, monkeypatch):
    from benchmark.api import FitContext, ScoreRequest
    from benchmark.executors import build_model

    if not worker_memory:  # as where the kernel does not let the harness read the worker
        monkeypatch.setattr(AnswerReader, "try_worker_memory", lambda *_: False)
    model = build_model(Submission(shipped("pop")))
    try:
        assert (model._process.answers.worker_pid is not None) == worker_memory
        views = build_views(synthetic_task(), prepare(synthetic_task(), log=lambda _: None))
        model.fit(views.train, FitContext(seed=0))
        request = ScoreRequest(views.test.users[:5], views.test.histories[:5], None, views.train.catalog)
        expected = Submission(shipped("pop")).build()
        expected.fit(views.train, FitContext(seed=0))
        assert model.score(request).tobytes() == expected.score(request).tobytes()
    finally:
        model.close()


def test_histories_cross_as_separate_arrays():
    values = np.arange(10)
    arrays = protocol.pack_ragged([values[:3], values[3:7]], "h.")
    first, second = protocol.unpack_ragged(arrays, "h.")
    assert first.base is None and second.base is None and not first.flags.writeable
    assert second.tolist() == [3, 4, 5, 6]
