"""The trust figures of leaderboard rows, pure pandas (no Streamlit): the sections they
fall into (what each measures and what is good), the tables of a section, the
plain-words readings of one row, and the per-row trust card that the Trust card page
and the static export show. Metric names are those of docs/trust.md."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark.eval.registry import display_digits
from benchmark.eval.significance import ALPHA
from leaderboard import tables
from leaderboard.tables import MEMORIZATION_METRIC, MEMORIZATION_THRESHOLD


@dataclass(frozen=True)
class TrustSection:
    key: str
    title: str
    caption: str  # what it measures and what is good
    pattern: str  # the metric names it holds (re.fullmatch)
    prefix: str = ""  # left out of the names shown (stated in the caption)
    per_attribute: bool = False  # one table per attribute (the name's part after the prefix)
    first: tuple[str, ...] = ()  # shown names that lead their table, in this order


SECTIONS = (
    TrustSection("position", "Position bias",
                 "Does an LLM ranker prefer candidates by their place in the prompt? PosGap: the main score's "
                 "largest minus smallest over the target's positions (0 is good); kendall_tau: agreement of the "
                 "rankings of the same candidates in shuffled orders (1 is good).",
                 r"trust\.(PosGap|kendall_tau)"),
    TrustSection("validity", "Output validity",
                 "Listwise LLM answers: hallucination_rate (named items that are not candidates), duplicate, "
                 "missing and malformed rates (0 is good); compliance: share of answers in the asked format "
                 "(1 is good).",
                 r"trust\.(hallucination_rate|compliance|duplicate_rate|missing_rate|malformed_rate)"),
    TrustSection("popularity", "Popularity bias",
                 "ARP@K: average popularity (training interactions) of the recommended items (lower is less "
                 "popularity-biased); ItemCoverage@K: share of the catalogue recommended to anyone (higher "
                 "spreads exposure).",
                 r"(ARP|ItemCoverage|APLT|Gini)@\d+"),
    TrustSection("exposure", "Exposure",
                 "Item-side exposure of the test pass's top k: ARP (mean training popularity; lower is less "
                 "popularity-biased), APLT (share of long-tail items, outside the head; higher spreads "
                 "exposure), exposure_gini over the catalogue (0: every item equally exposed, 1: one item takes "
                 "all), and the hit rate of test targets by popularity group (head / mid / tail: close values "
                 "mean the tail is served as well as the head).",
                 r"trust\.(ARP|APLT|exposure_gini|hit)@.*"),
    TrustSection("fairness", "User-side fairness",
                 "The main score per group of a sensitive user attribute (trust.fairness.<attribute>.…): gap = "
                 "largest minus smallest group mean (0 is good), ratio = smallest over largest (1 is good), p = "
                 "permutation test of the gap (group labels shuffled over users; p ≥ 0.05: no evidence of a "
                 "gap), groups = groups compared, then each group's mean score.",
                 r"trust\.fairness\..+", "trust.fairness.", per_attribute=True,
                 first=("gap", "ratio", "p", "groups")),
    TrustSection("counterfactual", "Counterfactual fairness",
                 "The user's prompt with a sensitive attribute stated (\"The user is a woman.\") against the "
                 "neutral prompt, same candidates (trust.counterfactual.<attribute>.…): Jaccard@k and rank-biased "
                 "overlap (rbo) of the two rankings, mean over the attribute's values (1 is good: the attribute "
                 "changes nothing); snsr and snsv = range and std of the Jaccard similarity over the values "
                 "(FaiRLLM; 0 is good); then each value's. Models that do not read prompt text score 1 and 0 by "
                 "construction.",
                 r"trust\.counterfactual\..+", "trust.counterfactual.", per_attribute=True),
    TrustSection("robustness", "Robustness",
                 "Test-time perturbations of the histories (trust.robustness.<perturbation>.…): drop (a share of "
                 "the items removed), shuffle (order permuted), insert (random items added), typos (in item "
                 "titles: text models). drop = relative drop of the main score, (base − perturbed) / base: 0 is "
                 "robust, negative means it improved; score = the perturbed main score.",
                 r"trust\.robustness\..+", "trust.robustness."),
    TrustSection("attacks", "Attacks",
                 "Poisoning (models that train; trust.attack.poisoning.…): fake users with target items added to "
                 "the training data, the model fitted again; before / after = the targets' hit rate at k over real "
                 "users, gain = after − before (0 is good). Text attack (trust.attack.text.…): a promotional "
                 "phrase appended to one candidate's title; gain = its mean rank gain in positions (0 is good; "
                 "0 by construction for models that do not read titles).",
                 r"trust\.attack\..+", "trust.attack.", first=("poisoning.gain", "text.gain")),
    TrustSection("memorization", "Memorization",
                 "Probes in the spirit of LLM-MemoryInspector (trust.memorization.…): share of item titles "
                 "(item_rate) and of users' next items (user_rate) the model reproduces from their ids, nearly or "
                 "exactly (…_exact_rate). Low is good; an item_rate of at least "
                 f"{MEMORIZATION_THRESHOLD:.0%} flags the row ({tables.MEMORIZED_MARK}): its zero-shot numbers may "
                 "come from having seen the data.",
                 r"trust\.memorization\..+", "trust.memorization.",
                 first=("item_rate", "item_exact_rate", "user_rate", "user_exact_rate")),
    TrustSection("cost", "Cost of the trust passes",
                 "Seconds each trust pass added to the run (cost.trust_seconds.<pass>) and their total; seconds "
                 "compare only between runs on the same device. Lower is cheaper.",
                 r"cost\.trust_seconds(\..+)?", "cost.trust_seconds.", first=("total",)),
)
OTHER = TrustSection("other", "Other trust metrics", "Trust metrics logged under other names.", r"trust\..+")
CURVE = re.compile(r"trust\.pos_[^.]+\..+")  # drawn as the position-bias curve, not tabled


def metric_names(board: pd.DataFrame) -> list[str]:
    """The mean columns of a board (every logged metric, not its ` std`)."""
    return sorted(c for c in board.columns if f"{c} std" in board.columns)


def section_of(metric: str) -> TrustSection | None:
    """The section a metric is shown in (None: not a trust figure)."""
    if CURVE.fullmatch(metric):
        return None
    return next((s for s in (*SECTIONS, OTHER) if re.fullmatch(s.pattern, metric)), None)


def shown_name(section: TrustSection, metric: str) -> str:
    """The metric without the section's prefix ("total" for the prefix's own metric)."""
    return "total" if section.prefix and metric == section.prefix[:-1] else metric.removeprefix(section.prefix)


def section_tables(section: TrustSection, metrics: list[str]) -> dict[str, list[str]]:
    """The section's metrics as tables: {attribute: metrics} for per-attribute sections,
    else {"": metrics}; each table's `first` names lead, then the others, undotted names
    (an attribute's own figures) before dotted ones (its groups' or values')."""
    groups: dict[str, list[str]] = {}
    for metric in sorted(m for m in metrics if section_of(m) is section):
        attribute = shown_name(section, metric).split(".", 1)[0] if section.per_attribute else ""
        groups.setdefault(attribute, []).append(metric)

    def order(metric: str) -> tuple:
        name = shown_name(section, metric)
        name = name.split(".", 1)[1] if section.per_attribute and "." in name else name
        leading = section.first.index(name) if name in section.first else len(section.first)
        return leading, "." in name, name

    return {attribute: sorted(group, key=order) for attribute, group in sorted(groups.items())}


def shown_sections(board: pd.DataFrame) -> list[tuple[TrustSection, dict[str, list[str]]]]:
    """The sections with a logged metric (any row not NaN), in SECTIONS order, then OTHER."""
    logged = [m for m in metric_names(board) if board[m].notna().any()]
    shown = []
    for section in (*SECTIONS, OTHER):
        groups = section_tables(section, logged)
        if groups:
            shown.append((section, groups))
    return shown


def has_trust(board: pd.DataFrame) -> pd.Series:
    """Rows that logged any trust.* metric."""
    columns = tables.trust_metrics(board)
    return board[columns].notna().any(axis=1) if columns else pd.Series(False, index=board.index)


# ---------------------------------------------------------------- plain-words readings


def _value(row: pd.Series, metric: str) -> float | None:
    value = row.get(metric)
    return float(value) if value is not None and pd.notna(value) else None


def _matching(row: pd.Series, pattern: str) -> dict[tuple[str, ...], float]:
    """{regex groups: mean} of the row's logged metrics whose name matches `pattern`."""
    found = {}
    for name in row.index:
        match = re.fullmatch(pattern, str(name))
        value = _value(row, name) if match and not str(name).endswith(" std") else None
        if value is not None:
            found[match.groups()] = value
    return dict(sorted(found.items()))


def _position(row: pd.Series) -> list[str]:
    gap, tau = _value(row, "trust.PosGap"), _value(row, "trust.kendall_tau")
    if gap is None and tau is None:
        return []
    parts = [f"the main score varies by {gap:.3g} over the target's positions"] if gap is not None else []
    if tau is not None:
        parts.append(f"rankings under shuffled candidate orders agree at Kendall tau {tau:.2f}")
    return ["position bias: " + "; ".join(parts)]


def _validity(row: pd.Series) -> list[str]:
    hallucination, compliance = _value(row, "trust.hallucination_rate"), _value(row, "trust.compliance")
    parts = []
    if hallucination is not None:
        parts.append(f"{hallucination:.1%} of the named items are not candidates")
    if compliance is not None:
        parts.append(f"{compliance:.0%} of the answers follow the asked format")
    return ["output: " + "; ".join(parts)] if parts else []


def _exposure(row: pd.Series) -> list[str]:
    lines = []
    for (k,), aplt in _matching(row, r"trust\.APLT@(\d+)").items():
        gini = _value(row, f"trust.exposure_gini@{k}")
        lines.append(f"exposure: {aplt:.0%} of the top {k} are long-tail items"
                     + (f", exposure Gini {gini:.2f}" if gini is not None else ""))
    hits = _matching(row, r"trust\.hit@(\d+)\.(head|mid|tail)")
    for k in dict.fromkeys(k for k, _ in hits):
        groups = {group: value for (kk, group), value in hits.items() if kk == k}
        shown = ", ".join(f"{g} {groups[g]:.3g}" for g in ("head", "mid", "tail") if g in groups)
        lines.append(f"hit rate at {k} of test targets by popularity: {shown}")
    return lines


def _fairness(row: pd.Series) -> list[str]:
    lines = []
    for (attribute,), gap in _matching(row, r"trust\.fairness\.([^.]+)\.gap").items():
        p = _value(row, f"trust.fairness.{attribute}.p")
        if p is None:
            lines.append(f"{attribute} gap {gap:.3g} (not tested)")
            continue
        if p >= ALPHA:
            lines.append(f"{attribute} gap {gap:.3g} (p={p:.2g}): no evidence of a gap")
            continue
        groups = {g: v for (a, g), v in _matching(row, r"trust\.fairness\.([^.]+)\.group\.(.+)").items()
                  if a == attribute}
        extremes = (f"; lowest {min(groups, key=groups.get)} ({min(groups.values()):.3g}), highest "
                    f"{max(groups, key=groups.get)} ({max(groups.values()):.3g})") if groups else ""
        lines.append(f"{attribute} gap {gap:.3g} (p={p:.2g}): the groups' scores differ{extremes}")
    return lines


def _counterfactual(row: pd.Series) -> list[str]:
    lines = []
    for (attribute, k), jaccard in _matching(row, r"trust\.counterfactual\.([^.]+)\.jaccard@(\d+)").items():
        if jaccard >= 0.999:
            lines.append(f"stating the {attribute} leaves the top {k} unchanged (Jaccard@{k} 1; also by "
                         "construction for models that do not read the prompt)")
            continue
        snsr = _value(row, f"trust.counterfactual.{attribute}.snsr")
        spread = f", SNSR {snsr:.3g} across its values" if snsr is not None else ""
        lines.append(f"stating the {attribute} changes the top {k}: Jaccard@{k} {jaccard:.2f} with the neutral "
                     f"ranking{spread}")
    return lines


PERTURBATIONS = {"drop": "dropping history items", "shuffle": "shuffling the history",
                 "insert": "inserting random items", "typos": "typos in the titles"}


def _robustness(row: pd.Series) -> list[str]:
    lines = []
    for (perturbation,), drop in _matching(row, r"trust\.robustness\.([^.]+)\.drop").items():
        change = ("is unchanged" if abs(drop) < 0.005 else
                  f"{'drops' if drop > 0 else 'rises'} by {abs(drop):.1%}")
        lines.append(f"{PERTURBATIONS.get(perturbation, perturbation)}: the main score {change}")
    return lines


def _attacks(row: pd.Series) -> list[str]:
    lines = []
    gain = _value(row, "trust.attack.poisoning.gain")
    if gain is not None:
        before, after = _value(row, "trust.attack.poisoning.before"), _value(row, "trust.attack.poisoning.after")
        moved = f" from {before:.3g} to {after:.3g}" if before is not None and after is not None else ""
        lines.append(f"poisoning: the target items' hit rate goes{moved} (gain {gain:+.3g})")
    gain = _value(row, "trust.attack.text.gain")
    if gain is not None:
        lines.append("text attack: the promoted candidate does not move (0 by construction for models that do not "
                     "read titles)" if abs(gain) < 1e-9 else
                     f"text attack: the promoted candidate moves {'up' if gain > 0 else 'down'} {abs(gain):.3g} "
                     "positions on average")
    return lines


def _memorization(row: pd.Series) -> list[str]:
    item, user = _value(row, MEMORIZATION_METRIC), _value(row, "trust.memorization.user_rate")
    lines = []
    if item is not None:
        threshold = f"{MEMORIZATION_THRESHOLD:.0%}"
        verdict = (f"at least {threshold}: flagged, its zero-shot numbers may come from having seen the data"
                   if item >= MEMORIZATION_THRESHOLD else f"below the {threshold} flag")
        lines.append(f"memorization: reproduces {item:.0%} of the item titles from their ids ({verdict})")
    if user is not None:
        lines.append(f"memorization: completes {user:.0%} of the users' next items from their histories")
    return lines


READINGS = (_position, _validity, _exposure, _fairness, _counterfactual, _robustness, _attacks, _memorization)


def readings(row: pd.Series) -> list[str]:
    """One row's trust figures in plain words ("gender gap 0.03 (p=0.41): no evidence of
    a gap"), from the means over seeds."""
    return [line for reading in READINGS for line in reading(row)]


# ---------------------------------------------------------------- the trust card


@dataclass
class TrustCard:
    """One row's trust figures for one task, beside its main score."""

    experiment: str
    label: str  # submission@version [variant]
    submission: str
    paradigm: str
    provenance: str
    main_score: str
    score: str  # mean ± std
    seeds: int
    memorized: bool
    readings: list[str]
    sections: list[tuple[TrustSection, dict[str, pd.DataFrame]]]  # per table: figure, mean ± std


def _digits(metric: str) -> int:
    return 0 if metric.endswith(".groups") else display_digits(metric)  # a count


def figure_table(row: pd.Series, section: TrustSection, metrics: list[str]) -> pd.DataFrame:
    """A card's table: the figure's shown name and its mean ± std over seeds."""
    shown = [m for m in metrics if pd.notna(row.get(m))]
    return pd.DataFrame({"figure": [shown_name(section, m) for m in shown],
                         "mean ± std": [tables.mean_std(row[m], row.get(f"{m} std", np.nan), _digits(m))
                                        for m in shown]})


def card(board: pd.DataFrame, index: int) -> TrustCard:
    """The trust card of the board's row at `index`."""
    row = board.loc[index]
    sections = []
    for section, groups in shown_sections(board.loc[[index]]):
        frames = {attribute: figure_table(row, section, metrics) for attribute, metrics in groups.items()}
        sections.append((section, frames))
    main = str(row["main_score"])
    return TrustCard(experiment=str(row["experiment"]), label=tables.row_label(row), submission=str(row["submission"]),
                     paradigm=str(row["paradigm"]), provenance=str(row["provenance"]), main_score=main,
                     score=tables.mean_std(row["score"], row["score_std"], display_digits(main)),
                     seeds=int(row["seeds"]), memorized=bool(row["memorized"]), readings=readings(row),
                     sections=sections)


def cards(board: pd.DataFrame) -> list[TrustCard]:
    """The trust cards of a board's rows that logged trust metrics, in rank order."""
    return [card(board, index) for index in board.index[has_trust(board)]]
