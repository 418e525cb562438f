"""The exposure pass: popularity and item-side exposure of what the test pass put in
each user's top k (recorded during that pass; nothing is scored again)."""
from __future__ import annotations

import numpy as np

from benchmark.eval.trust import GROUP_NAMES, gini
from benchmark.trust import TrustRun


def applies(run: TrustRun) -> str | None:
    return None if run.recorded.users else "the test pass recorded no rankings"


def measure(run: TrustRun, spec) -> dict[str, float]:
    """ARP@k (mean training popularity of the top k), APLT@k (share of the top k in the
    long tail: outside the head), the Gini of the items' exposure over the catalogue,
    and the hit rate at k of test targets by their popularity group."""
    recorded = run.recorded
    k = recorded.k
    metrics = {f"trust.ARP@{k}": float(np.concatenate(recorded.arp).mean()),
               f"trust.APLT@{k}": float(np.concatenate(recorded.long_tail).mean()),
               f"trust.exposure_gini@{k}": gini(recorded.exposure)}
    for group, name in enumerate(GROUP_NAMES):
        if recorded.group_targets[group]:
            metrics[f"trust.hit@{k}.{name}"] = float(recorded.group_hits[group] / recorded.group_targets[group])
    return metrics
