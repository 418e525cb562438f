"""The paradigm study's grid: which submissions (one or more per training paradigm) run
on which tasks, with which training budgets and seeds, in each mode.

Modes:
- `gpu`: the full study, chosen when CUDA is available (sized for one GPU, <= 60 min).
- `cpu`: the default on a machine without a GPU; it picks smaller settings by itself
  (fewer seeds for the LLM rows, smaller budgets, fewer zero-shot users) and lists
  every reduction in `StudyConfig.reductions`, which the report prints.
- `quick`: a few minutes on a 2-core CPU; every run is a partial `--limit-users` run
  (tagged partial, never ranked by the leaderboard), one seed, the smallest budget,
  shortened training. A smoke test of the whole pipeline, not a result.
- `sizes`: the LLM rows at several model sizes (`llms`) against the baselines, sized to
  a CPU budget: `plan_sizes` picks the users per task from an estimate of each size's
  cost on this machine (benchmark.study.sizes), the same users for every row, one seed,
  budgets 0 and 16, the task's trust passes off. Every run is partial (never ranked).

In every mode the LLM rows run once per model of `llms` (the first is each card's own
model; the others name their rows `<row>-<model>`).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from benchmark.families import family

if TYPE_CHECKING:
    from benchmark.tasks.schema import TaskSpec

FAMILIES = ("sequential", "zeroshot", "ctr")
BUDGETED = ("tallrec-lite", "softprompt")
# Overrides of a card's hyperparameters show in the row's name: tallrec-lite-b2-e1-n64.
SHORT_NAMES = {"epochs": "e", "batch_size": "b"}


def task_ids(dataset: str) -> dict[str, str]:
    """The study's task per family: sequential/<d>, zeroshot/<d>, ctr/<d>-sample."""
    return {"sequential": f"sequential/{dataset}", "zeroshot": f"zeroshot/{dataset}",
            "ctr": f"ctr/{dataset}-sample"}


@dataclass(frozen=True)
class Entry:
    """One row of the study: a submission (or a budget variant of one) and the task
    families it runs on. `model_param` names the hyperparameter that selects its
    pre-trained model (for `--llm` / `--text-encoder` overrides)."""

    submission: str
    families: tuple[str, ...]
    budget: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] | None = None  # None: the task's seeds
    model_param: str | None = None
    model_kind: str | None = None  # "llm" or "encoder"
    optional: bool = False  # skipped (and said so) when the submission is not installed
    llm: str | None = None  # an LLM row's model (None: not an LLM row)

    @property
    def suffix(self) -> str | None:
        """Overrides, then the budget last (`b2-e1-n64`), so that a model's budgets share
        the name up to their last '-' (the leaderboard draws them as one line). A model
        that is an offline asset shows by name (`qwen2.5-coder-0.5b`), any other by hash."""
        from benchmark.data.assets import ASSETS

        parts = []
        for key, value in sorted(self.overrides.items()):
            if key in ("model", "text_encoder"):
                parts.append(str(value) if value in ASSETS else "m" + hashlib.sha256(str(value).encode()).hexdigest()[:6])
            elif key in SHORT_NAMES:
                parts.append(f"{SHORT_NAMES[key]}{value}")
            else:
                raise ValueError(f"study: no short name for the override {key!r}")
        if self.budget is not None:
            parts.append(f"n{self.budget}")
        return "-".join(parts) or None

    @property
    def name(self) -> str:
        return f"{self.submission}-{self.suffix}" if self.suffix else self.submission


@dataclass
class StudyConfig:
    dataset: str
    mode: str  # gpu, cpu or quick
    tasks: dict[str, str]
    entries: list[Entry]
    limit_users: dict[str, int | None]
    budgets: list[int]
    reductions: list[str]  # settings smaller than the full study, in words
    paper_departures: list[str]
    llms: list[str] = field(default_factory=lambda: [DEFAULT_LLM])
    trust_passes: bool = True  # False: the tasks' trust passes are switched off (sizes mode)
    size_plan: list[dict[str, Any]] = field(default_factory=list)  # per LLM: estimates, whether it runs

    @property
    def partial(self) -> bool:
        return any(v is not None for v in self.limit_users.values())

    def describe(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "mode": self.mode, "tasks": self.tasks, "budgets": self.budgets,
                "limit_users": self.limit_users, "llms": self.llms, "trust_passes": self.trust_passes,
                "size_plan": self.size_plan,
                "entries": [{"name": e.name, "families": list(e.families), "seeds": e.seeds,
                             "overrides": e.overrides} for e in self.entries]}


# What the full study runs: (submission, families, model hyperparameter, its kind, optional).
BASE_ENTRIES = [
    ("pop", ("sequential", "zeroshot", "ctr"), None, None, False),
    ("sasrec", ("sequential", "zeroshot"), None, None, False),
    ("lr", ("ctr",), None, None, False),
    ("deepfm", ("ctr",), None, None, False),
    ("text-sasrec", ("sequential", "zeroshot"), "text_encoder", "encoder", False),
    ("minilm-zeroshot", ("zeroshot",), "model", "encoder", True),
    ("smollm2-pointwise", ("zeroshot",), "model", "llm", True),
    ("smollm2-icl", ("zeroshot",), "model", "llm", True),
    ("smollm2-listwise", ("zeroshot",), "model", "llm", True),
]
DEFAULT_LLM = "smollm2"  # the LLM cards' own model
# The sizes mode's models, smallest first (benchmark.kits.llm.models.ASSET_MODELS).
SIZE_LLMS = ["smollm2", "gemma-3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
# The sizes mode: baselines run on the same users as the LLM rows (one home for "the
# same users": the mode's limit), then the LLM rows per model.
SIZES_BASELINES = [
    ("pop", ("zeroshot", "ctr"), None, None, False),
    ("random", ("zeroshot", "ctr"), None, None, False),
    ("sasrec", ("zeroshot",), None, None, False),
    ("lr", ("ctr",), None, None, False),
]
GPU_BUDGETS = {"tallrec-lite": [0, 16, 64, 256, 1024], "softprompt": [16, 64, 256, 1024]}
CPU_BUDGETS = {"tallrec-lite": [0, 16, 64], "softprompt": [16, 64]}
QUICK_BUDGETS = {"tallrec-lite": [16], "softprompt": [16]}
SIZES_BUDGETS = {"tallrec-lite": [0, 16], "softprompt": [16]}
# Settings per mode. seeds: None = the task's seeds (0, 1, 2).
MODES = {
    "gpu": {"seeds": None, "llm_seeds": None, "budgets": GPU_BUDGETS, "tuning": {"epochs": 4},
            "limit_users": {"sequential": None, "zeroshot": None, "ctr": None},
            "skip": (), "next_item_epochs": None},
    "cpu": {"seeds": (0,), "llm_seeds": (0,), "budgets": CPU_BUDGETS, "tuning": {"epochs": 1, "batch_size": 2},
            "limit_users": {"sequential": None, "zeroshot": 50, "ctr": None},
            "skip": ("smollm2-icl", "smollm2-pointwise", "smollm2-listwise"), "next_item_epochs": None},
    "sizes": {"seeds": (0,), "llm_seeds": (0,), "budgets": SIZES_BUDGETS, "tuning": {"epochs": 1, "batch_size": 2},
              "limit_users": {"sequential": None, "zeroshot": 20, "ctr": 50},  # plan_sizes picks them
              "skip": (), "next_item_epochs": None},
    "quick": {"seeds": (0,), "llm_seeds": (0,), "budgets": QUICK_BUDGETS, "tuning": {"epochs": 1},
              "limit_users": {"sequential": 100, "zeroshot": 10, "ctr": 50},
              "skip": ("smollm2-icl", "smollm2-pointwise", "smollm2-listwise"), "next_item_epochs": 3},
}
LLM_SUBMISSIONS = {"tallrec-lite", "softprompt", "smollm2-pointwise", "smollm2-icl", "smollm2-listwise"}

PAPER_DEPARTURES = [
    "TALLRec (Bao et al., 2023) tunes LLaMA-7B with LoRA for up to 200 epochs with early stopping; "
    "tallrec-lite tunes SmolLM2-135M-Instruct (a Q4_1 GGUF, dequantised) for a few epochs without "
    "model selection.",
    "Prompt tuning (Lester et al., 2021) shows its strength at billions of parameters; here the frozen "
    "model has 135M, with 16 virtual tokens.",
    "UniSRec (Hou et al., 2022) pre-trains its adaptor and sequence encoder on several Amazon domains; "
    "text-sasrec uses only the pre-trained MiniLM text encoder and trains the rest on the task.",
    "LLMRank (Hou et al., 2024) ranks with ChatGPT; the zero-shot LLM rows here use SmolLM2-135M.",
]


def build_config(dataset: str = "ml-100k", mode: str = "cpu", available: set[str] | None = None,
                 llms: list[str] | None = None, text_encoder: str | None = None,
                 budgets: list[int] | None = None, seeds: tuple[int, ...] | None = None,
                 size_budget_minutes: float | None = None) -> StudyConfig:
    """The study's grid for a mode. `available`: installed submissions (None: all);
    `llms`: the models of the LLM rows, each row run once per model (default: the
    cards' own, SmolLM2; the sizes mode: every LLM asset); `text_encoder`: replaces
    MiniLM (a local path, a transformers id); `budgets` / `seeds` override the mode's;
    `size_budget_minutes`: the sizes mode's CPU budget per model (see plan_sizes)."""
    if mode not in MODES:
        raise ValueError(f"study mode {mode!r}: expected one of {sorted(MODES)}")
    settings = MODES[mode]
    tasks = task_ids(dataset)
    llms = list(dict.fromkeys(llms or (SIZE_LLMS if mode == "sizes" else [DEFAULT_LLM])))
    limit_users = dict(settings["limit_users"])
    reductions: list[str] = []
    size_plan: list[dict[str, Any]] = []
    if mode == "sizes":
        from benchmark.study.sizes import plan_sizes

        limit_users, size_plan, planned = plan_sizes(llms, size_budget_minutes)
        reductions += planned
        llms = [row["model"] for row in size_plan if row["runs"]]
    entries: list[Entry] = []

    def llm_overrides(model: str) -> dict[str, Any]:
        return {} if model == DEFAULT_LLM else {"model": model}

    def entry_seeds(name: str) -> tuple[int, ...] | None:
        if seeds is not None:
            return tuple(seeds)
        return settings["llm_seeds"] if name in LLM_SUBMISSIONS else settings["seeds"]

    def add(name, families, param, kind, optional, budget=None, extra=None) -> None:
        models = llms if kind == "llm" else [None]
        for model in models:
            overrides = llm_overrides(model) if model else (
                {param: text_encoder} if kind == "encoder" and text_encoder else {})
            overrides |= extra or {}
            entries.append(Entry(name, families, budget, overrides, entry_seeds(name), param, kind, optional,
                                 llm=model))

    base_entries = SIZES_BASELINES + [e for e in BASE_ENTRIES if e[3] == "llm"] if mode == "sizes" else BASE_ENTRIES
    for name, families, param, kind, optional in base_entries:
        if name in settings["skip"]:
            continue
        if available is not None and name not in available:
            if not optional:
                raise ValueError(f"study: the submission '{name}' is not installed")
            continue
        epochs = settings["next_item_epochs"]
        add(name, tuple(f for f in families if f in tasks), param, kind, optional,
            extra={"epochs": epochs} if epochs and name in ("sasrec", "text-sasrec") else None)
    mode_budgets = settings["budgets"]
    for name in BUDGETED:
        if available is not None and name not in available:
            raise ValueError(f"study: the submission '{name}' is not installed")
        for budget in (budgets if budgets is not None else mode_budgets[name]):
            if int(budget) == 0 and 0 not in GPU_BUDGETS[name]:
                continue  # an untrained soft prompt is noise, not a baseline
            # Budget 0 trains nothing: the untuned model with the same prompt.
            add(name, ("zeroshot", "ctr"), "model", "llm", False, int(budget),
                None if int(budget) == 0 else dict(settings["tuning"]))
    used = {f for e in entries for f in e.families}
    tasks = {f: t for f, t in tasks.items() if f in used}  # the tasks the rows run on (sizes: no sequential)
    used_budgets = sorted({e.budget for e in entries if e.budget is not None})
    full = sorted(set(GPU_BUDGETS["tallrec-lite"]) | set(GPU_BUDGETS["softprompt"]))
    if used_budgets != full and (mode != "gpu" or budgets is not None):
        reductions.append(f"training budgets {used_budgets} instead of {full} (the full study adds "
                          f"{sorted(set(full) - set(used_budgets))}; TALLRec's few-shot budgets are 16, 64, 256)")
    if mode != "gpu":
        if seeds is None and settings["seeds"] is not None:
            if settings["seeds"] == settings["llm_seeds"]:
                reductions.append(f"seeds {list(settings['seeds'])} instead of each task's seeds (0, 1, 2): "
                                  "the ± std is 0 where one seed ran; the paired tests across users remain")
            else:
                reductions.append(f"seeds {list(settings['seeds'])} for the ID, text and zero-shot rows and "
                                  f"{list(settings['llm_seeds'])} for the LLM rows, instead of each task's "
                                  "seeds (0, 1, 2): the ± std is 0 where one seed ran")
        if settings["tuning"] != MODES["gpu"]["tuning"]:
            reductions.append(f"tallrec-lite and softprompt trained with {settings['tuning']} instead of "
                              f"{MODES['gpu']['tuning']} (the cards: 2 epochs, batch 4)")
        for name in settings["skip"]:
            if available is None or name in available:
                reductions.append(f"{name} left out: a SmolLM2 prompt with the 20 candidates listed for every "
                                  "user, scored again in the task's 8 position-bias and shuffle passes, takes "
                                  "hours on 2 CPU cores (it runs in the gpu mode)")
        if settings["next_item_epochs"]:
            reductions.append(f"sasrec and text-sasrec trained for at most {settings['next_item_epochs']} epochs")
        for family_name, limit in limit_users.items():
            if limit is not None and family_name in tasks:
                unit = f"test {family(family_name).unit}"
                reductions.append(f"{tasks[family_name]}: only the first {limit} {unit} for every row (partial runs, "
                                  "tagged partial and never ranked on the leaderboard; the rows of the task are "
                                  "compared on the same users)")
    if mode == "sizes":
        reductions.append("the tasks' trust passes (position bias, counterfactual, robustness, text attack, "
                          "memorisation) are off in this mode: they would score each LLM about 180 more times "
                          "per task; the paradigms study's runs keep them")
    departures = list(PAPER_DEPARTURES)
    if any(m != DEFAULT_LLM for m in llms):
        departures.append(f"The LLM rows also run with {', '.join(m for m in llms if m != DEFAULT_LLM)}: coder-tuned "
                          "(Qwen2.5-Coder) or base (Gemma 3 270M) models, not general instruct models like the "
                          "papers' LLaMA and ChatGPT; read their rows as such.")
    return StudyConfig(dataset, mode, tasks, entries, limit_users, used_budgets, reductions,
                       departures, llms, mode != "sizes", size_plan)


def study_task(config: StudyConfig, family_name: str) -> "TaskSpec":
    """The task a cell of `family_name` runs: the registered one, without its trust
    passes where the mode switches them off (a changed task digest: its own run keys)."""
    from benchmark.tasks import load_task

    task = load_task(config.tasks[family_name])
    return task if config.trust_passes else task.model_copy(update={"trust": None})


def only_rows(config: StudyConfig, rows: list[str]) -> StudyConfig:
    """The config restricted to the named rows (a row's name, `tallrec-lite-b2-e1-n64`, or
    its submission's, `tallrec-lite`, for all of that submission's rows)."""
    from dataclasses import replace

    from benchmark.specs import unknown_name_error

    known = {e.name for e in config.entries} | {e.submission for e in config.entries}
    for row in rows:
        if row not in known:
            raise unknown_name_error(f"study row (in {config.mode} mode)", row, known)
    return replace(config, entries=[e for e in config.entries if e.name in rows or e.submission in rows])
