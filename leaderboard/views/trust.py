"""Trust: position bias, hallucination and compliance, popularity bias."""
import streamlit as st

from leaderboard import charts, tables, ui

st.title("Trust")
st.caption("What point estimates hide: does an LLM prefer candidates by their position in the prompt, "
           "does it name items that are not in the catalogue or break the output format, does a model "
           "recommend mostly popular items. Shown for the runs that logged these metrics, partial "
           "(`--limit-users`) runs included as their own rows.")
boards = ui.diagnostics()
POSITION = ("trust.PosGap", "trust.kendall_tau")
OUTPUT = ("trust.hallucination_rate", "trust.compliance", "trust.duplicate_rate")

shown = 0
for experiment, board in boards.items():
    trust = tables.trust_metrics(board)
    popularity = tables.popularity_metrics(board)
    if not trust and not popularity:
        continue
    shown += 1
    st.header(experiment)
    logged = board[board[[*trust, *popularity]].notna().any(axis=1)]
    position = [m for m in POSITION if m in trust]
    curve = tables.position_curve(logged)
    if position or len(curve):
        st.subheader("Position bias")
        if position:
            st.dataframe(ui.mean_std_frame(logged, position), hide_index=True, width="stretch")
        if len(curve):
            st.plotly_chart(charts.position_bias(curve), width="stretch")
    output = [m for m in OUTPUT if m in trust]
    if output:
        st.subheader("Hallucination and compliance")
        st.dataframe(ui.mean_std_frame(logged, output), hide_index=True, width="stretch")
    if popularity:
        st.subheader("Popularity bias")
        st.caption("ARP: average popularity (training interactions) of the recommended items; "
                   "ItemCoverage: share of the catalogue recommended to anyone.")
        st.dataframe(ui.mean_std_frame(logged, popularity), hide_index=True, width="stretch")
    other = [m for m in trust if m not in (*POSITION, *OUTPUT, *popularity) and not m.startswith("trust.pos_")]
    if other:
        st.subheader("Other trust metrics")
        st.dataframe(ui.mean_std_frame(logged, other), hide_index=True, width="stretch")

if not shown:
    st.info("No run logged trust metrics (trust.*) or popularity metrics yet; the zero-shot LLM runs do.")
