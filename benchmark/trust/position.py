"""The position-bias pass: does a ranker of candidate sets prefer candidates by where
they stand in the list? (docs/trust.md)"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from benchmark.eval.candidates import place_target, shuffle_rows, target_columns
from benchmark.eval.metrics import RankingEvaluator
from benchmark.eval.trust import position_gap, shuffle_consistency
from benchmark.progress import track
from benchmark.trust import TrustRun


def applies(run: TrustRun) -> str | None:
    return None if run.test.candidates is not None else "full ranking: no candidate positions"


def measure(run: TrustRun, spec) -> dict[str, float]:
    """The first `users` test users with the target at each position: the main metric
    per position and PosGap (max - min); then `shuffles` seeded orders of the same
    candidates: the mean Kendall tau-b between the rankings (1 = order-invariant)."""
    part = run.first_users(spec.users)
    targets = np.asarray(part.targets)
    rng = run.rng("position_bias")
    passes = [(f"position {p}", place_target(part.candidates, targets, p)) for p in spec.positions]
    passes += [(f"shuffle {i}", shuffle_rows(part.candidates, rng)) for i in range(spec.shuffles)]
    scores = [run.scores(replace(part, candidates=candidates), label)
              for label, candidates in track(passes, f"{run.name} position-bias pass")]
    main = run.task.main_score
    per_position: dict[int, float] = {}
    for position, (_, candidates), pass_scores in zip(spec.positions, passes, scores):
        evaluator = RankingEvaluator([main])
        evaluator.add(part.users, pass_scores, target_columns(candidates, targets))
        per_position[position] = evaluator.summary()[main]
    metrics = {f"trust.pos_{p}.{main}": value for p, value in per_position.items()}
    metrics["trust.PosGap"] = position_gap(per_position)
    shuffled = len(spec.positions)
    orders = [candidates for _, candidates in passes[shuffled:]]
    metrics["trust.kendall_tau"] = shuffle_consistency(orders, scores[shuffled:])
    return metrics

