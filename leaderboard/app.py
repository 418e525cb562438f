"""The llm4rec-bench leaderboard (Streamlit, multipage).

    streamlit run leaderboard/app.py      # or: llm4rec leaderboard serve

Reads the snapshot folder named by $LLM4REC_LEADERBOARD_SNAPSHOT (default
./leaderboard-snapshot), built by `llm4rec leaderboard snapshot`.
"""
import sys
from pathlib import Path

# `streamlit run` puts this folder, not the repository, on sys.path.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from leaderboard import ui  # noqa: E402

st.set_page_config(page_title="llm4rec-bench leaderboard", page_icon=":material/leaderboard:", layout="wide")
VIEWS = Path(__file__).resolve().parent / "views"
pages = [
    st.Page(VIEWS / "overview.py", title="Overview", icon=":material/leaderboard:", default=True),
    st.Page(VIEWS / "task.py", title="Task", icon=":material/bar_chart:", url_path="task"),
    st.Page(VIEWS / "paradigms.py", title="Paradigms", icon=":material/explore:", url_path="paradigms"),
    st.Page(VIEWS / "trust.py", title="Trust", icon=":material/policy:", url_path="trust"),
    st.Page(VIEWS / "trust_card.py", title="Trust card", icon=":material/badge:", url_path="trust_card"),
    st.Page(VIEWS / "detail.py", title="Run / submission", icon=":material/receipt_long:", url_path="detail"),
    st.Page(VIEWS / "status.py", title="Run status", icon=":material/traffic:", url_path="status"),
    st.Page(VIEWS / "submit.py", title="Submit", icon=":material/upload:", url_path="submit"),
]
page = st.navigation(pages)
ui.sidebar_info()
page.run()
