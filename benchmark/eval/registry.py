"""The metric registry: one spec per metric, the single home of its facts.

Whatever needs to know something about a metric asks here: the task schema and the
evaluators (which names a family accepts, whether a name takes a cutoff), the results
tables and the leaderboard (which direction is better, how many digits to show) and the
paired tests (which per-user column carries the metric). Adding a metric is one
`MetricSpec` in `METRICS` plus its function in an evaluator (docs/metrics.md, "Adding a
metric").
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Collection, Literal, Mapping

# "required": NAME@K only; "optional": NAME or NAME@K (no K = the whole list);
# "none": NAME only.
Cutoff = Literal["required", "optional", "none"]


@dataclass(frozen=True)
class MetricSpec:
    name: str  # the base name, written NAME or NAME@K in a task
    # family -> the metric's place in that family's list (the order of `metric_names`
    # and of error messages)
    families: Mapping[str, int]
    description: str
    # One rule, or one per family. Without a cutoff HR/Recall are always 1 and NDCG would
    # need prefix sums over the whole catalogue (where float64 cumsum drifts), so only
    # single-target MRR may omit K; top-K metrics need K; CTR metrics never take one.
    cutoff: Cutoff | Mapping[str, Cutoff] = "required"
    higher_is_better: bool = True
    # The column of per_user_metrics.parquet a paired test reads ("{name}": the metric's
    # own name, e.g. NDCG@10); None when the metric is not a mean over users.
    per_user_column: str | None = "{name}"
    # What that column holds, when it is not the metric itself (tables say "per-user AUC").
    per_user_label: str | None = None
    digits: int = 4  # decimals shown for its means and stds

    def cutoff_rule(self, family: str) -> Cutoff:
        return self.cutoff if isinstance(self.cutoff, str) else self.cutoff[family]


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("HR", dict(sequential=0, zeroshot=0, topk=3),
               "hit rate: share of users with a relevant item in their top K"),
    MetricSpec("NDCG", dict(sequential=1, zeroshot=1, topk=2),
               "normalised discounted cumulative gain of the top K"),
    MetricSpec("MRR", dict(sequential=2, zeroshot=2, topk=4),
               "reciprocal rank of the first relevant item (0 beyond K)",
               cutoff={"sequential": "optional", "zeroshot": "optional", "topk": "required"}),
    MetricSpec("Recall", dict(sequential=3, zeroshot=3, topk=0),
               "share of a user's relevant items in its top K"),
    MetricSpec("Precision", dict(topk=1), "share of the top K that is relevant"),
    MetricSpec("MAP", dict(topk=5), "mean average precision of the top K"),
    MetricSpec("ItemCoverage", dict(topk=6),
               "expected share of the catalogue in some user's top K (over the catalogue, not per user)",
               per_user_column=None),
    MetricSpec("ARP", dict(topk=7), "average training popularity of the items in a user's top K"),
    MetricSpec("AUC", dict(ctr=0), "ROC AUC over all test rows, tied predictions counted 1/2",
               cutoff="none", per_user_column="auc", per_user_label="AUC"),
    MetricSpec("GAUC", dict(ctr=1), "per-user AUC weighted by impressions (single-class users left out)",
               cutoff="none", per_user_column="auc", per_user_label="AUC"),
    MetricSpec("LogLoss", dict(ctr=2), "binary cross-entropy, predictions clipped to [1e-7, 1 - 1e-7]",
               cutoff="none", higher_is_better=False, per_user_column=None),
)
SPECS: dict[str, MetricSpec] = {spec.name: spec for spec in METRICS}
# Families in the order they first appear in the registry.
KNOWN_FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(f for spec in METRICS for f in spec.families))
DEFAULT_DIGITS = 4


def metric_names(family: str) -> tuple[str, ...]:
    """The metric base names a task family accepts, e.g. ("AUC", "GAUC", "LogLoss") for "ctr"."""
    if family not in KNOWN_FAMILIES:
        raise ValueError(f"unknown task family {family!r}; known families: {', '.join(KNOWN_FAMILIES)}")
    accepted = [spec for spec in METRICS if family in spec.families]
    return tuple(spec.name for spec in sorted(accepted, key=lambda spec: spec.families[family]))


METRIC_NAMES = metric_names("sequential")  # single-target ranking (sequential, zeroshot)
TOPK_METRIC_NAMES = metric_names("topk")
CTR_METRIC_NAMES = metric_names("ctr")


def parse_metric(name: str, family: str = "sequential") -> tuple[str, int | None]:
    """Split "NDCG@10" into ("NDCG", 10); "MRR" gives ("MRR", None). Names are checked against `family`."""
    names = metric_names(family)
    base, sep, k_text = name.partition("@")
    if base not in names:
        raise ValueError(_unknown_metric(name, base, sep, k_text, family, names))
    rule = SPECS[base].cutoff_rule(family)
    if rule == "none":
        if sep:
            raise ValueError(f"metric {name!r} takes no cutoff; write {base}")
        return base, None
    if not sep:
        if rule != "optional":
            raise ValueError(f"metric {name!r} needs a cutoff, e.g. {base}@10")
        return base, None
    if not k_text.isdigit() or int(k_text) < 1:
        raise ValueError(f"metric {name!r}: the cutoff K must be an integer >= 1, e.g. {base}@10")
    return base, int(k_text)


def _unknown_metric(name: str, base: str, sep: str, k_text: str, family: str, names: tuple[str, ...]) -> str:
    upper = [m.upper() for m in names]
    close = difflib.get_close_matches(base.upper(), upper, n=1, cutoff=0.5)
    first = f"unknown metric {name!r}"
    if close:
        first += f" (did you mean {names[upper.index(close[0])] + sep + k_text!r}?)"
    elsewhere = [f for f in KNOWN_FAMILIES if base in SPECS and f in SPECS[base].families]
    if elsewhere:
        first += f" for a {family} task ({base} is a {' / '.join(elsewhere)} metric)"
    takes_cutoff = any(SPECS[m].cutoff_rule(family) != "none" for m in names)
    known = (f"known metrics: {', '.join(names)}, written NAME@K (e.g. {names[0]}@10)" if takes_cutoff
             else f"known metrics: {', '.join(names)} (no cutoff)")
    return f"{first}; {known}"


# ---------------------------------------------------------------- any logged name


def metric_spec(metric: str) -> MetricSpec | None:
    """The spec behind a logged metric name ("NDCG@10", "AUC"); None for names the
    registry does not hold (costs, trust metrics, training curves)."""
    return SPECS.get(metric.partition("@")[0])


def higher_is_better(metric: str) -> bool:
    """Direction of any logged name: costs (`cost.*`) are better lower; otherwise the
    spec of the name's last part decides (`LogLoss`, `trust.LogLoss`: lower), and names
    the registry does not hold (trust metrics, `train.*`) count higher-is-better."""
    if metric.startswith("cost."):
        return False
    spec = metric_spec(metric.rsplit(".", 1)[-1])
    return spec.higher_is_better if spec is not None else True


def per_user_column(metric: str, columns: Collection[str]) -> str | None:
    """The per-user column to test `metric` on (NDCG@10 -> NDCG@10, AUC -> auc), or None
    when the metric is not a mean over users or the runs did not log that column."""
    if metric in columns:
        return metric
    spec = metric_spec(metric)
    if spec is None or spec.per_user_column is None:
        return None
    column = spec.per_user_column.format(name=metric)
    return column if column in columns else None


def per_user_statistic(metric: str) -> str:
    """What a paired test on `metric` compares, in words: "per-user NDCG@10", "per-user AUC"."""
    spec = metric_spec(metric)
    return f"per-user {spec.per_user_label if spec is not None and spec.per_user_label else metric}"


def display_digits(metric: str) -> int:
    """Decimals to show for a metric's mean and std."""
    spec = metric_spec(metric)
    return spec.digits if spec is not None else DEFAULT_DIGITS
