"""Pure scoring of routing results: accuracy, false triggers, per-skill P/R/F1, confusion matrix."""
from __future__ import annotations

from collections.abc import Sequence

from modelgate.routing.cases import NONE


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def score(results: Sequence[dict], skills: Sequence[str]) -> dict:
    """Score routed cases.

    ``results``: dicts with ``name``, ``expected`` (skill or none), ``predicted``,
    ``should_trigger`` and ``skill``. A *false trigger* is a should-not-trigger case routed to
    a skill other than the one it belongs to (any skill, when it belongs to none). Precision
    or recall with an empty denominator is None (not 0 and not 1: there is no evidence).
    """
    labels = list(skills) + [NONE]
    matrix = {e: dict.fromkeys(labels, 0) for e in labels}
    for r in results:
        for key in ("expected", "predicted"):
            if r[key] not in matrix:
                raise ValueError(f"case {r.get('name')}: unknown label {r[key]!r} (labels: {labels})")
        matrix[r["expected"]][r["predicted"]] += 1
    per_skill = {}
    for s in skills:
        tp = matrix[s][s]
        fp = sum(matrix[e][s] for e in labels if e != s)
        fn = sum(matrix[s][p] for p in labels if p != s)
        p, rcl = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        f1 = 2 * p * rcl / (p + rcl) if p is not None and rcl is not None and (p + rcl) > 0 else (
            0.0 if p is not None and rcl is not None else None)
        per_skill[s] = {"precision": p, "recall": rcl, "f1": f1, "tp": tp, "fp": fp, "fn": fn,
                        "support": tp + fn}
    correct = sum(r["expected"] == r["predicted"] for r in results)
    false_triggers = [r["name"] for r in results
                      if not r["should_trigger"] and r["predicted"] != NONE and r["predicted"] != r["expected"]]
    missed = [r["name"] for r in results if r["should_trigger"] and r["predicted"] != r["expected"]]
    return {"cases": len(results), "correct": correct, "accuracy": _ratio(correct, len(results)),
            "false_triggers": len(false_triggers), "false_trigger_cases": false_triggers,
            "missed_triggers": len(missed), "per_skill": per_skill,
            "confusion": {"labels": labels, "matrix": [[matrix[e][p] for p in labels] for e in labels]},
            "misrouted": [{"name": r["name"], "query": r["query"], "expected": r["expected"],
                           "predicted": r["predicted"], "split": r.get("split")}
                          for r in results if r["expected"] != r["predicted"]]}
