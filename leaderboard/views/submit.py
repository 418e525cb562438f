"""Submit: from a submitter's folder to a verified leaderboard row (docs/submitting.md):
validate, submit (a sandboxed evaluation written as a bundle), send the bundle, and the
maintainer's verify; then what each provenance badge means."""
import streamlit as st

from leaderboard import ui
from leaderboard.tables import PROVENANCE_BADGES

# One example throughout, so that each command can be copied as it stands. `--archive`
# writes the .tar.gz at exactly the --out path: the name `verify` reads.
FOLDER, TASK, BUNDLE = "./my-model", "sequential/ml-100k", "my-model.bundle.tar.gz"

st.title("Submit a model")
st.markdown("""
A submission is **one folder**: a card (`submission.yaml`: name, version, paradigm, authors,
description, license, hyperparameters, training data) and a Python class deriving from
`benchmark.api.Recommender` with `fit(train, ctx)` and `score(request)` (ranking) or
`predict(request)` (CTR). Your code imports only `benchmark.api`; ground truth never
reaches it (the adapter guide below). A row reaches the board as a **bundle** that the
maintainer re-runs: the whole flow is in `docs/submitting.md`.
""")

st.header("You, the submitter")
st.subheader("1. Check the contract in seconds")
st.code(f"llm4rec validate {FOLDER}", language="bash")
st.caption("Optional, to see your numbers first: `llm4rec run --task … --submission …` then "
           "`llm4rec results --task …` (logged to your own MLflow store).")
st.subheader("2. Evaluate in the sandbox and write the bundle")
st.code(f"llm4rec submit {FOLDER} --task {TASK} --out {BUNDLE} --archive", language="bash")
st.markdown("`submit` validates the folder, runs every seed of each task (`--task` repeats) **sandboxed**, "
            "exactly as `llm4rec run` does, into a private temporary store, and writes one archive: your "
            "code, a lock of its requirements, every run's metrics and per-user metrics.")
st.subheader("3. Send the bundle")
st.markdown(f"Send `{BUNDLE}` to the leaderboard's maintainer, for instance attached to the pull request "
            "that adds your folder under `submissions/`.")

st.header("The maintainer")
st.subheader("4. Verify: re-run it here and compare")
st.code(f"llm4rec verify {BUNDLE}            # re-runs every seed in the sandbox\n"
        f"llm4rec verify {BUNDLE} --seeds 1  # or one seed per task, drawn at random", language="bash")
st.markdown("`verify` checks the bundle (code hash, per-user files, tasks, data fingerprints), re-runs the code "
            "in the sandbox, compares metric by metric and user by user (`--tolerance`, default 1e-6) and only "
            "then records its **own** re-run, tagged verified. Any difference exits 1, naming every metric, "
            "seed and user, and records nothing.")
st.subheader("5. Publish")
st.code("llm4rec leaderboard snapshot      # MLflow store -> Parquet snapshot\n"
        "llm4rec leaderboard serve         # this app, on 127.0.0.1\n"
        "llm4rec leaderboard export --format html --out site/", language="bash")
st.markdown("Without a re-run, `llm4rec store import` records the bundle's runs as the submitter reports "
            "them; they are shown as self-reported:")
st.code(f"llm4rec store import {BUNDLE}", language="bash")

st.header("What the badges mean")
st.markdown("\n".join(f"- {ui.provenance_markdown(name)} {ui.esc(badge.meaning)}"
                      for name, badge in PROVENANCE_BADGES.items()))
st.markdown("A row's badge is the weakest of its runs'. The **verified only** filter (Overview and Task pages) "
            "keeps verified and sandboxed rows: both are numbers the maintainer's own sandboxed harness made. "
            "Only finished, complete runs are ranked; `--limit-users` runs are partial and shown under Run status.")

for name, title in (("submitting.md", "Submitting, in full (docs/submitting.md)"),
                    ("adapter_guide.md", "The adapter guide (docs/adapter_guide.md)")):
    guide = ui.repo_doc(name)
    if guide:
        with st.expander(title):
            st.markdown(guide)  # the project's own documentation, not submitter text
