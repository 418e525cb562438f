"""The sizes mode's budget: how many users each task can afford per LLM size on this
machine, and what a full run of each size would take here.

The estimate is a token count per row (from the committed GPU study's runs, which log
every token each row ran through its model) times seconds per token, measured once
per machine (kept in the cache, so a re-run plans alike): a 256-token forward pass of
the smallest model, scaled to each size by its parameter count (a forward pass costs about 2 x parameters FLOPs per token). The
mode then picks the largest user ladder step at which the three smallest sizes fit the
budget; a larger size that does not fit is left out and says what it would take.
"""
from __future__ import annotations

import time
from typing import Any

# Tokens a row runs through its model per zero-shot test user (20 candidates) and per
# CTR test row, without trust passes: the GPU study's cost.tokens of each row over its
# 200 users + 180 trust scorings (zero-shot) or 1,000 rows (CTR). Listwise: its prompt
# and 128 generated tokens. Training: samples x ~250 tokens x 3 (forward + backward).
TOKENS_PER_USER = {"smollm2-pointwise": 1355, "smollm2-icl": 2000, "smollm2-listwise": 650,
                   "tallrec-lite": 305, "softprompt": 350}
TOKENS_PER_CTR_ROW = {"tallrec-lite": 34, "softprompt": 40}
TRAIN_TOKENS_PER_SAMPLE = 750
LOAD_SECONDS = 15  # a sandboxed worker: Python, torch, the dense copy of the weights
# (zero-shot users, CTR rows), largest first; the full tasks are 200 users, 1,000 rows.
LADDER = [(200, 1000), (100, 500), (50, 200), (20, 100), (10, 50)]
FULL = LADDER[0]
TRUST_SCORINGS = 180  # the zero-shot task's trust passes, in user scorings
DEFAULT_BUDGET_MINUTES = 25.0
MUST_RUN = 3  # sizes the ladder step is chosen for


def estimate_seconds(seconds_per_token: float, users: int, ctr_rows: int, trust: bool = False,
                     seeds: int = 1, budgets: dict[str, list[int]] | None = None, epochs: int = 1) -> float:
    """One size's LLM rows at `users` / `ctr_rows`; `budgets` replaces the sizes mode's."""
    from benchmark.study.grid import SIZES_BUDGETS

    scorings = users + (TRUST_SCORINGS if trust else 0)
    tokens, loads = 0.0, 0
    for name in ("smollm2-pointwise", "smollm2-icl", "smollm2-listwise"):
        tokens, loads = tokens + TOKENS_PER_USER[name] * scorings, loads + 1
    for name, steps in (budgets or SIZES_BUDGETS).items():
        for budget in steps:
            tokens += TOKENS_PER_USER[name] * scorings + TOKENS_PER_CTR_ROW[name] * ctr_rows
            tokens += 2 * budget * epochs * TRAIN_TOKENS_PER_SAMPLE  # trained once per task
            loads += 2
    return seeds * (tokens * seconds_per_token + loads * LOAD_SECONDS)


def measure_seconds_per_token(model: str, tokens: int = 256, repeats: int = 3) -> float:
    """Seconds per token of a forward pass of `model` on this machine: the fastest of
    `repeats` passes after a warm-up (the others absorb what else the machine runs)."""
    import torch

    from benchmark.kits.llm.models import load_causal_lm

    lm = load_causal_lm(model)
    ids = torch.randint(100, 1000, (1, tokens), device=lm.device)
    best = float("inf")
    with torch.inference_mode():
        lm.model(ids[:, :16])
        for _ in range(repeats):
            started = time.perf_counter()
            lm.model(ids)
            best = min(best, time.perf_counter() - started)
    return best / tokens


def machine_seconds_per_token(model: str) -> float:
    """`measure_seconds_per_token`, once per machine and model: kept in the cache, so
    that the next invocation (a re-run that reuses the finished cells, `--report-only`)
    plans the same users and finds the same run keys."""
    import os
    import platform

    from benchmark.paths import memo_in_cache

    return memo_in_cache("study-sizes-speed.json", f"{model}|{platform.node()}|{os.cpu_count()}",
                         lambda: measure_seconds_per_token(model))


def plan_sizes(llms: list[str], budget_minutes: float | None = None,
               seconds_per_token: float | None = None) -> tuple[dict[str, int | None], list[dict[str, Any]], list[str]]:
    """(limit_users per family, one plan row per LLM, the reductions in words).

    `seconds_per_token`: of the first (smallest) model; measured when None."""
    from benchmark.kits.llm.models import ASSET_MODELS

    budget = (budget_minutes or DEFAULT_BUDGET_MINUTES) * 60
    unknown = [m for m in llms if m not in ASSET_MODELS or ASSET_MODELS[m].parameters is None]
    if unknown:
        raise ValueError(f"study sizes: {unknown} are not LLM assets with a known size "
                         f"(expected some of {[n for n, m in ASSET_MODELS.items() if m.tuning != 'encoder']})")
    llms = sorted(llms, key=lambda m: ASSET_MODELS[m].parameters)
    measured = seconds_per_token if seconds_per_token is not None else machine_seconds_per_token(llms[0])
    base = ASSET_MODELS[llms[0]].parameters
    per_token = {m: measured * ASSET_MODELS[m].parameters / base for m in llms}
    must = llms[:MUST_RUN]
    users, rows = next(((u, r) for u, r in LADDER
                        if all(estimate_seconds(per_token[m], u, r) <= budget for m in must)), LADDER[-1])
    plan = []
    for model in llms:
        info = ASSET_MODELS[model]
        estimate = estimate_seconds(per_token[model], users, rows)
        full = estimate_seconds(per_token[model], *FULL, trust=True, seeds=3,
                                budgets={"tallrec-lite": [0, 16, 64, 256, 1024], "softprompt": [16, 64, 256, 1024]},
                                epochs=4)
        runs = model in must or estimate <= budget
        plan.append({"model": model, "label": info.label, "parameters": info.parameters, "tuning": info.tuning,
                     "seconds_per_token": per_token[model], "estimated_minutes": estimate / 60,
                     "full_run_hours": full / 3600, "runs": runs,
                     "reason": None if runs else f"estimated {estimate / 60:.0f} min at {users} users, over the "
                                                 f"{budget / 60:.0f}-minute budget per size"})
    lines = [f"LLM sizes: each size's rows on the first {users} zero-shot users and {rows} CTR rows, picked for a "
             f"budget of {budget / 60:.0f} min per size on this machine (the largest step of {LADDER} at which "
             f"the {len(must)} smallest sizes fit; measured: {measured * 1000:.1f} ms per token for "
             f"{llms[0]}, scaled by parameters)"]
    lines += [f"{row['model']} left out: {row['reason']}; a full run of it would take about "
              f"{row['full_run_hours']:.0f} h here" for row in plan if not row["runs"]]
    return {"sequential": None, "zeroshot": users, "ctr": rows}, plan, lines
