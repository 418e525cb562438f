"""llm4rec-bench: a benchmark harness for recommender systems in the era of LLMs."""
__version__ = "0.1.0"


def evaluate(*args, **kwargs):
    """See benchmark.runner.evaluate (imported lazily to keep `import benchmark` light)."""
    from benchmark.runner import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


__all__ = ["__version__", "evaluate"]
