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

from modelgate.contract import GateInputError, check, coverage, make_verdict, schema_errors
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
# every value a certification matrix axis can take (the playbook schema's enums), in display order
AXES = {"formats": ("safetensors", "openvino-fp32", "openvino-fp16", "openvino-int8", "openvino-int4"),
        "devices": ("CPU", "GPU", "NPU"), "modalities": ("run", "chat", "serve", "contract")}
CELL_FIELD = {"formats": "format", "devices": "device", "modalities": "modality"}
# scenarios of the runner's own records (ground truth, exports, per-format contract): not playbook scenarios
SETUP_SCENARIOS = frozenset({"ground-truth", "conversion"})


def format_mqs(raw: float, grade: str) -> str:
    """The MQS as people read it, on one scale: "882.5/1000, A" (the grade letter, never the 0-100 number)."""
    return f"{round(raw, 1):g}/1000, {grade}"


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


def _join(values) -> str:
    values = list(values)
    return ", ".join(values[:-1]) + f" and {values[-1]}" if len(values) > 1 else "".join(values)


def _cells(evidence: Mapping) -> dict[tuple, dict]:
    """Matrix cells of the evidence (setup records left out): did any record run, why were the others skipped."""
    cells: dict[tuple, dict] = {}
    for r in evidence["records"]:
        c = r["cell"]
        if c["scenario"] in SETUP_SCENARIOS:
            continue
        cell = cells.setdefault((c["format"], c["device"], c["modality"], c["scenario"]),
                                {"ran": False, "skipped_because": []})
        if r["outcome"] != "Skipped":
            cell["ran"] = True
        elif r["reason"] not in cell["skipped_because"]:
            cell["skipped_because"].append(r["reason"])
    return cells


def certification_coverage(evidence: Mapping, result: Mapping) -> dict:
    """What a certification vouches for (the envelope's ``coverage``): which formats, devices,
    modalities and scenarios ran, how many cells ran or were skipped and why, at which inference
    precisions; and each format, device or modality it did not exercise, with the reason."""
    cells = _cells(evidence)
    ran = [k for k, c in cells.items() if c["ran"]]
    skipped = {k: c for k, c in cells.items() if not c["ran"]}
    tier = evidence["tier"]
    exercised: dict = {"tier": tier}
    for i, (axis, universe) in enumerate(AXES.items()):
        exercised[axis] = [v for v in universe if any(k[i] == v for k in ran)]
    exercised["scenarios"] = [s for s in evidence["matrix"]["scenarios"]
                              if s not in SETUP_SCENARIOS and any(k[3] == s for k in ran)]
    reasons: dict[str, int] = {}
    for c in skipped.values():
        why = c["skipped_because"][0] if c["skipped_because"] else "skipped"
        reasons[why] = reasons.get(why, 0) + 1
    precisions: dict[str, list] = {}
    for r in evidence["records"]:
        p = r["metrics"].get("inference_precision")
        if isinstance(p, str) and r["outcome"] != "Skipped":
            fmt = precisions.setdefault(r["cell"]["format"], [])
            if p not in fmt:
                fmt.append(p)
    exercised.update({"cells_run": len(ran), "cells_skipped": len(skipped), "skipped_because": reasons,
                      "records_executed": result["records"]["executed"], "inference_precision": precisions})
    not_exercised, missing_by_reason = [], {}
    for i, (axis, universe) in enumerate(AXES.items()):
        for v in universe:
            if v in exercised[axis]:
                continue
            if v not in evidence["matrix"][axis] or not any(k[i] == v for k in cells):
                why = "not in this run's matrix"
            else:
                mine = [c["skipped_because"][0] for k, c in skipped.items() if k[i] == v and c["skipped_because"]]
                why = f"every cell skipped: {mine[0]}" if mine else "every cell skipped"
            not_exercised.append(f"{v} ({CELL_FIELD[axis]}): {why}")
            missing_by_reason.setdefault(why, []).append(v)
    ov_ran = [f for f in exercised["formats"] if f != "safetensors"]
    head = f"{result['status']} at tier {tier} (MQS {format_mqs(result['raw'], result['grade'])})"
    if not ran:
        body = (f"no cell of the matrix ran ({len(skipped)} skipped: "
                + "; ".join(f"{n} {why}" for why, n in reasons.items()) + "); nothing about the model's outputs "
                "was judged")
    else:
        fmts = [f"{f} (at {'/'.join(precisions[f])})" if precisions.get(f) else f for f in ov_ran] \
            or ["no OpenVINO format"]
        body = (f"{_join(fmts)} against the safetensors ground truth, on {_join(exercised['devices'])}, modalities "
                f"{_join(exercised['modalities'])}, scenarios {_join(exercised['scenarios'])}: {len(ran)} cells run, "
                f"{len(skipped)} skipped")
    if result["failed_gateways"]:
        body += f"; failed gateways {_join(result['failed_gateways'])}"
    tail = "; ".join(f"{_join(vs)} ({why})" for why, vs in missing_by_reason.items())
    summary = f"{head}: {body}." + (f" Not exercised: {tail}." if tail else "")
    return coverage(summary, exercised, not_exercised)


def certification_next_action(evidence: Mapping, result: Mapping, cov: Mapping | None = None) -> str:
    """What an agent should do next with a certification, as a person would say it."""
    cov = cov or certification_coverage(evidence, result)
    status = result["status"]
    if status in PASSING_STATUSES:
        if not cov["not_exercised"]:
            return "none"
        return ("none for what was exercised; report it with coverage.summary: the certificate covers only "
                "coverage.exercised. To cover " + ", ".join(x.split(" (", 1)[0] for x in cov["not_exercised"])
                + ", run a playbook at a tier whose matrix includes them (on a host that has the devices)")
    if status == "PENDING":
        return "nothing was executed: check the matrix against this host (coverage.exercised.skipped_because)"
    empty = [g for g in result["failed_gateways"] if result["gateways"][g]["executed"] == 0]
    failing = [g for g in result["failed_gateways"] if result["gateways"][g]["failed_records"]]
    steps = []
    if failing:
        first = result["gateways"][failing[0]]["failed_records"][0]
        rec = next((r for r in evidence["records"] if r["id"] == first), None)
        reason = rec["reason"] if rec and len(rec["reason"]) <= 160 else (rec["reason"][:157] + "..." if rec else "")
        why = f" ({rec['check']}: {reason})" if rec else ""
        steps.append(f"the model failed {_join(failing)}: open report.html (failures first) and start with {first}"
                     f"{why}; triage in references/gateway-diagnostics.md")
    if empty:
        reasons = cov["exercised"].get("skipped_because") or {}
        cause = "; ".join(list(reasons)[:2]) or "no record carries these gateways"
        steps.append(f"{_join(empty)} have no executed evidence ({cause}): this is not a finding against the model; "
                     "run where those cells can run (a host with the devices, an endpoint for serve) or change "
                     "matrix.devices")
    if not steps:  # every gateway passed, raw < 700
        low = sorted(result["categories"].items(), key=lambda kv: kv[1]["points"] / kv[1]["max"])[:2]
        steps.append(f"every gateway passed but the MQS is below 700: fix the weakest categories first "
                     f"({', '.join(k for k, _ in low)}); see references/mqs.md")
    return "; ".join(steps)


def score_verdict(gate: str, result: dict, detail_prefix: str = "", evidence_doc: Mapping | None = None,
                  **extra) -> dict:
    """The verdict of an MQS score: passes for CERTIFIED/PROVISIONAL, its checks from ``score_checks``;
    with the evidence, its coverage and next action."""
    cls = failure_class_for(result)
    detail = f"{detail_prefix}{result['model']}: {result['status']}, MQS {format_mqs(result['raw'], result['grade'])}"
    if result["failed_gateways"]:
        detail += f"; failed gateways {', '.join(result['failed_gateways'])}"
    more = {}
    if evidence_doc is not None:
        cov = certification_coverage(evidence_doc, result)
        more = {"coverage": cov, "next_action": certification_next_action(evidence_doc, result, cov)}
    return make_verdict(gate, passed=cls is None, failure_class=cls, detail=detail, decision=result["status"],
                        checks=score_checks(result), metrics={"raw": result["raw"], "normalized": result["normalized"]},
                        score=result, **more, **extra)
