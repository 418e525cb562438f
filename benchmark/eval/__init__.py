"""Evaluation: the metric registry (one spec per metric), tie-aware ranking metrics
(single- and multi-target), CTR metrics, the paired significance test, trust metrics."""

from benchmark.eval.ctr import CTREvaluator, auc, ctr_metrics, ctr_per_user, log_loss
from benchmark.eval.metrics import (
    RankingEvaluator,
    chance_level,
    metrics_from_counts,
    target_rank_counts,
)
from benchmark.eval.multi import TopKEvaluator
from benchmark.eval.registry import (
    CTR_METRIC_NAMES,
    METRIC_NAMES,
    METRICS,
    TOPK_METRIC_NAMES,
    MetricSpec,
    higher_is_better,
    metric_names,
    metric_spec,
    parse_metric,
    per_user_column,
)

__all__ = [
    "CTR_METRIC_NAMES",
    "CTREvaluator",
    "METRICS",
    "METRIC_NAMES",
    "MetricSpec",
    "TOPK_METRIC_NAMES",
    "RankingEvaluator",
    "TopKEvaluator",
    "auc",
    "chance_level",
    "ctr_metrics",
    "ctr_per_user",
    "higher_is_better",
    "log_loss",
    "metric_names",
    "metric_spec",
    "metrics_from_counts",
    "parse_metric",
    "per_user_column",
    "target_rank_counts",
]
