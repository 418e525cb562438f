"""Listwise ranking: the model writes a ranked list of titles, which is parsed back into
the user's candidates.

Generation is batched across users (prompts padded on the left, greedy by default).
Parsing (`parse_ranking`), per output entry, first match wins:

1. exact: the entry equals a candidate's text;
2. the entry equals the text of a catalogue item that is not a candidate -> hallucinated;
3. normalised: equal after `normalize_title` (case, punctuation, articles, a trailing
   "(year)") to a candidate, else to a catalogue item (-> hallucinated);
4. fuzzy: difflib ratio >= `fuzzy_cutoff` (0.85) between normalised texts, the best
   candidate;
5. else the entry names something outside the catalogue -> hallucinated.

Entries are the output's list lines ("1. ...", "1) ...", "- ...", "* ..."); an output
with no list markers is read line by line, and lines that match nothing are then taken
as prose, not items. A candidate named again is a duplicate (its first mention counts).
An output without any entry is malformed. Candidates never named are missing: they
share the lowest score (`ranking_scores`), and the tie-aware metrics average over them.
"""
from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from benchmark.kits.llm.models import CausalLM
from benchmark.kits.llm.pointwise import Usage, prompt_ids

FUZZY_CUTOFF = 0.85
STAT_KEYS = ("users", "hallucinated", "off_candidates", "duplicates", "missing", "malformed",
             "compliant", "items_named", "tokens_in", "tokens_out")

# ------------------------------------------------------------------------- generation


def generate(lm: CausalLM, prompts: Sequence[str | Sequence[str]], max_new_tokens: int = 128,
             batch_size: int = 16, do_sample: bool = False, stop_strings: Sequence[str] = (),
             usage: Usage | None = None, **generation: object) -> list[str]:
    """The model's continuation of each prompt (text, special tokens removed), generated
    in batches of `batch_size` prompts padded on the left. Greedy unless `do_sample`;
    a sequence ends at an end-of-turn token, after `max_new_tokens`, or once it has
    written one of `stop_strings` (kept in the text). Further keyword arguments go to
    transformers' GenerationConfig (e.g. repetition_penalty)."""
    from transformers import GenerationConfig

    usage = usage if usage is not None else Usage()
    encoded = [[t for segment in prompt_ids(lm, p) for t in segment] for p in prompts]
    config = GenerationConfig(max_new_tokens=int(max_new_tokens), do_sample=do_sample,
                              pad_token_id=lm.pad_token_id, eos_token_id=lm.eos_token_ids,
                              stop_strings=list(stop_strings) or None,
                              **({} if do_sample else {"temperature": None, "top_p": None, "top_k": None}),
                              **generation)
    eos = set(lm.eos_token_ids)
    # Similar lengths together, so little padding is computed; outputs in input order.
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    outputs: list[str] = [""] * len(encoded)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            width = max(len(encoded[i]) for i in rows)
            ids = torch.full((len(rows), width), lm.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, i in enumerate(rows):
                n = len(encoded[i])
                ids[r, width - n:] = torch.tensor(encoded[i])
                mask[r, width - n:] = 1
            out = lm.model.generate(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device),
                                    generation_config=config, tokenizer=lm.tokenizer)
            new = out[:, width:].cpu()
            for r, i in enumerate(rows):
                tokens = new[r].tolist()
                n = next((k + 1 for k, t in enumerate(tokens) if t in eos), len(tokens))
                outputs[i] = lm.tokenizer.decode(tokens[:n], skip_special_tokens=True)
                usage.prompt_tokens += len(encoded[i])
                usage.continuation_tokens += n
            usage.computed_tokens += len(rows) * (width + new.shape[1])
    return outputs


# ---------------------------------------------------------------------------- parsing

_YEAR = re.compile(r"\s*\((?:\d{4}|\d{4}\s*-\s*\d{4})\)\s*$")
_TRAILING_ARTICLE = re.compile(r",\s*(the|a|an|la|le|les|il|el|der|die|das|l')\s*$", re.IGNORECASE)
_LEADING_ARTICLE = re.compile(r"^(the|a|an|la|le|les|il|el|der|die|das)\s+", re.IGNORECASE)
_MARKER = re.compile(r"^\s*(?:(?:\d+|[a-zA-Z])\s*[.):\]]|[-*\u2022\u2013]|#\d+[.:)]?)\s+")
_INLINE_MARKER = re.compile(r"(?:^|\s)\d+\s*[.)]\s+")
_DECORATION = " \t\"'`*_\u201c\u201d\u2018\u2019"


def normalize_title(text: str) -> str:
    """Lower case, accents and punctuation removed, a trailing "(year)" dropped, and an
    article moved to the end in catalogue style ("Usual Suspects, The") or leading
    ("The Usual Suspects") dropped."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).strip()
    text = _YEAR.sub("", text)
    # "Title, The (a.k.a. ...)" -> look at the part before a parenthesised alias too
    text = _TRAILING_ARTICLE.sub("", text)
    text = re.sub(r",\s*(the|a|an|la|le|les|il|el|der|die|das|l')\s*(?=\()", " ", text, flags=re.IGNORECASE)
    text = _LEADING_ARTICLE.sub("", text.strip())
    text = re.sub(r"[^\w\s]", " ", text.lower())
    return " ".join(text.split())


@dataclass
class ParsedRanking:
    """One output parsed: `order` holds candidate indices, best first, each once."""

    order: list[int]
    named: list[str] = field(default_factory=list)  # the entries read from the output
    hallucinated: int = 0  # entries that are not candidates (catalogue or not)
    off_candidates: int = 0  # ... of which catalogue items outside the candidate set
    duplicates: int = 0
    missing: int = 0
    malformed: bool = False

    @property
    def compliant(self) -> bool:
        return not self.malformed and self.hallucinated == 0

    def stats(self) -> dict[str, int]:
        return {"users": 1, "hallucinated": self.hallucinated, "off_candidates": self.off_candidates,
                "duplicates": self.duplicates, "missing": self.missing,
                "malformed": int(self.malformed), "compliant": int(self.compliant),
                "items_named": len(self.named)}


class TitleIndex:
    """Exact and normalised lookups of texts (candidates or the catalogue)."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = list(texts)
        self.exact: dict[str, int] = {}
        self.normal: dict[str, list[int]] = {}
        self.normalized: list[str] = []
        for i, text in enumerate(self.texts):
            self.exact.setdefault(text.strip(), i)
            key = normalize_title(text)
            self.normalized.append(key)
            self.normal.setdefault(key, []).append(i)


def _entries(text: str) -> tuple[list[str], bool]:
    """(entries, listed): list lines without their markers; listed is False when the
    output had no list markers (then every non-empty line is an entry)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) == 1 and len(_INLINE_MARKER.findall(lines[0])) >= 2:  # "1. A 2. B 3. C"
        lines = [part for part in _INLINE_MARKER.split(lines[0]) if part.strip()]
        return [_clean(_strip_markers(line)) for line in lines], True
    marked = [line for line in lines if _MARKER.match(line)]
    if marked:
        return [_clean(_strip_markers(line)) for line in marked], True
    return [_clean(line) for line in lines], False


def _strip_markers(line: str) -> str:
    """"2. 2. Title" -> "Title" (models sometimes repeat the number)."""
    while True:
        stripped = _MARKER.sub("", line, count=1)
        if stripped == line or not stripped.strip():
            return line
        line = stripped


def _clean(entry: str) -> str:
    entry = entry.strip().strip(_DECORATION).strip()
    return entry.rstrip(".,;").strip(_DECORATION)


def _variants(entry: str) -> list[str]:
    """The entry, and its part before an explanation ("Title - because ...")."""
    out = [entry]
    for sep in (" - ", " \u2013 ", " \u2014 ", ": "):
        if sep in entry:
            head = _clean(entry.split(sep, 1)[0])
            if head and head not in out:
                out.append(head)
    return out


def _match(entry: str, candidates: TitleIndex, catalogue: TitleIndex | None, taken: set[int],
           fuzzy_cutoff: float) -> tuple[str, int | None]:
    """("candidate", index) | ("catalogue", None) | ("none", None)."""
    variants = _variants(entry)
    for v in variants:
        if v in candidates.exact:
            return "candidate", candidates.exact[v]
        if catalogue is not None and v in catalogue.exact:
            return "catalogue", None
    for v in variants:
        key = normalize_title(v)
        if not key:
            continue
        if key in candidates.normal:
            hits = candidates.normal[key]
            return "candidate", next((i for i in hits if i not in taken), hits[0])
        if catalogue is not None and key in catalogue.normal:
            return "catalogue", None
    best, best_ratio = None, fuzzy_cutoff
    for v in variants:
        key = normalize_title(v)
        if not key:
            continue
        matcher = difflib.SequenceMatcher(None, autojunk=False)
        matcher.set_seq2(key)
        for i, other in enumerate(candidates.normalized):
            matcher.set_seq1(other)
            if matcher.real_quick_ratio() < best_ratio or matcher.quick_ratio() < best_ratio:
                continue
            ratio = matcher.ratio()
            if ratio >= best_ratio and (best is None or ratio > best_ratio or i not in taken):
                best, best_ratio = i, ratio
    if best is not None:
        return "candidate", best
    return "none", None


def parse_ranking(text: str, candidate_texts: Sequence[str] | TitleIndex,
                  catalogue_texts: Sequence[str] | TitleIndex | None = None,
                  fuzzy_cutoff: float = FUZZY_CUTOFF) -> ParsedRanking:
    """Read a generated ranking into candidate indices (see the module's doc for the
    rules). `catalogue_texts` (all item texts, or a prebuilt TitleIndex) tells a real
    item outside the candidates from an invented one; both count as hallucinated."""
    candidates = candidate_texts if isinstance(candidate_texts, TitleIndex) else TitleIndex(candidate_texts)
    catalogue = (catalogue_texts if isinstance(catalogue_texts, TitleIndex) or catalogue_texts is None
                 else TitleIndex(catalogue_texts))
    entries, listed = _entries(text)
    parsed = ParsedRanking(order=[])
    taken: set[int] = set()
    for entry in entries:
        if not entry:
            continue
        kind, index = _match(entry, candidates, catalogue, taken, fuzzy_cutoff)
        if kind == "none" and not listed:
            continue  # prose around an unmarked answer
        parsed.named.append(entry)
        if kind == "candidate":
            if index in taken:
                parsed.duplicates += 1
            else:
                taken.add(index)
                parsed.order.append(index)
        else:
            parsed.hallucinated += 1
            parsed.off_candidates += kind == "catalogue"
    parsed.malformed = not parsed.named
    parsed.missing = len(candidates.texts) - len(parsed.order)
    return parsed


def ranking_scores(parsed: ParsedRanking, n_candidates: int) -> np.ndarray:
    """Scores for the harness: the k-th ranked candidate gets n - k (k = 0, 1, ...), every
    unranked candidate 0, the shared lowest score (a tie)."""
    scores = np.zeros(n_candidates, dtype=np.float32)
    for k, index in enumerate(parsed.order):
        scores[index] = n_candidates - k
    return scores


def empty_stats() -> dict[str, int]:
    """The per-run counters of a listwise model (`llm_stats`), all zero."""
    return {key: 0 for key in STAT_KEYS}
