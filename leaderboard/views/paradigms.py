"""Paradigms: scores by paradigm per task, against cost, against training budget."""
import streamlit as st

from benchmark.paradigms import COSTS, CONDITIONS, PARADIGM_ORDER
from benchmark.tracking.results import counted_runs
from leaderboard import charts, tables, ui

st.title("Paradigms")
st.caption("Train-from-scratch ID models, pre-train + fine-tune, prompt and instruction tuning, "
           "zero-shot and in-context LLMs on the same tasks and candidate sets.")
snapshot, boards = ui.snapshot(), ui.boards()
if not boards:
    ui.no_runs_yet()
    st.stop()

summary = tables.paradigm_summary(boards)
pivot = summary.assign(cell=[f"{tables.mean_std(m, s)} ({b})" for m, s, b in
                             zip(summary["score"], summary["score_std"], summary["best"])]).pivot(
    index="task", columns="paradigm", values="cell").reindex(list(boards)).fillna("—")  # family order
pivot = pivot[[p for p in PARADIGM_ORDER if p in pivot.columns] + [p for p in pivot.columns if p not in PARADIGM_ORDER]]
st.subheader("Best score per paradigm")
st.dataframe(pivot.reset_index(), hide_index=True, width="stretch")

experiment = ui.pick_task(key="paradigm_task")
board = boards[experiment]
st.plotly_chart(charts.paradigm_scores(board), width="stretch")

st.subheader("Score against cost")
costs = {label: name for name, label in COSTS.items()
         if name in board and board[name].notna().any() and name not in CONDITIONS}
costs |= {"model size": "model_size"} if board["model_size"].notna().any() else {}
if costs:
    label = st.selectbox("cost", list(costs), key="cost")
    st.plotly_chart(charts.score_vs_cost(board, costs[label], label), width="stretch")
else:
    st.info("No cost metrics logged for this task.")

st.subheader("Score against training budget")
budget = tables.budget_runs(counted_runs(snapshot.runs), boards)
budget = budget[budget["task"] == experiment]
if budget.empty:
    st.info("No runs of this task log a training budget (`hp.train_samples`); the paradigm study's runs do.")
else:
    st.plotly_chart(charts.score_vs_budget(budget), width="stretch")
    st.dataframe(budget, hide_index=True, width="stretch", column_config=ui.number_columns(budget))
