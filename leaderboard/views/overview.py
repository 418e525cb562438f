"""Overview: per task family, who leads, by how much, how certain, with which paradigm,
at what cost and on whose word (the provenance badge)."""
import streamlit as st

from benchmark.families import family_order
from leaderboard import tables, ui

st.title("llm4rec-bench leaderboard")
st.caption("Recommenders and LLMs on standard tasks: mean ± std over seeds, significance against "
           "each task's leader, paradigm, cost and provenance. Only finished, complete runs are ranked.")

snapshot, all_boards = ui.snapshot(), ui.boards()
runs = snapshot.runs
submissions = runs.loc[runs["state"] == "finished", "submission"].nunique()
left, middle, right, last = st.columns(4)
left.metric("tasks", len(all_boards))
middle.metric("submissions", submissions)
right.metric("ranked runs", int(snapshot.meta.get("n_ranked_runs", 0)))
not_ranked = int((runs["state"] != "finished").sum())
last.metric("runs not ranked", not_ranked, help="failed, running, killed and partial (--limit-users) runs")

if not all_boards:
    ui.no_runs_yet()
    st.stop()

verified_only = ui.verified_only_filter()
boards = ui.boards(verified_only)
if not boards:
    st.info("No verified or sandboxed row yet: every ranked row is self-reported or unsandboxed. "
            "Turn off “verified only” to see them.")
    st.stop()

st.subheader("Leaders")
lines = []
for leader in tables.leaders(boards).itertuples():
    runner_up = f"; runner-up {ui.esc(leader.runner_up_verdict)}" if leader.runner_up_verdict else ""
    provenance = ui.provenance_markdown(boards[leader.experiment]["provenance"].iloc[0])
    mark = f" {ui.esc(tables.MEMORIZED_MARK)}" if leader.memorized else ""
    lines.append(f"- **{ui.esc(leader.experiment)}** ({ui.esc(leader.main_score)}): "
                 f"**{ui.esc(leader.leader)}**{mark} {ui.badge(leader.paradigm)} {provenance} — "
                 f"{ui.esc(tables.mean_std(leader.score, leader.score_std))} over {leader.seeds} seed(s){runner_up}")
st.markdown("\n".join(lines))

overview = ui.overview(verified_only)
tasks = tables.task_list(runs)
for family in sorted(set(tasks["family"]) | set(overview), key=family_order):
    st.subheader(family)
    if family in overview:
        table = ui.with_provenance_badges(overview[family])
        config = ui.number_columns(table) | {
            "rank": st.column_config.NumberColumn("rank", width="small"),
            "trainable params": st.column_config.NumberColumn("trainable params", format="compact"),
            "provenance": ui.provenance_column()}
        st.dataframe(ui.styled(table), hide_index=True, width="stretch", height=ui.table_height(table),
                     column_config=config)
        for experiment in tasks.loc[tasks["family"] == family, "experiment"]:
            board = boards.get(experiment)
            notes = (tables.std_note(board), tables.memorization_note(board)) if board is not None else ()
            for note in filter(None, notes):
                st.caption(f"{ui.esc(experiment)}: {ui.esc(note)}.")
    for task in tasks[(tasks["family"] == family) & ~tasks["experiment"].isin(boards)].itertuples():
        if task.experiment in all_boards:  # hidden by "verified only"
            st.caption(f"{ui.esc(task.experiment)}: no verified or sandboxed row; turn off “verified only” "
                       "to see its rows.")
            continue
        counts = ", ".join(f"{getattr(task, f'n_{s}')} {s}" for s in ("partial", "failed", "running", "killed")
                           if getattr(task, f"n_{s}"))
        st.caption(f"{ui.esc(task.experiment)}: no finished, complete runs yet ({ui.esc(counts or 'none')}); "
                   "see Run status.")
ui.provenance_legend()
st.caption(tables.SIGNIFICANCE_NOTE + ". Rows marked (reference) are the non-personalized baselines "
           "random and pop, drawn as dashed lines in the charts.")
if not_ranked:
    st.info(f"{not_ranked} run(s) are not ranked (failed, running or partial): see Run status.")
