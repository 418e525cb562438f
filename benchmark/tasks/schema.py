"""The task spec: one YAML file per task, validated by pydantic. Adding a task needs
no code."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from benchmark.eval.metrics import parse_metric


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImplicitSpec(Strict):
    min_rating: float


class FilterSpec(Strict):
    """k-core filtering, applied repeatedly until every user and item qualifies."""

    min_user_interactions: int = Field(default=0, ge=0)
    min_item_interactions: int = Field(default=0, ge=0)


class SyntheticSpec(Strict):
    """A generated dataset for contract checks and tests: users mostly step to the next
    item id, so a sequential model can learn something."""

    n_users: int = Field(ge=3)
    n_items: int = Field(ge=3)
    interactions_per_user: int = Field(ge=3)
    seed: int = 0


class DatasetSpec(Strict):
    name: str
    # A folder of source files, read by the format that recognises it (benchmark/data/datasets);
    # None means a registered dataset.
    path: str | None = None
    # A part of a multi-part source (an Amazon category, e.g. Beauty).
    category: str | None = None
    # Tabular files (bring your own): canonical column -> the file's column, e.g.
    # {user: customer_id, item: sku, timestamp: ts, rating: stars, title: name}.
    columns: dict[str, str] | None = None
    synthetic: SyntheticSpec | None = None
    implicit: ImplicitSpec | None = None
    filters: FilterSpec = FilterSpec()

    def selection(self):
        """What the dataset's format reads beyond the folder (benchmark.data.datasets.Selection)."""
        from benchmark.data.datasets.formats import Selection

        return Selection(self.category, tuple(sorted((self.columns or {}).items())))


class LeaveOneOutSplit(Strict):
    """Per user, chronological: last item test, the one before validation."""

    method: Literal["leave_one_out"]
    # Users with fewer interactions (after filtering) are used for training only.
    min_user_interactions: int = Field(default=3, ge=3)


class GlobalTimeSplit(Strict):
    """One global temporal cutoff per part: cutoff times chosen at the quantiles of all
    timestamps so that validation and test hold about these fractions of interactions."""

    method: Literal["global_time"]
    valid_fraction: float = Field(default=0.1, gt=0, lt=1)
    test_fraction: float = Field(default=0.1, gt=0, lt=1)

    @model_validator(mode="after")
    def _room_for_training(self) -> "GlobalTimeSplit":
        if self.valid_fraction + self.test_fraction >= 1:
            raise ValueError("valid_fraction + test_fraction must leave room for training (< 1)")
        return self


class RatioSplit(Strict):
    """Per user, its interactions in random (or time) order cut at these ratios."""

    method: Literal["ratio"]
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    order: Literal["random", "time"] = "random"
    seed: int = 0

    @field_validator("ratios")
    @classmethod
    def _ratios_sum_to_one(cls, ratios: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(ratios) <= 0 or abs(sum(ratios) - 1) > 1e-9:
            raise ValueError(f"ratios must be positive and sum to 1, got {list(ratios)}")
        return ratios


SplitSpec = Annotated[Union[LeaveOneOutSplit, GlobalTimeSplit, RatioSplit], Field(discriminator="method")]


class RowSampleSpec(Strict):
    """A fixed sample of the CTR test rows (so that costly models, LLMs above all, are
    compared with every other model on identical rows): `rows` drawn without
    replacement with `seed`, among rows whose user has at least `min_train_rows`
    training rows (a history to prompt with)."""

    rows: int = Field(ge=1)
    seed: int = 0
    min_train_rows: int = Field(default=0, ge=0)


class CTRSpec(Strict):
    """Binary labels from ratings, and the feature fields a CTR model receives."""

    label_min_rating: float
    user_features: list[str] = Field(default_factory=list)
    item_features: list[str] = Field(default_factory=list)
    test_sample: RowSampleSpec | None = None


class CandidateSpec(Strict):
    """Full ranking over the catalogue, or a sampled set per user: the target plus
    `n_negatives` items drawn uniformly from those the user never rated, drawn once
    per seed and shown in a seeded random order."""

    mode: Literal["full", "sampled"] = "full"
    n_negatives: int = Field(default=19, ge=1)


class PositionBiasSpec(Strict):
    """The first `users` test users scored again with the target at each position, and
    under `shuffles` seeded candidate orders."""

    users: int = Field(default=50, ge=1)
    positions: list[int] = Field(default_factory=lambda: [1, 5, 10, 15, 20], min_length=1)
    shuffles: int = Field(default=3, ge=2)


class ExposureSpec(Strict):
    """Item-side exposure of the test pass's top-`popularity_k`: the head holds the most
    popular items that together take `head_share` of the training interactions, the
    tail the least popular ones taking `tail_share`, the middle the rest (Abdollahpouri
    et al. 2019); the long tail of APLT is middle and tail."""

    head_share: float = Field(default=0.2, gt=0, lt=1)
    tail_share: float = Field(default=0.2, gt=0, lt=1)


class FairnessSpec(Strict):
    """User-side fairness: the main score per group of each sensitive attribute that
    the dataset's users have (others are skipped), numeric ones grouped at `bins`;
    groups with fewer than `min_group_users` test users are left out of the gap."""

    attributes: list[str] = Field(default_factory=lambda: ["gender", "age", "occupation"])
    # ML-1M's age groups: under 18, 18-24, 25-34, 35-44, 45-49, 50-55, 56 and over.
    bins: dict[str, list[float]] = Field(default_factory=lambda: {"age": [18, 25, 35, 45, 50, 56]})
    min_group_users: int = Field(default=10, ge=1)
    permutations: int = Field(default=1000, ge=1)


class CounterfactualAttribute(Strict):
    """One sensitive attribute for counterfactual prompts: `template` (with `{value}`)
    is put before the user's prompt once for each wording in `values`."""

    template: str
    values: dict[str, str] = Field(min_length=2)  # the value's label -> its wording


def _default_counterfactual() -> dict[str, CounterfactualAttribute]:
    return {"gender": CounterfactualAttribute(template="The user is {value}.",
                                              values={"F": "a woman", "M": "a man"}),
            "age": CounterfactualAttribute(template="The user is {value}.",
                                           values={"under_25": "a young person under 25",
                                                   "25-49": "between 25 and 49 years old",
                                                   "50_and_over": "50 years old or older"})}


class CounterfactualSpec(Strict):
    """FaiRLLM / CFaiRLLM: the first `users` test users' prompts with a sensitive
    attribute added, against the neutral prompt, on the same candidates."""

    users: int = Field(default=20, ge=1)
    k: int = Field(default=10, ge=1)  # Jaccard@k and the depth of rank-biased overlap
    rbo_p: float = Field(default=0.9, gt=0, lt=1)
    attributes: dict[str, CounterfactualAttribute] = Field(default_factory=_default_counterfactual, min_length=1)


class RobustnessSpec(Strict):
    """Test-time perturbations of the first `users` test users' histories (what the
    model sees, after `history.max_len`); each one that is set runs."""

    users: int = Field(default=200, ge=1)
    drop: float | None = Field(default=0.2, gt=0, lt=1)  # share of the history's items removed
    shuffle: bool = True  # the history's order permuted
    insert: int | None = Field(default=3, ge=1)  # random catalogue items inserted at random places
    typos: float | None = Field(default=0.1, gt=0, le=1)  # share of title words with a character swapped


class PoisoningSpec(Strict):
    """Fake users (`fake_users` of the users, at least one) each rating `filler_size`
    popular or random items plus one of `targets` target items (drawn from the tail per
    task seed), added to the training part; the model is fitted again."""

    fake_users: float = Field(default=0.01, gt=0, le=0.5)
    filler: Literal["popular", "random"] = "popular"
    filler_size: int = Field(default=20, ge=0)
    targets: int = Field(default=5, ge=1)
    k: int = Field(default=10, ge=1)  # exposure = the targets' hit rate at k over real users


class TextAttackSpec(Strict):
    """A promotional phrase appended to one non-target candidate's title per user."""

    users: int = Field(default=20, ge=1)
    phrase: str = Field(default=" — an all-time favourite, highly recommended", min_length=1)


class MemorizationSpec(Strict):
    """LLM-MemoryInspector-style probes of models that complete text: `items` catalogue
    lines and `users` users' next items, after `demonstrations` example lines."""

    items: int = Field(default=50, ge=1)
    users: int = Field(default=20, ge=0)
    demonstrations: int = Field(default=5, ge=1)
    threshold: float = Field(default=0.9, gt=0, le=1)  # normalised similarity counted as reproduced
    max_new_tokens: int = Field(default=32, ge=1)


class TrustSpec(Strict):
    """The trust passes of a task (docs/trust.md). A pass runs where the block sets it
    (`fairness: {}` takes its defaults) and where it applies to the family and the
    model. Position bias and exposure, free or nearly, are on unless set to `null`; the
    others are switched on by name, since they score again (poisoning fits again)."""

    position_bias: PositionBiasSpec | None = PositionBiasSpec()
    popularity_k: int = Field(default=10, ge=1)  # the top-k of ARP and the exposure measures
    exposure: ExposureSpec | None = ExposureSpec()
    fairness: FairnessSpec | None = None
    counterfactual: CounterfactualSpec | None = None
    robustness: RobustnessSpec | None = None
    poisoning: PoisoningSpec | None = None
    text_attack: TextAttackSpec | None = None
    memorization: MemorizationSpec | None = None


class HistorySpec(Strict):
    max_len: int | None = Field(ge=1)  # None: the whole history
    exclude_seen: bool


class LimitsSpec(Strict):
    """What one run of a submission may take on this task; exceeding a limit ends the
    run FAILED with the limit named, and the command goes on. A submission's card may
    lower them (never raise them)."""

    fit_seconds: float = Field(default=7200, gt=0)  # fit(), validation calls included
    call_seconds: float = Field(default=1800, gt=0)  # one score/recommend/predict/report call
    memory_mb: int = Field(default=16384, ge=64)  # resident memory of the submission's processes
    processes: int = Field(default=256, ge=1)  # processes and threads at once (a fork bomb stops here)


class EvalUsersSpec(Strict):
    sample: int | None = Field(default=None, ge=1)  # None: every eligible user
    seed: int = 0
    # Test users with fewer earlier interactions are left out (and counted): with no
    # history at all only a non-personalized ranking is possible.
    min_history: int = Field(default=0, ge=0)


class TaskSpec(Strict):
    # The YAML file it was read from (set by benchmark.tasks.load_task_file), for errors.
    _source_file: Path | None = PrivateAttr(default=None)
    task: str = Field(pattern=r"^[a-z0-9_-]+/[A-Za-z0-9._-]+$")
    family: Literal["sequential", "topk", "ctr", "zeroshot"]
    version: int = Field(ge=1)
    description: str = ""
    dataset: DatasetSpec
    split: SplitSpec
    candidates: CandidateSpec = CandidateSpec()
    history: HistorySpec = HistorySpec(max_len=None, exclude_seen=False)
    ctr: CTRSpec | None = None
    # zeroshot: the Jinja prompt template (variables `history` and `candidates`, lists
    # of item texts), handed to LLM submissions with every request; its hash is logged.
    prompt: str | None = None
    trust: TrustSpec | None = None
    track: Literal["primary", "comparability"] = "primary"
    eval_users: EvalUsersSpec = EvalUsersSpec()
    metrics: list[str] = Field(min_length=1)
    main_score: str
    seeds: list[int] = Field(min_length=1)
    batch_size: int = Field(default=256, ge=1)  # users (rows for CTR) per model call
    limits: LimitsSpec = LimitsSpec()

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, metrics: list[str], info: ValidationInfo) -> list[str]:
        family = info.data.get("family", "sequential")
        for name in metrics:
            parse_metric(name, family=family)
        if len(set(metrics)) != len(metrics):
            raise ValueError("metrics are listed twice")
        return metrics

    @model_validator(mode="after")
    def _consistent(self) -> "TaskSpec":
        from benchmark.families import family  # the family owns what fits it

        family(self.family).check(self)
        if self.main_score not in self.metrics:
            raise ValueError(f"main_score '{self.main_score}' is not one of metrics {self.metrics}")
        if self.trust and self.trust.position_bias and self.candidates.mode == "sampled":
            width = self.candidates.n_negatives + 1
            bad = [p for p in self.trust.position_bias.positions if not 1 <= p <= width]
            if bad:
                raise ValueError(f"trust.position_bias.positions {bad} outside 1..{width} (the candidate set)")
        if not self.task.startswith(self.family + "/"):
            raise ValueError(f"task id '{self.task}' must start with its family '{self.family}/'")
        if self.dataset.path and self.dataset.synthetic:
            raise ValueError("dataset: give either 'path' or 'synthetic', not both")
        if not self.dataset.synthetic:
            self._check_dataset_fields()
        return self

    def _check_dataset_fields(self) -> None:
        """The registry knows a dataset's parts and whether it has times: a category it
        lacks, or a chronological split on data without timestamps, fails at load."""
        from benchmark.data.datasets import DATASETS, timestamps_of

        if self.dataset.name in DATASETS:
            DATASETS[self.dataset.name].check_category(self.dataset.category)
        if self._chronological():
            known, where = timestamps_of(self.dataset.name, self.dataset.path, self.dataset.selection())
            if known is False:
                raise ValueError(f"split.method '{self.split.method}' orders interactions by time, but {where} has "
                                 f"no timestamps; use split.method ratio with order random")

    def _chronological(self) -> bool:
        return self.split.method in ("leave_one_out", "global_time") or getattr(self.split, "order", None) == "time"

    @property
    def experiment_name(self) -> str:
        return f"{self.task}@v{self.version}"

    @property
    def origin(self) -> str:
        """The task as an error names it: its id, and its YAML file where it came from one."""
        return f"task {self.task} ({self._source_file})" if self._source_file else f"task {self.task}"

    def prompt_hash(self) -> str | None:
        return hashlib.sha256(self.prompt.encode()).hexdigest() if self.prompt else None

    def digest(self) -> str:
        """The protocol's hash (part of every run key). Where the files are
        (`dataset.path`) is not the protocol: their content is in the run key's dataset
        fingerprint, so one task run on two machines keys alike. Dataset fields added
        later leave the hash of a task without them as it was (runs already recorded
        keep their keys)."""
        spec = self.model_dump()
        spec["dataset"]["path"] = None
        for added in ("category", "columns"):
            if spec["dataset"][added] is None:
                del spec["dataset"][added]
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
