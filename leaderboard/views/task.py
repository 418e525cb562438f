"""Task: every metric of one task, with filters (verified only among them), sortable
columns, provenance badges, a chart and CSV."""
import json

import streamlit as st

from benchmark.eval.registry import higher_is_better
from benchmark.families import family_order
from benchmark.paradigms import PARADIGM_ORDER
from benchmark.spreadsheet import spreadsheet_csv
from leaderboard import charts, tables, ui

st.title("Task")
snapshot = ui.snapshot()
if not ui.boards():
    ui.no_runs_yet()
    st.stop()

with st.sidebar:
    st.header("Filters")
    verified_only = ui.verified_only_filter()
boards = ui.boards(verified_only)
tasks = tables.task_list(snapshot.runs)
tasks = tasks[tasks["experiment"].isin(boards)]
with st.sidebar:
    families = st.multiselect("family", sorted(tasks["family"].unique(), key=family_order), key="family")
    datasets = st.multiselect("dataset", sorted(tasks["dataset"].astype(str).unique()), key="dataset")
    paradigms = st.multiselect("paradigm", list(dict.fromkeys([*PARADIGM_ORDER, *sorted(
        {p for b in boards.values() for p in b["paradigm"]})])), key="paradigm")
    sizes = st.multiselect("model size (parameters)", list(tables.SIZE_BUCKETS), key="size")

shown = tasks[(tasks["family"].isin(families) | (not families))
              & (tasks["dataset"].astype(str).isin(datasets) | (not datasets))]
experiment = ui.pick_task(experiments=list(shown["experiment"]))
if experiment is None:
    st.info("No task matches the filters (verified only, family, dataset).")
    st.stop()

board = boards[experiment]
info = shown.set_index("experiment").loc[experiment]
spec = snapshot.tasks.set_index("experiment")["spec"].get(experiment)
st.subheader(experiment)
st.caption(f"family {ui.esc(info['family'])} · dataset {ui.esc(info['dataset'])} · main score "
           f"{ui.esc(info['main_score'])} ({'higher' if higher_is_better(info['main_score']) else 'lower'} is better)")
if spec:
    description = json.loads(spec).get("description")
    if description:
        st.text(description.strip())

filtered = tables.filter_board(board, paradigms, sizes)
if filtered.empty:
    st.info("No submission matches the paradigm and model size filters.")
    st.stop()
metrics = tables.task_metrics(board)
table = tables.task_table(filtered, metrics)
table.insert(table.columns.get_loc("submission") + 1, "provenance", filtered["provenance"])
st.dataframe(ui.styled(ui.with_provenance_badges(table)), hide_index=True, width="stretch",
             column_config=ui.number_columns(table) | {"provenance": ui.provenance_column()})
notes = (tables.std_note(board), tables.memorization_note(filtered), tables.SIGNIFICANCE_NOTE)
st.caption(" ".join(f"{note}." for note in notes if note)
           + " Click a column header to sort.")
ui.provenance_legend()
st.download_button("Download CSV", spreadsheet_csv(table).encode(),  # provenance by its plain name, as in the export
                   file_name=experiment.replace("/", "_") + ".csv", mime="text/csv")

metric = st.selectbox("chart metric", metrics, key="chart_metric")
st.plotly_chart(charts.score_bars(filtered, metric, title=f"{experiment} — {metric}"), width="stretch")
