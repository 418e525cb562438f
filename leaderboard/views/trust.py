"""Trust: every task's trust figures by section (position bias, output validity,
popularity, exposure, user-side and counterfactual fairness, robustness, attacks,
memorization, the passes' cost), one table per section (per attribute where the
figures are), shown only where a run logged them; one row's figures together are on
the Trust card page."""
import streamlit as st

from leaderboard import charts, tables, trust, ui

st.title("Trust")
st.caption("What point estimates hide: position bias and output validity of LLM rankers, popularity and "
           "exposure, fairness between user groups and under stated attributes, robustness to perturbed "
           "histories, attacks, memorization of the data. Mean ± std over seeds, for the runs that logged "
           "these metrics, partial (`--limit-users`) runs included as their own rows.")
st.page_link("views/trust_card.py", label="Trust card: one submission's trust figures together, in plain words",
             icon=":material/badge:")

shown = 0
for experiment, board in ui.diagnostics().items():
    sections = trust.shown_sections(board)
    if not sections:
        continue
    shown += 1
    st.header(experiment)
    for section, groups in sections:
        st.subheader(section.title)
        st.caption(ui.esc(section.caption))
        for attribute, metrics in groups.items():
            if attribute:
                st.markdown(f"**{ui.esc(attribute)}**")
            rows = board[board[metrics].notna().any(axis=1)]
            labels = {m: trust.shown_name(section, m) for m in metrics}
            st.dataframe(ui.mean_std_frame(rows, metrics, labels), hide_index=True, width="stretch")
        curve = tables.position_curve(board) if section.key == "position" else []
        if len(curve):
            st.plotly_chart(charts.position_bias(curve), width="stretch")
    if tables.memorization_note(board):
        st.caption(ui.esc(tables.memorization_note(board)) + ".")

if not shown:
    st.info("No run logged trust metrics (trust.*) or popularity metrics yet; the trust passes of a task's "
            "`trust:` block log them.")
