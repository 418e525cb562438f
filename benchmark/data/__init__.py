"""Datasets: the registry of formats and sources (benchmark.data.datasets), canonical
tables, filtering, splits, fingerprints, caching."""
from benchmark.data.pipeline import PreparedData, prepare

__all__ = ["PreparedData", "prepare"]
