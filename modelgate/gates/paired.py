"""Statistics of per-sample records: pure, (id, score) pairs in, numbers out.

``records_stats`` is what gate_run checks of one task's records; ``paired_stats`` is the
standard error of candidate - baseline over the ids both runs scored. Paired differences have a
far smaller standard error than two independent scores when the models agree, which is what lets
a few hundred samples resolve a 1 % threshold.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

# One-sided 95 % "rule of three": with no discordant pair among n, the discordance rate is
# still only bounded by 3/n. The standard error never goes below span * 3 / (Z_FLOOR * n), so
# perfect agreement on a tiny sample cannot claim more certainty than the sample holds.
RULE_OF_THREE = 3.0
Z_FLOOR = 1.645


def records_stats(pairs: Iterable[tuple[Any, float]], invalid: int = 0) -> dict:
    """{"count", "duplicate_ids", "invalid", "mean"} of one task's records (what gate_run checks)."""
    pairs = list(pairs)
    ids = [i for i, _ in pairs]
    mean = math.fsum(s for _, s in pairs) / len(pairs) if pairs else None
    return {"count": len(pairs) + invalid, "duplicate_ids": len(ids) - len(set(ids)), "invalid": invalid,
            "mean": mean}


def paired_stats(baseline: Iterable[tuple[Any, float]], candidate: Iterable[tuple[Any, float]],
                 span: float | None) -> dict | None:
    """{"n", "mean_diff", "stderr_diff"} of candidate - baseline over the ids both have.

    ``span`` is the largest possible per-sample difference (1 for unit scores, 100 for
    percent, None for unbounded: no rule-of-three floor). None when fewer than 2 pairs.
    """
    b = dict(baseline)
    c = dict(candidate)
    common = sorted(set(b) & set(c), key=lambda k: (str(type(k)), k))
    n = len(common)
    if n < 2:
        return None
    diffs = [c[k] - b[k] for k in common]
    mean = math.fsum(diffs) / n
    var = math.fsum((d - mean) ** 2 for d in diffs) / (n - 1)
    se = math.sqrt(var / n)
    if span is not None:
        se = max(se, span * RULE_OF_THREE / (Z_FLOOR * n))
    return {"n": n, "mean_diff": mean, "stderr_diff": se}
