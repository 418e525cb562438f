"""The common part of the first-party LLM and text-encoder submissions: `TextModel`
(requests as text, identity, token counts, the report), `TextScorer` (a TextModel that
scores candidates) and `PointwiseLLM` (likelihood scoring, shared by smollm2-pointwise
and smollm2-icl; it also completes text: completion.py).

What a TextModel reports after `fit` and the test pass (`report()`):
- `llm`: {llm.model, llm.weights_sha256, llm.quantization, llm.dtype, llm.decoding,
  llm.prompt_hash};
- `tokens`: prompt + scored/generated tokens processed so far (each prompt counted
  whole, also where its KV cache was reused; `usage.computed_tokens` keeps the
  positions actually run through the model);
- `trainable_parameters`: over the torch modules it holds (0: the networks are frozen).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from benchmark.api import Catalog, FitContext, ModelReport, Recommender, ScoreRequest, TrainData
from benchmark.kits.threads import torch_threads
from benchmark.kits.llm.completion import Completes
from benchmark.kits.llm.models import load_causal_lm
from benchmark.kits.llm.pointwise import Usage, default_users_per_batch, score_candidates, score_users
from benchmark.kits.llm.prompts import ANSWER_LEAD, DEFAULT_TEMPLATE, model_prompt, prompt_hash, render
from benchmark.kits.report import trainable_parameters


class TextModel(Recommender):
    """Ranks a fixed candidate set per user from the history as text. Subclasses add
    the capability: `score` (TextScorer) or `recommend`."""

    ranks_full_catalogue = False

    def __init__(self, model: str, device: str | None = None, threads: int = 0,
                 **hyperparameters: Any) -> None:
        super().__init__(model=model, device=device, threads=threads, **hyperparameters)
        self.model_name = str(model)
        self.device = device
        self.threads = int(threads)
        self.usage = Usage()
        self._identity: dict[str, str] = {}
        self._prompt_hashes: list[str] = []
        self._catalog: Catalog | None = None
        self._texts: list[str] = []

    # -- subclasses -------------------------------------------------------------------

    def load(self, ctx: FitContext) -> dict[str, str]:
        """Load the model; return its identity (models.py)."""
        raise NotImplementedError

    def decoding(self) -> str:
        """How outputs are produced, for `llm.decoding`."""
        raise NotImplementedError

    def prompt_parts(self) -> tuple[str, ...]:
        """Fixed text the submission adds to the task's template (hashed with it)."""
        return ()

    def prompt_tag(self) -> str:
        """`llm.prompt_hash` after fit: the default template hashed with prompt_parts()."""
        return prompt_hash(DEFAULT_TEMPLATE, *self.prompt_parts())

    # -- the contract -----------------------------------------------------------------

    def fit(self, train: TrainData, ctx: FitContext) -> None:
        with torch_threads(self.threads):
            identity = self.load(ctx)
        self._remember_catalog(train.catalog)
        self._identity = dict(identity) | {"llm.decoding": self.decoding(), "llm.prompt_hash": self.prompt_tag()}

    def report(self) -> ModelReport:
        return ModelReport(trainable_parameters=trainable_parameters(self),
                           tokens=self.usage.prompt_tokens + self.usage.continuation_tokens,
                           llm=dict(self._identity))

    # -- helpers ----------------------------------------------------------------------

    def require_candidates(self, request: ScoreRequest) -> None:
        if request.candidates is None:
            raise ValueError(f"{type(self).__name__} ranks a fixed candidate set per user; this request asks "
                             "for full ranking over the catalogue (candidates=None), which it does not support "
                             "(use a task with `candidates: {mode: sampled}`)")

    def as_text(self, request: ScoreRequest) -> tuple[list[list[str]], list[list[str]], str]:
        """(histories, candidates, template): the request's items as text and the prompt
        template in use, whose hash joins `llm.prompt_hash` the first time it is seen."""
        self.require_candidates(request)
        texts = self.item_texts(request.catalog)
        histories = [[texts[i] for i in h] for h in request.histories]
        candidates = [[texts[i] for i in row] for row in np.asarray(request.candidates)]
        template = request.prompt_template or DEFAULT_TEMPLATE
        digest = prompt_hash(template, *self.prompt_parts())
        if digest not in self._prompt_hashes:
            self._prompt_hashes.append(digest)
            self._identity["llm.prompt_hash"] = ",".join(self._prompt_hashes)
        return histories, candidates, template

    def item_texts(self, catalog: Catalog) -> list[str]:
        if catalog is not self._catalog:
            self._remember_catalog(catalog)
        return self._texts

    def _remember_catalog(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._texts = catalog.item_texts()


class TextScorer(TextModel):
    """A TextModel whose capability is `score`: one score per candidate."""

    def score_users(self, request: ScoreRequest, histories: list[list[str]],
                    candidates: list[list[str]], template: str) -> np.ndarray:
        raise NotImplementedError

    def score(self, request: ScoreRequest) -> np.ndarray:
        histories, candidates, template = self.as_text(request)
        with torch_threads(self.threads):
            scores = self.score_users(request, histories, candidates, template)
        return np.asarray(scores)


def per_user(values: Sequence[np.ndarray], n_candidates: int) -> np.ndarray:
    out = np.empty((len(values), n_candidates), dtype=np.float64)
    for row, v in enumerate(values):
        out[row] = v
    return out


class PointwiseLLM(Completes, TextScorer):
    """Each candidate scores the model's log-likelihood of its text after the prompt and
    an answer lead-in (pointwise.py); `shared_text` may put text shared by all users
    (in-context demonstrations) before each user's prompt."""

    def __init__(self, model: str = "smollm2", dtype: str = "auto", length_normalize: bool = False,
                 method: str = "tree", max_batch_tokens: int = 2048, answer_lead: str = ANSWER_LEAD,
                 users_per_batch: int | None = None, **hyperparameters) -> None:
        super().__init__(model=model, dtype=dtype, length_normalize=length_normalize, method=method,
                         max_batch_tokens=max_batch_tokens, answer_lead=answer_lead, **hyperparameters)
        self.users_per_batch = users_per_batch  # None: pointwise.default_users_per_batch (128 on a GPU, 1 on a CPU)
        self.dtype = dtype
        self.length_normalize = bool(length_normalize)
        self.method = method
        self.max_batch_tokens = int(max_batch_tokens)
        self.answer_lead = str(answer_lead)

    def load(self, ctx: FitContext) -> dict[str, str]:
        self.lm = load_causal_lm(self.model_name, self.device, self.dtype)
        self.network = self.lm.model  # frozen: 0 trainable parameters
        return self.lm.identity

    def decoding(self) -> str:
        how = "mean" if self.length_normalize else "sum"
        return f"pointwise log-likelihood ({how} over the candidate's tokens), prefix KV cache ({self.method})"

    def prompt_parts(self) -> tuple[str, ...]:
        return (self.answer_lead,)

    def shared_text(self, request: ScoreRequest, row: int, template: str) -> str:
        """Text of the prompt shared by all users (before the user's own prompt)."""
        return ""

    def score_users(self, request, histories, candidates, template) -> np.ndarray:
        usage = Usage()
        prompts = [model_prompt(self.lm.tokenizer, render(template, history, cands), self.answer_lead,
                                shared=self.shared_text(request, row, template))
                   for row, (history, cands) in enumerate(zip(histories, candidates))]
        batch = self.users_per_batch or default_users_per_batch(self.lm)
        if self.method == "tree" and batch > 1:  # several users per forward pass: a GPU's
            rows = score_users(self.lm, prompts, candidates, length_normalize=self.length_normalize,
                               users_per_batch=batch, max_batch_tokens=self.max_batch_tokens, usage=usage)
        else:
            rows = [score_candidates(self.lm, prompt, cands, length_normalize=self.length_normalize,
                                     method=self.method, max_batch_tokens=self.max_batch_tokens, usage=usage)
                    for prompt, cands in zip(prompts, candidates)]
        self.usage += usage
        return per_user(rows, request.n_candidates)
