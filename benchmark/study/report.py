"""The study's report: tables read back from the MLflow runs of the grid, figures
(plotly in the HTML, static PNGs beside the Markdown), paired significance, and a
summary of which paradigm wins on which task at what cost.

Everything here reads the results store through the suite's one results reader
(benchmark.tracking.results: the runs table and the runs' `per_user_metrics.parquet`),
picking the grid's runs by id; nothing is taken from the process that ran the models.
Paradigm order, colours and cost labels come from benchmark.paradigms, the paired test
from benchmark.eval.significance.
"""
from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.environment import devices_label, short_device
from benchmark.eval.registry import higher_is_better, per_user_column, per_user_statistic
from benchmark.eval.significance import ALPHA, TEST_NAME, paired_tests, pairwise, seed_matrix, with_holm
from benchmark.families import family as task_family
from benchmark.paradigms import COSTS as COST_LABELS, CONDITIONS, color, paradigm_rank
from benchmark.spreadsheet import spreadsheet_csv
from benchmark.study.grid import StudyConfig
from benchmark.tracking.results import CANDIDATE_HASH, REDRAW_NOTE, candidate_redraws

COSTS = {name: label for name, label in COST_LABELS.items() if name not in CONDITIONS}
# Kept from the runs table for the paired tests and the std label, not written to runs.csv.
_READER_COLUMNS = ["artifact_uri", "draw", CANDIDATE_HASH]


# ------------------------------------------------------------------------ reading runs


def read_runs(cells: pd.DataFrame, config: StudyConfig,
              tracking_uri: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, failures). runs: one row per finished run of the grid, from the results
    reader's runs table of the study's tasks (the cells name their runs by id): entry,
    family, task, paradigm, budget, llm (an LLM row's model, None for the others), seed,
    run_id, main_score (its name), main (its value), partial, every metric. failures:
    entry, task, seed, reason."""
    from benchmark.tasks import load_task
    from benchmark.tracking.results import evaluation_draw
    from benchmark.tracking.results import read_runs as read_table
    from benchmark.tracking.store import ResultsStore

    ok = cells[cells["status"].isin(["FINISHED", "REUSED"]) & cells["run_id"].notna()] if len(cells) else cells
    failed = cells[~cells.index.isin(ok.index)] if len(cells) else cells
    columns = ["entry", "task", "seed", "status", "reason"]
    failures = failed[[c for c in columns if c in failed]].copy() if len(failed) else pd.DataFrame(columns=columns)
    if ok.empty:
        return pd.DataFrame(), failures
    store = ResultsStore(tracking_uri)
    table = pd.concat([read_table(store, load_task(task).experiment_name) for task in config.tasks.values()],
                      ignore_index=True)
    table = table.assign(draw=evaluation_draw(table)).set_index("run_id")
    metrics = [c for c in table.columns if c.startswith("metric:")]
    rows = []
    for _, cell in ok.iterrows():
        run = table.loc[cell["run_id"]]
        logged = {c.removeprefix("metric:"): run[c] for c in metrics if pd.notna(run[c])}
        rows.append({"entry": cell["entry"], "base": cell.get("base_submission"), "family": cell["family"],
                     "task": run["task"], "submission": run["submission"], "paradigm": run["paradigm"],
                     "budget": cell.get("budget"), "llm": _text(cell.get("llm"), None),
                     "seed": int(run["seed"]) if pd.notna(run["seed"]) else -1,
                     "run_id": cell["run_id"], "main_score": run["main_score"],
                     "main": logged.get(run["main_score"], np.nan), "partial": bool(run["partial"]),
                     "llm_model": _text(run.get("tag:llm.model"), ""),
                     "llm_parameters": _text(run.get("tag:llm.parameters"), None),
                     "accelerator": _text(run.get("tag:env.accelerator"), "not recorded (runs before the env tags)"),
                     "hp_train_samples": _text(run.get("param:hp.train_samples"), None)}
                    | logged | {c: run.get(c) for c in _READER_COLUMNS})
    return pd.DataFrame(rows), failures


def _text(value: Any, missing: Any) -> Any:
    return missing if value is None or pd.isna(value) else value


# ---------------------------------------------------------------------------- tables


def _fmt(value: float, digits: int = 4) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _count(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    value = float(value)
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.0f}"


def _seconds(value: float) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (entry, family): mean and sample std of the main score over seeds,
    the seeds, and the mean of each cost over seeds."""
    if runs.empty:
        return pd.DataFrame()
    grouped = runs.groupby(["family", "entry"], sort=False)
    llm = {"llm": ("llm", "first")} if "llm" in runs else {}
    table = grouped.agg(task=("task", "first"), paradigm=("paradigm", "first"), budget=("budget", "first"),
                        base=("base", "first"), **llm,
                        main_score=("main_score", "first"), main=("main", "mean"), seeds=("seed", "nunique"),
                        partial=("partial", "any"),
                        ran_on=("accelerator", devices_label))
    table["std"] = grouped["main"].std(ddof=1).fillna(0.0)
    redrawn = {family for family, part in runs.groupby("family") if candidate_redraws(part)}
    table["redraws"] = table.index.get_level_values("family").isin(redrawn)
    for column in COSTS:
        table[column] = grouped[column].mean() if column in runs else np.nan
    return table.reset_index()


def _entry_order(summary: pd.DataFrame) -> list[str]:
    order = summary.drop_duplicates("entry").assign(
        _p=lambda t: t["paradigm"].map(paradigm_rank), _b=lambda t: t["budget"].fillna(-1).astype(float))
    return order.sort_values(["_p", "_b", "entry"], kind="stable")["entry"].tolist()


@dataclass
class Table:
    title: str
    frame: pd.DataFrame  # text cells
    note: str = ""


def main_table(summary: pd.DataFrame, config: StudyConfig) -> Table:
    """Paradigm x task: main score mean ± std per task, then the costs summed over the
    entry's tasks (fit and inference seconds, tokens; each a mean over seeds)."""
    families = [f for f in config.tasks if f in set(summary["family"])]
    rows = []
    for entry in _entry_order(summary):
        part = summary[summary["entry"] == entry].set_index("family")
        row = {"paradigm": part["paradigm"].iloc[0], "model": entry}
        for family in families:
            header = f"{config.tasks[family]} {_main_name(summary, family)}" + _partial_note(summary, config, family)
            if family in part.index:
                r = part.loc[family]
                row[header] = f"{r['main']:.4f} ± {r['std']:.4f}" + (f" ({int(r['seeds'])}s)" if r["seeds"] != 1 else "")
            else:
                row[header] = "—"
        row[COSTS["cost.trainable_parameters"]] = _count(part["cost.trainable_parameters"].max())
        row[COSTS["cost.train_samples"]] = _count(part["cost.train_samples"].max())
        row[COSTS["cost.fit_seconds"]] = _seconds(part["cost.fit_seconds"].sum(min_count=1))
        row[COSTS["cost.score_seconds"]] = _seconds(part["cost.score_seconds"].sum(min_count=1))
        row[COSTS["cost.tokens"]] = _count(part["cost.tokens"].sum(min_count=1))
        rows.append(row)
    seeds = ", ".join(map(str, sorted(set(summary["seeds"].astype(int)))))
    note = ("Mean ± sample std over seeds (one seed unless marked `(Ns)`); costs are means over seeds, "
            f"summed over the row's tasks. Seeds per row: {seeds}.")
    redrawn = [config.tasks[f] for f in families if summary.loc[summary["family"] == f, "redraws"].any()]
    if redrawn:
        note += (f" On {', '.join(redrawn)}: {REDRAW_NOTE}, since the candidate sets are drawn anew for each seed "
                 "(a deterministic model shows a spread too).")
    if (summary["budget"] == 0).any():
        note += (" A `-n0` row is the untuned LLM with the same Yes/No prompt (zero-shot, the origin of the "
                 "few-shot curve); it never represents its paradigm in the paired tests.")
    return Table("Main table: accuracy per paradigm and task, with cost", pd.DataFrame(rows), note)


def _partial_note(summary: pd.DataFrame, config: StudyConfig, family: str) -> str:
    """" (first N users)" for a task whose runs are partial."""
    limit = config.limit_users.get(family)
    if limit is None or not summary.loc[summary["family"] == family, "partial"].any():
        return ""
    return f" (first {limit} {task_family(family).unit})"


def _main_name(summary: pd.DataFrame, family: str) -> str:
    names = summary.loc[summary["family"] == family, "main_score"].dropna()
    return names.iloc[0] if len(names) else ""


def task_table(summary: pd.DataFrame, family: str) -> Table:
    part = summary[summary["family"] == family]
    order = {e: i for i, e in enumerate(_entry_order(summary))}
    part = part.assign(_o=part["entry"].map(order)).sort_values("_o")
    rows = []
    best = part["main"].max() if _higher(part) else part["main"].min()
    for _, r in part.iterrows():
        rows.append({"paradigm": r["paradigm"], "model": r["entry"],
                     r["main_score"]: f"{r['main']:.4f} ± {r['std']:.4f}" + (" **best**" if r["main"] == best else ""),
                     "seeds": int(r["seeds"]), "ran on": r["ran_on"],
                     **{label: (_seconds(r[c]) if "seconds" in c else _count(r[c]) if c != "cost.peak_rss_mb"
                                else _fmt(r[c], 0)) for c, label in COSTS.items()}})
    task = part["task"].iloc[0] if len(part) else family
    partial = " (partial runs: the first test users or rows only)" if part["partial"].any() else ""
    redraws = f"; {REDRAW_NOTE}" if part["redraws"].any() else ""
    return Table(f"{task}{partial}{redraws}", pd.DataFrame(rows))


def _higher(part: pd.DataFrame) -> bool:
    """Whether the rows' main score is better higher (the metric registry's direction)."""
    names = part["main_score"].dropna()
    return higher_is_better(names.iloc[0]) if len(names) else True


def best_per_paradigm(summary: pd.DataFrame, family: str) -> pd.DataFrame:
    """Each paradigm's best row on a task (by mean main score), best first. The
    untuned budget 0 of a tuned paradigm is not its representative."""
    part = summary[(summary["family"] == family) & ~(summary["budget"].fillna(-1) == 0)]
    if part.empty:
        return part
    best = part.sort_values("main", ascending=not _higher(part), kind="stable").drop_duplicates("paradigm")
    return best.reset_index(drop=True)


def significance(summary: pd.DataFrame, runs: pd.DataFrame, family: str, tracking_uri: str | None) -> Table:
    """The suite's paired test (benchmark.eval.significance) between the paradigms'
    best rows on a task, over the seeds each pair shares, Holm-corrected over the
    task's pairs."""
    from benchmark.tracking.results import read_per_user

    best = best_per_paradigm(summary, family)
    names = {r["entry"]: f"{r['entry']} ({r['paradigm']})" for _, r in best.iterrows()}
    chosen = runs[(runs["family"] == family) & runs["entry"].isin(list(names))]
    main = _main_name(summary, family)
    per_user = read_per_user(chosen, tracking_uri)
    column = per_user_column(main, per_user.columns)
    table = pd.DataFrame(columns=["a", "b", "n_users", "test_seeds", "diff", "p_value", "p_holm", "significant"])
    if column is not None:
        members = pd.DataFrame({"run_id": chosen["run_id"], "key": chosen["entry"].map(names),
                                "seed": chosen["seed"], "draw": chosen["draw"]})
        table = pairwise(seed_matrix(per_user, members, column), list(names.values()))
    frame = pd.DataFrame([{"A": r["a"], "B": r["b"], "users": int(r["n_users"]), "seeds": int(r["test_seeds"]),
                           "mean(A − B)": f"{r['diff']:+.4f}", "p": _p(r["p_value"]), "p (Holm)": _p(r["p_holm"]),
                           "significant at 0.05": "yes" if r["significant"] else "no"}
                          for _, r in table.iterrows()])
    task = summary.loc[summary["family"] == family, "task"].iloc[0]
    note = (f"Unit: {per_user_statistic(main)}; per user, the difference averaged over the seeds both rows share "
            f"(users without a value, such as single-class users for AUC, drop out). {TEST_NAME}.")
    return Table(f"{task}: paradigm pairs", frame, note)


def _p(value: float) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{value:.2e}" if value < 1e-3 else f"{value:.3f}"


# ----------------------------------------------------------------------------- figures


def figures(summary: pd.DataFrame, config: StudyConfig) -> dict[str, Any]:
    """name -> plotly figure: accuracy per row, the few-shot curve, accuracy vs cost."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    families = [f for f in config.tasks if f in set(summary["family"])]
    out: dict[str, Any] = {}
    order = _entry_order(summary)

    fig = make_subplots(rows=1, cols=len(families), subplot_titles=[config.tasks[f] for f in families],
                        horizontal_spacing=0.08)
    for col, family in enumerate(families, start=1):
        part = summary[summary["family"] == family].set_index("entry")
        names = [e for e in order if e in part.index]
        fig.add_trace(go.Bar(y=names, x=part.loc[names, "main"], orientation="h",
                             error_x={"type": "data", "array": part.loc[names, "std"]},
                             marker_color=[color(p) for p in part.loc[names, "paradigm"]],
                             showlegend=False, hovertext=part.loc[names, "paradigm"]), row=1, col=col)
        fig.update_xaxes(title_text=_main_name(summary, family), row=1, col=col)
        fig.update_yaxes(autorange="reversed", row=1, col=col)
    fig.update_layout(title="Accuracy per row (mean ± std over seeds; colour = paradigm)",
                      height=120 + 22 * len(order), width=420 * max(len(families), 1), template="plotly_white")
    out["accuracy"] = fig

    curve_families = [f for f in families if summary.loc[summary["family"] == f, "budget"].notna().any()]
    if curve_families and not has_sizes(config):  # several LLMs: the curve per size replaces it
        fig = make_subplots(rows=1, cols=len(curve_families), subplot_titles=[config.tasks[f] for f in curve_families])
        for col, family in enumerate(curve_families, start=1):
            part = summary[summary["family"] == family]
            tuned = part[part["budget"].notna()]
            for base, line in tuned.groupby("base", sort=False):
                line = line.sort_values("budget")
                fig.add_trace(go.Scatter(x=line["budget"].astype(int).astype(str), y=line["main"],
                                         error_y={"type": "data", "array": line["std"]}, mode="lines+markers",
                                         name=f"{base} ({line['paradigm'].iloc[0]})", legendgroup=base,
                                         showlegend=col == 1,
                                         line={"color": color(line["paradigm"].iloc[0])}),
                              row=1, col=col)
            for _, ref in best_per_paradigm(part[part["budget"].isna()], family).iterrows():
                fig.add_hline(y=ref["main"], line_dash="dot", line_color=color(ref["paradigm"]),
                              annotation_text=ref["entry"], annotation_position="top left", row=1, col=col)
            fig.update_xaxes(title_text="training samples (budget)", type="category", row=1, col=col)
            fig.update_yaxes(title_text=_main_name(summary, family), row=1, col=col)
        fig.update_layout(title="Few-shot curve: accuracy against the number of training samples "
                                "(dotted: each other paradigm's best row)",
                          height=460, width=560 * len(curve_families), template="plotly_white")
        out["fewshot"] = fig

    fig = make_subplots(rows=2, cols=len(families), subplot_titles=[config.tasks[f] for f in families] * 2,
                        vertical_spacing=0.16)
    seen_paradigms: set[str] = set()
    for col, family in enumerate(families, start=1):
        part = summary[summary["family"] == family]
        for row, (column, label) in enumerate((("cost.fit_seconds", "fit seconds"),
                                               ("cost.trainable_parameters", "trainable parameters (0 shown at 1)")),
                                              start=1):
            for paradigm, group in part.groupby("paradigm"):
                x = group[column].fillna(0).clip(lower=1e-2 if row == 1 else 1)
                fig.add_trace(go.Scatter(x=x, y=group["main"], mode="markers+text", text=group["entry"],
                                         textposition="top center", textfont={"size": 9},
                                         marker={"color": color(paradigm), "size": 9},
                                         name=paradigm, legendgroup=paradigm,
                                         showlegend=paradigm not in seen_paradigms),
                              row=row, col=col)
                seen_paradigms.add(paradigm)
            fig.update_xaxes(type="log", title_text=label, row=row, col=col)
            fig.update_yaxes(title_text=_main_name(summary, family), row=row, col=col)
    fig.update_layout(title="Accuracy against cost", height=900, width=520 * max(len(families), 1),
                      template="plotly_white")
    out["cost"] = fig
    return out


# -------------------------------------------------------------------------- LLM sizes
# With several LLMs (`config.llms`, the sizes mode), each LLM row kind (the row without
# its model) is read across the sizes, against the rows that are no LLM.

REFERENCES = ("pop", "random")  # what every LLM row is judged against, on the same users


def has_sizes(config: StudyConfig) -> bool:
    return len(config.llms) > 1


def llm_kind(base: str, budget: Any) -> str:
    """An LLM row without its model, by its paradigm-neutral part: 'pointwise' (the
    card smollm2-pointwise is named after its default model), 'tallrec-lite n16'."""
    name = str(base).removeprefix("smollm2-")
    return name if budget is None or pd.isna(budget) else f"{name} n{int(budget)}"


def llm_models(config: StudyConfig, runs: pd.DataFrame) -> pd.DataFrame:
    """Per LLM (the planned ones, then the config's), smallest first: label (an asset's,
    which says coder-tuned or base; else the name) and parameters (an asset's card,
    else the count its runs logged as loaded: tag llm.parameters)."""
    from benchmark.kits.llm.models import ASSET_MODELS

    names = dict.fromkeys([row["model"] for row in config.size_plan] + list(config.llms))
    rows = []
    for name in names:
        asset = ASSET_MODELS.get(name)
        logged = runs.loc[runs["llm"] == name, "llm_parameters"] if {"llm", "llm_parameters"} <= set(runs) else []
        logged = pd.to_numeric(pd.Series(logged, dtype=object), errors="coerce").max()
        rows.append({"llm": name, "label": asset.label if asset else name,
                     "parameters": float(asset.parameters) if asset and asset.parameters else logged})
    frame = pd.DataFrame(rows, columns=["llm", "label", "parameters"])
    return frame.sort_values("parameters", kind="stable").set_index("llm")


def size_rows(summary: pd.DataFrame, models: pd.DataFrame) -> pd.DataFrame:
    """The summary's LLM rows with their kind, their model's label and parameters, in
    the order of the kinds (paradigm, budget), then by size."""
    rows = summary[summary["llm"].notna()] if "llm" in summary else summary.iloc[:0]
    rows = rows.assign(kind=[llm_kind(b, n) for b, n in zip(rows["base"], rows["budget"])],
                       label=rows["llm"].map(models["label"]), parameters=rows["llm"].map(models["parameters"]))
    order = rows.assign(_p=rows["paradigm"].map(paradigm_rank), _b=rows["budget"].fillna(-1).astype(float))
    return order.sort_values(["_p", "_b", "kind", "parameters"], kind="stable").drop(columns=["_p", "_b"])


def _baselines(summary: pd.DataFrame, family: str) -> pd.DataFrame:
    """The rows of a task that are no LLM row (pop, random, sasrec, lr, text-sasrec...)."""
    part = summary[summary["family"] == family]
    return part[part["llm"].isna()] if "llm" in part else part


def _size_axis(models: pd.DataFrame, llms: Any) -> dict[str, Any]:
    """A log x axis of parameters whose ticks name the models (label, then the count)."""
    shown = models[models.index.isin(set(llms)) & models["parameters"].notna()]
    text = [f"{label.replace(' (', '<br>(')}<br>{_count(p)}" for label, p in zip(shown["label"], shown["parameters"])]
    return {"type": "log", "tickvals": list(shown["parameters"]), "ticktext": text, "tickfont": {"size": 9},
            "title_text": "LLM parameters (log)"}


def sizes_figure(summary: pd.DataFrame, config: StudyConfig, models: pd.DataFrame) -> Any:
    """Per task: the main score against the LLM's parameters, one line per LLM row
    kind (colour: paradigm; dotted: untuned), dashed lines for the other rows."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = size_rows(summary, models).dropna(subset=["parameters"])
    families = [f for f in config.tasks if f in set(rows["family"])]
    fig = make_subplots(rows=1, cols=max(len(families), 1), subplot_titles=[config.tasks[f] for f in families])
    seen: set[str] = set()
    for col, family in enumerate(families, start=1):
        part = rows[rows["family"] == family]
        drawn: dict[str, int] = {}  # kinds drawn per paradigm: a paradigm's second kind is dashed
        for kind, line in part.groupby("kind", sort=False):
            paradigm = line["paradigm"].iloc[0]
            if (line["budget"] == 0).any():
                dash = "dot"
            else:
                dash = ("solid", "dash", "dashdot")[drawn.get(paradigm, 0) % 3]
                drawn[paradigm] = drawn.get(paradigm, 0) + 1
            fig.add_trace(go.Scatter(x=line["parameters"], y=line["main"], mode="lines+markers", name=kind,
                                     legendgroup=kind, showlegend=kind not in seen, text=line["label"],
                                     hovertemplate="%{text}: %{y:.4f}",
                                     line={"color": color(paradigm), "dash": dash}),
                          row=1, col=col)
            seen.add(kind)
        for _, ref in _baselines(summary, family).iterrows():
            fig.add_hline(y=ref["main"], line_dash="dash", line_color=color(ref["paradigm"]), line_width=1,
                          annotation_text=ref["entry"], annotation_position="top left", row=1, col=col)
        fig.update_xaxes(**_size_axis(models, part["llm"]), row=1, col=col)
        fig.update_yaxes(title_text=_main_name(summary, family), row=1, col=col)
    fig.update_layout(title="Accuracy against LLM size (colour = paradigm, dashes tell its rows apart; dotted: "
                            "untuned; horizontal: rows without an LLM, on the same users)",
                      height=520, width=640 * max(len(families), 1), template="plotly_white")
    return fig


def fewshot_sizes_figure(summary: pd.DataFrame, config: StudyConfig, models: pd.DataFrame) -> Any | None:
    """Per task: the main score against the training budget, one line per (tuned
    submission, LLM); None without tuned rows."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    tuned = size_rows(summary, models)
    tuned = tuned[tuned["budget"].notna()]
    families = [f for f in config.tasks if f in set(tuned["family"])]
    if not families:
        return None
    dashes = {llm: d for llm, d in zip(models.index, ["solid", "dash", "dot", "dashdot", "longdash"] * 9)}
    budgets = [str(b) for b in sorted(tuned["budget"].astype(int).unique())]
    fig = make_subplots(rows=1, cols=len(families), subplot_titles=[config.tasks[f] for f in families])
    for col, family in enumerate(families, start=1):
        for (base, llm), line in tuned[tuned["family"] == family].groupby(["base", "llm"], sort=False):
            line = line.sort_values("budget")
            fig.add_trace(go.Scatter(x=line["budget"].astype(int).astype(str), y=line["main"], mode="lines+markers",
                                     name=f"{base} · {line['label'].iloc[0]}", legendgroup=f"{base}{llm}",
                                     showlegend=col == 1,
                                     line={"color": color(line["paradigm"].iloc[0]), "dash": dashes.get(llm)}),
                          row=1, col=col)
        fig.update_xaxes(title_text="training samples (budget)", type="category", categoryorder="array",
                         categoryarray=budgets, row=1, col=col)
        fig.update_yaxes(title_text=_main_name(summary, family), row=1, col=col)
    fig.update_layout(title="Few-shot curve per LLM size (colour = paradigm; dash = LLM)", height=480,
                      width=600 * len(families), template="plotly_white")
    return fig


def size_tests(summary: pd.DataFrame, runs: pd.DataFrame, family: str,
               per_user: pd.DataFrame | None) -> pd.DataFrame:
    """Each LLM row of a task against each reference (pop, random) on the users both
    hold: the suite's paired test (diff = LLM row − reference), Holm over the task's
    comparisons. Empty where the runs logged no per-user values of the main score."""
    columns = ["entry", "ref", "n_users", "diff", "p_value", "p_holm", "significant"]
    part = runs[runs["family"] == family]
    column = per_user_column(_main_name(summary, family), per_user.columns) if per_user is not None else None
    refs = list(dict.fromkeys(part.loc[part["llm"].isna() & part["base"].isin(REFERENCES), "entry"]))
    entries = list(dict.fromkeys(part.loc[part["llm"].notna(), "entry"]))
    if column is None or not refs or not entries:
        return pd.DataFrame(columns=columns)
    members = part[["run_id", "entry", "seed"] + (["draw"] if "draw" in part else [])].rename(columns={"entry": "key"})
    matrix = seed_matrix(per_user, members, column)
    table = pd.concat([paired_tests(matrix, entry, refs).assign(entry=entry) for entry in entries], ignore_index=True)
    return with_holm(table.rename(columns={"key": "ref"}))[columns]


def size_verdicts(summary: pd.DataFrame, family: str, models: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    """One row per (LLM row, reference) of a task: kind, paradigm, llm, label,
    parameters, main, ref, ref_main, passes (the better mean, the metric's direction),
    p (Holm-adjusted paired test; NaN without per-user values), significant. A task
    without pop or random: one row per LLM row, ref None."""
    part = summary[summary["family"] == family]
    refs = _baselines(summary, family)
    refs = refs[refs["base"].isin(REFERENCES)]
    higher = _higher(part)
    tested = tests.set_index(["entry", "ref"])["p_holm"] if len(tests) else pd.Series(dtype=float)
    rows = []
    for _, row in size_rows(part, models).iterrows():
        for _, ref in (refs if len(refs) else pd.DataFrame([{"entry": None, "main": np.nan}])).iterrows():
            p = float(tested.get((row["entry"], ref["entry"]), np.nan))
            better = row["main"] > ref["main"] if higher else row["main"] < ref["main"]
            rows.append({"family": family, "task": row["task"], "kind": row["kind"], "paradigm": row["paradigm"],
                         "entry": row["entry"], "llm": row["llm"], "label": row["label"],
                         "parameters": row["parameters"], "main": row["main"], "ref": ref["entry"],
                         "ref_main": ref["main"], "passes": bool(better), "p": p, "significant": bool(p < ALPHA)})
    return pd.DataFrame(rows)


def _verdict(group: pd.DataFrame) -> str:
    """'0.4100 (> pop*, p=0.003; < random, p=0.41)' (* significant), or the score alone."""
    parts = []
    for _, v in group.dropna(subset=["ref"]).iterrows():
        sign = ">" if v["main"] > v["ref_main"] else "<" if v["main"] < v["ref_main"] else "="
        parts.append(f"{sign} {v['ref']}" + ("*" if v["significant"] else "") +
                     (f", p={_p(v['p'])}" if not math.isnan(v["p"]) else ""))
    return _fmt(group["main"].iloc[0]) + (f" ({'; '.join(parts)})" if parts else "")


def size_table(verdicts: pd.DataFrame, summary: pd.DataFrame, models: pd.DataFrame) -> Table:
    """LLM row kind x task, one column per LLM (its label): the score and the verdicts."""
    rows = []
    for (family, kind), group in verdicts.groupby(["family", "kind"], sort=False):
        refs = group.dropna(subset=["ref"]).drop_duplicates("ref")
        refs = ", ".join(f"{r} {_fmt(m)}" for r, m in zip(refs["ref"], refs["ref_main"])) or "no pop or random run"
        row = {"row": kind, "paradigm": group["paradigm"].iloc[0],
               "task": f"{group['task'].iloc[0]} {_main_name(summary, family)} ({refs})"}
        cells = {llm: _verdict(g) for llm, g in group.groupby("llm", sort=False)}
        rows.append(row | {label: cells.get(llm, "—") for llm, label in models["label"].items()
                           if llm in set(verdicts["llm"])})
    tested = verdicts["p"].notna().any()
    note = ("`>`/`<`: the row's mean main score against the reference's, on the same users"
            + (f"; p: {TEST_NAME} (here: every LLM row against pop and against random); "
               f"`*`: significant at p < {ALPHA}" if tested else "; no per-user values: means only") + ".")
    return Table("LLM rows at each size", pd.DataFrame(rows), note)


def size_findings(verdicts: pd.DataFrame) -> list[str]:
    """Per LLM row kind and task, in words: at which sizes it passes each reference."""
    lines = []
    for (family, kind), group in verdicts.groupby(["family", "kind"], sort=False):
        parts = []
        for ref, g in group.sort_values("parameters", kind="stable").groupby("ref", sort=False):
            passed = g[g["passes"]]
            sizes = ", ".join(label + "*" * sig for label, sig in zip(passed["label"], passed["significant"]))
            every = "every size: " if len(passed) == len(g) and len(g) > 1 else ""
            parts.append(f"passes {ref} at: {every + sizes if sizes else 'never'}")
        parts = parts or ["no pop or random run on this task"]
        lines.append(f"**{kind}** ({group['paradigm'].iloc[0]}) on {group['task'].iloc[0]}: " + "; ".join(parts) + ".")
    return lines


def _seconds_where(accelerator: Any) -> str:
    """'CPU s (2 cores)', 'GPU s (H200)' or 's (device not recorded)'."""
    where = short_device(accelerator)
    if where == "?":
        return "s (device not recorded)"
    return f"CPU s ({where.removeprefix('CPU (').removesuffix(')')})" if where.startswith("CPU") else f"GPU s ({where})"


def _measured(runs: pd.DataFrame) -> tuple[str, str]:
    """(fit + inference seconds, seconds per 1k tokens) of some runs, per device."""
    seconds, rates = [], []
    for accelerator, part in runs.groupby(runs["accelerator"].fillna("?"), sort=True):
        spent = sum(part[c].sum() for c in ("cost.fit_seconds", "cost.score_seconds") if c in part)
        tokens = part["cost.tokens"].sum() if "cost.tokens" in part else 0.0
        unit = _seconds_where(accelerator)
        seconds.append(f"{spent:.1f} {unit}")
        rates.append(f"{1000 * spent / tokens:.3f} {unit}" if tokens else "—")
    return "; ".join(seconds) or "—", "; ".join(rates) or "—"


def size_cost_table(config: StudyConfig, runs: pd.DataFrame, models: pd.DataFrame) -> Table:
    """Per LLM: the runs its rows ran, their seconds and tokens, and the planner's
    estimates (config.size_plan) with the reason for a size left out."""
    plan = {row["model"]: row for row in config.size_plan}
    rows = []
    for llm, model in models.iterrows():
        mine = runs[runs["llm"] == llm] if "llm" in runs else runs.iloc[:0]
        seconds, rate = _measured(mine)
        row = {"LLM": model["label"], "parameters": _count(model["parameters"]), "runs": len(mine),
               "fit + inference seconds": seconds,
               "tokens": _count(mine["cost.tokens"].sum(min_count=1)) if "cost.tokens" in mine else "—",
               "s per 1k tokens": rate}
        if plan:
            step = plan.get(llm, {})
            row |= {"planned s per 1k tokens": _fmt(1000 * step.get("seconds_per_token", np.nan), 3),
                    "planned minutes": _fmt(step.get("estimated_minutes", np.nan), 0),
                    "full default run here (h)": _fmt(step.get("full_run_hours", np.nan), 1),
                    "left out because": step.get("reason") or ""}
        rows.append(row)
    note = ("Seconds: `cost.fit_seconds` + `cost.score_seconds` summed over the size's LLM runs, per device of "
            "their `env.accelerator` tag; tokens: `cost.tokens` summed.")
    if plan:
        note += (" Planned: benchmark.study.sizes' estimate before the runs (a forward pass of the smallest model "
                 "timed here, scaled by parameters); full default run: the gpu mode's grid for that size (3 seeds, "
                 "budgets up to 1024, 4 epochs, every user, trust passes) on this machine.")
    return Table("Cost per size", pd.DataFrame(rows), note)


@dataclass
class SizeSection:
    figures: dict[str, Any]  # "sizes", and "fewshot_sizes" where rows were tuned
    table: Table
    findings: list[str]
    cost: Table


def size_section(summary: pd.DataFrame, runs: pd.DataFrame, config: StudyConfig,
                 per_user: dict[str, pd.DataFrame]) -> SizeSection:
    """The report's sections on LLM size. per_user: per task family, the per-user
    metrics of its runs (absent: the verdicts go by the means alone)."""
    models = llm_models(config, runs)
    families = [f for f in config.tasks if f in set(summary["family"])]
    tests = {f: size_tests(summary, runs, f, per_user.get(f)) for f in families}
    verdicts = [size_verdicts(summary, f, models, tests[f]) for f in families]
    verdicts = pd.concat([v for v in verdicts if len(v)] or [pd.DataFrame(columns=["family", "kind", "llm"])],
                         ignore_index=True)
    figs = {"sizes": sizes_figure(summary, config, models)}
    fewshot = fewshot_sizes_figure(summary, config, models)
    if fewshot is not None:
        figs["fewshot_sizes"] = fewshot
    return SizeSection(figs, size_table(verdicts, summary, models), size_findings(verdicts),
                       size_cost_table(config, runs, models))


def read_size_per_user(runs: pd.DataFrame, tracking_uri: str | None) -> dict[str, pd.DataFrame]:
    """Per task family, the per-user metrics of its LLM rows and references."""
    from benchmark.tracking.results import read_per_user

    chosen = runs[runs["llm"].notna() | runs["base"].isin(REFERENCES)]
    return {family: read_per_user(part, tracking_uri) for family, part in chosen.groupby("family")}


SIZES_INTRO = ("Each LLM row kind (the row without its model) at every LLM size, against the rows without an LLM "
               "on the same users. Labels say how each model was tuned: instruct, coder-tuned or base.")
FEWSHOT_SIZES_INTRO = ("Accuracy against the training budget of the tuned LLM rows, one line per LLM (budget 0 is "
                       "the untuned model with the same prompt).")
FINDINGS_TITLE = "At which size each LLM paradigm passes pop and random"
FINDINGS_INTRO = ("By the mean main score on the same users; `*`: significant in the paired test of the table above "
                  f"(p < {ALPHA}, Holm).")


def sizes_markdown(section: SizeSection) -> list[str]:
    md = ["## Accuracy against LLM size\n", SIZES_INTRO + "\n", "![accuracy against LLM size](sizes.png)\n",
          f"### {section.table.title}\n", markdown_table(section.table.frame), section.table.note, "",
          f"### {FINDINGS_TITLE}\n", FINDINGS_INTRO + "\n", *[f"- {line}" for line in section.findings], ""]
    if "fewshot_sizes" in section.figures:
        md += ["## Few-shot curve per size\n", FEWSHOT_SIZES_INTRO + "\n",
               "![few-shot curve per size](fewshot_sizes.png)\n"]
    return md + [f"## {section.cost.title}\n", markdown_table(section.cost.frame), section.cost.note, ""]


def sizes_html(section: SizeSection, first: bool) -> list[str]:
    """The same sections in HTML; `first`: whether plotly.js is not inline yet."""
    def plot(name: str) -> str:
        nonlocal first
        text = section.figures[name].to_html(full_html=False, include_plotlyjs="inline" if first else False)
        first = False
        return text

    parts = ["<h2>Accuracy against LLM size</h2>", f"<p>{html.escape(SIZES_INTRO)}</p>", plot("sizes"),
             f"<h3>{html.escape(section.table.title)}</h3>{html_table(section.table.frame)}"
             f"<p>{_inline(section.table.note)}</p>",
             f"<h3>{FINDINGS_TITLE}</h3><p>{_inline(FINDINGS_INTRO)}</p><ul>"
             + "".join(f"<li>{_inline(line)}</li>" for line in section.findings) + "</ul>"]
    if "fewshot_sizes" in section.figures:
        parts += ["<h2>Few-shot curve per size</h2>", f"<p>{html.escape(FEWSHOT_SIZES_INTRO)}</p>",
                  plot("fewshot_sizes")]
    return parts + [f"<h2>{html.escape(section.cost.title)}</h2>{html_table(section.cost.frame)}"
                    f"<p>{_inline(section.cost.note)}</p>"]


def write_png(fig: Any, path: Path) -> str:
    """The figure as a static PNG: kaleido when it works here, else a matplotlib
    rendering of the same traces. Returns which renderer wrote it."""
    try:
        fig.write_image(str(path), scale=1)
        return "kaleido"
    except Exception:
        _matplotlib_png(fig, path)
        return "matplotlib"


def _matplotlib_png(fig: Any, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layout = fig.layout
    axes_names = sorted({(t.xaxis or "x") for t in fig.data}, key=lambda a: int(a[1:] or 1))
    n = max(len(axes_names), 1)
    cols = min(n, 3)
    rows = -(-n // cols)
    figure, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 4.5 * rows), squeeze=False)
    index = {name: axes.flat[i] for i, name in enumerate(axes_names)}
    for trace in fig.data:
        ax = index[trace.xaxis or "x"]
        color = getattr(getattr(trace, "marker", None), "color", None)
        if trace.type == "bar":
            ax.barh(list(trace.y), list(trace.x), color=color if isinstance(color, (list, tuple)) else None)
            ax.invert_yaxis()
        else:
            x = list(trace.x)
            line = getattr(trace, "line", None)
            color = color if isinstance(color, str) else getattr(line, "color", None)
            style = {"dot": ":", "dash": "--", "dashdot": "-."}.get(getattr(line, "dash", None), "-")
            ax.plot(x, list(trace.y), marker="o", linestyle=style if "lines" in (trace.mode or "") else "none",
                    label=trace.name, color=color)
            xaxis = getattr(layout, "xaxis" + (trace.xaxis or "x")[1:], None)
            if xaxis is not None and xaxis.type == "log":
                ax.set_xscale("log")
            if xaxis is not None and xaxis.tickvals is not None:
                ax.minorticks_off()
                ax.set_xticks(list(xaxis.tickvals), [str(t).replace("<br>", "\n") for t in xaxis.ticktext], fontsize=7)
    _matplotlib_hlines(fig, index)
    for ax in axes.flat:
        if any(not str(line.get_label()).startswith("_") for line in ax.lines):
            ax.legend(fontsize=7)
    figure.suptitle(layout.title.text or "", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def _matplotlib_hlines(fig: Any, index: dict[str, Any]) -> None:
    """The figure's horizontal reference lines (add_hline), dashed, labelled at the left."""
    labels = {(a.yref, a.y): a.text for a in fig.layout.annotations if a.text}
    for shape in fig.layout.shapes:
        if shape.type != "line" or shape.y0 != shape.y1:
            continue
        ax = index.get("x" + (shape.yref or "y")[1:])
        if ax is None:
            continue
        ax.axhline(shape.y0, linestyle="--", linewidth=0.8, color=shape.line.color or "grey")
        text = labels.get((shape.yref, shape.y0))
        if text:
            ax.annotate(text, (0, shape.y0), xycoords=("axes fraction", "data"), fontsize=7, va="bottom")


# ------------------------------------------------------------------------------ output


def markdown_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_(none)_\n"
    cells = frame.map(lambda s: str(s).replace("|", "\\|").replace("\n", " "))
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def html_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<p><em>(none)</em></p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v)).replace('**best**', '<b>best</b>')}</td>"
                                    for v in row) + "</tr>" for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def conclusions(summary: pd.DataFrame, sig: dict[str, Table], config: StudyConfig) -> list[str]:
    """Which paradigm wins on which task, with the numbers and the cost."""
    lines = []
    for family in config.tasks:
        best = best_per_paradigm(summary, family)
        if best.empty:
            continue
        top = best.iloc[0]
        cost = (f"fit {top['cost.fit_seconds']:.0f} s, inference {top['cost.score_seconds']:.0f} s, "
                f"{_count(top['cost.trainable_parameters'])} trainable parameters")
        text = (f"**{top['task']}**{_partial_note(summary, config, family)}: {top['paradigm']} wins with {top['entry']} "
                f"({top['main_score']} {top['main']:.4f} ± {top['std']:.4f}; {cost}).")
        if len(best) > 1:
            second = best.iloc[1]
            pair = _pair_row(sig.get(family), top, second)
            verdict = ""
            if pair is not None:
                verdict = (" — significant" if pair["significant at 0.05"] == "yes" else " — not significant") + \
                          f" (Holm-adjusted p = {pair['p (Holm)']})"
            text += (f" Runner-up paradigm: {second['paradigm']} ({second['entry']}, {second['main']:.4f}, "
                     f"fit {second['cost.fit_seconds']:.0f} s){verdict}.")
            others = ", ".join(f"{r['paradigm']} {r['main']:.4f} ({r['entry']})" for _, r in best.iloc[2:].iterrows())
            if others:
                text += f" Then: {others}."
        lines.append(text)
    return lines


def _pair_row(table: Table | None, a: pd.Series, b: pd.Series):
    if table is None or table.frame.empty:
        return None
    names = {f"{a['entry']} ({a['paradigm']})", f"{b['entry']} ({b['paradigm']})"}
    for _, row in table.frame.iterrows():
        if {row["A"], row["B"]} == names:
            return row
    return None


def build_report(cells: pd.DataFrame, config: StudyConfig, tracking_uri: str | None, out: Path,
                 elapsed_seconds: float | None = None) -> dict[str, Path]:
    """Write report.md (with PNG figures beside it), report.html (self-contained, plotly
    inline) and runs.csv (the runs the tables come from) into `out`."""
    from benchmark.tracking.store import resolve_tracking_uri

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs, failures = read_runs(cells, config, tracking_uri)
    summary = summarize(runs)
    families = [f for f in config.tasks if not summary.empty and f in set(summary["family"])]
    tables = [main_table(summary, config)] if families else []
    per_task = [task_table(summary, f) for f in families]
    sig = {f: significance(summary, runs, f, tracking_uri) for f in families}
    conclusion = conclusions(summary, sig, config) if families else []
    figs = figures(summary, config) if families else {}
    sizes = (size_section(summary, runs, config, read_size_per_user(runs, tracking_uri))
             if families and has_sizes(config) else None)
    if sizes is not None:
        figs |= sizes.figures
    renderers = {name: write_png(fig, out / f"{name}.png") for name, fig in figs.items()}
    if not runs.empty:
        spreadsheet_csv(runs.drop(columns=_READER_COLUMNS).sort_values(["family", "entry", "seed"]), out / "runs.csv")
    (out / "config.json").write_text(json.dumps(config.describe(), indent=2, default=str))

    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    settings = _settings_lines(config, runs, tracking_uri and resolve_tracking_uri(tracking_uri), elapsed_seconds,
                               generated)
    md = [f"# Paradigm study: {config.dataset}\n",
          "Is it worth fine-tuning an LLM, or prompt-tuning it, or is an ID model trained from scratch still "
          "better, and at what cost? Every number below is read from the MLflow runs of this study "
          "(their ids are in `runs.csv`).\n", "## Settings\n", *[f"- {s}" for s in settings], ""]
    if config.mode == "sizes":
        md.insert(1, f"> {sizes_banner(config)}\n")
    elif config.partial:
        md.insert(1, "> **Quick look: partial runs.** Every run here evaluated only the first users or rows of its "
                     "task (tagged `partial`, never ranked on the leaderboard); the numbers show that the pipeline "
                     "works, not how the paradigms compare.\n")
    if config.reductions:
        md += ["## Settings reduced by compute\n", *[f"- {r}" for r in config.reductions], ""]
    md += ["## Departures from the papers\n", *[f"- {d}" for d in config.paper_departures], ""]
    if conclusion:
        md += ["## Who wins, at what cost\n", *[f"- {c}" for c in conclusion], ""]
    for table in tables:
        md += [f"## {table.title}\n", markdown_table(table.frame), table.note, ""]
    if "accuracy" in figs:
        md += ["![accuracy](accuracy.png)\n"]
    if sizes is not None:
        md += sizes_markdown(sizes)
    md += ["## Per task: accuracy and every cost\n"]
    for table in per_task:
        md += [f"### {table.title}\n", markdown_table(table.frame)]
    if "fewshot" in figs:
        md += ["## Few-shot curve\n", "Accuracy against the training budget of the tuned LLM rows (TALLRec's "
               "few-shot view); the dotted lines are the best row of each untuned paradigm.\n",
               "![few-shot curve](fewshot.png)\n"]
    if "cost" in figs:
        md += ["## Accuracy against cost\n", "![accuracy against cost](cost.png)\n"]
    md += ["## Paired significance between paradigms\n",
           f"Each paradigm is represented by its best row on the task. {TEST_NAME}: per user, the difference "
           "is averaged over the seeds both rows share (seed by seed, on the same candidate sets), and only users "
           "present in both rows count.\n"]
    for family in families:
        md += [f"### {sig[family].title}\n", markdown_table(sig[family].frame), sig[family].note, ""]
    if len(failures):
        md += ["## Failed or missing cells\n", "Cells of the grid without a finished run (a FAILED run keeps "
               "its reason in the store; MISSING: not run yet).\n", markdown_table(failures), ""]
    md += [f"_Figures: plotly in report.html; PNGs by {', '.join(sorted(set(renderers.values()))) or '—'}._\n"]
    md_path = out / "report.md"
    md_path.write_text("\n".join(md))

    parts = [f"<h1>Paradigm study: {html.escape(config.dataset)}</h1>"]
    if config.mode == "sizes":
        parts.append(f"<p class='warn'>{_inline(sizes_banner(config))}</p>")
    elif config.partial:
        parts.append("<p class='warn'><b>Quick look: partial runs.</b> Every run evaluated only the first users "
                     "or rows of its task; not a comparison of the paradigms.</p>")
    parts.append("<h2>Settings</h2><ul>" + "".join(f"<li>{_inline(s)}</li>" for s in settings) + "</ul>")
    if config.reductions:
        parts.append("<h2>Settings reduced by compute</h2><ul>" +
                     "".join(f"<li>{html.escape(r)}</li>" for r in config.reductions) + "</ul>")
    parts.append("<h2>Departures from the papers</h2><ul>" +
                 "".join(f"<li>{html.escape(d)}</li>" for d in config.paper_departures) + "</ul>")
    if conclusion:
        parts.append("<h2>Who wins, at what cost</h2><ul>" + "".join(f"<li>{_inline(c)}</li>" for c in conclusion)
                     + "</ul>")
    for table in tables:
        parts.append(f"<h2>{html.escape(table.title)}</h2>{html_table(table.frame)}<p>{_inline(table.note)}</p>")
    first = True
    for name in ("accuracy",):
        if name in figs:
            parts.append(figs[name].to_html(full_html=False, include_plotlyjs="inline" if first else False))
            first = False
    if sizes is not None:
        parts += sizes_html(sizes, first)
        first = False
    parts.append("<h2>Per task: accuracy and every cost</h2>")
    for table in per_task:
        parts.append(f"<h3>{html.escape(table.title)}</h3>{html_table(table.frame)}")
    for name, title in (("fewshot", "Few-shot curve"), ("cost", "Accuracy against cost")):
        if name in figs:
            parts.append(f"<h2>{title}</h2>")
            parts.append(figs[name].to_html(full_html=False, include_plotlyjs="inline" if first else False))
            first = False
    parts.append(f"<h2>Paired significance between paradigms</h2><p>{html.escape(TEST_NAME)}</p>")
    for family in families:
        parts.append(f"<h3>{html.escape(sig[family].title)}</h3>{html_table(sig[family].frame)}"
                     f"<p>{html.escape(sig[family].note)}</p>")
    if len(failures):
        parts.append(f"<h2>Failed or missing cells</h2>{html_table(failures)}")
    style = ("body{font-family:system-ui,sans-serif;max-width:1400px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;"
             "padding:3px 7px;text-align:left}th{background:#f3f3f3}.warn{background:#fff3cd;padding:.6em}")
    html_path = out / "report.html"
    html_path.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Paradigm study: "
                         f"{html.escape(config.dataset)}</title><style>{style}</style></head><body>"
                         + "\n".join(parts) + "</body></html>")
    return {"markdown": md_path, "html": html_path, **{f"{n}.png": out / f"{n}.png" for n in figs}}


def sizes_banner(config: StudyConfig) -> str:
    """The sizes mode's warning: every run is partial by design."""
    limits = " and ".join(f"the first {n} {task_family(f).unit} of {config.tasks[f]}"
                          for f, n in config.limit_users.items() if n is not None and f in config.tasks)
    return (f"**Every run is partial, by design.** Each run evaluated {limits or 'part of its task'} only, a number "
            "picked for the CPU budget (see 'Settings reduced by compute'); the runs are tagged `partial` and never "
            "ranked on the leaderboard, and the rows of a task are compared on these same users only.")


def _inline(text: str) -> str:
    """Markdown-ish emphasis of our own generated text, escaped first."""
    import re

    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def _where_runs_ran(runs: pd.DataFrame) -> str:
    """'cuda: H100 (42 runs: tallrec-lite, ...); cpu: 2 cores (30 runs: pop, ...)'."""
    if runs.empty or "accelerator" not in runs:
        return "no runs"
    parts = []
    for where, group in runs.groupby("accelerator", sort=True):
        bases = sorted(set(group["base"].fillna(group["entry"])))
        parts.append(f"{where} ({len(group)} runs: {', '.join(bases)})")
    return "; ".join(parts)


def _settings_lines(config: StudyConfig, runs: pd.DataFrame, uri: str | None, elapsed: float | None,
                    generated: str) -> list[str]:
    lines = [f"mode: `{config.mode}`; generated {generated}",
             "where the runs ran (their `env.accelerator` tag): " + _where_runs_ran(runs),
             "tasks: " + ", ".join(f"`{t}`" for t in config.tasks.values()),
             f"training budgets of the tuned LLM rows: {config.budgets}",
             f"runs: {len(runs)} finished (or reused) MLflow runs" + (f" in {uri}" if uri else "")]
    if elapsed is not None:
        lines.append(f"wall time of this invocation: {elapsed / 60:.1f} min (reused runs cost nothing)")
    models = sorted({m for m in runs.get("llm_model", pd.Series(dtype=str)).dropna() if m})
    if models:
        lines.append("pre-trained models: " + ", ".join(f"`{m}`" for m in models))
    if has_sizes(config):
        lines.append(_llm_key(config, runs))
    return lines


def _llm_key(config: StudyConfig, runs: pd.DataFrame) -> str:
    """Which model each LLM row stands for, and how it was tuned (its label)."""
    example = {}
    for entry in config.entries:
        example.setdefault(entry.llm, entry.name)
    named = [f"{m['label']} ({_count(m['parameters'])} parameters; rows such as `{example[llm]}`)"
             for llm, m in llm_models(config, runs).iterrows() if llm in example]
    return "LLMs of the LLM rows: " + "; ".join(named)
