"""RecBole models on llm4rec-bench's splits: one folder per model variant, each a card
and a small model.py on the shared bridge (benchmark/kits/recbole.py). See docs/recbole.md."""
