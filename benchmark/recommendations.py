"""How the harness reads `recommend()`: one ranked list per user, of item ids or free
text, mapped onto the user's candidates, with output validity counted here rather than
by the model (a model cannot report its own hallucination rate).

A response is a list with one entry per user; an entry is text (str) or a sequence of
item ids (ints). Anything else breaks the contract and fails the run.

Text (`parse_ranking`), per entry of the output, first match wins:

1. exact: the entry equals a candidate's text;
2. the entry equals the text of a catalogue item that is not a candidate -> hallucinated;
3. normalised: equal after `normalize_title` (case, punctuation, articles, a trailing
   "(year)") to a candidate, else to a catalogue item (-> hallucinated);
4. fuzzy: difflib ratio >= FUZZY_CUTOFF (0.85) between normalised texts, the best
   candidate;
5. else the entry names something outside the catalogue -> hallucinated.

Entries are the output's list lines ("1. ...", "1) ...", "- ...", "* ..."); an output
with no list markers is read line by line, and lines that match nothing are then taken
as prose, not items. Item ids (`read_ids`) follow the same counts: an id that is not
one of the user's candidates is hallucinated (and off-candidate when it is a catalogue
item). Either way a candidate named again is a duplicate (its first mention counts), an
entry naming nothing is malformed, and candidates never named are missing: they share
the lowest score (`ranking_scores`), and the tie-aware metrics average over them.
"""
from __future__ import annotations

import copy

import difflib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from benchmark.api import Catalog, Recommendation, ScoreRequest
from benchmark.eval.trust import validity_rates
from benchmark.scoring import ContractViolation

# The harness's rule, the same for every model (it was a listwise model's hyperparameter).
FUZZY_CUTOFF = 0.85

# ---------------------------------------------------------------------------- texts

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
    """One user's entry read: `order` holds candidate indices, best first, each once."""

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


def _match(entry: str, candidates: TitleIndex, catalogue: TitleIndex | None,
           taken: set[int]) -> tuple[str, int | None]:
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
    best, best_ratio = None, FUZZY_CUTOFF
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
                  catalogue_texts: Sequence[str] | TitleIndex | None = None) -> ParsedRanking:
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
        kind, index = _match(entry, candidates, catalogue, taken)
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


def read_ids(ids: Sequence[int], candidates: Sequence[int], n_items: int) -> ParsedRanking:
    """A ranked list of item ids read like text: ids that are not candidates are
    hallucinated (off-candidate when they are catalogue items, 0..n_items-1)."""
    column = {}
    for index, item in enumerate(candidates):
        column.setdefault(int(item), index)
    parsed = ParsedRanking(order=[], named=[str(item) for item in ids])
    taken: set[int] = set()
    for item in ids:
        index = column.get(item)
        if index is None:
            parsed.hallucinated += 1
            parsed.off_candidates += 0 <= item < n_items
        elif index in taken:
            parsed.duplicates += 1
        else:
            taken.add(index)
            parsed.order.append(index)
    parsed.malformed = not parsed.named
    parsed.missing = len(candidates) - len(parsed.order)
    return parsed


def ranking_scores(parsed: ParsedRanking, n_candidates: int) -> np.ndarray:
    """Scores for the metrics: the k-th ranked candidate gets n - k (k = 0, 1, ...), every
    unranked candidate 0, the shared lowest score (a tie)."""
    scores = np.zeros(n_candidates, dtype=np.float32)
    for k, index in enumerate(parsed.order):
        scores[index] = n_candidates - k
    return scores


# ---------------------------------------------------------------------------- counts


@dataclass
class ValidityCounts:
    """Output validity summed over users (what `trust.*_rate` are computed from)."""

    users: int = 0
    hallucinated: int = 0
    off_candidates: int = 0
    duplicates: int = 0
    missing: int = 0
    malformed: int = 0
    compliant: int = 0
    items_named: int = 0

    @classmethod
    def of(cls, parsed: ParsedRanking) -> "ValidityCounts":
        return cls(users=1, hallucinated=parsed.hallucinated, off_candidates=parsed.off_candidates,
                   duplicates=parsed.duplicates, missing=parsed.missing, malformed=int(parsed.malformed),
                   compliant=int(parsed.compliant), items_named=len(parsed.named))

    def __iadd__(self, other: "ValidityCounts") -> "ValidityCounts":
        for name in (f.name for f in fields(self)):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def rates(self, n_candidates: int) -> dict[str, float]:
        """The trust metrics (benchmark.eval.trust.validity_rates); none without users."""
        return validity_rates(asdict(self), n_candidates) if self.users else {}


# ---------------------------------------------------------------------------- reading


def _violation(where: str, rule: str, detail: str) -> ContractViolation:
    return ContractViolation(f"{where}: rule '{rule}': {detail}")


class RecommendationReader:
    """Maps recommend() responses onto the candidates of one catalogue (its item texts
    indexed once)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.texts = catalog.item_texts()
        self.index = TitleIndex(self.texts)

    def read(self, outputs: object, request: ScoreRequest, where: str) -> tuple[np.ndarray, ValidityCounts]:
        """(scores [n_users, n_candidates] float32 as `ranking_scores` builds them, the
        validity counts of these users); ContractViolation for a malformed response."""
        if request.candidates is None:
            raise ValueError(f"{where}: recommend() ranks fixed candidate sets; this request has none "
                             "(full ranking goes through score())")
        candidates = np.asarray(request.candidates)
        if not isinstance(outputs, (list, tuple)):
            raise _violation(where, "type", "expected a list with one recommendation per user, got "
                             f"{type(outputs).__name__}")
        if len(outputs) != len(candidates):
            raise _violation(where, "length", f"expected {len(candidates)} recommendations (one per user), "
                             f"got {len(outputs)}")
        scores = np.empty(candidates.shape, dtype=np.float32)
        counts = ValidityCounts()
        for row, (entry, items) in enumerate(zip(outputs, candidates)):
            parsed = self._parse(_checked(entry, where, int(request.users[row])), items)
            scores[row] = ranking_scores(parsed, len(items))
            counts += ValidityCounts.of(parsed)
        return scores, counts

    def _parse(self, entry: str | list[int], items: np.ndarray) -> ParsedRanking:
        if isinstance(entry, str):
            return parse_ranking(entry, [self.texts[i] for i in items], self.index)
        return read_ids(entry, items.tolist(), self.catalog.n_items)


def _checked(entry: object, where: str, user: int) -> str | list[int]:
    """An entry as text or a list of Python ints; anything else breaks the contract."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, np.ndarray) or (isinstance(entry, Sequence) and not isinstance(entry, (bytes, bytearray))):
        ids = entry.tolist() if isinstance(entry, np.ndarray) else list(entry)
        bad = [x for x in ids if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer))]
        if not bad:
            return [int(x) for x in ids]
        detail = f"the list for user {user} holds {bad[0]!r} ({type(bad[0]).__name__}); item ids are ints"
    else:
        detail = f"the entry for user {user} is a {type(entry).__name__}"
    raise _violation(where, "recommendation", f"{detail}; expected text (str) or a sequence of item ids (ints)")


class RecommendationScorer:
    """A model's recommend() as a score() for the evaluators: each response read by a
    RecommendationReader, the validity counts summed over every call (`counts`). Errors
    name the submission when `name` is given."""

    def __init__(self, recommend: Callable[[ScoreRequest], list[Recommendation]], catalog: Catalog,
                 name: str | None = None) -> None:
        self.recommend = recommend
        self.reader = RecommendationReader(catalog)
        self.name = name
        self.calls = 0
        self.counts = ValidityCounts()

    def __call__(self, request: ScoreRequest) -> np.ndarray:
        if request.catalog is not self.reader.catalog:
            self.reader = RecommendationReader(request.catalog)
        where = f"recommend() call {self.calls}"
        if self.name is not None:
            where = f"submission '{self.name}': {where}"
        self.calls += 1
        scores, counts = self.reader.read(self.recommend(request), request, where)
        self.counts += counts
        return scores

    @classmethod
    def merged(cls, scorers: "Sequence[RecommendationScorer]") -> "RecommendationScorer":
        """The first scorer, holding the validity counts and calls of all (a sharded test pass)."""
        merged = copy.copy(scorers[0])
        merged.counts, merged.calls = ValidityCounts(), 0
        for scorer in scorers:
            merged.counts += scorer.counts
            merged.calls += scorer.calls
        return merged

    def rates(self, n_candidates: int) -> dict[str, float]:
        return self.counts.rates(n_candidates)
