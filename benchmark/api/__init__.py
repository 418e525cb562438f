"""The public contract between the harness and a submission. A submission imports
only from here."""
from benchmark.api.card import CARD_FILE, SubmissionCard, load_card
from benchmark.api.recommender import Recommender
from benchmark.api.registry import (
    ENTRY_POINT_GROUP,
    Submission,
    available_submissions,
    find_submission,
)
from benchmark.api.types import (
    PARADIGMS,
    Catalog,
    CompletionRequest,
    FitContext,
    ModelReport,
    Paradigm,
    PredictRequest,
    Recommendation,
    ScoreRequest,
    TrainData,
    ValidationSet,
)

__all__ = [
    "CARD_FILE",
    "ENTRY_POINT_GROUP",
    "PARADIGMS",
    "Catalog",
    "CompletionRequest",
    "FitContext",
    "ModelReport",
    "Paradigm",
    "PredictRequest",
    "Recommendation",
    "Recommender",
    "ScoreRequest",
    "Submission",
    "SubmissionCard",
    "TrainData",
    "ValidationSet",
    "available_submissions",
    "find_submission",
    "load_card",
]
