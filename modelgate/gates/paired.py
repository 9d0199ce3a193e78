"""Statistics of per-sample records: pure, (id, score) pairs in, numbers out.

``records_stats`` is what gate_run checks of one task's records; ``paired_stats`` is the
standard error of candidate - baseline over the samples both runs scored. Paired differences have a
far smaller standard error than two independent scores when the models agree, which is what lets
a few hundred samples resolve a 1 % threshold. Sample ids are normalised to one type first
(``sample_key``): an id written ``0`` in one run and ``"0"`` in the other is one sample.
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


def sample_key(sample_id: Any) -> str:
    """A sample id in the one type pairing uses: its decimal text for an integer, the string itself
    otherwise (``0`` and ``"0"`` are the same sample)."""
    return str(sample_id)


def rule_of_three_floor(span: float, n: int) -> float:
    """The smallest standard error ``n`` samples can claim on a score spanning ``span``."""
    return span * RULE_OF_THREE / (Z_FLOOR * n)


def _mean(values: list[float]) -> float:
    """The exact mean; NaN when the sum leaves the float range (scores near 1e308 on an unbounded
    scale), which every gate then refuses as not finite."""
    try:
        return math.fsum(values) / len(values)
    except (OverflowError, ValueError):
        return math.nan


def records_stats(pairs: Iterable[tuple[Any, float]], invalid: int = 0) -> dict:
    """{"count", "duplicate_ids", "invalid", "mean", "min", "max"} of one task's records (what gate_run
    checks: the count, unique ids after normalisation, the mean and the range of the scores)."""
    pairs = list(pairs)
    keys = [sample_key(i) for i, _ in pairs]
    scores = [s for _, s in pairs]
    mean = _mean(scores) if scores else None
    return {"count": len(pairs) + invalid, "duplicate_ids": len(keys) - len(set(keys)), "invalid": invalid,
            "mean": mean, "min": min(scores) if scores else None, "max": max(scores) if scores else None}


def paired_stats(baseline: Iterable[tuple[Any, float]], candidate: Iterable[tuple[Any, float]],
                 span: float | None) -> dict:
    """{"n", "baseline_only", "candidate_only", "mean_diff", "stderr_diff"} of candidate - baseline
    over the sample ids both runs scored (ids normalised by ``sample_key``).

    ``baseline_only`` / ``candidate_only`` count the ids one run scored and the other did not: the
    comparison judges pairing only when both are 0 (the runs scored the same samples). ``span`` is
    the largest possible per-sample difference (1 for unit scores, 100 for percent, None for
    unbounded: no rule-of-three floor). ``mean_diff`` is None with no common id; ``stderr_diff``
    is None when it cannot be estimated (no common id, or one on an unbounded scale).
    """
    b = {sample_key(k): v for k, v in baseline}
    c = {sample_key(k): v for k, v in candidate}
    common = sorted(set(b) & set(c))
    n = len(common)
    out = {"n": n, "baseline_only": len(set(b) - set(c)), "candidate_only": len(set(c) - set(b)),
           "mean_diff": None, "stderr_diff": None}
    if n == 0:
        return out
    diffs = [c[k] - b[k] for k in common]
    mean = _mean(diffs)
    out["mean_diff"] = mean
    if n >= 2:
        var = _mean([(d - mean) * (d - mean) for d in diffs]) * n / (n - 1)
        se = math.sqrt(var / n)  # NaN or inf stays so: the comparison refuses it
    else:
        se = 0.0 if span is not None else None  # one pair: only the floor can speak
    if se is not None and span is not None:
        se = max(se, rule_of_three_floor(span, n))
    out["stderr_diff"] = se
    return out
