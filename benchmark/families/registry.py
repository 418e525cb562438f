"""The family registry: name -> family object, in display order."""
from __future__ import annotations

from benchmark.families.base import TaskFamily
from benchmark.families.ctr import CTR
from benchmark.families.ranking import Sequential, TopK, ZeroShot

FAMILIES: dict[str, TaskFamily] = {f.name: f for f in (Sequential(), TopK(), CTR(), ZeroShot())}


def family(name: str) -> TaskFamily:
    """The family called `name`; a ValueError naming the known ones otherwise."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown task family {name!r}; known families: {', '.join(FAMILIES)}") from None


def family_order(name: str) -> tuple[int, str]:
    """Sort key: the registry's order, unknown names last."""
    names = list(FAMILIES)
    return (names.index(name) if name in names else len(names), name)
