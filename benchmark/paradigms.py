"""How reports show training paradigms and costs, for the leaderboard and the paradigm
study alike: the order (the contract's closed vocabulary, `benchmark.api.PARADIGMS`),
one colour per paradigm, its Streamlit badge colour, and the label of each cost metric."""
from __future__ import annotations

from benchmark.api.types import PARADIGMS

PARADIGM_ORDER: tuple[str, ...] = PARADIGMS
# Plotly / HTML colour per paradigm, and the Streamlit badge colour (:blue-badge[...])
# closest to it.
COLORS = {"non-personalized": "#9e9e9e", "id-from-scratch": "#1f77b4", "pretrain-finetune": "#9467bd",
          "prompt-tuning": "#ff7f0e", "instruction-tuning": "#bcbd22", "zero-shot": "#d62728",
          "in-context": "#2ca02c"}
BADGES = {"non-personalized": "gray", "id-from-scratch": "blue", "pretrain-finetune": "violet",
          "prompt-tuning": "orange", "instruction-tuning": "yellow", "zero-shot": "red", "in-context": "green"}
UNKNOWN_COLOR, UNKNOWN_BADGE = "#7f7f7f", "gray"

# Cost metric -> column label, in display order.
COSTS = {"cost.fit_seconds": "fit s", "cost.score_seconds": "inference s",
         "cost.trainable_parameters": "trainable params", "cost.peak_rss_mb": "peak RSS MB",
         "cost.tokens": "tokens", "cost.train_samples": "train samples",
         "cost.load_average": "load avg"}
# Not costs to plot or sum: how busy the machine was while the seconds were measured.
CONDITIONS = ("cost.load_average",)


def paradigm_rank(paradigm: str) -> int:
    """Sort key: the vocabulary's order, unknown paradigms last."""
    return PARADIGM_ORDER.index(paradigm) if paradigm in PARADIGM_ORDER else len(PARADIGM_ORDER)


def color(paradigm: str) -> str:
    return COLORS.get(paradigm, UNKNOWN_COLOR)


def badge(paradigm: str) -> str:
    return BADGES.get(paradigm, UNKNOWN_BADGE)
