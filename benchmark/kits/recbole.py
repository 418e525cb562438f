"""Any RecBole 1.2.1 model, trained and scored on llm4rec-bench's own splits.

Every variant folder (submissions/recbole/<variant>/) holds a card whose
`hyperparameters` name the RecBole `model` and its config overrides, and a small
model.py that subclasses RecBoleModel. The cards declare `requirements`, so the harness
runs them in their own environment, in a worker process (benchmark.executors); RecBole
is imported there, inside fit(), and never in the harness's environment.

How a run goes (docs/recbole.md has the details and every fix applied):
1. fit() writes the task's training part as RecBole *benchmark files* into a scratch
   folder: `llm4rec.train.inter`, `llm4rec.valid.inter`, `llm4rec.test.inter`, and
   `llm4rec.item` listing every catalogue item (so RecBole's item vocabulary is our
   catalogue, also for items never seen in training). With `benchmark_filename` set,
   RecBole does no filtering, no re-ordering and no splitting of its own: it trains on
   exactly our training part.
   - sequential models: one row per (history -> next item), the augmentation RecBole
     would do itself, written in our chronological order (the harness has already
     broken timestamp ties by original row order) as `item_id_list` token sequences,
     so RecBole never sorts by time; early stopping on our validation targets;
   - general and traditional models (BPR, LightGCN, NeuMF, ItemKNN, ...): one row per
     training interaction; early stopping on our validation targets;
   - context-aware (CTR) models (LR, FM, DeepFM, DCN, ...): one row per training
     interaction with its label and the task's feature fields; the harness keeps the
     validation labels, so early stopping asks it (ctx.evaluate_validation).
   The test file is a placeholder: the harness never gives a model test targets.
2. RecBole builds its dataset, model and trainer from those files and trains with its
   own Trainer (epochs show as progress, losses go to the run as metrics); the best
   epoch on validation is reloaded.
3. score() / predict() turn our requests into RecBole Interactions (user, history as
   item_id_list, or feature fields) and call full_sort_predict / predict, mapping
   RecBole's internal ids from and to ours.
"""
from __future__ import annotations

import copy
import importlib.abc
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.api import FitContext, PredictRequest, Recommender, ScoreRequest, TrainData
from benchmark.kits.report import ReportsParameters

DATASET = "llm4rec"
PARTS = ("train", "valid", "test")

# Defaults under every card's overrides: deterministic CPU training on our files,
# nothing written outside the scratch folder, nothing downloaded, no Ray, no W&B.
BASE_CONFIG: dict[str, Any] = {
    "use_gpu": False,
    "gpu_id": "",
    "reproducibility": True,
    "show_progress": False,
    "save_dataset": False,
    "save_dataloaders": False,
    "log_wandb": False,
    "state": "INFO",
    "worker": 0,
    "metric_decimal_place": 10,
    "eval_batch_size": 4096,
    "MAX_ITEM_LIST_LENGTH": 50,
    "user_inter_num_interval": "[0,inf)",
    "item_inter_num_interval": "[0,inf)",
    "rm_dup_inter": None,
    "filter_inter_by_user_or_item": False,
    "benchmark_filename": list(PARTS),
}
RANKING_CONFIG = {
    "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "TO", "group_by": "user", "mode": "full"},
    "metrics": ["NDCG", "Hit", "MRR"],
    "topk": [10],
    "valid_metric": "NDCG@10",
}
CTR_CONFIG = {
    "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "RO", "group_by": None, "mode": "labeled"},
    "metrics": ["AUC", "LogLoss"],
    "valid_metric": "AUC",
    "LABEL_FIELD": "label",
    "threshold": None,
}
# Options of the bridge itself (not RecBole config keys), read from the hyperparameters:
# torch_threads (torch.set_num_threads in the worker) and time_budget_seconds (no
# epoch starts that would, at the last epoch's pace, end after the budget; counted in
# the worker's CPU seconds divided by its torch threads, i.e. wall seconds on an
# otherwise idle machine, so a busy machine does not shrink the budget).
BRIDGE_OPTIONS = ("torch_threads", "time_budget_seconds")


class RecBoleNotInstalled(RuntimeError):
    pass


class _StopTraining(Exception):
    """Raised from an epoch hook to end RecBole's training loop (CTR early stopping)."""


# --- importing RecBole, with the fixes it needs on today's stack ------------------------

class _NoRay(importlib.abc.MetaPathFinder):
    """RecBole imports Ray only for hyper-parameter search (recbole.quick_start); the
    bridge never needs it, so any attempt to import it fails loudly instead of starting
    a Ray runtime that binds ports."""

    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("llm4rec's RecBole bridge does not allow importing Ray "
                              "(it would start a local cluster); use the recbole.config/data/"
                              "model/trainer modules, not recbole.quick_start")
        return None


def _no_download(self, *args, **kwargs):
    raise RuntimeError(f"RecBole tried to download dataset '{self.dataset_name}': the bridge writes "
                       f"its files into {self.dataset_path}, so something is wrong with them")


class _Runtime:
    def __init__(self, **modules: Any) -> None:
        self.__dict__.update(modules)


def recbole_runtime() -> _Runtime:
    """Import RecBole (only ever inside the submission's own environment) and apply the
    fixes listed in docs/recbole.md. Returns the pieces the bridge uses."""
    if importlib.util.find_spec("recbole") is None:
        raise RecBoleNotInstalled(
            "RecBole is not installed here: the recbole-* submissions run in their own "
            "environment (their card's `requirements`), which the harness builds and uses "
            "when it runs them (llm4rec run ...); do not call them in the harness's process")
    # torch >= 2.6 loads checkpoints with weights_only=True; RecBole's checkpoints hold
    # its Config object, so its own torch.load() calls need the old behaviour.
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    if not any(isinstance(finder, _NoRay) for finder in sys.meta_path):
        sys.meta_path.insert(0, _NoRay())
    # RecBole 1.2.1 on pandas 2.x / torch 2.x: chained-assignment, Series.agg(len) and
    # torch.cuda.amp deprecation warnings on every run, all harmless with the pins.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.data.dataset import Dataset
    from recbole.data.interaction import Interaction
    from recbole.utils import FeatureType, ModelType, get_model, get_trainer, init_seed
    from recbole.utils.logger import RemoveColorFilter

    Dataset._download = _no_download
    return _Runtime(torch=torch, Config=Config, create_dataset=create_dataset,
                    data_preparation=data_preparation, Interaction=Interaction, ModelType=ModelType,
                    FeatureType=FeatureType, get_model=get_model, get_trainer=get_trainer,
                    init_seed=init_seed, RemoveColorFilter=RemoveColorFilter)


def _log_to_stderr(runtime: _Runtime, level: str) -> None:
    """RecBole's logger (its epoch lines) on stderr, which the harness forwards, without
    colour codes; instead of recbole.utils.init_logger, which also writes ./log files."""
    root = logging.getLogger()
    if not any(getattr(h, "_llm4rec", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.addFilter(runtime.RemoveColorFilter())
        handler._llm4rec = True
        root.addHandler(handler)
    root.setLevel(getattr(logging, str(level).upper(), logging.INFO))


# --- writing our split as RecBole benchmark files ---------------------------------------

def _clean(value: Any) -> str:
    """A field value as atomic-file text: no separators, no quotes; missing -> empty."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    text = str(value)
    return text.replace("\t", " ").replace("\n", " ").replace("\r", " ").replace('"', "")


def write_item_file(folder: Path, n_items: int) -> None:
    lines = ["item_id:token"] + [str(i) for i in range(n_items)]
    (folder / f"{DATASET}.item").write_text("\n".join(lines) + "\n")


def write_sequential_part(path: Path, users: np.ndarray, histories: list[np.ndarray],
                          targets: np.ndarray, max_len: int) -> int:
    """Rows (user, next item, the items before it: the last `max_len`, oldest first).
    Rows with an empty history are left out (a sequential model cannot use them)."""
    rows = ["user_id:token\titem_id:token\titem_id_list:token_seq"]
    for user, history, target in zip(users, histories, targets):
        history = np.asarray(history)[-max_len:]
        if len(history):
            rows.append(f"{int(user)}\t{int(target)}\t{' '.join(map(str, history.tolist()))}")
    path.write_text("\n".join(rows) + "\n")
    return len(rows) - 1


def training_sequences(train: TrainData, max_len: int):
    """RecBole's own augmentation of each user's training sequence, in our order:
    every item after the first is a target, with the (up to max_len) items before it."""
    users, histories, targets = [], [], []
    for user, sequence in enumerate(train.sequences()):
        for j in range(1, len(sequence)):
            users.append(user)
            histories.append(sequence[max(0, j - max_len):j])
            targets.append(sequence[j])
    return np.asarray(users, dtype=np.int64), histories, np.asarray(targets, dtype=np.int64)


def write_pairs_part(path: Path, users: np.ndarray, items: np.ndarray) -> int:
    rows = ["user_id:token\titem_id:token"]
    rows += [f"{int(u)}\t{int(i)}" for u, i in zip(users, items)]
    path.write_text("\n".join(rows) + "\n")
    return len(rows) - 1


def pairs(users: np.ndarray, targets) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) rows for targets given as one item per user or an array per user."""
    if isinstance(targets, np.ndarray) and targets.ndim == 1:
        return np.asarray(users), targets
    counts = [len(t) for t in targets]
    items = np.concatenate([np.asarray(t, dtype=np.int64) for t in targets]) if counts else np.empty(0, np.int64)
    return np.repeat(np.asarray(users), counts), items


def feature_kinds(frame, fields: list[str]) -> dict[str, str]:
    """RecBole field types for CTR feature columns: text with spaces is a token
    sequence (e.g. genres "Comedy Drama"), anything else a token (a category)."""
    kinds = {}
    for field in fields:
        values = frame[field].dropna().astype(str)
        kinds[field] = "token_seq" if values.str.contains(" ").any() else "token"
    return kinds


def write_ctr_part(path: Path, frame, kinds: dict[str, str], labels: np.ndarray) -> int:
    columns = ["user_id", "item_id", *kinds]
    header = ["user_id:token", "item_id:token"] + [f"{f}:{k}" for f, k in kinds.items()] + ["label:float"]
    values = [frame[c].astype(object).tolist() for c in columns]
    rows = ["\t".join(header)]
    rows += ["\t".join([*map(_clean, row), str(float(label))]) for *row, label in zip(*values, labels)]
    path.write_text("\n".join(rows) + "\n")
    return len(rows) - 1


# --- the model ------------------------------------------------------------------------

class RecBoleModel(ReportsParameters, Recommender):
    """A RecBole model: hyperparameters are `model` (RecBole's class name, e.g. SASRec)
    and any RecBole config overrides (epochs, learning_rate, hidden_size, ...), plus
    `torch_threads` (the bridge's own option: torch.set_num_threads in the worker).
    Variants subclass RecBoleRanker (score) or RecBoleCTR (predict), so the harness
    sees which capability they have. report() (called in the worker) counts the
    trainable parameters of the RecBole model."""

    ranking: bool

    def __init__(self, model: str, **config: Any) -> None:
        super().__init__(model=model, **config)
        self.model_name = model
        self.options = {k: config.pop(k) for k in BRIDGE_OPTIONS if k in config}
        self.overrides = dict(config)
        self.workdir: Path | None = None

    # --- training ---
    def fit(self, train: TrainData, ctx: FitContext) -> None:
        rt = self.rt = recbole_runtime()
        if self.options.get("torch_threads"):
            rt.torch.set_num_threads(int(self.options["torch_threads"]))
        # Scratch space: inside the worker's working folder, which the harness removes
        # when the worker stops (also when it is killed).
        in_worker = os.environ.get("LLM4REC_WORKER") == "1"
        self.workdir = Path(tempfile.mkdtemp(prefix="recbole-", dir=os.getcwd() if in_worker else None))
        data = self.workdir / DATASET
        data.mkdir()
        model_class = rt.get_model(self.model_name)
        self.model_type = model_class.type
        self.sequential = self.model_type == rt.ModelType.SEQUENTIAL
        self.context = self.model_type == rt.ModelType.CONTEXT
        if self.context == self.ranking:
            wanted = "RecBoleCTR" if self.context else "RecBoleRanker"
            raise TypeError(f"RecBole's {self.model_name} is a {self.model_type.name.lower()} model: "
                            f"its model.py must subclass {wanted}")
        config_dict = (BASE_CONFIG | (CTR_CONFIG if self.context else RANKING_CONFIG) | {
            "data_path": str(self.workdir),
            "checkpoint_dir": str(self.workdir / "saved"),
            "seed": ctx.seed,
        } | self.overrides)
        write_item_file(data, train.n_items)
        if self.context:
            config_dict |= self._write_ctr_files(data, train)
        elif self.sequential:
            config_dict |= self._write_sequential_files(data, train, int(config_dict["MAX_ITEM_LIST_LENGTH"]))
        else:
            config_dict |= self._write_general_files(data, train)
        self.config_dict = config_dict

        config = rt.Config(model=self.model_name, dataset=DATASET, config_dict=config_dict)
        _log_to_stderr(rt, config["state"])
        rt.init_seed(config["seed"], config["reproducibility"])
        dataset = rt.create_dataset(config)
        train_data, valid_data, _ = rt.data_preparation(config, dataset)
        self._train_data, self._valid_data = train_data, valid_data
        rt.init_seed(config["seed"], config["reproducibility"])
        model = rt.get_model(config["model"])(config, train_data._dataset).to(config["device"])
        # recbole/model/sequential_recommender/sine.py switches anomaly detection on when
        # RecBole's sequential models are imported (2-3x slower training).
        rt.torch.autograd.set_detect_anomaly(False)
        trainer = rt.get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
        self.config, self.dataset, self.trainer, self.recbole_model = config, dataset, trainer, model
        self._build_id_maps(train)
        if self.context:
            self._fit_with_harness_validation(trainer, train_data, config, ctx)
        else:
            self._hook_epochs(trainer, config, ctx, harness_validation=False)
            try:
                trainer.fit(train_data, valid_data, saved=True, show_progress=False,
                            callback_fn=lambda epoch, score: ctx.log_metric(
                                _metric_name(f"recbole.valid.{config['valid_metric']}"), float(score), epoch))
            except _StopTraining:  # the time budget; the best epoch so far is on disk
                pass
            if os.path.isfile(trainer.saved_model_file):  # the best epoch on validation
                checkpoint = rt.torch.load(trainer.saved_model_file, map_location=config["device"],
                                           weights_only=False)
                model.load_state_dict(checkpoint["state_dict"])
                model.load_other_parameter(checkpoint.get("other_parameter"))
        model.eval()

    def _write_sequential_files(self, data: Path, train: TrainData, max_len: int) -> dict:
        validation = self._validation(train)
        users, histories, targets = training_sequences(train, max_len)
        self.n_train_rows = write_sequential_part(data / f"{DATASET}.train.inter", users, histories, targets,
                                                  max_len)
        for part in ("valid", "test"):  # test: a placeholder, the harness keeps the real one
            write_sequential_part(data / f"{DATASET}.{part}.inter", validation.users, validation.histories,
                                  validation.targets, max_len)
        extra = {"load_col": {"inter": ["user_id", "item_id", "item_id_list"], "item": ["item_id"]},
                 "alias_of_item_id": ["item_id_list"]}
        if self.overrides.get("loss_type", "CE") == "CE" and "train_neg_sample_args" not in self.overrides:
            extra["train_neg_sample_args"] = None
        return extra

    def _write_general_files(self, data: Path, train: TrainData) -> dict:
        validation = self._validation(train)
        inter = train.interactions
        self.n_train_rows = write_pairs_part(data / f"{DATASET}.train.inter", inter["user_id"].to_numpy(),
                                             inter["item_id"].to_numpy())
        users, items = pairs(validation.users, validation.targets)
        for part in ("valid", "test"):
            write_pairs_part(data / f"{DATASET}.{part}.inter", users, items)
        return {"load_col": {"inter": ["user_id", "item_id"], "item": ["item_id"]}}

    def _write_ctr_files(self, data: Path, train: TrainData) -> dict:
        inter = train.interactions
        if "label" not in inter:
            raise ValueError(f"RecBole's {self.model_name} is a CTR model: it needs a task with labels "
                             "(family ctr)")
        self.kinds = feature_kinds(inter, list(train.feature_fields))
        labels = inter["label"].to_numpy()
        self.n_train_rows = write_ctr_part(data / f"{DATASET}.train.inter", inter, self.kinds, labels)
        # Validation labels stay with the harness: the other parts are placeholders (a
        # few training rows) that RecBole requires but the bridge never evaluates on.
        head = inter.head(min(len(inter), 100))
        for part in ("valid", "test"):
            write_ctr_part(data / f"{DATASET}.{part}.inter", head, self.kinds, head["label"].to_numpy())
        return {"load_col": {"inter": ["user_id", "item_id", *self.kinds, "label"], "item": ["item_id"]}}

    @staticmethod
    def _validation(train: TrainData):
        if train.validation is None:
            raise ValueError("the RecBole bridge needs the task's validation part for early stopping")
        return train.validation

    def _hook_epochs(self, trainer, config, ctx: FitContext, harness_validation: bool) -> None:
        """Each epoch advances the harness's progress bar and logs the training loss;
        for CTR models it also asks the harness for the validation score."""
        epochs = int(config["epochs"])
        bar = iter(ctx.progress(range(epochs), description="epochs", total=epochs))
        next(bar, None)
        train_epoch = trainer._train_epoch
        budget = self.options.get("time_budget_seconds")
        threads = max(self.rt.torch.get_num_threads(), 1)

        def clock() -> float:
            return time.process_time() / threads

        started, last_start = clock(), [None]

        def train_epoch_with_progress(train_data, epoch_idx, *args, **kwargs):
            now = clock()
            # An epoch's pace includes the previous epoch's validation.
            pace = now - last_start[0] if last_start[0] is not None else 0.0
            if budget is not None and now - started + pace > float(budget):
                logging.getLogger().info(f"time budget of {budget} s reached after {epoch_idx} epochs")
                raise _StopTraining
            last_start[0] = now
            loss = train_epoch(train_data, epoch_idx, *args, **kwargs)
            total = sum(loss) if isinstance(loss, tuple) else loss
            if total is not None:
                ctx.log_metric("recbole.train_loss", float(total), epoch_idx)
            if harness_validation:
                self._after_epoch(epoch_idx, ctx)
            next(bar, None)
            return loss

        trainer._train_epoch = train_epoch_with_progress

    def _fit_with_harness_validation(self, trainer, train_data, config, ctx: FitContext) -> None:
        """CTR: RecBole trains without a validation loader; after each epoch the
        harness scores our validation rows (ctx.evaluate_validation: its main score,
        higher is better), the best weights are kept, and training stops after
        `stopping_step` epochs without improvement."""
        self._best = (-np.inf, None, -1)
        self._stopping_step = int(config["stopping_step"])
        self._evaluate = ctx.evaluate_validation
        self._hook_epochs(trainer, config, ctx, harness_validation=True)
        try:
            trainer.fit(train_data, None, saved=False, show_progress=False)
        except _StopTraining:
            pass
        best_score, best_state, best_epoch = self._best
        if best_state is not None:
            self.recbole_model.load_state_dict(best_state)
            logging.getLogger().info(f"best epoch {best_epoch} (harness validation score {best_score:.6f})")

    def _after_epoch(self, epoch: int, ctx: FitContext) -> None:
        if self._evaluate is None:
            return
        self.recbole_model.eval()
        score = float(self._evaluate(self.predict))
        self.recbole_model.train()
        ctx.log_metric("recbole.valid.harness_main_score", score, epoch)
        logging.getLogger().info(f"epoch {epoch} validation (harness main score): {score:.6f}")
        best_score, _, best_epoch = self._best
        if score > best_score:
            self._best = (score, copy.deepcopy(self.recbole_model.state_dict()), epoch)
        elif epoch - best_epoch >= self._stopping_step:
            raise _StopTraining

    def _build_id_maps(self, train: TrainData) -> None:
        token_ids = self.dataset.field2token_id
        items = token_ids[self.dataset.iid_field]
        self.rb_item = np.array([items[str(i)] for i in range(train.n_items)], dtype=np.int64)
        self.user_ids = token_ids[self.dataset.uid_field]
        self.n_rb_items = self.dataset.item_num
        if self.sequential:
            width = self.dataset.field2seqlen[self.recbole_model.ITEM_SEQ]
            self.seq_width = int(width if isinstance(width, int) else width[0])
            self.max_len = min(int(self.config["MAX_ITEM_LIST_LENGTH"]), self.seq_width)

    # --- ranking: score() ---
    def _uids(self, users: np.ndarray) -> np.ndarray:
        # A user RecBole never saw (no training row) gets its padding id 0, whose
        # embedding is as untrained as a new user's would be.
        return np.array([self.user_ids.get(str(int(u)), 0) for u in users], dtype=np.int64)

    def interaction(self, users: np.ndarray, histories: list[np.ndarray]):
        """A RecBole Interaction for our users (and their histories, for sequential
        models), as RecBole's own full-sort evaluation builds it."""
        torch = self.rt.torch
        fields = {self.dataset.uid_field: torch.from_numpy(self._uids(users))}
        if self.sequential:
            seq = np.zeros((len(users), self.seq_width), dtype=np.int64)
            lengths = np.zeros(len(users), dtype=np.int64)
            for row, history in enumerate(histories):
                history = np.asarray(history)[-self.max_len:]
                seq[row, :len(history)] = self.rb_item[history]
                # An empty history cannot be read by RecBole's models: it gets the
                # padding position (length 1), see docs/recbole.md.
                lengths[row] = max(len(history), 1)
            fields[self.recbole_model.ITEM_SEQ] = torch.from_numpy(seq)
            fields[self.recbole_model.ITEM_SEQ_LEN] = torch.from_numpy(lengths)
        return self.rt.Interaction(fields)

    def full_scores(self, users: np.ndarray, histories: list[np.ndarray]) -> np.ndarray:
        """RecBole's scores [n_users, RecBole's n_items] (column 0 is its padding item),
        as its Trainer computes them for full-sort evaluation."""
        torch, device = self.rt.torch, self.config["device"]
        interaction = self.interaction(users, histories).to(device)
        with torch.no_grad():
            try:
                scores = self.recbole_model.full_sort_predict(interaction)
            except NotImplementedError:  # e.g. NeuMF: predict() on every (user, item) pair
                every = interaction.repeat_interleave(self.n_rb_items)
                every.update(self.rt.Interaction({self.dataset.iid_field: torch.arange(self.n_rb_items).repeat(
                    len(users))}).to(device))
                chunk = int(self.config["eval_batch_size"])  # as Trainer._spilt_predict does
                scores = torch.cat([self.recbole_model.predict(self.rt.Interaction(
                    {k: v[start:start + chunk] for k, v in every.interaction.items()})).reshape(-1)
                    for start in range(0, len(every), chunk)])
        return scores.view(len(users), -1).cpu().numpy()

    # --- RecBole's own evaluation (for the parity test; the harness never calls it) ---
    def recbole_evaluate(self, users: np.ndarray, histories: list[np.ndarray], targets,
                         topk: list[int]) -> dict[str, Any]:
        """RecBole's evaluator on a split the caller provides (ground truth included):
        the test part becomes a RecBole dataset the way RecBole's own build() makes its
        parts (a copy of the trained dataset with these interactions, so ids are the
        training ones), with RecBole's samplers (its history masking) and test data
        loader, and trainer.evaluate() ranks and scores it. Returns RecBole's metric
        means, its per-user values (from its own metric classes), the score matrix it
        ranked (in our item order, -inf where it masked) and the users in its order."""
        rt = self.rt
        from recbole.data.utils import create_samplers, get_dataloader
        from recbole.evaluator.metrics import MRR, NDCG, Hit, Recall

        overrides = {"topk": list(topk), "metrics": ["Hit", "NDCG", "MRR", "Recall", "Precision", "MAP"]}
        config = rt.Config(model=self.model_name, dataset=DATASET, config_dict=self.config_dict | overrides)
        built = [self._train_data._dataset, self._valid_data._dataset,
                 self.dataset.copy(self._eval_interaction(users, histories, targets))]
        _, _, test_sampler = create_samplers(config, self.dataset, built)
        test_data = get_dataloader(config, "test")(config, built[2], test_sampler, shuffle=False)
        trainer = rt.get_trainer(config["MODEL_TYPE"], config["model"])(config, self.recbole_model)
        captured: dict[str, Any] = {"scores": [], "users": []}
        full_sort = trainer._full_sort_batch_eval

        def capture(batched_data):
            interaction, scores, positive_u, positive_i = full_sort(batched_data)
            captured["scores"].append(scores.cpu().numpy().copy())
            captured["users"].append(interaction[self.dataset.uid_field].cpu().numpy().copy())
            return interaction, scores, positive_u, positive_i

        trainer._full_sort_batch_eval = capture
        get_struct = trainer.eval_collector.get_data_struct

        def keep_struct():
            captured["struct"] = get_struct()
            return captured["struct"]

        trainer.eval_collector.get_data_struct = keep_struct
        result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
        topk_struct = captured["struct"].get("rec.topk").numpy()
        pos_index, pos_len = topk_struct[:, :-1].astype(bool), topk_struct[:, -1]
        per_user = {"hit": Hit(config).metric_info(pos_index), "mrr": MRR(config).metric_info(pos_index),
                    "ndcg": NDCG(config).metric_info(pos_index, pos_len),
                    "recall": Recall(config).metric_info(pos_index, pos_len)}
        per_user = {f"{name}@{k}": values[:, k - 1] for name, values in per_user.items() for k in topk}
        scores = np.concatenate(captured["scores"])
        token = self.dataset.field2id_token[self.dataset.uid_field]
        rb_users = np.concatenate(captured["users"])
        return {"result": {k: float(v) for k, v in result.items()}, "per_user": per_user,
                "scores": scores[:, self.rb_item], "users": np.array([int(token[u]) for u in rb_users])}

    def _eval_interaction(self, users: np.ndarray, histories: list[np.ndarray], targets):
        """Evaluation rows as RecBole's benchmark files would give them: (user, target)
        pairs, plus the history (the last MAX_ITEM_LIST_LENGTH items) for sequential
        models, whose rows with an empty history are left out as in fit()."""
        torch = self.rt.torch
        uid, iid = self.dataset.uid_field, self.dataset.iid_field
        if not self.sequential:
            pair_users, pair_items = pairs(users, targets)
            return self.rt.Interaction({uid: torch.from_numpy(self._uids(pair_users)),
                                        iid: torch.from_numpy(self.rb_item[pair_items])})
        keep = [i for i, h in enumerate(histories) if len(h)]
        fields = self.interaction(np.asarray(users)[keep], [histories[i] for i in keep]).interaction
        fields[iid] = torch.from_numpy(self.rb_item[np.asarray(targets)[keep]])
        return self.rt.Interaction(fields)

    def __del__(self) -> None:
        if getattr(self, "workdir", None) is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


class RecBoleRanker(RecBoleModel):
    """A RecBole ranking model (sequential, general or traditional): score()."""

    ranking = True

    def score(self, request: ScoreRequest) -> np.ndarray:
        scores = self.full_scores(request.users, request.histories)[:, self.rb_item]
        if request.candidates is not None:
            scores = np.take_along_axis(scores, np.asarray(request.candidates), axis=1)
        return np.ascontiguousarray(scores, dtype=np.float32)


class RecBoleCTR(RecBoleModel):
    """A RecBole context-aware (CTR) model: predict()."""

    ranking = False

    def predict(self, request: PredictRequest) -> np.ndarray:
        torch = self.rt.torch
        token_ids = self.dataset.field2token_id
        frame = request.features
        fields = {}
        for field in ["user_id", "item_id", *self.kinds]:
            vocabulary = token_ids[field]
            values = frame[field].astype(object).tolist()
            if self.kinds.get(field) == "token_seq":
                width = self.dataset.field2seqlen[field]
                width = int(width if isinstance(width, int) else width[0])
                ids = np.zeros((len(values), width), dtype=np.int64)
                for row, value in enumerate(values):
                    tokens = [vocabulary.get(t, 0) for t in _clean(value).split(" ") if t][:width]
                    ids[row, :len(tokens)] = tokens
            else:
                ids = np.array([vocabulary.get(_clean(v), 0) for v in values], dtype=np.int64)
            fields[field] = torch.from_numpy(ids)
        with torch.no_grad():
            probabilities = self.recbole_model.predict(self.rt.Interaction(fields).to(self.config["device"]))
        return np.clip(probabilities.view(-1).cpu().numpy().astype(np.float64), 0.0, 1.0)


def _metric_name(name: str) -> str:
    return name.replace("@", "_at_")
