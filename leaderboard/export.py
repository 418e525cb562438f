"""Static exports of the leaderboard for publishing: a self-contained HTML page (tables
and Plotly charts with plotly.js inlined: no server, no network), Markdown tables, a
CSV, and a trust card (an HTML page) per row with trust metrics, linked from the
pages. Every text from the store is escaped for its format.

Each row carries its provenance (leaderboard.tables.row_provenance) as a badge; the
badges' labels, colours and meanings live here, with no Streamlit, so the app shares
them."""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from benchmark import paradigms
from benchmark.families import family_order
from benchmark.spreadsheet import spreadsheet_csv
from leaderboard import tables, trust
from leaderboard.tables import PROVENANCE_BADGES, provenance_badge, provenance_labels
from leaderboard.snapshot import Snapshot


FORMATS = ("html", "md", "csv", "trust")
FILES = {"html": "leaderboard.html", "md": "leaderboard.md", "csv": "leaderboard.csv"}
CARDS = "trust-cards"  # the "trust" format: one page per (task, row) with trust metrics
DISPLAY = ["rank", "submission", "provenance", "version", "paradigm", "score (mean ± std)", "seeds", "Δ leader",
           "vs leader", "fit s", "inference s", "ran on", "trainable params"]


def export(snapshot: Snapshot, out: str | Path, formats: Iterable[str] = FORMATS) -> list[Path]:
    """Write the chosen formats into `out`; returns the files written. With "trust",
    the trust cards go to `out`/trust-cards/ and the HTML and Markdown pages link them."""
    formats = list(dict.fromkeys(formats))
    unknown = [fmt for fmt in formats if fmt not in FORMATS]
    if unknown:
        raise ValueError(f"unknown export format {unknown[0]!r}: choose from {', '.join(FORMATS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    boards = tables.all_leaderboards(snapshot)
    cards = card_files(boards) if "trust" in formats else {}
    writers = {"html": lambda: to_html(snapshot, boards, cards), "md": lambda: to_markdown(snapshot, boards, cards),
               "csv": lambda: spreadsheet_csv(to_csv(boards))}
    written = []
    for fmt in formats:
        if fmt == "trust":
            written += write_cards(snapshot, cards, out)
            continue
        path = out / FILES[fmt]
        path.write_text(writers[fmt](), encoding="utf-8")
        written.append(path)
    return written


# ---------------------------------------------------------------- CSV


def to_csv(boards: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every task's rows, every metric's mean and std, the test against the leader and
    the provenance (its plain name: verified, sandboxed, unsandboxed, self-reported)."""
    if not boards:
        return pd.DataFrame(columns=["task", "rank", "submission", "version"])
    frames = [board.drop(columns=["run_ids", "config", "experiment"]).assign(task=experiment)
              for experiment, board in boards.items()]
    frame = pd.concat(frames, ignore_index=True)
    first = ["task", "family", "dataset", "main_score", "rank", "submission", "version", "variant", "paradigm",
             "reference", "provenance", "memorized", "seeds", "score", "score_std", "std_includes_candidate_redraws",
             "delta", "tested", "test_seeds", "p_value", "p_holm", "significant", "verdict", "model_size"]
    first = [c for c in first if c in frame]
    return frame[first + sorted(c for c in frame.columns if c not in first)]


# ---------------------------------------------------------------- Markdown


def _md_cell(value: object) -> str:
    if isinstance(value, float):
        return "—" if not np.isfinite(value) else f"{value:.4g}"
    return tables.escape_markdown("" if value is None or value is pd.NA else value, inline=True).replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(_md_cell(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def to_markdown(snapshot: Snapshot, boards: dict[str, pd.DataFrame], cards: dict | None = None) -> str:
    meta = snapshot.meta
    parts = ["# llm4rec-bench leaderboard", "",
             f"Snapshot of {meta.get('n_runs', 0):,} runs ({meta.get('n_ranked_runs', 0):,} ranked), "
             f"built {tables.escape_markdown(meta.get('built_at', '?'), inline=True)}. Mean ± std over seeds; "
             f"{tables.escape_markdown(tables.SIGNIFICANCE_NOTE, inline=True)}.", "",
             _markdown_legend(), ""]
    for family, experiments in _by_family(boards).items():
        parts += [f"## {tables.escape_markdown(family, inline=True)}", ""]
        for experiment in experiments:
            board = boards[experiment]
            parts += [f"### {tables.escape_markdown(experiment, inline=True)} · "
                      f"{tables.escape_markdown(board['main_score'].iloc[0], inline=True)}", ""]
            if tables.std_note(board):
                parts += [f"_{tables.escape_markdown(tables.std_note(board), inline=True)}._", ""]
            parts += [markdown_table(_display(board)), ""]
            if tables.memorization_note(board):
                parts += [f"_{tables.escape_markdown(tables.memorization_note(board), inline=True)}._", ""]
            links = [f"[{tables.escape_markdown(card.label, inline=True)}]({path})"
                     for path, card in (cards or {}).items() if card.experiment == experiment]
            if links:
                parts += ["Trust cards: " + ", ".join(links), ""]
    if not boards:
        parts.append("No finished, complete runs yet.")
    return "\n".join(parts) + "\n"


def _markdown_legend() -> str:
    escape = lambda text: tables.escape_markdown(text, inline=True)  # noqa: E731
    meanings = "; ".join(f"**{escape(badge.label)}**: {escape(badge.meaning)}" for badge in PROVENANCE_BADGES.values())
    return f"Provenance of each row (the weakest of its runs'): {meanings}."


def _by_family(boards: dict[str, pd.DataFrame]) -> dict[str, list[str]]:
    families: dict[str, list[str]] = {}
    for experiment, board in boards.items():
        families.setdefault(board["family"].iloc[0], []).append(experiment)
    return {f: families[f] for f in sorted(families, key=family_order)}


def _display(board: pd.DataFrame) -> pd.DataFrame:
    table = tables.overview_table(board).drop(columns=["task"])
    table["paradigm"] = board["paradigm"]  # the badge emoji is for the app
    table["provenance"] = provenance_labels(board["provenance"])
    for column in ("fit s", "inference s"):
        if column in table:
            table[column] = [f"{v:.3g}" if np.isfinite(v) else "—" for v in table[column].astype(float)]
    if "trainable params" in table:
        table["trainable params"] = [tables.human(v) for v in table["trainable params"].astype(float)]
    table["Δ leader"] = [f"{v:+.4f}" if np.isfinite(v) else "—" for v in board["delta"].astype(float)]
    return table[[c for c in DISPLAY if c in table]]


# ---------------------------------------------------------------- HTML

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;
color:#1f2328;padding:0 1rem}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #d0d7de;padding-bottom:.3rem;margin-top:2.5rem}
.meta,.note{color:#59636e;font-size:.9rem}
table{border-collapse:collapse;width:100%;margin:.6rem 0 1rem;font-size:.9rem}
th,td{padding:.35rem .6rem;border-bottom:1px solid #e6e8eb;text-align:left;white-space:nowrap}
th{background:#f6f8fa;cursor:pointer;user-select:none}th:hover{background:#eaeef2}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.reference td{color:#59636e;font-style:italic;background:#fbfbfb}
tr.leader td{font-weight:600}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:1rem;color:#fff;font-size:.8rem}
dl.legend{display:grid;grid-template-columns:max-content auto;gap:.25rem .8rem;font-size:.9rem;color:#59636e}
dl.legend dd{margin:0}
.sig{color:#1a7f37}.ns{color:#9a6700}
nav a{margin-right:1rem}.scroll{overflow-x:auto}
table.figures{width:auto}.memorized{color:#9a6700;font-weight:600}
"""

SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function(th, column){
  th.addEventListener('click', function(){
    var table = th.closest('table'), body = table.tBodies[0];
    var rows = Array.from(body.rows), up = th.dataset.dir !== 'asc';
    rows.sort(function(a, b){
      var x = a.cells[column].dataset.sort, y = b.cells[column].dataset.sort;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
      return up ? c : -c;
    });
    table.querySelectorAll('th').forEach(function(h){ delete h.dataset.dir; });
    th.dataset.dir = up ? 'asc' : 'desc';
    rows.forEach(function(r){ body.appendChild(r); });
  });
});
"""


def _esc(value: object) -> str:
    return html.escape("" if value is None or value is pd.NA else str(value), quote=True)


def _badge(paradigm: str) -> str:
    color = paradigms.color(paradigm)
    return f'<span class="badge" style="background:{color}">{_esc(paradigm)}</span>'


def _provenance_badge(provenance: object) -> str:
    badge = provenance_badge(provenance)
    return (f'<span class="badge provenance provenance-{_esc(provenance)}" style="background:{badge.color}" '
            f'title="{_esc(badge.meaning)}">{_esc(badge.label)}</span>')


def _provenance_legend() -> str:
    items = "".join(f"<dt>{_provenance_badge(name)}</dt><dd>{_esc(badge.meaning)}</dd>"
                    for name, badge in PROVENANCE_BADGES.items())
    return f'<p class="note">Provenance of each row (the weakest of its runs\'):</p><dl class="legend">{items}</dl>'


def _sort_key(value: object) -> str:
    if isinstance(value, (int, float, np.integer, np.floating)) and np.isfinite(value):
        return repr(float(value))
    return _esc(value)


def html_table(board: pd.DataFrame) -> str:
    """One task's table; numeric cells sort by their value (data-sort)."""
    display = _display(board)
    numbers = {"rank": board["rank"], "score (mean ± std)": board["score"], "Δ leader": board["delta"],
               "seeds": board["seeds"], "fit s": board.get("cost.fit_seconds"),
               "inference s": board.get("cost.score_seconds"), "trainable params": board.get("cost.trainable_parameters"),
               "vs leader": board["p_holm"], "provenance": _provenance_strength(board["provenance"])}
    text_columns = ("vs leader", "provenance")  # sorted by a number, shown as text
    head = "".join(f"<th>{_esc(c)}</th>" for c in display.columns)
    rows = []
    for i, row in display.iterrows():
        classes = " ".join(c for c, on in (("reference", board.loc[i, "reference"]), ("leader", i == 0)) if on)
        cells = []
        for column, value in row.items():
            key = numbers.get(column)
            sort = _sort_key(key.iloc[i] if key is not None else value)
            text = _cell_html(column, value, board.at[i, "provenance"])
            significant = board.loc[i, "significant"]
            if column == "vs leader" and not pd.isna(significant):
                text = f'<span class="{"sig" if significant else "ns"}">{text}</span>'
            css = ' class="num"' if key is not None and column not in text_columns else ""
            cells.append(f'<td{css} data-sort="{sort}">{text}</td>')
        rows.append(f'<tr class="{classes}">' + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table class="sortable"><thead><tr>{head}</tr></thead><tbody>' + "".join(rows)
            + "</tbody></table></div>")


def _cell_html(column: str, value: object, provenance: str) -> str:
    """A cell's HTML: badges for the paradigm and the provenance (styled by its plain
    name, not the label shown), escaped text otherwise."""
    if column == "paradigm":
        return _badge(value)
    if column == "provenance":
        return _provenance_badge(provenance)
    return _esc(value)


def _provenance_strength(provenance: pd.Series) -> pd.Series:
    """Sorts the provenance column weakest to strongest (tables.PROVENANCES' order)."""
    return provenance.map(lambda value: tables.PROVENANCES.index(value) if value in tables.PROVENANCES else -1)


def _chart(board: pd.DataFrame) -> str:
    from leaderboard.charts import score_bars

    return score_bars(board).to_html(full_html=False, include_plotlyjs=False, config={"displayModeBar": False})


def _leaders_table(boards: dict[str, pd.DataFrame]) -> str:
    leaders = tables.leaders(boards)
    rows = "".join(
        f"<tr><td><a href=\"#{_anchor(r.experiment)}\">{_esc(r.experiment)}</a></td><td>{_esc(r.main_score)}</td>"
        f"<td>{_esc(r.leader)}</td><td>{_provenance_badge(boards[r.experiment]['provenance'].iloc[0])}</td>"
        f"<td>{_badge(r.paradigm)}</td>"
        f"<td class=\"num\">{_esc(tables.mean_std(r.score, r.score_std))}</td><td>{_esc(r.runner_up_verdict)}</td></tr>"
        for r in leaders.itertuples())
    return ("<table><thead><tr><th>task</th><th>main score</th><th>leader</th><th>provenance</th><th>paradigm</th>"
            "<th>score</th>"
            f"<th>runner-up vs leader</th></tr></thead><tbody>{rows}</tbody></table>")


def _anchor(experiment: str) -> str:
    return "task-" + "".join(ch if ch.isalnum() else "-" for ch in experiment)


def to_html(snapshot: Snapshot, boards: dict[str, pd.DataFrame], cards: dict | None = None) -> str:
    from plotly.offline import get_plotlyjs

    meta = snapshot.meta
    body = [f"<h1>llm4rec-bench leaderboard</h1><p class=\"meta\">Snapshot of {int(meta.get('n_runs', 0)):,} runs "
            f"({int(meta.get('n_ranked_runs', 0)):,} ranked), built {_esc(meta.get('built_at', '?'))}. "
            "Mean ± std over seeds; only finished, complete runs are ranked.</p>"]
    if boards:
        body.append("<nav>" + "".join(f'<a href="#{_anchor(e)}">{_esc(e)}</a>' for e in boards) + "</nav>")
        body.append("<h2>Leaders</h2>" + _leaders_table(boards) + _provenance_legend())
    else:
        body.append("<p>No finished, complete runs yet.</p>")
    for family, experiments in _by_family(boards).items():
        body.append(f"<h2>{_esc(family)}</h2>")
        for experiment in experiments:
            board = boards[experiment]
            body.append(f'<h3 id="{_anchor(experiment)}">{_esc(experiment)} · {_esc(board["main_score"].iloc[0])}</h3>')
            if tables.std_note(board):
                body.append(f'<p class="note">{_esc(tables.std_note(board))}.</p>')
            body.append(html_table(board))
            if tables.memorization_note(board):
                body.append(f'<p class="note memorized">{_esc(tables.memorization_note(board))}.</p>')
            links = [f'<a href="{_esc(path)}">{_esc(card.label)}</a>' for path, card in (cards or {}).items()
                     if card.experiment == experiment]
            if links:
                body.append(f'<p class="trust-cards">Trust cards: {", ".join(links)}</p>')
            body.append(_chart(board))
    counts = tables.state_counts(snapshot.runs)
    if not counts.empty:
        body.append("<h2>Runs by state</h2>" + counts.reset_index().to_html(index=False, escape=True, border=0))
    body.append(f"<p class=\"note\">{_esc(tables.SIGNIFICANCE_NOTE)}. Reference rows (random, pop) are in italics "
                "and drawn as dashed lines. Click a column header to sort.</p>")
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>llm4rec-bench leaderboard</title><style>{CSS}</style>"
            f"<script>{get_plotlyjs()}</script></head><body>{''.join(body)}"
            f"<script>{SORT_JS}</script>"
            f"<script type=\"application/json\" id=\"snapshot-meta\">{_json_for_script(meta)}</script>"
            "</body></html>")


def _json_for_script(value: dict) -> str:
    """JSON inside <script>: '<' escaped so that no '</script>' can close the tag."""
    return json.dumps(value, default=str).replace("<", "\\u003c")


# ---------------------------------------------------------------- trust cards


def _slug(text: str) -> str:
    return "".join(ch if ch.isascii() and ch.isalnum() else "-" for ch in text)


def card_files(boards: dict[str, pd.DataFrame]) -> dict[str, trust.TrustCard]:
    """{path under the export folder: card} for every ranked row with trust metrics."""
    files: dict[str, trust.TrustCard] = {}
    for board in boards.values():
        for card in trust.cards(board):
            stem = f"{CARDS}/{_slug(card.experiment)}--{_slug(card.label)}"
            path, n = f"{stem}.html", 1
            while path in files:  # names that differ only in punctuation
                n += 1
                path = f"{stem}-{n}.html"
            files[path] = card
    return files


def write_cards(snapshot: Snapshot, cards: dict[str, trust.TrustCard], out: Path) -> list[Path]:
    written = []
    for name, card in cards.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(card_html(snapshot, card), encoding="utf-8")
        written.append(path)
    return written


def _figure_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{_esc(v)}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f'<table class="figures"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def card_html(snapshot: Snapshot, card: trust.TrustCard) -> str:
    """One row's trust card as a self-contained page (no script)."""
    body = [f'<p class="meta"><a href="../{FILES["html"]}">← leaderboard</a> · snapshot built '
            f'{_esc(snapshot.meta.get("built_at", "?"))}</p>',
            f"<h1>Trust card: {_esc(card.label)}</h1>",
            f'<p>{_badge(card.paradigm)} {_provenance_badge(card.provenance)} on <b>{_esc(card.experiment)}</b></p>',
            f'<p class="score">main score {_esc(card.main_score)}: <b>{_esc(card.score)}</b> '
            f"(mean ± std over {card.seeds} seed{'s' if card.seeds != 1 else ''})</p>"]
    if card.memorized:
        body.append(f'<p class="memorized">{_esc(tables.MEMORIZATION_NOTE)}.</p>')
    if card.readings:
        body.append("<h2>In plain words</h2><ul class=\"readings\">"
                    + "".join(f"<li>{_esc(line)}</li>" for line in card.readings) + "</ul>")
    for section, frames in card.sections:
        body.append(f"<h2>{_esc(section.title)}</h2><p class=\"note\">{_esc(section.caption)}</p>")
        for attribute, frame in frames.items():
            body.append((f"<h3>{_esc(attribute)}</h3>" if attribute else "") + _figure_table(frame))
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>Trust card: {_esc(card.label)} on {_esc(card.experiment)}</title><style>{CSS}</style></head>"
            f"<body>{''.join(body)}</body></html>")
