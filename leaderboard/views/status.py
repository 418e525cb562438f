"""Run status: the runs that are not ranked (failed, running, killed, partial)."""
import streamlit as st

from leaderboard import tables, ui

st.title("Run status")
st.caption("Only finished, complete runs are ranked. Failed runs keep their reason; partial runs "
           "(`--limit-users`) evaluated a subset of users and never enter the leaderboard.")
runs = ui.snapshot().runs
counts = tables.state_counts(runs)
if counts.empty:
    ui.no_runs_yet()
    st.stop()
st.dataframe(counts.reset_index(), hide_index=True, width="stretch")
status = tables.status_table(runs)
states = st.multiselect("state", sorted(status["state"].unique()), key="states")
if states:
    status = status[status["state"].isin(states)]
if status.empty:
    st.success("Every run finished and is ranked.")
else:
    st.dataframe(status, hide_index=True, width="stretch",
                 column_config={"reason": st.column_config.TextColumn("reason", width="large")})
    failed = status[status["reason"] != ""].head(50)
    if len(failed):
        with st.expander(f"Failure reasons ({len(failed)} newest)"):
            for row in failed.itertuples():
                st.text(f"{row.task} · {row.submission}@{row.version} seed {row.seed}: {row.reason}")
