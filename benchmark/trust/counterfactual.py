"""The counterfactual pass (FaiRLLM, Zhang et al. RecSys 2023; CFaiRLLM, Deldjoo & Di
Noia 2024): the task's prompt with a sensitive attribute put before it ("The user is a
woman."), once per wording of each attribute, against the neutral prompt, on the same
users and candidates. The rankings' similarity to the neutral one (Jaccard@k, RBO) per
value, and its spread over the values (SNSR, SNSV). A model that ignores the prompt and
scores a request alike each time (pop) ranks as before: similarity 1 and spread 0 by
construction; one that draws new random scores per call (random) differs by chance."""
from __future__ import annotations

import numpy as np

from benchmark.data.views import EvalSet
from benchmark.eval.trust import jaccard_at_k, metric_label, rbo, snsr, snsv, stable_rankings
from benchmark.progress import track
from benchmark.tasks.schema import CounterfactualSpec
from benchmark.trust import TrustRun


def applies(run: TrustRun) -> str | None:
    if run.test.candidates is None:
        return "full ranking: no candidate sets to rank again"
    if not run.task.prompt:
        return "the task has no prompt"
    return None


def measure(run: TrustRun, spec: CounterfactualSpec) -> dict[str, float]:
    """Per attribute and value, the mean over the first `users` test users of Jaccard@k
    and RBO between the value's ranking and the neutral one; per attribute their means
    over values, and SNSR / SNSV of the per-value Jaccard@k."""
    part = run.first_users(spec.users)
    neutral = stable_rankings(neutral_scores(run, part), part.candidates)
    prompts = [(attribute, label, f"{attr.template.format(value=wording)}\n{run.task.prompt}")
               for attribute, attr in spec.attributes.items() for label, wording in attr.values.items()]
    metrics: dict[str, float] = {}
    per_value: dict[str, list[tuple[float, float]]] = {}
    for attribute, label, prompt in track(prompts, f"{run.name} counterfactual pass"):
        scores = run.scores(part, f"counterfactual {attribute}={label}", prompt=prompt)
        jaccard, overlap = similarity(neutral, stable_rankings(scores, part.candidates), spec)
        name = f"trust.counterfactual.{metric_label(attribute)}.{metric_label(label)}"
        metrics[f"{name}.jaccard@{spec.k}"] = jaccard
        metrics[f"{name}.rbo"] = overlap
        per_value.setdefault(attribute, []).append((jaccard, overlap))
    for attribute, values in per_value.items():
        jaccards = [j for j, _ in values]
        name = f"trust.counterfactual.{metric_label(attribute)}"
        metrics[f"{name}.jaccard@{spec.k}"] = float(np.mean(jaccards))
        metrics[f"{name}.rbo"] = float(np.mean([r for _, r in values]))
        metrics[f"{name}.snsr"] = snsr(jaccards)
        metrics[f"{name}.snsv"] = snsv(jaccards)
    return metrics


def neutral_scores(run: TrustRun, part: EvalSet) -> np.ndarray:
    """The test pass's scores of `part` under the task's own prompt, as recorded; scored
    again where the record does not hold these users' candidates (in this order)."""
    recorded = run.recorded.candidate_scores()
    if recorded is not None:
        candidates, scores = recorded
        n = len(part)
        if len(candidates) >= n and np.array_equal(candidates[:n], part.candidates):
            return scores[:n]
    return run.scores(part, "counterfactual neutral")


def similarity(neutral: np.ndarray, altered: np.ndarray, spec: CounterfactualSpec) -> tuple[float, float]:
    """Mean over users of Jaccard@k and RBO (to depth k) between two rankings per user."""
    jaccards = [jaccard_at_k(a, b, spec.k) for a, b in zip(neutral, altered)]
    overlaps = [rbo(a, b, spec.rbo_p, spec.k) for a, b in zip(neutral, altered)]
    return float(np.mean(jaccards)), float(np.mean(overlaps))
