"""Shared machinery of the tuned-LLM submissions (`tallrec-lite`: LoRA instruction
tuning; `softprompt`: prompt tuning): TALLRec-style Yes/No prompts built from a user's
history, training-sample selection, the Yes/No model with an optional soft prompt, its
training loop, and P(Yes) scoring with the user's prefix KV cache shared by the items."""
from benchmark.kits.tuning.yesno import (
    TEMPLATE_PARTS,
    YesNoLM,
    YesNoPrompts,
    YesNoTuned,
    select_training_rows,
)

__all__ = ["TEMPLATE_PARTS", "YesNoLM", "YesNoPrompts", "YesNoTuned", "select_training_rows"]
