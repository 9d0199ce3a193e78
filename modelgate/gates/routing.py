"""Routing decisions: pure. Whether a query's best-scoring skill clears the router's bar, and
whether a routing-eval run meets the thresholds of ``evals/routing-config.json``.

The routers (``modelgate.routing``) score a query against each skill; ``routed_label`` decides
from those scores. ``gate_checks`` turns per-split accuracy and false-trigger counts into checks.
Thresholds are compared with a tolerance (``ROUTE_TOL``), never with raw float comparisons.
"""
from __future__ import annotations

from collections.abc import Mapping

from modelgate.contract import check
from modelgate.gates.values import ge_tol, le_tol, lt_tol

NONE = "none"  # the label of "no skill should trigger"
ROUTE_TOL = 1e-9  # absolute tolerance of a score or a lead at the calibrated threshold / margin
OPTIONAL_SPLITS = ("extra",)  # judged only when present; every other split a threshold names must be there


def routed_label(best: str, evidence: float, gap: float | None, threshold: float, margin: float) -> str:
    """``best``, or NONE when it is NONE, its evidence is below ``threshold`` or its lead over the
    runner-up (``gap``; None when there is no runner-up) is below ``margin``."""
    if best == NONE:
        return NONE
    if lt_tol(evidence, threshold, abs_tol=ROUTE_TOL):
        return NONE
    if gap is not None and lt_tol(gap, margin, abs_tol=ROUTE_TOL):
        return NONE
    return best


def gate_checks(splits: Mapping, config: Mapping) -> list[dict]:
    """Threshold checks of the gating backend's split metrics: each split's accuracy against
    ``min_accuracy`` (a required split without cases fails) and its false triggers against
    ``max_false_triggers``."""
    checks = []
    for split, minimum in config["min_accuracy"].items():
        m = splits.get(split)
        if m is None or not m["cases"]:
            if split in OPTIONAL_SPLITS:
                continue  # no --cases given: nothing to judge
            # a target on train or held-out accuracy cannot be met by a run without those cases
            checks.append(check(f"{split}_accuracy", False, None, minimum))
            continue
        acc = m["accuracy"]
        ok = acc is not None and ge_tol(acc, minimum, abs_tol=ROUTE_TOL)
        checks.append(check(f"{split}_accuracy", ok, round(acc, 4), minimum))
    limit = config["max_false_triggers"]
    for split, m in splits.items():
        if split == "all" or not m["cases"]:
            continue
        checks.append(check(f"{split}_false_triggers", le_tol(m["false_triggers"], limit),
                            m["false_triggers"], limit))
    return checks
