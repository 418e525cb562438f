"""Task families: one class per family (sequential, topk, ctr, zeroshot) owning what
differs between them. Everything else in the harness asks the family; outside this
package and the task schema's discriminator nothing tests a family's name.

`family(name)` gives the family object; `FAMILIES` lists them in display order.
"""
from __future__ import annotations

from benchmark.families.base import TaskFamily
from benchmark.families.registry import FAMILIES, family, family_order

__all__ = ["FAMILIES", "TaskFamily", "family", "family_order"]
