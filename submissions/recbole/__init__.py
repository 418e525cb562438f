"""RecBole models on llm4rec-bench's splits: the shared bridge (bridge.py) and one
folder per model variant. See docs/recbole.md."""
