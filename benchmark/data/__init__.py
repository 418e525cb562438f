"""Datasets: loading, canonical tables, filtering, splits, fingerprints, caching."""
from benchmark.data.pipeline import PreparedData, prepare

__all__ = ["PreparedData", "prepare"]
