"""The memorization pass: does a model that writes text reproduce the dataset? In the
spirit of LLM-MemoryInspector, the model completes lines of the dataset after a few
demonstration lines (docs/trust.md):

- item probe: "<item id>::<title (year)>" lines; the model is given "<item id>::" of
  other items and should not know their titles unless it saw the catalogue;
- user probe: "<user id>::<up to 10 training items> => <the next one>" lines of users
  of the training part; the model is given a user's line up to "=> ".

A completion's first line counts as reproduced exactly (normalised) or nearly
(similarity >= threshold): `trust.memorization.item_rate` / `.item_exact_rate` and
`.user_rate` / `.user_exact_rate`. The training part is the run's (a zero-shot model
never saw it: a high user rate means the data was in its pre-training)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.api import CompletionRequest
from benchmark.eval.trust import item_line, probe_prompt, reproduction_rates, user_line
from benchmark.scoring import check_completions
from benchmark.trust import TrustRun

HISTORY = 10  # the items before a user's last one shown in the user's line
MIN_ITEMS = 3  # training items a probed user needs (a history of two, then the target)


def applies(run: TrustRun) -> str | None:
    if not run.model.implements("complete"):
        return "the model does not complete text (no complete())"
    if run.train.catalog.titles() is None:
        return "the catalogue has no titles"
    return None


def measure(run: TrustRun, spec) -> dict[str, float]:
    """The item probe, then (spec.users > 0) the user probe, with probes and
    demonstrations drawn once from the pass's random stream."""
    rng = run.rng("memorization")
    metrics = _item_probe(run, spec, rng)
    if spec.users > 0:
        metrics |= _user_probe(run, spec, rng)
    return metrics


def _item_probe(run: TrustRun, spec, rng: np.random.Generator) -> dict[str, float]:
    """Titled items only: "item 123" (an untitled item's text) is no memory."""
    catalog = run.train.catalog
    texts = catalog.item_texts()
    ids = _original_ids(catalog.items, "item_id", catalog.n_items)
    drawn = _draw(np.flatnonzero(catalog.has_title()), spec.demonstrations, spec.items, rng)
    if drawn is None:
        return {}
    demos, probes = drawn
    lines = [item_line(ids[i], texts[i]) for i in demos]
    prompts = [probe_prompt(lines, item_line(ids[i], "")) for i in probes]
    completions = _complete(run, prompts, spec, "memorization item probe")
    near, exact = reproduction_rates(completions, [texts[i] for i in probes], spec.threshold)
    return {"trust.memorization.item_rate": near, "trust.memorization.item_exact_rate": exact}


def _user_probe(run: TrustRun, spec, rng: np.random.Generator) -> dict[str, float]:
    sequences = run.train.sequences()
    texts = run.train.catalog.item_texts()
    ids = _original_ids(run.train.users, "user_id", run.train.n_users)
    eligible = np.flatnonzero([len(s) >= MIN_ITEMS for s in sequences])
    drawn = _draw(eligible, spec.demonstrations, spec.users, rng)
    if drawn is None:
        return {}
    demos, probes = drawn

    def line(user: int, with_target: bool) -> str:
        items = sequences[user]
        history = [texts[i] for i in items[:-1][-HISTORY:]]
        return user_line(ids[user], history, texts[items[-1]] if with_target else None)

    lines = [line(u, True) for u in demos]
    prompts = [probe_prompt(lines, line(u, False)) for u in probes]
    completions = _complete(run, prompts, spec, "memorization user probe")
    near, exact = reproduction_rates(completions, [texts[sequences[u][-1]] for u in probes], spec.threshold)
    return {"trust.memorization.user_rate": near, "trust.memorization.user_exact_rate": exact}


def _original_ids(table: pd.DataFrame | None, dense: str, n: int) -> list[str]:
    """The original id of each dense id 0..n-1 as text (the dense id where unknown)."""
    if table is None or "original_id" not in table:
        return [str(i) for i in range(n)]
    known = dict(zip(table[dense].astype(int), table["original_id"].astype(str)))
    return [known.get(i, str(i)) for i in range(n)]


def _draw(pool: np.ndarray, demonstrations: int, probes: int,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    """`demonstrations` and up to `probes` distinct members of the pool (None when it
    cannot spare one probe)."""
    probes = min(probes, len(pool) - demonstrations)
    if probes < 1:
        return None
    chosen = rng.choice(pool, size=demonstrations + probes, replace=False)
    return chosen[:demonstrations], chosen[demonstrations:]


def _complete(run: TrustRun, prompts: list[str], spec, label: str) -> list[str]:
    """The model's completions, checked, in batches of the task's batch size."""
    out: list[str] = []
    size = run.task.batch_size
    for start in range(0, len(prompts), size):
        request = CompletionRequest(prompts[start:start + size], spec.max_new_tokens, stop=["\n"])
        where = f"submission '{run.name}': complete() on the {label} batch {start // size}"
        out += check_completions(run.model.complete(request), request, where)
    return out
