"""Shared model-building code that submissions may import (beside `benchmark.api`,
the contract): training loops and early stopping, the next-item and CTR field-model
bases, the SASRec network (`kits.sasrec`), LLM loading and scoring (`kits.llm`),
Yes/No tuning (`kits.tuning`) and the RecBole bridge (`kits.recbole`). Nothing here is part of the contract, and the
harness never needs it to evaluate a model.

This __init__ imports nothing: a worker in a submission's own environment imports
only the kits it uses."""
