"""Trust card: one submission's trust figures on one task (mean ± std over seeds) beside
its main score, read in plain words. The query parameters `?task=…&submission=…`
(a submission name or its row label, `name@version`) preselect."""
import streamlit as st

from leaderboard import tables, trust, ui

st.title("Trust card")
boards = {experiment: board for experiment, board in ui.diagnostics().items() if trust.has_trust(board).any()}
experiment = ui.pick_task(experiments=list(boards), key="card_task")
if experiment is None:
    st.info("No run logged trust metrics (trust.*) yet; the trust passes of a task's `trust:` block log them.")
    st.stop()

board = boards[experiment]
rows = board[trust.has_trust(board)]
labels = [tables.row_label(row) for _, row in rows.iterrows()]
wanted = st.query_params.get("submission")
preselected = next((i for i, (label, name) in enumerate(zip(labels, rows["submission"])) if wanted in (label, name)), 0)
label = st.selectbox("Submission", labels, index=preselected, key="card_sub")
card = trust.card(board, rows.index[labels.index(label)])

st.header(ui.esc(card.label))
st.markdown(f"{ui.badge(card.paradigm)} {ui.provenance_markdown(card.provenance)} on **{ui.esc(card.experiment)}**")
left, right = st.columns(2)
left.metric(f"main score: {ui.esc(card.main_score)} (mean ± std)", card.score)
right.metric("seeds", card.seeds)
if card.memorized:
    st.warning(ui.esc(tables.MEMORIZATION_NOTE) + ".", icon=":material/warning:")

st.subheader("In plain words")
if card.readings:
    st.markdown("\n".join(f"- {ui.esc(line)}" for line in card.readings))
else:
    st.caption("No figure here has a plain-words reading; see the tables below.")
for section, frames in card.sections:
    st.subheader(section.title)
    st.caption(ui.esc(section.caption))
    for attribute, frame in frames.items():
        if attribute:
            st.markdown(f"**{ui.esc(attribute)}**")
        st.dataframe(frame, hide_index=True, width="content")
