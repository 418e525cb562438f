"""Streamlit helpers for the pages: the cached snapshot and tables, escaping, filters.

The snapshot and everything computed from it are cached per (folder, build stamp):
widgets rerun the page script, never MLflow. cache_resource hands out the same
objects without a pickle round trip per rerun (the snapshot of 10,000 runs is large),
so pages must not modify what they get (copy first).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pandas as pd
import streamlit as st

from benchmark import paradigms
from benchmark.eval.registry import display_digits
from leaderboard import tables
from leaderboard.tables import PROVENANCE_BADGES, is_maintainer_run, provenance_badge, provenance_labels
from leaderboard.snapshot import Snapshot, default_snapshot_dir, load_snapshot, snapshot_exists, snapshot_stamp

VERIFIED_ONLY_HELP = ("Show only verified and sandboxed rows: both are runs the maintainer's own sandboxed harness "
                      "made (verified: re-run from a submitter's bundle with `llm4rec verify` and found equal). "
                      "Self-reported and unsandboxed rows are hidden, and ranks, Δ leader and the tests are "
                      "recomputed among the rows shown.")


def esc(text: object) -> str:
    """Text for st.markdown that renders literally: every Markdown, HTML and Streamlit
    directive character (`:red[...]`, `$math$`) backslash-escaped, newlines kept as
    line breaks. Submitter text goes through here or through st.text/st.code."""
    return tables.escape_markdown(text).replace("\n", "  \n")


def redact(uri: str) -> str:
    """A tracking URI without its password (a team's server URI may carry one)."""
    parsed = urlparse(uri)
    if parsed.password:
        netloc = f"{parsed.username}:***@{parsed.hostname}" + (f":{parsed.port}" if parsed.port else "")
        return urlunparse(parsed._replace(netloc=netloc))
    return uri


@st.cache_resource(show_spinner="Reading the leaderboard snapshot…", max_entries=4)
def _snapshot(folder: str, stamp: int) -> Snapshot:
    return load_snapshot(folder)


@st.cache_resource(show_spinner="Ranking…", max_entries=4)
def _boards(folder: str, stamp: int) -> dict[str, pd.DataFrame]:
    return tables.all_leaderboards(_snapshot(folder, stamp))


@st.cache_resource(show_spinner="Ranking…", max_entries=4)
def _maintainer_boards(folder: str, stamp: int) -> dict[str, pd.DataFrame]:
    return tables.all_leaderboards(maintainer_snapshot(_snapshot(folder, stamp), _boards(folder, stamp)))


@st.cache_resource(max_entries=4)
def _diagnostics(folder: str, stamp: int) -> dict[str, pd.DataFrame]:
    return tables.diagnostic_boards(_snapshot(folder, stamp).runs)


@st.cache_resource(max_entries=4)
def _overview(folder: str, stamp: int) -> dict[str, pd.DataFrame]:
    return tables.overview_tables(_snapshot(folder, stamp), _boards(folder, stamp))


@st.cache_resource(max_entries=4)
def _maintainer_overview(folder: str, stamp: int) -> dict[str, pd.DataFrame]:
    return tables.overview_tables(_snapshot(folder, stamp), _maintainer_boards(folder, stamp))


def maintainer_snapshot(snapshot: Snapshot, boards: dict[str, pd.DataFrame]) -> Snapshot:
    """The snapshot cut to the counted runs of verified and sandboxed rows. Ranked anew,
    it is the verified-only leaderboard: the same rows, but the leader, Δ and the Holm
    correction are those of the rows shown, not of hidden ones."""
    kept = {run_id for board in boards.values()
            for run_ids in board.loc[is_maintainer_run(board["provenance"]), "run_ids"] for run_id in run_ids}
    return dataclasses.replace(snapshot, runs=snapshot.runs[snapshot.runs["run_id"].isin(kept)])


def _key() -> tuple[str, int]:
    folder = default_snapshot_dir().resolve()
    if not snapshot_exists(folder):
        st.error(f"No leaderboard snapshot in {folder}.")
        st.code("llm4rec leaderboard snapshot --out " + str(folder), language="bash")
        st.stop()
    return str(folder), snapshot_stamp(folder)


def snapshot() -> Snapshot:
    return _snapshot(*_key())


def boards(verified_only: bool = False) -> dict[str, pd.DataFrame]:
    return (_maintainer_boards if verified_only else _boards)(*_key())


def diagnostics() -> dict[str, pd.DataFrame]:
    """Finished and partial runs per task (the Trust page)."""
    return _diagnostics(*_key())


def overview(verified_only: bool = False) -> dict[str, pd.DataFrame]:
    return (_maintainer_overview if verified_only else _overview)(*_key())


def sidebar_info() -> None:
    """Where the numbers come from, on every page."""
    if not snapshot_exists(default_snapshot_dir()):
        return
    meta = snapshot().meta
    st.sidebar.caption(f"Snapshot of {meta.get('n_runs', 0):,} runs built {meta.get('built_at', '?')}")
    st.sidebar.caption("Store: " + esc(redact(str(meta.get("tracking_uri", "?")))))


def no_runs_yet() -> None:
    st.info("No finished, complete runs yet. Run an evaluation (`llm4rec run --task … --submission …`), "
            "then rebuild the snapshot (`llm4rec leaderboard snapshot`).")


def pick_task(label: str = "Task", key: str = "task", experiments: list[str] | None = None) -> str | None:
    """A task selector (the query parameter `task` preselects)."""
    options = experiments if experiments is not None else list(boards())
    if not options:
        return None
    wanted = st.query_params.get("task")
    index = options.index(wanted) if wanted in options else 0
    return st.selectbox(label, options, index=index, key=key)


def table_height(frame: pd.DataFrame, most: int = 1200) -> int:
    """Pixels that show every row of a table up to `most` (then it scrolls)."""
    return min(38 + 35 * len(frame), most)


def number_columns(frame: pd.DataFrame, digits: int = 4) -> dict:
    """Column config: fixed digits for float columns, thousands for large ones."""
    config = {}
    for column in frame.columns:
        if pd.api.types.is_float_dtype(frame[column]):
            big = frame[column].abs().max() >= 1e4 if frame[column].notna().any() else False
            config[column] = st.column_config.NumberColumn(column, format="compact" if big else f"%.{digits}f")
    return config


def mean_std_frame(board: pd.DataFrame, metrics: list[str], labels: dict[str, str] | None = None) -> pd.DataFrame:
    """submission (with the memorization mark where flagged), paradigm, seeds, then
    "mean ± std" text per metric, its column named by `labels` where given."""
    labels = labels or {}
    names = [tables.row_label(r) + mark for (_, r), mark in zip(board.iterrows(), tables.memorized_marks(board))]
    frame = pd.DataFrame({"submission": names, "paradigm": board["paradigm"],
                          "seeds": board["seeds"]})
    for metric in metrics:
        digits = display_digits(metric)
        frame[labels.get(metric, metric)] = [tables.mean_std(m, s, digits)
                                             for m, s in zip(board[metric], board[f"{metric} std"])]
    return frame


def badge(paradigm: str) -> str:
    """A colored Markdown badge (the paradigm comes from the store: escaped)."""
    return f":{paradigms.badge(paradigm)}-badge[{esc(paradigm)}]"


def verified_only_filter() -> bool:
    """The "verified only" toggle (off by default), where the caller's context puts it."""
    return st.toggle("verified only", value=False, key="verified_only", help=VERIFIED_ONLY_HELP)


def provenance_markdown(provenance: str) -> str:
    """A row's provenance as a coloured Markdown badge (`:green-badge[✓ verified]`)."""
    badge = provenance_badge(provenance)
    return f":{badge.markdown_color}-badge[{esc(badge.label)}]"


def with_provenance_badges(table: pd.DataFrame) -> pd.DataFrame:
    """A copy (the cached table stays as it is) whose provenance column holds the badge
    labels that provenance_column() colours."""
    return table.assign(provenance=provenance_labels(table["provenance"]))


def provenance_column() -> dict:
    """Column config that draws each provenance label as a coloured pill (a read-only
    multiselect column), its legend in the header's tooltip."""
    badges = PROVENANCE_BADGES.values()
    legend = "\n".join(f"- **{esc(badge.label)}**: {esc(badge.meaning)}" for badge in badges)
    return st.column_config.MultiselectColumn(
        "provenance", options=[badge.label for badge in badges], color=[badge.color for badge in badges],
        help="Where the row's numbers come from:\n" + legend)


def provenance_legend() -> None:
    """What each badge means, under the tables."""
    lines = [f"{provenance_markdown(name)} {esc(badge.meaning)}" for name, badge in PROVENANCE_BADGES.items()]
    st.caption("Provenance of each row (the weakest of its runs'):  \n" + "  \n".join(lines)
               + "  \nSee docs/submitting.md and the Submit page.")


def styled(frame: pd.DataFrame):
    """Paradigm cells tinted with the paradigm's color, reference rows greyed: the
    pandas Styler is what st.dataframe renders colors from."""
    def paradigm(value: object) -> str:
        color = paradigms.COLORS.get(str(value))
        return f"background-color: {color}22; color: #1f2328" if color else ""

    def reference(row: pd.Series) -> list[str]:
        grey = "color: #6e7781" if "(reference)" in str(row.get("submission", "")) else ""
        return [grey] * len(row)

    style = frame.style.apply(reference, axis=1)
    if "paradigm" in frame:
        style = style.map(paradigm, subset=["paradigm"])
    return style


def repo_doc(name: str) -> str | None:
    """A file from the repository's docs/ (the Submit page shows the adapter guide)."""
    path = Path(__file__).resolve().parents[1] / "docs" / name
    return path.read_text() if path.is_file() else None
