"""The publish decision of a day-0 release, from the verdicts of its stages.

Pure: stage verdicts (gate envelopes) in, a release decision out. The chain stops at
its first failing stage, so that stage's failure class decides (table below). Nothing
is ACCEPTed unless every required stage is present, passed, and the comparison itself
said ACCEPT. ``decide_search`` turns a recipe search into one decision: the smallest
accepted recipe, or INFEASIBLE when every recipe was judged and none met the threshold.
"""
from __future__ import annotations

from typing import Any

from modelgate.contract import check, failure_classes, make_verdict
from modelgate.gates.values import is_count, short

GATE = "release-decision"
DECISIONS = ("ACCEPT", "REGRESSION", "ANOMALOUS", "INDETERMINATE", "INFEASIBLE")
REQUIRED_GATES = ("gate-ptq", "gate-run", "gate-compare")
COMPARE_GATE = "gate-compare"
# failure class of the first failing stage -> release decision. Unlisted classes: ANOMALOUS
# (a stage failed in a way that must be investigated before any number is trusted).
CLASS_DECISION = {
    "MODEL_UNSUPPORTED": "INFEASIBLE",
    "INFEASIBLE": "INFEASIBLE",
    "ACCURACY_REGRESSION": "REGRESSION",
    "FIDELITY_REGRESSION": "REGRESSION",
    "INSUFFICIENT_POWER": "INDETERMINATE",
    "INFRA_TRANSIENT": "INDETERMINATE",
    "TIMEOUT": "INDETERMINATE",
    "RESOURCE_EXHAUSTED": "INDETERMINATE",
}
DECISION_CLASS = {"ACCEPT": None, "REGRESSION": "ACCURACY_REGRESSION", "ANOMALOUS": "ANOMALOUS_RESULT",
                  "INDETERMINATE": "INSUFFICIENT_POWER", "INFEASIBLE": "INFEASIBLE"}
DECISION_NEXT = {
    "ACCEPT": "Publish the candidate with this report.",
    "REGRESSION": "Do not publish; try a less aggressive recipe (search) or accept a larger model.",
    "ANOMALOUS": "Investigate the failing stage's evidence before trusting any number.",
    "INDETERMINATE": "Resume or re-run the failing stage (more samples, retry infrastructure), then decide again.",
    "INFEASIBLE": "Stop: no recipe can deliver this model within the request; report it.",
}
# search: when nothing was accepted, the strongest evidence decides (INFEASIBLE needs every recipe judged)
SEARCH_ORDER = ("ANOMALOUS", "INDETERMINATE", "INFEASIBLE")


def _stage_problem(i: int, stage: Any) -> str | None:
    if not isinstance(stage, dict):
        return f"stage {i} is a {type(stage).__name__}, not a verdict object"
    if not isinstance(stage.get("gate"), str) or not stage.get("gate"):
        return f"stage {i} has no gate name"
    if not isinstance(stage.get("pass"), bool):
        return f"stage {i} ({stage.get('gate')}) has no boolean pass"
    if stage["pass"] and stage.get("failure_class") is not None:
        return f"stage {i} ({stage['gate']}) passed but names failure class {short(stage.get('failure_class'))}"
    if not stage["pass"] and not (isinstance(stage.get("failure_class"), str)
                                  and stage["failure_class"] in failure_classes()):
        return f"stage {i} ({stage['gate']}) failed without a known failure class ({short(stage.get('failure_class'))})"
    return None


def _summary(stage: Any) -> dict:
    """What the report keeps of a stage verdict (coerced: a malformed stage is reported, not trusted)."""
    if not isinstance(stage, dict):
        return {"gate": None, "pass": None, "decision": None, "failure_class": None, "exit_code": None,
                "detail": short(stage, 200)}
    gate, passed = stage.get("gate"), stage.get("pass")
    return {"gate": gate if isinstance(gate, str) else None, "pass": passed if isinstance(passed, bool) else None,
            "decision": stage.get("decision") if isinstance(stage.get("decision"), str) else None,
            "failure_class": stage.get("failure_class") if isinstance(stage.get("failure_class"), str) else None,
            "exit_code": stage.get("exit_code") if stage.get("exit_code") in (0, 1, 2) else None,
            "detail": str(stage.get("detail", ""))[:500]}


def _verdict(decision: str, detail: str, checks: list, stages: list, deciding: int | None,
             failure_class: str | None = None, exit_code: int | None = None, **extra) -> dict:
    passed = decision == "ACCEPT"
    cls = None if passed else (failure_class or DECISION_CLASS[decision])
    return make_verdict(GATE, passed=passed, failure_class=cls, decision=decision, detail=detail, checks=checks,
                        exit_code=0 if passed else exit_code, next_action=DECISION_NEXT[decision],
                        metrics={"stages": len(stages)}, stages=stages, deciding_stage=deciding, **extra)


def decide_release(stage_verdicts: Any, required: Any = REQUIRED_GATES) -> dict:
    """ACCEPT | REGRESSION | ANOMALOUS | INDETERMINATE | INFEASIBLE from the stages run so far; never raises."""
    if not isinstance(stage_verdicts, list) or not stage_verdicts:
        return _verdict("ANOMALOUS", "no stage verdicts to decide on", [], [], None,
                        failure_class="USER_CONFIG_ERROR", exit_code=2)
    if not isinstance(required, (list, tuple)) or not all(isinstance(r, str) for r in required):
        return _verdict("ANOMALOUS", f"required gates {short(required)} is not a list of gate names", [], [], None,
                        failure_class="USER_CONFIG_ERROR", exit_code=2)
    for i, stage in enumerate(stage_verdicts):
        problem = _stage_problem(i, stage)
        if problem:
            return _verdict("ANOMALOUS", problem, [check("stage_verdicts", False, i, "valid verdicts",
                                                         "USER_CONFIG_ERROR", problem)],
                            [_summary(s) for s in stage_verdicts],
                            i, failure_class="USER_CONFIG_ERROR", exit_code=2)
    stages = [_summary(s) for s in stage_verdicts]
    checks = [check(f"stage:{s['gate']}", s["pass"], s.get("decision") or s.get("failure_class"), "pass",
                    s.get("failure_class")) for s in stage_verdicts]
    for i, stage in enumerate(stage_verdicts):
        if not stage["pass"]:
            cls = stage["failure_class"]
            decision = CLASS_DECISION.get(cls, "ANOMALOUS")
            code = stage.get("exit_code") if stage.get("exit_code") in (1, 2) else None
            return _verdict(decision, f"{decision}: stage {stage['gate']} failed ({cls}): "
                            f"{str(stage.get('detail', ''))[:400]}", checks, stages, i,
                            failure_class=cls if decision != "ACCEPT" else None, exit_code=code)
    present = [s["gate"] for s in stage_verdicts]
    missing = [g for g in required if g not in present]
    if missing:
        return _verdict("INDETERMINATE", f"INDETERMINATE: the chain is incomplete, missing {missing}",
                        checks + [check("required_stages", False, present, list(required), "INFRA_TRANSIENT")],
                        stages, None, failure_class="INFRA_TRANSIENT")
    compare = [s for s in stage_verdicts if s["gate"] == COMPARE_GATE]
    if compare and compare[-1].get("decision") != "ACCEPT":
        return _verdict("ANOMALOUS", f"ANOMALOUS: the comparison passed but decided "
                        f"{short(compare[-1].get('decision'))}", checks, stages, None)
    return _verdict("ACCEPT", f"ACCEPT: all {len(stages)} stages passed ({', '.join(present)})",
                    checks + [check("required_stages", True, present, list(required))], stages, None)


def decide_search(results: Any) -> dict:
    """One decision for a recipe search.

    ``results``: list of {"recipe": name, "decision": one of DECISIONS, "output_weight_bytes":
    int (required for ACCEPT)}. The smallest accepted recipe wins; with none accepted the
    decision is ANOMALOUS, else INDETERMINATE, else INFEASIBLE (every recipe judged, none met it).
    """
    if not isinstance(results, list) or not results:
        return _verdict("ANOMALOUS", "no recipe results to decide on", [], [], None,
                        failure_class="USER_CONFIG_ERROR", exit_code=2, search={"chosen": None, "results": []})
    rows = []
    for i, r in enumerate(results):
        ok = (isinstance(r, dict) and isinstance(r.get("recipe"), str) and r.get("decision") in DECISIONS
              and (r.get("decision") != "ACCEPT" or is_count(r.get("output_weight_bytes"))))
        if not ok:
            return _verdict("ANOMALOUS", f"search result {i} is not {{recipe, decision, output_weight_bytes}}: "
                            f"{short(r)}", [], [], None, failure_class="USER_CONFIG_ERROR", exit_code=2,
                            search={"chosen": None, "results": []})
        rows.append({"recipe": r["recipe"], "decision": r["decision"],
                     "output_weight_bytes": r.get("output_weight_bytes") if is_count(r.get("output_weight_bytes"))
                     else None})
    checks = [check(f"recipe:{r['recipe']}", r["decision"] == "ACCEPT", r["decision"], "ACCEPT",
                    None if r["decision"] == "ACCEPT" else DECISION_CLASS[r["decision"]]) for r in rows]
    accepted = sorted((r for r in rows if r["decision"] == "ACCEPT"),
                      key=lambda r: (r["output_weight_bytes"], r["recipe"]))
    if accepted:
        best = accepted[0]
        return _verdict("ACCEPT", f"ACCEPT: {best['recipe']} is the smallest accepted recipe "
                        f"({best['output_weight_bytes']} weight bytes, {len(accepted)} of {len(rows)} accepted)",
                        checks, [], None, search={"chosen": best["recipe"], "results": rows})
    decisions = {r["decision"] for r in rows} - {"REGRESSION"}
    decision = next((d for d in SEARCH_ORDER if d in decisions), "INFEASIBLE")
    why = {"INFEASIBLE": f"no recipe of {len(rows)} met the threshold",
           "ANOMALOUS": "no recipe accepted and at least one result is anomalous",
           "INDETERMINATE": "no recipe accepted yet and at least one result is undecided"}[decision]
    return _verdict(decision, f"{decision}: {why} ({', '.join(r['recipe'] + '=' + r['decision'] for r in rows)})",
                    checks, [], None, search={"chosen": None, "results": rows})
