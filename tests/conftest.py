"""Shared fixtures: an isolated cache and MLflow store per test, small generated tasks,
and submission folders written on the fly."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from benchmark.paths import assets_root
from benchmark.tasks.schema import TaskSpec

REPO = Path(__file__).resolve().parents[1]


# The offline assets (ml-100k) that `make setup` fetched, shared by every test.
SHARED_ASSETS = str(assets_root())


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own cache of processed data (so caching is exercised and
    nothing leaks between tests) while reading the shared offline assets."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("LLM4REC_CACHE", str(cache))
    monkeypatch.setenv("LLM4REC_ASSETS", SHARED_ASSETS)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return cache


@pytest.fixture
def tracking_uri(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def synthetic_task(**changes) -> TaskSpec:
    """A small generated sequential task (seconds to run)."""
    spec = {
        "task": "sequential/synthetic",
        "family": "sequential",
        "version": 1,
        "dataset": {"name": "synthetic",
                    "synthetic": {"n_users": 60, "n_items": 40, "interactions_per_user": 15, "seed": 0}},
        "split": {"method": "leave_one_out"},
        "history": {"max_len": 10, "exclude_seen": False},
        "metrics": ["HR@5", "NDCG@5", "MRR"],
        "main_score": "NDCG@5",
        "seeds": [0],
        "batch_size": 16,
    }
    for key, value in changes.items():
        spec[key] = value
    return TaskSpec.model_validate(spec)


@pytest.fixture
def make_submission(tmp_path):
    """Write a submission folder: make_submission(name, code, **card_fields) -> Path."""

    def make(folder_name: str, code: str, **card) -> Path:
        folder = tmp_path / "submissions" / folder_name
        folder.mkdir(parents=True)
        fields = {"name": folder_name, "version": "1", "paradigm": "id-from-scratch",
                  "authors": ["tests"], "description": f"test submission {folder_name}",
                  "license": "MIT", "entrypoint": "model:Model"} | card
        (folder / "submission.yaml").write_text(yaml.safe_dump(fields))
        (folder / "model.py").write_text(textwrap.dedent(code))
        return folder

    return make


# The first MovieLens titles (as text only), for text and LLM model tests.
MOVIE_TITLES = ["Toy Story", "GoldenEye", "Four Rooms", "Get Shorty", "Copycat", "Twelve Monkeys",
          "Usual Suspects, The", "Babe", "Dead Man Walking", "Richard III", "Seven (Se7en)",
          "Mighty Aphrodite", "Postino, Il", "French Twist (Gazon maudit)", "From Dusk Till Dawn",
          "Braveheart", "Taxi Driver", "Rumble in the Bronx", "Apollo 13", "Star Wars"]
MOVIE_YEARS = [1995, 1995, 1995, 1995, 1995, 1995, 1995, 1995, 1995, 1995, 1995, 1994, 1994, 1995,
         1996, 1995, 1976, 1995, 1995, 1977]


def movie_catalog():
    """A 20-item catalogue with titles and release years."""
    import pandas as pd

    from benchmark.api import Catalog

    items = pd.DataFrame({"item_id": range(len(MOVIE_TITLES)),
                          "original_id": [str(i + 1) for i in range(len(MOVIE_TITLES))],
                          "title": MOVIE_TITLES, "release_year": MOVIE_YEARS})
    return Catalog(len(MOVIE_TITLES), items)


def shipped(name: str) -> Path:
    return REPO / "submissions" / name
