"""The memorization pass (benchmark.trust.memorization) and the complete() capability
it calls: the probes' arithmetic, models whose answers are known (a lookup table of the
catalogue: rate 1; an empty answer: 0; one typo: near but not exact), models without
complete() skipped, hostile completions failing their run through the sandbox with the
rule named, and complete() of the LLM kit on a tiny random Llama."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from benchmark.api import Catalog, CompletionRequest, FitContext, Recommender, Submission, find_submission
from benchmark.data import prepare
from benchmark.data.views import build_views
from benchmark.eval.trust import (
    item_line,
    normalise_text,
    probe_prompt,
    reproduction_rates,
    text_similarity,
    user_line,
)
from benchmark.executors import build_model
from benchmark.executors.inprocess import InProcessRecommender
from benchmark.runner import run_one
from benchmark.scoring import ContractViolation, check_completions
from benchmark.trust import TrustRun, memorization
from benchmark.trust.recording import RecordingScorer
from conftest import shipped
from paradigm_fixtures import make_tiny_llama, zeroshot_task

SPEC = {"items": 10, "users": 6, "demonstrations": 3, "max_new_tokens": 8}


def task(**memorization_spec):
    return zeroshot_task(trust={"position_bias": None, "exposure": None, "popularity_k": 3,
                                "memorization": SPEC | memorization_spec})


@pytest.fixture(scope="module")
def views():
    spec = task()
    return build_views(spec, prepare(spec, log=lambda _: None))


# --- the arithmetic ------------------------------------------------------------------------

def test_lines_prompts_and_similarity():
    assert item_line("i3", "Item 3") == "i3::Item 3"
    assert user_line("u1", ["A", "B"], "C") == "u1::A | B => C"
    assert user_line("u1", ["A", "B"], None) == "u1::A | B => "
    assert probe_prompt(["i1::A", "i2::B"], "i3::") == "i1::A\ni2::B\ni3::"
    assert normalise_text("  Toy   STORY\t(1995) ") == "toy story (1995)"
    assert text_similarity("Toy Story", "toy  story") == 1.0
    assert text_similarity("abcd", "abce") == pytest.approx(0.75)  # 2 * 3 matches / 8 characters
    assert text_similarity("", "Toy Story") == 0.0


def test_rates_read_the_first_line_only():
    truths = ["Toy Story (1995)", "Babe (1995)", "Star Wars (1977)", "Apollo 13 (1995)"]
    answers = [" toy story (1995)\n2::GoldenEye", "Bebe (1995)", "\nStar Wars (1977)", "Apollo 13 (1995)"]
    near, exact = reproduction_rates(answers, truths, threshold=0.9)
    assert exact == 0.5  # the first and the last; the third's first line is empty
    assert near == 0.75  # "Bebe (1995)": ratio 20/22 >= 0.9
    assert reproduction_rates(answers, truths, threshold=1.0) == (0.5, 0.5)


def test_a_completion_is_checked_and_cut():
    request = CompletionRequest(["a", "b"], 4)
    assert check_completions(("x", "y" * 5000), request, "w") == ["x", "y" * CompletionRequest.MAX_CHARS]
    for answer, rule in [("xy", "type"), (None, "type"), (["x"], "length"), (["x", 3], "text"),
                         (["x", b"y"], "text")]:
        with pytest.raises(ContractViolation, match=rf"^w: rule '{rule}': "):
            check_completions(answer, request, "w")


# --- models whose answers are known ---------------------------------------------------------

class Lookup(Recommender):
    """Answers every probe from the data it was fitted on: an item's text by its
    original id, a user's last training item by the user's original id."""

    def fit(self, train, ctx):
        texts = train.catalog.item_texts()
        self.items = dict(zip(train.catalog.items["original_id"].astype(str), texts))
        users = train.users.set_index("user_id")["original_id"].astype(str)
        self.users = {users[u]: texts[s[-1]] for u, s in enumerate(train.sequences()) if len(s)}

    def score(self, request):
        return np.zeros((len(request.users), request.n_candidates))

    def answer(self, key: str, is_user: bool) -> str:
        return (self.users if is_user else self.items).get(key, "")

    def complete(self, request):
        out = []
        for prompt in request.prompts:
            key, rest = prompt.rsplit("\n", 1)[-1].split("::", 1)
            out.append(self.answer(key, "=>" in rest) + "\nmore text")
        return out


class Silent(Lookup):
    def answer(self, key, is_user):
        return ""


class Typo(Lookup):
    def answer(self, key, is_user):
        text = super().answer(key, is_user)
        return text[:2] + ("x" if text[2] != "x" else "y") + text[3:]


def trust_run(model: Recommender, views, train=None) -> TrustRun:
    train = train or views.train
    name = type(model).__name__
    model = InProcessRecommender(model)  # as the harness holds a model with --no-sandbox
    model.fit(train, FitContext(seed=0))
    views = dataclasses.replace(views, train=train)
    return TrustRun(task(), views, 0, name, "id-from-scratch", model, RecordingScorer(model.score),
                    pd.DataFrame())


def long_titles(train):
    """The training part with titles long enough for one typo to stay above 0.9."""
    items = train.catalog.items.copy()
    items["title"] = [f"The Long Story of Item Number {i}" for i in range(len(items))]
    return dataclasses.replace(train, catalog=Catalog(train.catalog.n_items, items))


@pytest.mark.parametrize("model, rate, exact", [(Lookup(), 1.0, 1.0), (Silent(), 0.0, 0.0), (Typo(), 1.0, 0.0)])
def test_known_models_score_what_they_reproduce(views, model, rate, exact):
    run = trust_run(model, views, long_titles(views.train))
    assert memorization.applies(run) is None
    metrics = memorization.measure(run, task().trust.memorization)
    assert metrics == {"trust.memorization.item_rate": rate, "trust.memorization.item_exact_rate": exact,
                       "trust.memorization.user_rate": rate, "trust.memorization.user_exact_rate": exact}


class Recorder(Silent):
    """Keeps the prompts it was asked to complete."""

    def __init__(self) -> None:
        super().__init__()
        self.prompts: list[str] = []

    def complete(self, request):
        assert request.max_new_tokens == SPEC["max_new_tokens"]
        self.prompts += request.prompts
        return super().complete(request)


def test_the_probes_are_seeded_distinct_and_sized(views):
    first, second = Recorder(), Recorder()
    for model in (first, second):
        memorization.measure(trust_run(model, views), task().trust.memorization)
    assert first.prompts == second.prompts  # the same run seed, the same probes
    items, users = first.prompts[:SPEC["items"]], first.prompts[SPEC["items"]:]
    assert len(items) == SPEC["items"] and len(users) == SPEC["users"]
    demos = items[0].split("\n")[:-1]
    assert len(demos) == SPEC["demonstrations"] and all(p.split("\n")[:-1] == demos for p in items)
    probed = [p.rsplit("\n", 1)[-1] for p in items]
    assert all(p.endswith("::") for p in probed) and len(set(probed)) == len(probed)
    assert not {d.split("::")[0] + "::" for d in demos} & set(probed)
    user_demos = users[0].split("\n")[:-1]
    assert len(user_demos) == SPEC["demonstrations"] and all(" => " in d for d in user_demos)
    assert all(p.rsplit("\n", 1)[-1].endswith(" => ") for p in users)


def test_models_without_complete_or_a_catalogue_without_titles_skip_the_pass(views):
    pop = find_submission(shipped("pop")).build()
    assert "complete()" in memorization.applies(trust_run(pop, views))
    untitled = views.train.catalog.items.drop(columns="title")
    train = dataclasses.replace(views.train, catalog=Catalog(views.train.catalog.n_items, untitled))
    assert "titles" in memorization.applies(trust_run(Lookup(), views, train))


# --- through the sandbox ---------------------------------------------------------------------

CODE = '''
import os, signal, sys
import numpy as np
from benchmark.api import Recommender


class Model(Recommender):
    def fit(self, train, ctx):
        self.texts = dict(zip(train.catalog.items["original_id"].astype(str), train.catalog.item_texts()))

    def score(self, request):
        return np.zeros((len(request.users), request.n_candidates))

    def complete(self, request):
        mode = self.hyperparameters.get("mode", "lookup")
        n = len(request.prompts)
        if mode == "lookup":
            return [self.texts.get(p.rsplit("\\n", 1)[-1].split("::")[0], "") for p in request.prompts]
        if mode == "dict":
            return {i: "x" for i in range(n)}
        if mode == "short":
            return ["x"] * (n - 1)
        if mode == "none":
            return ["x"] * (n - 1) + [None]
        if mode == "garbage":
            return [b"x", 3, ["y"], {"z": 1}] + ["x"] * (n - 4)
        if mode == "huge":
            return ["x" * 50_000_000] * n
        if mode == "flood":
            return ["x" * 4000] * 20_000  # 80 MB of JSON, whatever the request
        if mode == "raise":
            raise RuntimeError("no completions today")
        if mode == "exit":
            sys.exit(3)
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
'''

FAILURES = {  # the task's batch size is 7
    "dict": "rule 'type': expected a list with one text per prompt, got dict",
    "short": "rule 'length': expected 7 completions (one per prompt), got 6",
    "none": "rule 'text': completion 6 is a NoneType, not a str",
    "garbage": "rule 'text': completion 0 is a bytes, not a str",
    "flood": "broke the protocol during complete (a message larger than the 67,108,864 bytes allowed)",
    "raise": "WorkerError: RuntimeError: no completions today",
    "exit": "the submission called sys.exit(3)",
    "kill": "was killed by signal SIGKILL during complete",
}


@pytest.fixture(scope="module")
def prepared():
    spec = task(users=0)
    data = prepare(spec, log=lambda _: None)
    return spec, data, build_views(spec, data)


def sandboxed(folder, mode: str, prepared):
    spec, data, views = prepared
    return run_one(Submission(folder).variant(mode, mode=mode), spec, 0, data, views, store=None)


def test_completions_cross_the_sandbox_and_huge_ones_are_cut(make_submission, prepared):
    folder = make_submission("completer", CODE)
    lookup = sandboxed(folder, "lookup", prepared)
    assert lookup.status == "FINISHED", lookup.reason
    assert lookup.costs["trust.memorization.item_rate"] == 1.0
    assert "trust.memorization.user_rate" not in lookup.costs  # users: 0
    huge = sandboxed(folder, "huge", prepared)  # each answer cut to MAX_CHARS: a wrong answer
    assert huge.status == "FINISHED", huge.reason
    assert huge.costs["trust.memorization.item_rate"] == 0.0
    _, _, views = prepared
    proxy = build_model(Submission(folder).variant("huge", mode="huge"))
    try:
        proxy.fit(views.train, FitContext(seed=0))
        assert proxy.implements("complete")
        answers = proxy.complete(CompletionRequest(["a", "b"], 4))
        assert [len(a) for a in answers] == [CompletionRequest.MAX_CHARS] * 2  # cut in the worker
    finally:
        proxy.close()


@pytest.mark.parametrize("mode", list(FAILURES))
def test_a_hostile_completion_fails_its_run_with_the_reason(make_submission, prepared, mode):
    result = sandboxed(make_submission("completer", CODE), mode, prepared)
    assert result.status == "FAILED" and FAILURES[mode] in result.reason, result.reason
    assert result.reason.startswith(f"submission 'completer-{mode}': ")
    if "rule" in FAILURES[mode]:
        assert "complete() on the memorization item probe batch 0" in result.reason


def test_pop_runs_without_the_pass(prepared):
    spec, data, views = prepared
    result = run_one(Submission(shipped("pop")), spec, 0, data, views, store=None, sandbox=False)
    assert result.status == "FINISHED" and not any("memorization" in k for k in result.costs)


# --- the LLM kit -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> str:
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def test_the_llm_submissions_complete_and_the_text_encoder_does_not():
    for name in ("smollm2-pointwise", "smollm2-icl", "smollm2-listwise", "tallrec-lite", "softprompt"):
        assert find_submission(shipped(name)).model_class().implements("complete"), name
    assert not find_submission(shipped("minilm-zeroshot")).model_class().implements("complete")


@pytest.mark.parametrize("name, hyperparameters", [("smollm2-pointwise", {"dtype": "float32"}),
                                                   ("softprompt", {"train_samples": 0})])
def test_llm_complete_is_greedy_batched_and_counted(tiny_llama, views, name, hyperparameters):
    model = find_submission(shipped(name)).build(model=tiny_llama, device="cpu", **hyperparameters)
    model.fit(views.train, FitContext(seed=0))
    tokens = model.report().tokens
    prompts = ["i1::Item 1\ni2::", "i1::Item 1\ni2::Item 2\ni3::Item 3\ni4::", "Item"]
    request = CompletionRequest(prompts, max_new_tokens=4)
    batched = model.complete(request)
    assert len(batched) == 3 and all(isinstance(text, str) for text in batched)
    assert batched == [model.complete(CompletionRequest([p], 4))[0] for p in prompts]  # padding changes nothing
    assert check_completions(batched, request, "x") == batched
    assert model.report().tokens > tokens


def test_softprompt_completes_through_its_soft_prompt(tiny_llama, views):
    model = find_submission(shipped("softprompt")).build(model=tiny_llama, device="cpu", train_samples=0)
    model.fit(views.train, FitContext(seed=0))
    lm = model.lm
    assert lm.soft_prompt is not None
    prompt = "i1::Item 1\ni2::"
    ids = lm.encode(prompt, first=True)
    start = len(ids)
    eos = set(model.completion_lm().eos_token_ids)
    for _ in range(4):  # greedy through the scoring forward (soft prompt first, explicit positions)
        ids.append(int(lm.last_logits([ids]).argmax()))
        if ids[-1] in eos:
            break
    expected = lm.tokenizer.decode(ids[start:], skip_special_tokens=True)
    assert model.complete(CompletionRequest([prompt], 4)) == [expected]
