"""Evaluation: tie-aware ranking metrics (single- and multi-target), CTR metrics (candidate sets, significance and trust metrics to come)."""

from benchmark.eval.ctr import CTREvaluator, auc, ctr_metrics, ctr_per_user, log_loss
from benchmark.eval.metrics import (
    CTR_METRIC_NAMES,
    METRIC_NAMES,
    TOPK_METRIC_NAMES,
    RankingEvaluator,
    chance_level,
    metric_names,
    metrics_from_counts,
    parse_metric,
    target_rank_counts,
)
from benchmark.eval.multi import TopKEvaluator

__all__ = [
    "CTR_METRIC_NAMES",
    "CTREvaluator",
    "METRIC_NAMES",
    "TOPK_METRIC_NAMES",
    "RankingEvaluator",
    "TopKEvaluator",
    "auc",
    "chance_level",
    "ctr_metrics",
    "ctr_per_user",
    "log_loss",
    "metric_names",
    "metrics_from_counts",
    "parse_metric",
    "target_rank_counts",
]
