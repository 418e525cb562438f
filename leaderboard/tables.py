"""The leaderboard's tables, computed from a snapshot with pandas only (no Streamlit),
so the app, the static export and perf/ share them.

A leaderboard row is (task, submission, version, hyperparameters): mean ± std over its
seeds' latest finished, complete runs. Runs of one submission version that differ in
hyperparameters (a budget study) are separate rows, labelled by the `variant` column.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
import re

import numpy as np
import pandas as pd

from benchmark.environment import devices_label
from benchmark.eval.registry import display_digits, higher_is_better, per_user_column, per_user_statistic
from benchmark.eval.significance import ALPHA, compare_to_reference, seed_matrix
from benchmark.families import family_order
from benchmark.paradigms import COSTS
from benchmark.tracking.results import (REDRAW_NOTE, ROW_KEYS, candidate_redraws, counted_runs, evaluation_draw,
                                        metric_columns, seed_spread, variant_labels)
from leaderboard.snapshot import Snapshot

REFERENCE_SUBMISSIONS = ("random", "pop")
ACCELERATOR = "tag:env.accelerator"
SANDBOX_TAG = "tag:sandbox"  # "false" for runs made with --no-sandbox
PROVENANCE_TAG = "tag:provenance"  # "verified", "self-reported" (benchmark.tracking.manifest)


@dataclass(frozen=True)
class ProvenanceBadge:
    label: str
    color: str  # hex, for the HTML export and the app's table cells
    markdown_color: str  # a Streamlit Markdown badge colour (`:green-badge[…]`)
    meaning: str  # plain text: shown in every format


# Where a row's numbers come from (row_provenance), strongest first. Each colour is the
# badge's own (no text colour of the app's tables): the browser test finds badges by it.
PROVENANCE_BADGES = {
    "verified": ProvenanceBadge("✓ verified", "#1a7f37", "green",
                                "re-run by the maintainer from the submitter's bundle (llm4rec verify) "
                                "and found equal"),
    "sandboxed": ProvenanceBadge("sandboxed", "#0969da", "blue",
                                 "run by this store's own harness in the sandbox (the maintainer's own runs)"),
    "unsandboxed": ProvenanceBadge("unsandboxed", "#bc4c00", "orange",
                                   "run with --no-sandbox, or recorded before runs carried the sandbox tag"),
    "self-reported": ProvenanceBadge("self-reported", "#57606a", "gray",
                                     "imported from a submitter's bundle without a re-run (llm4rec store import)"),
}
# What "verified only" keeps: numbers the maintainer's own sandboxed harness produced.
MAINTAINER_PROVENANCES = ("verified", "sandboxed")
_UNKNOWN_BADGE = ProvenanceBadge("?", "#6e7781", "gray", "unknown provenance")


def provenance_badge(provenance: object) -> ProvenanceBadge:
    return PROVENANCE_BADGES.get(str(provenance), _UNKNOWN_BADGE)


def provenance_labels(provenance: pd.Series) -> pd.Series:
    """"verified" -> "✓ verified": the badge text the app and the Markdown show."""
    return provenance.map(lambda value: provenance_badge(value).label)


def is_maintainer_run(provenance: pd.Series) -> pd.Series:
    return provenance.isin(MAINTAINER_PROVENANCES)


# A row's provenance is the weakest of its runs' (docs/submitting.md): weakest first.
PROVENANCES = tuple(reversed(PROVENANCE_BADGES))

# A row whose model reproduces this share of the catalogue's item titles from their ids
# (the memorization probe, mean over seeds) is flagged wherever it is ranked.
MEMORIZATION_METRIC = "trust.memorization.item_rate"
MEMORIZATION_THRESHOLD = 0.2
MEMORIZED_MARK = "⚠ memorized"
MEMORIZATION_NOTE = (f"{MEMORIZED_MARK}: the model reproduces at least {MEMORIZATION_THRESHOLD:.0%} of the "
                     f"catalogue's item titles from their ids ({MEMORIZATION_METRIC}, mean over seeds): its "
                     "zero-shot numbers may come from having seen the data")

SIZE_BUCKETS = ("< 1M", "1M–100M", "100M–1B", "≥ 1B", "unknown")
SIGNIFICANCE_NOTE = ("vs leader: paired t-test on the main score's per-user values (CTR: per-user AUC), over the "
                     "seeds a row shares with the leader, matched seed by seed (the same candidate sets); "
                     "Holm-corrected over the task's comparisons, α = 0.05")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$&\"'=^@])")
# Inside a table cell or after a heading marker only these start Markdown, HTML, an
# entity, a mailto autolink (name@1.0) or math.
_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]<>|~&@$])")


def escape_markdown(text: object, inline: bool = False) -> str:
    """Text that Markdown renders literally. By default every Markdown, HTML and
    Streamlit directive character (`:red[...]`, `$math$`) is backslash-escaped (for
    st.markdown); inline=True escapes only what matters inside a line that does not
    start it (table cells, headings: the Markdown export stays readable)."""
    return (_MARKDOWN_INLINE if inline else _MARKDOWN_SPECIAL).sub(r"\\\1", str(text))


def size_bucket(parameters: float) -> str:
    if parameters is None or not np.isfinite(parameters):
        return "unknown"
    for limit, label in ((1e6, "< 1M"), (1e8, "1M–100M"), (1e9, "100M–1B")):
        if parameters < limit:
            return label
    return "≥ 1B"


def mean_std(mean: float, std: float, digits: int = 4) -> str:
    if mean is None or not np.isfinite(mean):
        return "—"
    return f"{mean:.{digits}f} ± {(std if np.isfinite(std) else 0.0):.{digits}f}"


def human(value: float, digits: int = 3) -> str:
    """1234567 -> 1.23M: costs span orders of magnitude."""
    if value is None or not np.isfinite(value):
        return "—"
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.{digits}g}{suffix}"
    return f"{value:.{digits}g}"


# ---------------------------------------------------------------- tasks


def task_list(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per experiment (task id and version): family, dataset, main score and
    how many runs are in each state."""
    if runs.empty:
        return pd.DataFrame(columns=["experiment", "task", "task_version", "family", "dataset", "main_score"])
    rows = []
    for experiment, group in runs.groupby("experiment", sort=False):
        main = group["main_score"].dropna()
        metrics = [m for m in metric_columns(group) if group[f"metric:{m}"].notna().any()]
        counts = group["state"].value_counts()
        rows.append({
            "experiment": experiment, "task": group["task"].iloc[0], "task_version": group["task_version"].iloc[0],
            "family": group["family"].iloc[0], "dataset": group["dataset"].dropna().iloc[0]
            if group["dataset"].notna().any() else "?",
            "main_score": main.mode().iloc[0] if len(main) else (metrics[0] if metrics else None),
            **{f"n_{state}": int(counts.get(state, 0)) for state in ("finished", "partial", "failed", "running", "killed")},
        })
    tasks = pd.DataFrame(rows)
    order = tasks["family"].map(family_order)
    return tasks.assign(_order=order).sort_values(["_order", "experiment"]).drop(columns="_order").reset_index(drop=True)


def task_info(runs: pd.DataFrame, experiment: str) -> dict:
    tasks = task_list(runs[runs["experiment"] == experiment])
    return tasks.iloc[0].to_dict() if len(tasks) else {}


# ---------------------------------------------------------------- one task's leaderboard


def _model_size(table: pd.DataFrame) -> pd.Series:
    """cost.total_parameters when logged, else cost.trainable_parameters."""
    total = table.get("cost.total_parameters", pd.Series(np.nan, index=table.index))
    trainable = table.get("cost.trainable_parameters", pd.Series(np.nan, index=table.index))
    return total.fillna(trainable)


def leaderboard(ranked: pd.DataFrame, per_user: pd.DataFrame, experiment: str, main_score: str | None = None,
                alpha: float = ALPHA) -> pd.DataFrame:
    """One task's ranked table: one row per (submission, version, config) with `score`
    (main score mean), `score_std`, `seeds`, `rank`, every metric's mean and `<m> std`,
    `std_includes_candidate_redraws`, `delta` to the leader, the paired test against the
    leader (`tested`, `test_seeds`, `p_value`, `p_holm`, `significant`, `verdict`),
    `model_size`, `provenance` (see `row_provenance`) and the `run_ids` behind the row."""
    runs = ranked[ranked["experiment"] == experiment]
    if runs.empty:
        return pd.DataFrame()
    metrics = [m for m in metric_columns(runs) if runs[f"metric:{m}"].notna().any()]
    main = main_score or (runs["main_score"].dropna().mode().iloc[0] if runs["main_score"].notna().any()
                          else (metrics[0] if metrics else None))
    if main is None:
        return pd.DataFrame()  # finished runs without any metric: nothing to rank
    grouped = runs.groupby(ROW_KEYS, sort=False, dropna=False)
    values = grouped[[f"metric:{m}" for m in metrics]]
    means = values.mean()
    table = means.rename(columns=lambda c: c[len("metric:"):])
    spread = seed_spread(values, means).rename(columns=lambda c: f"{c[len('metric:'):]} std")
    table = table.join(spread).reset_index()
    first = grouped[["paradigm", "task", "task_version", "family", "dataset"]].last().reset_index(drop=True)
    table[first.columns] = first.to_numpy()
    table["seeds"] = grouped.size().to_numpy()
    table["run_ids"] = grouped["run_id"].agg(list).to_numpy()
    # seconds compare only between runs on the same device
    table["ran_on"] = (grouped[ACCELERATOR].agg(devices_label).to_numpy() if ACCELERATOR in runs
                       else devices_label([None]))
    table["experiment"], table["main_score"] = experiment, main
    table["variant"] = variant_labels(table)
    table["reference"] = table["submission"].isin(REFERENCE_SUBMISSIONS)
    table["provenance"] = grouped.apply(row_provenance, include_groups=False).to_numpy()
    table["model_size"] = _model_size(table)
    table["memorized"] = memorized(table)
    table["std_includes_candidate_redraws"] = candidate_redraws(runs)
    if main not in table:
        table[main], table[f"{main} std"] = np.nan, np.nan
    table["score"], table["score_std"] = table[main], table[f"{main} std"]
    ascending = not higher_is_better(main)
    table = table.sort_values("score", ascending=ascending, na_position="last", kind="stable").reset_index(drop=True)
    table["rank"] = table["score"].rank(ascending=ascending, method="min").astype("Int64")
    table["delta"] = table["score"] - table["score"].iloc[0]
    return _with_significance(table, runs, per_user, main, alpha)


def _with_significance(table: pd.DataFrame, runs: pd.DataFrame, per_user: pd.DataFrame, main: str,
                       alpha: float) -> pd.DataFrame:
    """The paired test of the leader (row 0) against every other row (see
    benchmark.eval.significance) and a verdict per row that says the direction, what
    was tested and over how many seeds."""
    table["p_value"], table["p_holm"], table["significant"] = np.nan, np.nan, pd.NA
    table["test_seeds"] = pd.Series(pd.NA, index=table.index, dtype="Int64")
    table["verdict"] = "—"
    table.loc[0, "verdict"] = "leader"
    column = per_user_column(main, per_user.columns)
    table["tested"] = per_user_statistic(main) if column is not None else None
    if column is None or len(table) < 2:
        return table
    owners = table["run_ids"].explode()
    info = runs.set_index("run_id")
    members = pd.DataFrame({"run_id": owners.to_numpy(), "key": owners.index.to_numpy(),
                            "seed": info["seed"].reindex(owners.to_numpy()).to_numpy(),
                            "draw": evaluation_draw(info).reindex(owners.to_numpy()).to_numpy()})
    tests = compare_to_reference(seed_matrix(per_user, members, column), 0, alpha).set_index("key")
    if tests.empty:
        return table
    table.loc[tests.index, "p_value"] = tests["p_value"]
    table.loc[tests.index, "p_holm"] = tests["p_holm"]
    table.loc[tests.index, "test_seeds"] = tests["test_seeds"].astype("Int64")
    tested = tests.index[np.isfinite(tests["p_holm"].to_numpy(dtype=float))]
    table["significant"] = table["significant"].astype(object)
    table.loc[tested, "significant"] = tests.loc[tested, "significant"].astype(bool).to_numpy()
    unshared = tests.index[tests["test_seeds"] == 0]
    table.loc[unshared, "verdict"] = "not tested: no seed in common with the leader"
    statistic, higher = per_user_statistic(main), higher_is_better(main)
    table.loc[tested, "verdict"] = [_verdict(row, statistic, higher) for _, row in tests.loc[tested].iterrows()]
    return table


def _verdict(test: pd.Series, statistic: str, higher: bool) -> str:
    """"worse on per-user NDCG@10 (p=0.003, 3 seeds)": worse or better only when the
    Holm-adjusted p < alpha, then by the sign of the tested difference (leader minus
    row), which can disagree with the ranking (CTR: rows ranked by global AUC)."""
    seeds = f"{int(test['test_seeds'])} seed{'s' if test['test_seeds'] != 1 else ''}"
    if not test["significant"]:
        return f"not significant on {statistic} (p={test['p_holm']:.2g}, {seeds})"
    worse = test["diff"] > 0 if higher else test["diff"] < 0
    return f"{'worse' if worse else 'better'} on {statistic} (p={test['p_holm']:.2g}, {seeds})"


def memorized(table: pd.DataFrame) -> pd.Series:
    """Rows whose mean MEMORIZATION_METRIC is at least MEMORIZATION_THRESHOLD (False
    where the probe did not run)."""
    rate = table.get(MEMORIZATION_METRIC, pd.Series(np.nan, index=table.index))
    return rate.ge(MEMORIZATION_THRESHOLD)


def memorized_marks(board: pd.DataFrame) -> np.ndarray:
    """" ⚠ memorized" for flagged rows, "" for others: appended to the submission."""
    return np.where(board["memorized"], " " + MEMORIZED_MARK, "")


def memorization_note(board: pd.DataFrame) -> str:
    """MEMORIZATION_NOTE where a row of the board is flagged, "" otherwise."""
    return MEMORIZATION_NOTE if bool(board["memorized"].any()) else ""


def std_note(board: pd.DataFrame) -> str:
    """The label of a board's ± std where its seeds drew different candidate sets; ""
    otherwise."""
    if not bool(board["std_includes_candidate_redraws"].any()):
        return ""
    return (f"{REDRAW_NOTE}: the candidate sets are drawn anew for each seed, so the spread mixes the draws "
            "with the model's own randomness (a deterministic model shows one too)")


def all_leaderboards(snapshot: Snapshot) -> dict[str, pd.DataFrame]:
    """Every task's leaderboard, keyed by experiment, in family order."""
    ranked = counted_runs(snapshot.runs)
    boards = {}
    for task in task_list(snapshot.runs).itertuples():
        board = leaderboard(ranked, snapshot.per_user, task.experiment, task.main_score)
        if len(board):
            boards[task.experiment] = board
    return boards


def row_provenance(runs: pd.DataFrame) -> str:
    """Where a row's numbers come from, the weakest of its runs: `self-reported`
    (imported from a bundle without a re-run), `unsandboxed` (run with --no-sandbox, or
    recorded before runs carried the tag), `sandboxed` (run by this store's harness in
    the sandbox), `verified` (re-run from a bundle by `llm4rec verify` and equal)."""
    provenance = runs.get(PROVENANCE_TAG, pd.Series(None, index=runs.index, dtype=object))
    sandbox = runs.get(SANDBOX_TAG, pd.Series(None, index=runs.index, dtype=object))
    each = np.where(provenance == "self-reported", "self-reported",
                    np.where(sandbox != "true", "unsandboxed",
                             np.where(provenance == "verified", "verified", "sandboxed")))
    return min(each, key=PROVENANCES.index)


# ---------------------------------------------------------------- display tables


def row_label(row) -> str:
    """submission@version, with the variant when there is one."""
    label = f"{row['submission']}@{row['version']}"
    return f"{label} [{row['variant']}]" if row.get("variant") else label


def overview_table(board: pd.DataFrame) -> pd.DataFrame:
    """The Overview's columns for one task's leaderboard."""
    main = board["main_score"].iloc[0]
    digits = display_digits(main)
    costs = pd.DataFrame({label: board[name] if name in board else pd.Series(np.nan, index=board.index)
                          for name, label in COSTS.items() if name in ("cost.fit_seconds", "cost.score_seconds",
                                                                       "cost.trainable_parameters")})
    return pd.DataFrame({
        "task": board["experiment"] + " · " + main,
        "rank": board["rank"],
        "submission": board["submission"] + np.where(board["reference"], " (reference)", "") + memorized_marks(board),
        "provenance": board["provenance"],
        "version": board["version"] + np.where(board["variant"] != "", " [" + board["variant"] + "]", ""),
        "paradigm": board["paradigm"],
        "score (mean ± std)": [mean_std(m, s, digits) for m, s in zip(board["score"], board["score_std"])],
        "seeds": board["seeds"],
        "Δ leader": board["delta"].round(4),
        "vs leader": board["verdict"],
    }).join(costs).assign(**{"ran on": board["ran_on"]})


def overview_tables(snapshot: Snapshot, boards: dict[str, pd.DataFrame] | None = None) -> dict[str, pd.DataFrame]:
    """One table per task family (rows grouped by task, ranked within it)."""
    boards = all_leaderboards(snapshot) if boards is None else boards
    families: dict[str, list[pd.DataFrame]] = {}
    for board in boards.values():
        families.setdefault(board["family"].iloc[0], []).append(overview_table(board))
    return {family: pd.concat(families[family], ignore_index=True)
            for family in sorted(families, key=family_order)}


def leaders(boards: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per task: the leader, its score, and the runner-up's gap."""
    rows = []
    for experiment, board in boards.items():
        top = board.iloc[0]
        rows.append({"experiment": experiment, "family": top["family"], "main_score": top["main_score"],
                     "leader": row_label(top), "submission": top["submission"], "paradigm": top["paradigm"],
                     "score": top["score"], "score_std": top["score_std"], "seeds": top["seeds"],
                     "gap": float(top["score"] - board["score"].iloc[1]) if len(board) > 1 else math.nan,
                     "memorized": bool(top["memorized"]),
                     "runner_up_verdict": board["verdict"].iloc[1] if len(board) > 1 else ""})
    return pd.DataFrame(rows)


def task_table(board: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """The Task page's sortable table: numeric mean and std per metric, costs."""
    columns = {"rank": board["rank"], "submission": board["submission"] + memorized_marks(board),
               "version": board["version"],
               "variant": board["variant"], "paradigm": board["paradigm"], "seeds": board["seeds"]}
    for metric in metrics:
        columns[metric] = board[metric]
        columns[f"{metric} std"] = board[f"{metric} std"]
    columns["vs leader"] = board["verdict"]
    columns["p (Holm)"] = board["p_holm"]
    for name, label in COSTS.items():
        if name in board:
            columns[label] = board[name]
    columns["ran on"] = board["ran_on"]
    columns["model size"] = board["model_size"]
    return pd.DataFrame(columns)


def task_metrics(board: pd.DataFrame) -> list[str]:
    """The task's quality metrics, main score first. Namespaced metrics (cost.*,
    trust.*, a model's training curves under train/) are left out."""
    main = board["main_score"].iloc[0]
    names = sorted(c for c in board.columns if f"{c} std" in board and "." not in c and "/" not in c and c != main)
    return [main] + names


def filter_board(board: pd.DataFrame, paradigms=None, sizes=None) -> pd.DataFrame:
    keep = pd.Series(True, index=board.index)
    if paradigms:
        keep &= board["paradigm"].isin(paradigms)
    if sizes:
        keep &= board["model_size"].map(size_bucket).isin(sizes)
    return board[keep]


# ---------------------------------------------------------------- status, trust, paradigms


def status_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs that are not ranked: failed, running, killed and partial ones, newest first."""
    shown = runs[runs["state"] != "finished"].sort_values("start_time", ascending=False)
    return pd.DataFrame({
        "task": shown["experiment"], "submission": shown["submission"], "version": shown["version"],
        "seed": shown["seed"].astype("Int64"), "state": shown["state"],
        "started": pd.to_datetime(shown["start_time"], unit="ms", utc=True),
        "reason": shown["failure_reason"].fillna(""), "run_id": shown["run_id"],
    }).reset_index(drop=True)


def state_counts(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs per task and state."""
    if runs.empty:
        return pd.DataFrame()
    return runs.pivot_table(index="experiment", columns="state", values="run_id", aggfunc="count", fill_value=0)


def diagnostic_boards(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per task, finished and partial runs grouped like the leaderboard (no tests):
    trust diagnostics of quick `--limit-users` looks are worth seeing, so partial runs
    are kept, as their own rows: version "<v> (partial)"."""
    keep = runs[runs["state"].isin(["finished", "partial"])].copy()
    partial = keep["state"] == "partial"
    keep.loc[partial, "version"] = keep.loc[partial, "version"].astype(str) + " (partial)"
    keep["state"] = "finished"
    ranked = counted_runs(keep)
    empty = pd.DataFrame(columns=["run_id", "user"])
    boards = {}
    for task in task_list(runs).itertuples():
        board = leaderboard(ranked, empty, task.experiment, task.main_score)
        if len(board):
            boards[task.experiment] = board
    return boards


def trust_metrics(board: pd.DataFrame) -> list[str]:
    return sorted(c for c in board.columns if c.startswith("trust.") and not c.endswith(" std"))


def position_curve(board: pd.DataFrame) -> pd.DataFrame:
    """Long table of trust.pos_<p>.<metric>: submission, position, metric, value, std."""
    rows = []
    for column in trust_metrics(board):
        head, _, metric = column[len("trust."):].partition(".")
        if not head.startswith("pos_") or not metric:
            continue
        position = pd.to_numeric(head[len("pos_"):], errors="coerce")
        for _, row in board.iterrows():
            rows.append({"submission": row_label(row), "position": position, "metric": metric,
                         "value": row[column], "std": row[f"{column} std"]})
    return pd.DataFrame(rows, columns=["submission", "position", "metric", "value", "std"]).dropna(
        subset=["position", "value"])


def paradigm_summary(boards: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Best score per (task, paradigm), with the submission holding it."""
    rows = []
    for experiment, board in boards.items():
        for paradigm, group in board.groupby("paradigm", sort=False):
            best = group.iloc[0]  # boards are sorted best first
            rows.append({"task": experiment, "main_score": best["main_score"], "paradigm": paradigm,
                         "best": row_label(best), "score": best["score"], "score_std": best["score_std"],
                         "submissions": len(group)})
    return pd.DataFrame(rows)


def _budget_lines(budget: pd.DataFrame) -> pd.Series:
    """One line per model in the budget chart: a study may run each budget as its own
    named variant (`sasrec-n1000`, `sasrec-n5000`); names that share a prefix before
    their last '-' and differ in budget join one line, named by the prefix."""
    names = budget.drop_duplicates("submission").set_index("submission")["train_samples"]
    prefix = pd.Series({n: n.rsplit("@", 1)[0].rsplit("-", 1)[0] + "@" + n.rsplit("@", 1)[-1] for n in names.index})
    prefix[~prefix.index.str.contains("-")] = prefix.index[~prefix.index.str.contains("-")]
    lines = {}
    for key, group in prefix.groupby(prefix):
        joined = len(group) > 1 and names[group.index].nunique() == len(group)
        lines |= {n: (key if joined else n) for n in group.index}
    return budget["submission"].map(lines)


def budget_runs(ranked: pd.DataFrame, boards: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Score against training budget: runs with `hp.train_samples` (or the metric
    cost.train_samples), mean ± std of the main score per (task, submission, budget);
    `line` groups a model's budgets (see _budget_lines)."""
    columns = ["task", "main_score", "line", "submission", "paradigm", "train_samples", "score", "score_std", "seeds"]
    budget = pd.Series(np.nan, index=ranked.index)
    if "param:hp.train_samples" in ranked:
        budget = pd.to_numeric(ranked["param:hp.train_samples"], errors="coerce")
    if "metric:cost.train_samples" in ranked:
        budget = budget.fillna(ranked["metric:cost.train_samples"])
    runs = ranked.assign(budget=budget).dropna(subset=["budget"])
    rows = []
    for (experiment, submission, version, paradigm, value), group in runs.groupby(
            ["experiment", "submission", "version", "paradigm", "budget"], sort=True):
        if experiment not in boards:
            continue
        main = boards[experiment]["main_score"].iloc[0]
        scores = group.get(f"metric:{main}", pd.Series(dtype=float)).dropna()
        if not len(scores):
            continue
        rows.append({"task": experiment, "main_score": main, "submission": f"{submission}@{version}",
                     "paradigm": paradigm, "train_samples": value, "score": scores.mean(),
                     "score_std": scores.std(ddof=1) if len(scores) > 1 else 0.0, "seeds": len(scores)})
    table = pd.DataFrame(rows, columns=[c for c in columns if c != "line"])
    lines = [_budget_lines(group) for _, group in table.groupby("task", sort=False)]
    table.insert(2, "line", pd.concat(lines) if lines else pd.Series(dtype=object))
    return table.sort_values(["task", "line", "train_samples"]).reset_index(drop=True)
