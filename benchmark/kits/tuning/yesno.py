"""TALLRec-style Yes/No tuning of a causal LM (Bao et al., RecSys 2023, "TALLRec: An
Effective and Efficient Tuning Framework to Align Large Language Model with
Recommendation"), shared by the `tallrec-lite` (LoRA) and `softprompt` (prompt tuning)
submissions.

The question: "will this user like this item?", asked with the user's last
`history_len` (10) items as text, answered by the next token, "Yes" or "No".

- **Prompt.** One user message (the model's chat template when it has one): the
  question as an instruction, the history (oldest first), then the target item. The
  answer is the first token of the assistant's reply. The prompt is cut into a prefix
  (chat head, instruction, history: the same for all items of a user) and a short
  suffix (target item, chat tail), so scoring runs the prefix once per user and the
  items' suffixes in one batch over its KV cache.
- **History.** On CTR tasks the history lines carry the user's feedback, "(liked)" or
  "(disliked)" (like = the row's label; TALLRec: rating > 3), from the user's
  training rows. On ranking tasks a request's history has no ratings (its last item is
  the validation item), so the lines list the items as watched, in training and in
  scoring alike.
- **Training samples** (`train_samples`, the budget): drawn with the run's seed from
  the training rows of users with at least one earlier training row, half liked and
  half not where the data allow; each row's history is the user's up to `history_len`
  training items before it. Loss: cross-entropy of the answer token over the whole
  vocabulary (the LM loss on "Yes"/"No"), AdamW, `epochs` passes.
- **Scores.** P(Yes) = softmax over the "Yes" and "No" next-token logits. CTR
  `predict` returns P(Yes); ranking `score` returns logit(P(Yes)) = l_Yes - l_No (the
  same order, finite). Scores of a (history, item) pair are memoised, so the harness's
  repeated passes over the same users (position-bias and shuffle probes) cost nothing:
  the score of an item does not depend on the other candidates or their order.

A trainable part is attached to a private copy of the base network (the loaded model
is cached and shared with other submissions): LoRA layers (peft) or a soft prompt
(peft prompt tuning: `num_virtual_tokens` trainable embeddings before the prompt). The
forward pass is written here once for both (inputs_embeds with the soft prompt
prepended, explicit position ids), so training and scoring see the same positions; a
test checks it against peft's own forward.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from benchmark.api.recommender import Recommender
from benchmark.api.types import FitContext, ModelReport, PredictRequest, ScoreRequest, TrainData
from benchmark.kits.llm.completion import Completes
from benchmark.kits.llm.models import CausalLM
from benchmark.kits.llm.pointwise import Usage
from benchmark.kits.threads import torch_threads

INSTRUCTION = ("Given the user's history of movies below, will the user like the target movie? "
               "Answer only Yes or No.\n")
HISTORY_HEADER = "User's history, oldest first:\n"
EMPTY_HISTORY = "(no movies yet)\n"
LINE_FEEDBACK = "{index}. {title} ({feedback})\n"
LINE_WATCHED = "{index}. {title}\n"
QUESTION = "Target movie: {title}"
ANSWERS = ("Yes", "No")
# Every fixed text of the prompt, for the prompt hash (llm.prompt_hash).
TEMPLATE_PARTS = (INSTRUCTION, HISTORY_HEADER, EMPTY_HISTORY, LINE_FEEDBACK, LINE_WATCHED, QUESTION, *ANSWERS)


# ------------------------------------------------------------------------------ prompts


@dataclass(frozen=True)
class YesNoPrompts:
    """Text of the prompt's two segments, before the chat framing."""

    texts: Sequence[str]  # item texts, by item id

    def prefix(self, history: Sequence[int], liked: Sequence[int] | None = None) -> str:
        lines = []
        for index, item in enumerate(history, start=1):
            title = self.texts[int(item)]
            if liked is None:
                lines.append(LINE_WATCHED.format(index=index, title=title))
            else:
                feedback = "liked" if liked[index - 1] else "disliked"
                lines.append(LINE_FEEDBACK.format(index=index, title=title, feedback=feedback))
        return INSTRUCTION + HISTORY_HEADER + ("".join(lines) or EMPTY_HISTORY)

    def suffix(self, item: int) -> str:
        return QUESTION.format(title=self.texts[int(item)])


def _chat_frame(tokenizer: Any) -> tuple[str, str]:
    """(head, tail) around one user message: the chat template applied to a user turn
    with the generation prompt; ("", "\\n") without a chat template."""
    from benchmark.kits.llm.prompts import chat_frame

    return chat_frame(tokenizer)


def select_training_rows(eligible: np.ndarray, liked: np.ndarray, n: int,
                         rng: np.random.Generator) -> np.ndarray:
    """`n` row indices among `eligible` (without replacement): half liked, half not,
    topped up from the other class when one is short; in a random order."""
    eligible = np.asarray(eligible, dtype=np.int64)
    n = min(int(n), len(eligible))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    positive = eligible[liked[eligible] == 1]
    negative = eligible[liked[eligible] != 1]
    n_pos = min(len(positive), (n + 1) // 2)
    n_neg = min(len(negative), n - n_pos)
    n_pos = min(len(positive), n - n_neg)
    chosen = np.concatenate([rng.choice(positive, n_pos, replace=False),
                             rng.choice(negative, n_neg, replace=False)]).astype(np.int64)
    return rng.permutation(chosen)


# ------------------------------------------------------------------------ the network


def _cache_from(snapshot: list[tuple[torch.Tensor, torch.Tensor]], batch: int):
    from transformers import DynamicCache

    return DynamicCache(ddp_cache_data=[(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1))
                                        for k, v in snapshot])


class YesNoLM:
    """A causal LM answering Yes/No, with an optional soft prompt before every input.

    `network` is a transformers causal LM (LoRA layers may be injected into it);
    `soft_prompt` an [n_virtual, hidden] parameter or None."""

    def __init__(self, network: nn.Module, tokenizer: Any, soft_prompt: nn.Parameter | None = None,
                 add_bos: bool = False) -> None:
        self.network = network
        self.tokenizer = tokenizer
        self.soft_prompt = soft_prompt
        self.add_bos = add_bos
        self.head, self.tail = _chat_frame(tokenizer)
        yes, no = (self.encode(answer) for answer in ANSWERS)
        if not yes or not no or yes[0] == no[0]:
            raise ValueError(f"the tokenizer cannot tell the answers apart: Yes -> {yes}, No -> {no}")
        self.answer_ids = (yes[0], no[0])  # the first token of each answer
        self._encoded: dict[tuple[str, bool], list[int]] = {}

    # --- tokens -------------------------------------------------------------------
    def encode(self, text: str, first: bool = False) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=first and self.add_bos)["input_ids"])

    def _cached(self, text: str, first: bool) -> list[int]:
        key = (text, first)
        if key not in self._encoded:
            if len(self._encoded) > 100_000:
                self._encoded.clear()
            self._encoded[key] = self.encode(text, first)
        return self._encoded[key]

    def prefix_ids(self, prefix: str) -> list[int]:
        return self._cached(self.head + prefix, True)

    def suffix_ids(self, suffix: str) -> list[int]:
        return self._cached(suffix + self.tail, False)

    @property
    def n_virtual(self) -> int:
        return 0 if self.soft_prompt is None else int(self.soft_prompt.shape[0])

    # --- forward ------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return self.network.get_input_embeddings().weight.dtype

    def _decoder(self) -> nn.Module:
        get = getattr(self.network, "get_decoder", None)
        decoder = get() if get is not None else None
        return decoder if decoder is not None else self.network.model

    def _embed(self, ids: torch.Tensor, with_soft_prompt: bool) -> torch.Tensor:
        embeds = self.network.get_input_embeddings()(ids)
        if with_soft_prompt and self.soft_prompt is not None:
            soft = self.soft_prompt.to(embeds.dtype).unsqueeze(0).expand(ids.shape[0], -1, -1)
            embeds = torch.cat([soft, embeds], dim=1)
        return embeds

    def _answer_logits(self, hidden: torch.Tensor, full: bool) -> torch.Tensor:
        logits = self.network.get_output_embeddings()(hidden).float()
        return logits if full else logits[:, list(self.answer_ids)]

    def last_logits(self, sequences: Sequence[Sequence[int]], full: bool = True) -> torch.Tensor:
        """Logits after the last token of each sequence (soft prompt first): [B, vocab]
        (or [B, 2] for Yes, No). Sequences are right-padded; a position never attends to
        a later one, so the padding changes nothing."""
        lengths = torch.tensor([len(s) for s in sequences])
        ids = torch.zeros((len(sequences), int(lengths.max())), dtype=torch.long)
        for row, seq in enumerate(sequences):
            ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        ids = ids.to(self.device)
        embeds = self._embed(ids, True)
        positions = torch.arange(embeds.shape[1], device=self.device).unsqueeze(0)
        hidden = self._decoder()(inputs_embeds=embeds, position_ids=positions, use_cache=False).last_hidden_state
        last = hidden[torch.arange(len(sequences), device=self.device), (lengths - 1 + self.n_virtual).to(self.device)]
        return self._answer_logits(last, full)

    @torch.inference_mode()
    def yes_minus_no(self, prefix: list[int], suffixes: Sequence[list[int]], batch: int = 32) -> np.ndarray:
        """l_Yes - l_No after prefix + each suffix: the prefix runs once, the suffixes in
        right-padded batches over its KV cache. Returns float64 [len(suffixes)]."""
        decoder = self._decoder()
        device = self.device
        ids = torch.tensor([prefix], dtype=torch.long, device=device)
        embeds = self._embed(ids, True)
        P = embeds.shape[1]
        out = decoder(inputs_embeds=embeds, position_ids=torch.arange(P, device=device).unsqueeze(0),
                      use_cache=True)
        snapshot = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
        result = np.empty(len(suffixes), dtype=np.float64)
        for start in range(0, len(suffixes), batch):
            group = suffixes[start:start + batch]
            lengths = torch.tensor([len(s) for s in group])
            width = int(lengths.max())
            block = torch.zeros((len(group), width), dtype=torch.long)
            for row, seq in enumerate(group):
                block[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
            positions = (P + torch.arange(width)).unsqueeze(0).expand(len(group), -1)
            hidden = decoder(inputs_embeds=self._embed(block.to(device), False),
                             position_ids=positions.to(device), past_key_values=_cache_from(snapshot, len(group)),
                             use_cache=True).last_hidden_state
            last = hidden[torch.arange(len(group), device=device), (lengths - 1).to(device)]
            logits = self._answer_logits(last, full=False).double().cpu().numpy()
            result[start:start + len(group)] = logits[:, 0] - logits[:, 1]
        return result


# ------------------------------------------------------------------------ the adapter


def _user_table(interactions: pd.DataFrame, like_threshold: float) -> tuple[pd.DataFrame, np.ndarray]:
    """The training rows sorted by user and time, and each row's liked flag: the CTR
    label where there is one, else rating > like_threshold."""
    rows = interactions.reset_index(drop=True)
    if "label" in rows:
        liked = rows["label"].to_numpy().astype(np.int8)
    elif "rating" in rows and rows["rating"].notna().all():
        liked = (rows["rating"].to_numpy() > like_threshold).astype(np.int8)
    else:
        raise ValueError("Yes/No tuning needs ratings or CTR labels in the training interactions "
                         "(what the user liked); this task has neither")
    return rows, liked


class YesNoTuned(Completes, Recommender):
    """Base of `tallrec-lite` and `softprompt`: subclasses set `defaults` and implement
    `attach(network)`, which makes the trainable part and returns (soft prompt or None,
    trainable parameters, a description for the identity tags). complete() continues
    text with the tuned network (and its soft prompt)."""

    ranks_full_catalogue = False  # one LLM call per candidate: candidate sets only

    base_defaults: dict[str, Any] = {
        "model": "smollm2",       # transformers id, local path, or asset name
        "dtype": "auto",          # auto: bfloat16 where the hardware computes it natively, else float32
        "device": None,           # None: CUDA when available
        "threads": 0,             # torch intra-op threads (0: as set)
        "train_samples": 64,      # the training budget: distinct training rows
        "epochs": 2,
        "batch_size": 4,
        "lr": 1e-3,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "history_len": 10,        # TALLRec: the last 10 items
        "like_threshold": 3,      # like = rating > 3 (CTR tasks: the row's label)
        "score_batch": 32,        # suffixes per forward pass when scoring
    }
    defaults: dict[str, Any] = {}
    # Whether the trainable part is attached also when nothing is trained (budget 0):
    # a soft prompt is part of the model even untrained, a LoRA update would be zero.
    attach_untrained = False

    def __init__(self, **hyperparameters: Any) -> None:
        known = self.base_defaults | self.defaults
        unknown = sorted(set(hyperparameters) - set(known))
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown hyperparameters {unknown} (known: {sorted(known)})")
        values = known | hyperparameters
        super().__init__(**values)
        for name, value in values.items():
            setattr(self, name, value)
        self.budget = int(self.train_samples)  # distinct training rows
        if self.budget < 0:
            raise ValueError(f"{type(self).__name__}: train_samples must be >= 0, got {self.train_samples}")
        self.lm: YesNoLM | None = None
        self._memo: dict[tuple, float] = {}
        # What report() tells the harness: set by fit; tokens also count while scoring.
        self._trainable: int | None = None
        self._total: int | None = None
        self._samples_seen: int | None = None  # training samples times epochs
        self._tokens = 0
        self._identity: dict[str, str] = {}

    # --- subclass hooks -------------------------------------------------------------
    def attach(self, network: nn.Module) -> tuple[nn.Parameter | None, list[nn.Parameter], str]:
        raise NotImplementedError

    def finish_training(self, network: nn.Module) -> nn.Module:
        """After training: the network to score with (LoRA merges its layers here)."""
        return network

    def report(self) -> ModelReport:
        """Parameters (trainable: what training changed, 0 untuned; total: the base
        model's and the added ones), tokens processed in training and scoring, training
        samples seen (epochs counted), and the LLM's identity."""
        return ModelReport(trainable_parameters=self._trainable, total_parameters=self._total, tokens=self._tokens,
                           train_samples=self._samples_seen, llm=dict(self._identity))

    # --- fit ------------------------------------------------------------------------
    def fit(self, train: TrainData, ctx: FitContext) -> None:
        from benchmark.kits.llm import load_causal_lm, prompt_hash

        with torch_threads(self.threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(ctx.seed)
            base = load_causal_lm(str(self.model), device=self.device, dtype=self.dtype)
            trains = self.budget > 0 and int(self.epochs) > 0
            if trains or self.attach_untrained:
                network = copy.deepcopy(base.model)  # the loaded model is shared: never change it
                network.requires_grad_(False)
                soft_prompt, trainable, adapter = self.attach(network)
            else:  # nothing to train: the shared model as it is (never modified here)
                network, soft_prompt, trainable, adapter = base.model, None, [], "none (untuned)"
            self.lm = YesNoLM(network, base.tokenizer, soft_prompt, add_bos=not base.has_chat_template)
            self.prompts = YesNoPrompts(train.catalog.item_texts())
            added = int(sum(p.numel() for p in trainable))
            # What training changes: nothing when nothing is trained.
            self._trainable = added if trains else 0
            self._total = int(sum(p.numel() for p in base.model.parameters())) + added
            rows, liked = _user_table(train.interactions, self.like_threshold)
            self.feedback = "label" in train.interactions  # CTR: histories with liked/disliked
            self._histories(rows, liked)
            samples = self._training_samples(rows, liked, ctx.seed)
            self._tokens = 0
            self._train(samples, trainable, ctx)
            if trains or self.attach_untrained:
                self.lm.network = self.finish_training(network)
            self.lm.network.eval()
            self._memo = {}
        self._samples_seen = len(samples) * max(int(self.epochs), 0)
        self._identity = {k: str(v) for k, v in base.identity.items()} | {
            "llm.decoding": "pointwise: P(Yes) = softmax over the Yes/No next-token logits",
            "llm.prompt_hash": prompt_hash(*TEMPLATE_PARTS),
            "llm.adapter": adapter,
        }

    def _histories(self, rows: pd.DataFrame, liked: np.ndarray) -> None:
        """Per user: row bounds in the training table (for CTR histories)."""
        users = rows["user_id"].to_numpy()
        self._rows_items = rows["item_id"].to_numpy()
        self._rows_liked = liked
        self._bounds = {int(u): (int(a), int(b)) for u, a, b in zip(*_runs(users))}

    def _history_of(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The up to history_len training rows before `stop` (from `start`)."""
        a = max(start, stop - int(self.history_len))
        return self._rows_items[a:stop], (self._rows_liked[a:stop] if self.feedback else None)

    def _training_samples(self, rows: pd.DataFrame, liked: np.ndarray, seed: int) -> list[tuple[list[int], int]]:
        users = rows["user_id"].to_numpy()
        first = np.r_[True, users[1:] != users[:-1]]
        eligible = np.flatnonzero(~first)  # rows with an earlier row of the same user
        chosen = select_training_rows(eligible, liked, self.budget, np.random.default_rng(seed))
        samples = []
        for row in chosen:
            start = self._bounds[int(users[row])][0]
            history, feedback = self._history_of(start, int(row))
            ids = (self.lm.prefix_ids(self.prompts.prefix(history, feedback))
                   + self.lm.suffix_ids(self.prompts.suffix(self._rows_items[row])))
            samples.append((ids, self.lm.answer_ids[0] if liked[row] else self.lm.answer_ids[1]))
        return samples

    def _train(self, samples: list[tuple[list[int], int]], trainable: list[nn.Parameter], ctx: FitContext) -> None:
        if not samples or not trainable or int(self.epochs) <= 0:
            return
        lm = self.lm
        optimizer = torch.optim.AdamW(trainable, lr=float(self.lr), weight_decay=float(self.weight_decay))
        order_rng = np.random.default_rng(ctx.seed)
        size = max(1, int(self.batch_size))
        lm.network.train()
        step = 0
        for epoch in ctx.progress(range(int(self.epochs)), description="epochs", total=int(self.epochs)):
            total, count, started = 0.0, 0, time.perf_counter()
            order = order_rng.permutation(len(samples))
            for start in range(0, len(order), size):
                batch = [samples[i] for i in order[start:start + size]]
                logits = lm.last_logits([ids for ids, _ in batch], full=True)
                targets = torch.tensor([answer for _, answer in batch], device=logits.device)
                loss = nn.functional.cross_entropy(logits, targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(trainable, float(self.max_grad_norm))
                optimizer.step()
                total += float(loss.detach()) * len(batch)
                count += len(batch)
                self._tokens += sum(len(ids) + lm.n_virtual for ids, _ in batch)
                step += 1
            ctx.log_metric("loss", total / max(count, 1), epoch)
            ctx.log_metric("epoch_seconds", time.perf_counter() - started, epoch)

    # --- completion (benchmark.kits.llm.completion) ------------------------------------
    def completion_lm(self) -> CausalLM:
        lm = self._require_fit()
        return CausalLM(lm.tokenizer, lm.network, lm.device, dict(self._identity))

    def completion_soft_prompt(self) -> torch.Tensor | None:
        return None if self.lm is None or self.lm.soft_prompt is None else self.lm.soft_prompt.detach()

    def count_tokens(self, usage: Usage) -> None:
        self._tokens += usage.prompt_tokens + usage.continuation_tokens

    # --- scoring --------------------------------------------------------------------
    def _require_fit(self) -> YesNoLM:
        if self.lm is None:
            raise RuntimeError(f"{type(self).__name__}: score()/predict()/complete() called before fit()")
        return self.lm

    def _yes_minus_no(self, prefix: str, items: Sequence[int], key: tuple) -> np.ndarray:
        """l_Yes - l_No of each item after this prefix, memoised under (key, item)."""
        lm = self.lm
        todo = [i for i in dict.fromkeys(int(i) for i in items) if (key, i) not in self._memo]
        if todo:
            prefix_ids = lm.prefix_ids(prefix)
            suffixes = [lm.suffix_ids(self.prompts.suffix(i)) for i in todo]
            values = lm.yes_minus_no(prefix_ids, suffixes, int(self.score_batch))
            self._tokens += len(prefix_ids) + lm.n_virtual + sum(len(s) for s in suffixes)
            if len(self._memo) > 2_000_000:
                self._memo.clear()
            self._memo.update({(key, i): v for i, v in zip(todo, values)})
        return np.array([self._memo[(key, int(i))] for i in items], dtype=np.float64)

    def score(self, request: ScoreRequest) -> np.ndarray:
        self._require_fit()
        n = request.n_candidates
        out = np.empty((len(request.users), n), dtype=np.float64)
        with torch_threads(self.threads):
            for row, history in enumerate(request.histories):
                recent = np.asarray(history[-int(self.history_len):] if self.history_len else history[:0])
                items = request.candidates[row] if request.candidates is not None else np.arange(n)
                out[row] = self._yes_minus_no(self.prompts.prefix(recent, None), items,
                                              ("watched", tuple(int(i) for i in recent)))
        return out

    def predict(self, request: PredictRequest) -> np.ndarray:
        self._require_fit()
        users, items = request.users, request.items
        out = np.empty(len(users), dtype=np.float64)
        with torch_threads(self.threads):
            for user in dict.fromkeys(int(u) for u in users):
                rows = np.flatnonzero(users == user)
                start, stop = self._bounds.get(user, (0, 0))
                history, feedback = self._history_of(start, stop)
                if not self.feedback:
                    feedback = None
                key = ("ctr", user, tuple(int(i) for i in history))
                out[rows] = self._yes_minus_no(self.prompts.prefix(history, feedback), items[rows], key)
        return 1.0 / (1.0 + np.exp(-out))


def _runs(users: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, start, stop) of each run of equal values in a sorted array."""
    if len(users) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    stops = np.r_[starts[1:], len(users)]
    return users[starts], starts, stops

