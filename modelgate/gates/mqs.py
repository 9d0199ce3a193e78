"""Model Qualification Score (MQS): certification evidence in, score out. Pure.

The one MQS algorithm of the pack, documented in
skills/model-certification/references/mqs.md (a unit test recomputes its worked example).
Score, reports, the models.csv registry and the README table all read what ``score`` returns;
none of them computes a score of its own.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from modelgate.contract import GateInputError, check, make_verdict, schema_errors
from modelgate.gates.values import ge_tol, gt_tol

SCHEMA_VERSION = "1.0"
MAX_RAW = 1000.0
# category -> maximum points; they sum to MAX_RAW
CATEGORY_MAX = {"QUAL": 200.0, "PERF": 150.0, "STAB": 200.0, "COMP": 150.0, "EDGE": 150.0, "REGR": 150.0}
# gateway -> what it guards; any failure zeroes the score
GATEWAYS = {"G0": "integrity", "G1": "load", "G2": "inference", "G3": "stability", "G4": "output quality"}
# outcome -> penalty points per record (subtracted from the category total, floor 0)
PENALTY_POINTS = {"Crashed": 20.0, "Timeout": 10.0}
OUTCOMES = ("Corroborated", "Falsified", "Crashed", "Timeout", "Skipped")
FAILED_OUTCOMES = frozenset({"Falsified", "Crashed", "Timeout"})
# normalized lower bound -> grade, highest first
GRADE_FLOORS = ((97.0, "A+"), (93.0, "A"), (90.0, "A-"), (83.0, "B"), (70.0, "C"), (60.0, "D"))
FAIL_GRADE = "F"
CERTIFIED_RAW = 850.0
PROVISIONAL_RAW = 700.0
STATUSES = ("CERTIFIED", "PROVISIONAL", "BLOCKED", "PENDING")
def normalize(raw: float) -> float:
    """Map raw 0..1000 to 0..100 logarithmically: 100 * log(1 + 9x) / log(10), x = raw / 1000."""
    if not isinstance(raw, (int, float)) or isinstance(raw, bool) or not math.isfinite(raw):
        raise GateInputError("USER_CONFIG_ERROR", f"raw score must be a finite number, got {raw!r}")
    if raw < 0 or gt_tol(raw, MAX_RAW):
        raise GateInputError("USER_CONFIG_ERROR", f"raw score must be within 0..{MAX_RAW:g}, got {raw!r}")
    x = min(max(raw / MAX_RAW, 0.0), 1.0)
    return 100.0 * math.log(1.0 + 9.0 * x) / math.log(10.0)


def grade_for(normalized: float) -> str:
    """Letter grade of a normalized score (>=97 A+, >=93 A, >=90 A-, >=83 B, >=70 C, >=60 D, else F)."""
    for floor, grade in GRADE_FLOORS:
        if ge_tol(normalized, floor):
            return grade
    return FAIL_GRADE


def status_for(raw: float, gateways_pass: bool, executed: int) -> str:
    """Certification status: PENDING without executed evidence, BLOCKED on a gateway failure or raw < 700,
    PROVISIONAL for 700 <= raw < 850, CERTIFIED for raw >= 850."""
    if executed <= 0:
        return "PENDING"
    if not gateways_pass or not ge_tol(raw, PROVISIONAL_RAW):
        return "BLOCKED"
    return "CERTIFIED" if ge_tol(raw, CERTIFIED_RAW) else "PROVISIONAL"


def _tally(records: list[dict], key: str, value: str) -> dict:
    counts = dict.fromkeys(OUTCOMES, 0)
    for rec in records:
        if rec[key] == value:
            counts[rec["outcome"]] += 1
    return counts


def _category(name: str, records: list[dict]) -> dict:
    counts = _tally(records, "category", name)
    executed = sum(n for o, n in counts.items() if o != "Skipped")
    corroborated = counts["Corroborated"]
    # no executed evidence earns nothing: an empty category must not get full marks
    points = CATEGORY_MAX[name] * corroborated / executed if executed else 0.0
    return {"max": CATEGORY_MAX[name], "points": points, "executed": executed, "corroborated": corroborated,
            "falsified": counts["Falsified"], "crashed": counts["Crashed"], "timeout": counts["Timeout"],
            "skipped": counts["Skipped"]}


def _gateway(name: str, records: list[dict]) -> dict:
    mine = [r for r in records if r["gateway"] == name]
    executed = [r for r in mine if r["outcome"] != "Skipped"]
    failed = [r["id"] for r in executed if r["outcome"] in FAILED_OUTCOMES]
    if not executed:
        passed, reason = False, (f"no evidence: {len(mine)} record(s), all skipped" if mine
                                 else "no evidence: no record for this gateway")
    elif failed:
        passed, reason = False, f"{len(failed)} of {len(executed)} executed record(s) failed"
    else:
        passed, reason = True, f"all {len(executed)} executed record(s) corroborated"
    return {"name": GATEWAYS[name], "pass": passed, "executed": len(executed), "skipped": len(mine) - len(executed),
            "failed_records": failed, "reason": reason}


def _records(evidence: Any) -> list[dict]:
    """The records of a schema-valid evidence document; anything else cannot be judged."""
    if not isinstance(evidence, Mapping):
        raise GateInputError("USER_CONFIG_ERROR", f"evidence must be a JSON object, got {type(evidence).__name__}")
    errors = schema_errors("evidence", evidence)
    if errors:
        raise GateInputError("USER_CONFIG_ERROR", "evidence violates schemas/evidence.schema.json: "
                             + "; ".join(errors[:5]) + (f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""))
    records = list(evidence["records"])
    ids = [r["id"] for r in records]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise GateInputError("USER_CONFIG_ERROR", f"evidence record ids are not unique: {dupes[:5]}")
    return records


def score(evidence: Mapping) -> dict:
    """Score one evidence document (schemas/evidence.schema.json) -> schemas/mqs-score.schema.json.

    Raises GateInputError (exit 2) when the evidence is not schema-valid or has duplicate ids.
    """
    records = _records(evidence)
    categories = {name: _category(name, records) for name in CATEGORY_MAX}
    gateways = {name: _gateway(name, records) for name in GATEWAYS}
    executed = sum(1 for r in records if r["outcome"] != "Skipped")
    n_crashed = sum(1 for r in records if r["outcome"] == "Crashed")
    n_timeout = sum(1 for r in records if r["outcome"] == "Timeout")
    penalty = n_crashed * PENALTY_POINTS["Crashed"] + n_timeout * PENALTY_POINTS["Timeout"]
    category_points = sum(c["points"] for c in categories.values())
    after_penalties = max(0.0, category_points - penalty)
    failed_gateways = [g for g, v in gateways.items() if not v["pass"]]
    gateways_pass = not failed_gateways
    raw = after_penalties if gateways_pass else 0.0
    normalized = normalize(raw)
    status = status_for(raw, gateways_pass, executed)
    return {
        "schema_version": SCHEMA_VERSION,
        "model": evidence["model"],
        "tier": evidence["tier"],
        "playbook": evidence["playbook"],
        "playbook_sha256": evidence["playbook_sha256"],
        "raw": raw,
        "normalized": normalized,
        "grade": grade_for(normalized),
        "status": status,
        "category_points": category_points,
        "points_before_gateways": after_penalties,
        "gateways_pass": gateways_pass,
        "failed_gateways": failed_gateways,
        "categories": categories,
        "gateways": gateways,
        "penalties": {"crashed": n_crashed, "timeout": n_timeout,
                      "crash_points": n_crashed * PENALTY_POINTS["Crashed"],
                      "timeout_points": n_timeout * PENALTY_POINTS["Timeout"], "total": penalty},
        "records": {"total": len(records), "executed": executed, "skipped": len(records) - executed},
    }


# status -> (passes the score gate, failure class); BLOCKED is split by why it is blocked
PASSING_STATUSES = frozenset({"CERTIFIED", "PROVISIONAL"})
STATUS_CLASS = {"CERTIFIED": None, "PROVISIONAL": None, "PENDING": "USER_CONFIG_ERROR"}


def failure_class_for(result: Mapping) -> str | None:
    """The pack failure class of a score: None for CERTIFIED/PROVISIONAL, GATEWAY_FAILED when a gateway
    failed, MQS_BELOW_THRESHOLD when raw < 700 with every gateway passing, USER_CONFIG_ERROR (nothing
    was executed, exit 2) for PENDING."""
    status = result["status"]
    if status in STATUS_CLASS:
        return STATUS_CLASS[status]
    return "GATEWAY_FAILED" if not result["gateways_pass"] else "MQS_BELOW_THRESHOLD"


# the fields that identify a score and decide it; a score given alongside evidence must agree on them
IDENTITY_FIELDS = ("model", "playbook_sha256", "tier", "raw", "status", "grade")


def checked_score(evidence: Mapping, given: Mapping | None = None) -> dict:
    """Score ``evidence``; if a score was given too, refuse it unless it is this evidence's score."""
    fresh = score(evidence)
    if given is not None:
        differ = [k for k in IDENTITY_FIELDS if given.get(k) != fresh[k]]
        if differ:
            raise GateInputError("USER_CONFIG_ERROR", f"the score given does not belong to this evidence "
                                 f"({', '.join(differ)} differ); re-score the evidence")
    return fresh


def score_checks(result: dict) -> list[dict]:
    """One check per gateway and per category, and the status check, from an MQS score."""
    out = [check(f"gateway_{g}", v["pass"], {"executed": v["executed"], "failed_records": v["failed_records"]},
                 "executed evidence and no Falsified/Crashed/Timeout record",
                 None if v["pass"] else "GATEWAY_FAILED", v["reason"]) for g, v in result["gateways"].items()]
    out += [check(f"category_{c}", None if not v["executed"] else v["corroborated"] == v["executed"],
                  {"points": v["points"], "corroborated": v["corroborated"], "executed": v["executed"]},
                  {"max": v["max"]}, detail="no executed evidence: 0 points" if not v["executed"] else None)
            for c, v in result["categories"].items()]
    status_ok = result["status"] in PASSING_STATUSES
    out.append(check("status", status_ok, {"raw": result["raw"], "status": result["status"]},
                     "raw >= 700 with every gateway passing", failure_class_for(result)))
    return out


def score_verdict(gate: str, result: dict, detail_prefix: str = "", **extra) -> dict:
    """The verdict of an MQS score: passes for CERTIFIED/PROVISIONAL, its checks from ``score_checks``."""
    cls = failure_class_for(result)
    detail = (f"{detail_prefix}{result['model']}: {result['status']}, MQS {result['raw']:.1f}/1000 "
              f"(normalized {result['normalized']:.2f}, grade {result['grade']})")
    if result["failed_gateways"]:
        detail += f"; failed gateways {', '.join(result['failed_gateways'])}"
    return make_verdict(gate, passed=cls is None, failure_class=cls, detail=detail, decision=result["status"],
                        checks=score_checks(result), metrics={"raw": result["raw"], "normalized": result["normalized"]},
                        score=result, **extra)
