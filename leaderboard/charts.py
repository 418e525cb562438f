"""Plotly figures shared by the app and the static export. Labels come from the
snapshot (submitter-controlled names), so they are passed as data, never as HTML."""
from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from benchmark.eval.registry import higher_is_better
from benchmark.paradigms import color as _color
from leaderboard.tables import REFERENCE_SUBMISSIONS, row_label



def _layout(fig: go.Figure, legend: str = "paradigm", **layout) -> go.Figure:
    fig.update_layout(template="plotly_white", margin=dict(l=10, r=10, t=40, b=10), legend_title_text=legend,
                      **layout)
    return fig


def _text(value: object) -> str:
    """Plotly renders a subset of HTML in labels (<a href>, <b>, <br>): escape
    submitter-controlled names so they show literally."""
    return html.escape(str(value), quote=False)


def _label(row) -> str:
    return _text(row_label(row))


def _reference_lines(fig: go.Figure, board: pd.DataFrame, metric: str, horizontal: bool) -> None:
    """random and pop drawn as dashed reference lines across the chart."""
    for _, row in board[board["submission"].isin(REFERENCE_SUBMISSIONS)].iterrows():
        value = row.get(metric)
        if value is None or not np.isfinite(value):
            continue
        line = dict(line_dash="dash", line_color="#555", annotation_text=row["submission"],
                    annotation_position="top right" if horizontal else "top left")
        if horizontal:
            fig.add_vline(x=value, **line)
        else:
            fig.add_hline(y=value, **line)


def score_bars(board: pd.DataFrame, metric: str | None = None, title: str | None = None) -> go.Figure:
    """Horizontal bars, best on top, error bars = std over seeds, colored by paradigm,
    reference rows as dashed lines."""
    metric = metric or board["main_score"].iloc[0]
    table = board.dropna(subset=[metric]).sort_values(metric, ascending=not higher_is_better(metric))
    fig = go.Figure()
    labels = [_label(r) for _, r in table.iterrows()]
    for paradigm in dict.fromkeys(table["paradigm"]):
        mask = (table["paradigm"] == paradigm).to_numpy()
        fig.add_bar(y=np.array(labels, dtype=object)[mask], x=table.loc[mask, metric], orientation="h",
                    name=_text(paradigm), marker_color=_color(paradigm),
                    error_x=dict(type="data", array=table.loc[mask, f"{metric} std"].fillna(0.0), visible=True))
    _reference_lines(fig, table, metric, horizontal=True)
    _layout(fig, title=_text(title or f"{metric} (mean ± std over seeds)"),
                      height=max(260, 38 * len(table) + 110), barmode="overlay",
                      yaxis=dict(categoryorder="array", categoryarray=labels[::-1]), xaxis_title=metric)
    return fig


def paradigm_scores(board: pd.DataFrame) -> go.Figure:
    """One task's main score per submission, grouped by paradigm."""
    metric = board["main_score"].iloc[0]
    fig = go.Figure()
    for paradigm, group in board.groupby("paradigm", sort=False):
        fig.add_scatter(x=[_text(paradigm)] * len(group), y=group["score"], mode="markers", name=_text(paradigm),
                        marker=dict(size=12, color=_color(paradigm)),
                        error_y=dict(type="data", array=group["score_std"].fillna(0.0), visible=True),
                        text=[_label(r) for _, r in group.iterrows()], hovertemplate="%{text}: %{y:.4f}")
    _reference_lines(fig, board.assign(**{metric: board["score"]}), metric, horizontal=False)
    _layout(fig, title=_text(f"{board['experiment'].iloc[0]} — {metric} by paradigm"),
                      yaxis_title=metric, height=380)
    return fig


def score_vs_cost(board: pd.DataFrame, cost: str, cost_label: str) -> go.Figure:
    """Main score against one cost (log scale), error bars over seeds."""
    metric = board["main_score"].iloc[0]
    table = board.dropna(subset=[cost]) if cost in board else board.iloc[0:0]
    fig = go.Figure()
    for paradigm, group in table.groupby("paradigm", sort=False):
        fig.add_scatter(x=group[cost], y=group["score"], mode="markers", name=_text(paradigm),
                        marker=dict(size=12, color=_color(paradigm)),
                        error_y=dict(type="data", array=group["score_std"].fillna(0.0), visible=True),
                        text=[_label(r) for _, r in group.iterrows()],
                        hovertemplate="%{text}<br>" + cost_label + " %{x:.3g}<br>" + metric + " %{y:.4f}")
    positive = len(table) and (table[cost] > 0).all()
    _layout(fig, title=_text(f"{board['experiment'].iloc[0]} — {metric} against {cost_label}"),
                      xaxis=dict(title=cost_label, type="log" if positive else "linear"), yaxis_title=metric,
                      height=380)
    return fig


def score_vs_budget(budget: pd.DataFrame) -> go.Figure:
    """Main score against the number of training samples, one line per model."""
    fig = go.Figure()
    for submission, group in budget.groupby("line", sort=False):
        group = group.sort_values("train_samples")
        fig.add_scatter(x=group["train_samples"], y=group["score"], mode="lines+markers", name=_text(submission),
                        line=dict(color=_color(group["paradigm"].iloc[0])),
                        error_y=dict(type="data", array=group["score_std"].fillna(0.0), visible=True))
    metric = budget["main_score"].iloc[0] if len(budget) else "score"
    positive = len(budget) and (budget["train_samples"] > 0).all()
    _layout(fig, title=f"{metric} against training budget",
                      xaxis=dict(title="training samples", type="log" if positive else "linear"),
                      yaxis_title=metric, legend="submission", height=380)
    return fig


def position_bias(curve: pd.DataFrame) -> go.Figure:
    """Quality against the target's position in the prompt's candidate list."""
    fig = go.Figure()
    for submission, group in curve.groupby("submission", sort=False):
        group = group.sort_values("position")
        fig.add_scatter(x=group["position"], y=group["value"], mode="lines+markers", name=_text(submission),
                        error_y=dict(type="data", array=group["std"].fillna(0.0), visible=True))
    metric = curve["metric"].iloc[0] if len(curve) else ""
    _layout(fig, title=f"position bias: {metric} by the target's position among the candidates",
                      xaxis_title="target position", yaxis_title=metric, legend="submission", height=360)
    return fig


def per_user_histogram(values: pd.DataFrame, metric: str) -> go.Figure:
    """Distribution over users of one metric, one trace per seed."""
    fig = go.Figure()
    for seed, group in values.groupby("seed", sort=True):
        fig.add_histogram(x=group[metric], name=f"seed {seed:g}" if np.isfinite(seed) else "seed ?",
                          opacity=0.6, nbinsx=30)
    _layout(fig, barmode="overlay", title=f"per-user {metric}", xaxis_title=metric,
                      yaxis_title="users", legend="run", height=340)
    return fig
