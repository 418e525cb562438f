"""Evaluation: tie-aware ranking metrics (candidate sets, significance and trust metrics to come)."""

from benchmark.eval.metrics import (
    METRIC_NAMES,
    RankingEvaluator,
    chance_level,
    metrics_from_counts,
    parse_metric,
    target_rank_counts,
)

__all__ = [
    "METRIC_NAMES",
    "RankingEvaluator",
    "chance_level",
    "metrics_from_counts",
    "parse_metric",
    "target_rank_counts",
]
