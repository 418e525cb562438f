"""Submit: how to write an adapter, validate it and run the evaluation."""
import streamlit as st

from leaderboard import ui

st.title("Submit a model")
st.markdown("""
A submission is **one folder**: a card (`submission.yaml`: name, version, paradigm, authors,
description, license, hyperparameters, training data) and a Python class deriving from
`benchmark.api.Recommender` with `fit(train, ctx)` and `score(request)` (ranking) or
`predict(request)` (CTR). Your code imports only `benchmark.api`; ground truth never
reaches it.
""")
st.subheader("1. Check the contract in seconds")
st.code("llm4rec validate path/to/my-model", language="bash")
st.subheader("2. Run the standard evaluation (every seed, logged to MLflow)")
st.code("llm4rec tasks                      # the tasks\n"
        "llm4rec run --task sequential/ml-100k --submission path/to/my-model\n"
        "llm4rec results --task sequential/ml-100k", language="bash")
st.subheader("3. See it on the leaderboard")
st.code("llm4rec leaderboard snapshot      # MLflow store -> Parquet snapshot\n"
        "llm4rec leaderboard serve         # this app, on 127.0.0.1\n"
        "llm4rec leaderboard export --format html --out site/", language="bash")
st.markdown("Only finished, complete runs are ranked; `--limit-users` runs are partial and shown "
            "under Run status. To be listed on the published board, open a pull request that adds "
            "your folder under `submissions/`.")
guide = ui.repo_doc("adapter_guide.md")
if guide:
    with st.expander("The adapter guide (docs/adapter_guide.md)", expanded=True):
        st.markdown(guide)  # the project's own documentation, not submitter text
