"""Run / submission detail: the card (as text), hyperparameters, provenance and the
per-user distribution of a metric."""
import json

import pandas as pd
import streamlit as st

from benchmark.environment import short_device
from benchmark.eval.registry import per_user_column
from benchmark.paradigms import COSTS
from leaderboard import charts, tables, ui

PROVENANCE = ("harness_version", "harness_git_sha", "dataset_fingerprint", "split_fingerprint", "task_digest",
              "run_key")

st.title("Run / submission")
snapshot, boards = ui.snapshot(), ui.boards()
runs = snapshot.runs
experiments = list(dict.fromkeys([*boards, *tables.task_list(runs)["experiment"]]))
experiment = ui.pick_task(experiments=experiments, key="detail_task")
if experiment is None:
    ui.no_runs_yet()
    st.stop()

in_task = runs[runs["experiment"] == experiment]
ranked = list(dict.fromkeys(boards[experiment]["submission"])) if experiment in boards else []
names = ranked + sorted(set(in_task["submission"].astype(str)) - set(ranked))  # the leader first
wanted = st.query_params.get("submission")
submission = st.selectbox("Submission", names, index=names.index(wanted) if wanted in names else 0, key="detail_sub")
mine = in_task[in_task["submission"] == submission].sort_values(["version", "seed", "start_time"])

# --- the card: submitter text, shown literally
cards = snapshot.cards[snapshot.cards["submission"] == submission]
st.header(ui.esc(submission))
for version in mine["version"].astype(str).unique():
    card_json = cards.loc[cards["version"] == version, "card"]
    st.subheader(f"Card — version {ui.esc(version)}")
    if card_json.empty:
        st.caption("No card logged (runs logged without the submission.json artifact).")
        continue
    card = json.loads(card_json.iloc[0])
    st.text(str(card.get("description", "")).strip())
    fields = {k: card.get(k) for k in ("name", "version", "paradigm", "authors", "license", "code_url",
                                      "training_data", "entrypoint", "requirements")}
    st.dataframe(pd.DataFrame({"field": list(fields), "value": [
        ", ".join(map(str, v)) if isinstance(v, list) else ("" if v is None else str(v)) for v in fields.values()]}),
        hide_index=True, width="stretch")

# --- runs, hyperparameters, provenance
st.subheader("Runs")
main = (boards[experiment]["main_score"].iloc[0] if experiment in boards
        else (mine["main_score"].dropna().iloc[0] if mine["main_score"].notna().any() else None))
columns = {"seed": mine["seed"].astype("Int64"), "version": mine["version"], "state": mine["state"],
           "run_id": mine["run_id"], "reason": mine["failure_reason"].fillna("")}
if main and f"metric:{main}" in mine:
    columns[main] = mine[f"metric:{main}"]
for name, label in COSTS.items():
    if f"metric:{name}" in mine and mine[f"metric:{name}"].notna().any():
        columns[label] = mine[f"metric:{name}"]
if tables.ACCELERATOR in mine:
    columns["ran on"] = mine[tables.ACCELERATOR].map(short_device)
run_table = pd.DataFrame(columns).reset_index(drop=True)
st.dataframe(run_table, hide_index=True, width="stretch", column_config=ui.number_columns(run_table))

params = [c for c in mine.columns if c.startswith("param:") and c != "param:seed" and mine[c].notna().any()]
st.subheader("Hyperparameters")
if params:
    hp = mine[["seed", *params]].rename(columns=lambda c: c.removeprefix("param:"))
    st.dataframe(hp.astype("string"), hide_index=True, width="stretch")
else:
    st.caption("No parameters logged.")

st.subheader("Provenance")
tags = [f"tag:{t}" for t in PROVENANCE if f"tag:{t}" in mine] + sorted(
    c for c in mine.columns if c.startswith("tag:llm.") and mine[c].notna().any())
if tags:
    provenance = mine[["seed", "run_id", *tags]].rename(columns=lambda c: c.removeprefix("tag:"))
    st.dataframe(provenance.astype("string"), hide_index=True, width="stretch")
else:
    st.caption("No provenance tags logged.")

# --- per-user distribution (ranked runs only: the snapshot keeps their per-user metrics)
st.subheader("Per-user metrics")
per_user = snapshot.per_user[snapshot.per_user["run_id"].isin(set(mine["run_id"]))]
if per_user.empty:
    st.caption("No per-user metrics in the snapshot for these runs (kept for finished, complete runs).")
else:
    per_user = per_user.merge(mine[["run_id", "seed"]], on="run_id")
    candidates = [c for c in per_user.columns if c not in ("run_id", "user", "seed") and per_user[c].notna().any()
                  and pd.api.types.is_float_dtype(per_user[c])]
    tested = per_user_column(main, candidates) if main else None  # the paired test's column first
    preferred = [c for c in candidates if c == tested] + [c for c in candidates if c != tested]
    metric = st.selectbox("metric", preferred, key="per_user_metric")
    values = per_user[metric].dropna()
    cols = st.columns(4)
    cols[0].metric("users", f"{per_user['user'].nunique():,}")
    cols[1].metric("mean", f"{values.mean():.4f}")
    cols[2].metric("median", f"{values.median():.4f}")
    cols[3].metric("share of zeros", f"{(values == 0).mean():.1%}")
    st.plotly_chart(charts.per_user_histogram(per_user[["seed", metric]].dropna(), metric), width="stretch")
