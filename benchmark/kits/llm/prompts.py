"""Prompts: Jinja templates over a user's history and candidates as text, optional
in-context demonstrations from other users, and the chat framing of the model.

A template sees `history` and `candidates` (lists of item texts, oldest history first,
candidates in the request's column order). Rendering is strict: an unknown variable is
an error, and nothing is HTML-escaped.

Chat framing (decided here, see docs/llm.md): when the tokenizer has a chat template
(SmolLM2-Instruct has one), the rendered prompt is the single user message and the
model's answer starts after the assistant header; demonstrations go inside that user
message, before the user's own prompt. Without a chat template the prompt is plain
text followed by a newline.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import jinja2
import numpy as np

from benchmark.api.types import TrainData

# After LLMRank (Hou et al., ECIR 2024, "Large Language Models are Zero-Shot Rankers for
# Recommender Systems"), sequential prompt.
DEFAULT_TEMPLATE = (
    "I've watched the following movies in the past in order:\n"
    "{% for h in history %}{{ loop.index }}. {{ h }}\n{% endfor %}\n"
    "Now there are {{ candidates|length }} candidate movies that I can watch next:\n"
    "{% for c in candidates %}{{ loop.index }}. {{ c }}\n{% endfor %}"
    "Please rank these {{ candidates|length }} movies by measuring the possibilities that "
    "I would like to watch next most, according to my watching history."
)
# Pointwise scoring: the answer's lead-in, after which each candidate's text is scored.
ANSWER_LEAD = "The movie I would watch next is:"
DEMONSTRATION_HEADER = "Here are examples from other users, each with the movie they watched next.\n\n"
DEMONSTRATION_BLOCK = "Example {index}:\n{prompt}\nAnswer: {answer}\n\n"
OWN_PROMPT_HEADER = "Now my own history:\n"

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


@lru_cache(maxsize=32)
def _compile(template: str) -> jinja2.Template:
    try:
        return _ENV.from_string(template)
    except jinja2.TemplateSyntaxError as error:
        raise ValueError(f"prompt template: line {error.lineno}: {error.message}") from None


@dataclass(frozen=True)
class Demonstration:
    """One worked example for in-context prompting, from another user's training data."""

    user: int
    history: tuple[str, ...]
    candidates: tuple[str, ...]
    answer: str


def render(template: str, history: Sequence[str], candidates: Sequence[str],
           demonstrations: Sequence[Demonstration] | None = None) -> str:
    """The user-side prompt: the template rendered for this user, preceded by each
    demonstration rendered with the same template and followed by its answer."""
    own = _compile(template).render(history=list(history), candidates=list(candidates))
    return demonstrations_text(template, demonstrations) + own


def demonstrations_text(template: str, demonstrations: Sequence[Demonstration] | None) -> str:
    """The text that `render` puts before the user's own prompt ("" without demonstrations)."""
    if not demonstrations:
        return ""
    compiled = _compile(template)
    blocks = [
        DEMONSTRATION_BLOCK.format(index=i, answer=f"{ANSWER_LEAD} {d.answer}",
                                   prompt=compiled.render(history=list(d.history),
                                                          candidates=list(d.candidates)))
        for i, d in enumerate(demonstrations, start=1)
    ]
    return DEMONSTRATION_HEADER + "".join(blocks) + OWN_PROMPT_HEADER


def prompt_hash(template: str, *extra: str) -> str:
    """sha256 (hex) of the template, and of any fixed text the submission adds to it
    (answer lead-in, instructions), separated by NUL bytes."""
    return hashlib.sha256("\0".join((template, *extra)).encode()).hexdigest()


def chat_frame(tokenizer: Any) -> tuple[str, str]:
    """(head, tail) around a single user message: the chat template applied to a user
    turn with the generation prompt; ("", "\\n") for a model without a chat template."""
    if not getattr(tokenizer, "chat_template", None):
        return "", "\n"
    sentinel = "\x00USER\x00"
    text = tokenizer.apply_chat_template([{"role": "user", "content": sentinel}], tokenize=False,
                                         add_generation_prompt=True)
    head, _, tail = text.partition(sentinel)
    return head, tail


def model_prompt(tokenizer: Any, user_prompt: str, answer_prefix: str = "",
                 shared: str = "") -> list[str]:
    """The model's input as text segments: [chat head + `shared`, the user's prompt + chat
    tail + `answer_prefix`]. The first segment is the same for every user of a run (it
    holds the demonstrations of in-context prompting), so its KV cache is computed once
    and reused (pointwise.py). Segments are tokenized separately and concatenated."""
    head, tail = chat_frame(tokenizer)
    return [head + shared, user_prompt + tail + answer_prefix]


def sample_demonstrations(train: TrainData, n: int, rng: np.random.Generator,
                          n_candidates: int = 20, history_len: int = 20,
                          exclude_users: Sequence[int] = ()) -> list[Demonstration]:
    """`n` demonstrations from distinct users' training sequences: each user's last
    training item is the answer, the up to `history_len` items before it the history, and
    the candidates are the answer plus `n_candidates - 1` items the user never had, drawn
    uniformly from the catalogue, in a random order."""
    texts = train.catalog.item_texts()
    sequences = train.sequences()
    excluded = set(int(u) for u in exclude_users)
    eligible = [u for u, s in enumerate(sequences) if len(s) >= 2 and u not in excluded]
    if len(eligible) < n:
        raise ValueError(f"in-context demonstrations: {n} wanted, only {len(eligible)} users "
                         "have two or more training interactions")
    chosen = rng.choice(np.asarray(eligible), size=n, replace=False)
    out = []
    for user in chosen:
        sequence = sequences[int(user)]
        answer = int(sequence[-1])
        history = sequence[:-1][-history_len:]
        pool = np.setdiff1d(np.arange(train.n_items), sequence)
        k = min(n_candidates - 1, len(pool))
        negatives = rng.choice(pool, size=k, replace=False)
        candidates = rng.permutation(np.concatenate([[answer], negatives]))
        out.append(Demonstration(int(user), tuple(texts[i] for i in history),
                                 tuple(texts[i] for i in candidates), texts[answer]))
    return out
