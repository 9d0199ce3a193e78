"""Baseline vs candidate comparison gate: ACCEPT / REGRESSION / INDETERMINATE / ANOMALOUS per task.

Pure: two run summaries (schemas/run-summary.schema.json) in, a compare verdict out.

Order of judgement, per task (see skills/day0-release/references/gates.md):
1. every value is validated (type, finiteness, scale range, counts, parity of metric/scale/
   direction) and an invalid one short-circuits to ANOMALOUS before any arithmetic;
2. a zero baseline with a relative threshold is ANOMALOUS (the ratio is undefined);
3. a gain above ``implausible_gain`` is ANOMALOUS (evaluations do not improve by quantizing);
4. a drop above the threshold (beyond tolerance) is REGRESSION;
5. a drop within the threshold whose one-sided upper confidence bound exceeds it is
   INDETERMINATE, with the sample size that would resolve it;
6. otherwise ACCEPT.
Overall: ANOMALOUS > REGRESSION > INDETERMINATE > ACCEPT.
"""
from __future__ import annotations

import math
from typing import Any

from modelgate.contract import check, make_verdict
from modelgate.gates.run import evaluate_run
from modelgate.gates.values import ABS_TOL, REL_TOL, gt_tol, is_count, is_number, short

GATE = "gate-compare"
# scale -> full range of the score. Explicit in every run summary, never guessed from the value.
SCALE_FULL = {"unit": 1.0, "percent": 100.0, "unbounded": None}
DECISION_ORDER = ("ANOMALOUS", "REGRESSION", "INDETERMINATE", "ACCEPT")
DECISION_CLASS = {"ANOMALOUS": "ANOMALOUS_RESULT", "REGRESSION": "ACCURACY_REGRESSION",
                  "INDETERMINATE": "INSUFFICIENT_POWER", "ACCEPT": None}
DECISION_NEXT = {
    "ANOMALOUS": "Investigate the anomalies listed per task before trusting any number; re-run the evaluation "
                 "with identical configs if inputs were invalid.",
    "REGRESSION": "Do not publish this candidate; try a less aggressive recipe (recipe search).",
    "INDETERMINATE": "Re-run both evaluations on at least samples_needed samples (or provide per-sample records "
                     "for paired standard errors) and compare again.",
    "ACCEPT": "none",
}
# A paired mean difference must reproduce the summaries' score difference to this fraction of full scale.
PAIRED_CONSISTENCY = 1e-6
# samples_needed above this is reported as unresolvable rather than as an absurd number.
MAX_SAMPLES_NEEDED = 10**12
TERMINAL = "COMPLETED"


def _task_anomalies(name: str, b: Any, c: Any, paired_entry: Any) -> tuple[list[str], dict]:
    """Validate one task's entries in both runs; return (anomalies, validated values)."""
    problems: list[str] = []
    if not isinstance(b, dict) or not isinstance(c, dict):
        return [f"task entry is not an object (baseline {type(b).__name__}, candidate {type(c).__name__})"], {}
    for side, entry in (("baseline", b), ("candidate", c)):
        if entry.get("status") != TERMINAL:
            problems.append(f"{side} task status {short(entry.get('status'))} is not {TERMINAL}")
    scale = b.get("scale")
    if not isinstance(scale, str) or scale not in SCALE_FULL:
        problems.append(f"baseline scale {short(scale)} is not one of {sorted(SCALE_FULL)}")
    if c.get("scale") != scale:
        problems.append(f"scales differ: baseline {short(scale)}, candidate {short(c.get('scale'))}")
    for key in ("metric", "higher_is_better"):
        if b.get(key) != c.get(key):
            problems.append(f"{key} differs: baseline {short(b.get(key))}, candidate {short(c.get(key))}")
    if not isinstance(b.get("metric"), str) or not b.get("metric"):
        problems.append(f"metric {short(b.get('metric'))} is not a name")
    if not isinstance(b.get("higher_is_better"), bool):
        problems.append(f"higher_is_better {short(b.get('higher_is_better'))} is not a boolean")
    full = SCALE_FULL.get(scale) if isinstance(scale, str) else None
    values: dict = {}
    for side, entry in (("baseline", b), ("candidate", c)):
        score = entry.get("score")
        if not is_number(score):
            problems.append(f"{side} score {short(score)} is not a finite number")
        elif full is not None and not 0 <= score <= full:
            problems.append(f"{side} score {score!r} is outside the {scale} scale [0, {full:g}]")
        stderr = entry.get("stderr")
        if stderr is not None and (not is_number(stderr) or stderr < 0 or (full is not None and stderr > full)):
            problems.append(f"{side} stderr {short(stderr)} is not a finite number in [0, full scale]")
        scored, expected = entry.get("scored_samples"), entry.get("expected_samples")
        if not is_count(scored) or scored < 1 or not is_count(expected):
            problems.append(f"{side} sample counts invalid (scored {short(scored)}, expected {short(expected)})")
        elif scored != expected:
            problems.append(f"{side} scored {scored} of {expected} expected samples")
    if not problems and b["expected_samples"] != c["expected_samples"]:
        problems.append(f"expected samples differ: baseline {b['expected_samples']}, "
                        f"candidate {c['expected_samples']} (not the same data)")
    if paired_entry is not None:
        problems += _paired_anomalies(paired_entry, b, c, full, problems)
    if not problems:
        values = {"b": float(b["score"]), "c": float(c["score"]), "scale": scale, "full": full,
                  "higher_is_better": b["higher_is_better"], "metric": b["metric"],
                  "se_b": b.get("stderr"), "se_c": c.get("stderr"),
                  "n": min(b["scored_samples"], c["scored_samples"])}
    return problems, values


def _paired_anomalies(p: Any, b: dict, c: dict, full: float | None, earlier: list[str]) -> list[str]:
    if not isinstance(p, dict):
        return [f"paired statistics are not an object: {short(p)}"]
    out = []
    if not is_count(p.get("n")) or p.get("n") < 1:
        out.append(f"paired n {short(p.get('n'))} is not a positive count")
    if not is_number(p.get("mean_diff")):
        out.append(f"paired mean_diff {short(p.get('mean_diff'))} is not a finite number")
    if not is_number(p.get("stderr_diff")) or p.get("stderr_diff") < 0:
        out.append(f"paired stderr_diff {short(p.get('stderr_diff'))} is not a finite number >= 0")
    if out or earlier:
        return out
    if p["n"] != b["scored_samples"] or p["n"] != c["scored_samples"]:
        out.append(f"paired records cover {p['n']} samples, the runs scored {b['scored_samples']} / "
                   f"{c['scored_samples']}: per-sample records do not match the summaries")
    span = full if full is not None else max(1.0, abs(b["score"]))
    if abs(p["mean_diff"] - (c["score"] - b["score"])) > PAIRED_CONSISTENCY * span:
        out.append(f"paired mean_diff {p['mean_diff']!r} disagrees with the summaries' difference "
                   f"{c['score'] - b['score']!r}")
    return out


def _judge(v: dict, paired_entry: dict | None, threshold: float, relative: bool,
           implausible_gain: float, z: float) -> dict:
    """Arithmetic on validated values only."""
    norm = v["full"] if v["full"] is not None else 1.0  # unit of an absolute threshold
    b_n, c_n = v["b"] / norm, v["c"] / norm
    drop = (b_n - c_n) if v["higher_is_better"] else (c_n - b_n)
    if paired_entry is not None:
        se, se_source, n = paired_entry["stderr_diff"] / norm, "paired", paired_entry["n"]
    elif v["se_b"] is not None and v["se_c"] is not None:
        se, se_source, n = math.hypot(v["se_b"], v["se_c"]) / norm, "independent", v["n"]
    else:
        se, se_source, n = None, None, v["n"]
    out = {"drop": None, "upper_bound": None, "stderr_diff": None, "stderr_source": se_source,
           "n": n, "samples_needed": None}
    if relative:
        if v["b"] == 0:
            return dict(out, decision="ANOMALOUS", judgeable=False,
                        reasons=["baseline score is 0: a relative threshold is undefined"])
        drop, se = drop / abs(b_n), (se / abs(b_n) if se is not None else None)
    if not is_number(drop) or (se is not None and not is_number(se)):
        return dict(out, decision="ANOMALOUS", judgeable=False,
                    reasons=["drop or its standard error overflowed (baseline too close to 0)"])
    out.update(drop=drop, stderr_diff=se)
    if gt_tol(-drop, implausible_gain):
        return dict(out, decision="ANOMALOUS", judgeable=True,
                    reasons=[f"gain {-drop:.6g} exceeds the implausible-gain limit {implausible_gain:g}"])
    if gt_tol(drop, threshold):
        return dict(out, decision="REGRESSION", judgeable=True,
                    reasons=[f"drop {drop:.6g} exceeds the threshold {threshold:g}"])
    if se is None:
        return dict(out, decision="INDETERMINATE", judgeable=True,
                    reasons=["no standard errors: cannot tell whether the sample resolves the threshold"])
    upper = drop + z * se
    out["upper_bound"] = upper
    if not gt_tol(upper, threshold):
        return dict(out, decision="ACCEPT", judgeable=True,
                    reasons=[f"drop {drop:.6g} and its upper bound {upper:.6g} are within {threshold:g}"])
    margin = threshold - drop
    needed = None
    if margin > max(ABS_TOL, REL_TOL * abs(threshold)):
        factor = n * (z * se / margin) ** 2
        if math.isfinite(factor) and factor <= MAX_SAMPLES_NEEDED:
            needed = max(n + 1, math.ceil(factor))
    reason = (f"drop {drop:.6g} is within {threshold:g} but its upper {z:g}-sigma bound {upper:.6g} is not: "
              + (f"about {needed} samples would resolve it" if needed
                 else "the observed drop sits on the threshold; no sample size resolves it"))
    return dict(out, decision="INDETERMINATE", judgeable=True, samples_needed=needed, reasons=[reason])


def _param_problems(threshold, relative, implausible_gain, z, paired) -> list[str]:
    problems = []
    # a fraction: "--threshold 1" meant as 1 % would otherwise accept any drop
    if not is_number(threshold) or not 0 <= threshold < 1:
        problems.append(f"threshold {short(threshold)} must be a fraction in [0, 1) (0.01 = 1 point or 1 %)")
    if not isinstance(relative, bool):
        problems.append(f"relative {short(relative)} must be a boolean")
    if not is_number(implausible_gain) or not 0 < implausible_gain <= 1:
        problems.append(f"implausible_gain {short(implausible_gain)} must be a fraction in (0, 1]")
    if not is_number(z) or z <= 0:
        problems.append(f"z {short(z)} must be a finite number > 0")
    if paired is not None and not isinstance(paired, dict):
        problems.append(f"paired must be an object of task -> statistics, got {type(paired).__name__}")
    return problems


def _run_problems(baseline: Any, candidate: Any) -> tuple[list[str], list[dict]]:
    """Whole-run parity checks; returns (anomalies, checks)."""
    anomalies, checks = [], []

    def add(name, ok, measured, expected, text):
        checks.append(check(name, ok, measured, expected, None if ok else "ANOMALOUS_RESULT",
                            None if ok else text))
        if not ok:
            anomalies.append(text)

    for side, run in (("baseline", baseline), ("candidate", candidate)):
        verdict = evaluate_run(run)
        add(f"{side}_run_valid", verdict["pass"], verdict["failure_class"], "passes gate-run",
            f"{side} run does not pass gate-run: {verdict['detail'][:300]}")
    variants = [baseline.get("variant"), candidate.get("variant")]
    add("variants", variants == ["baseline", "candidate"], variants, ["baseline", "candidate"],
        f"variants are {short(variants)}, expected baseline then candidate (swapped or mislabeled inputs)")
    statuses = [baseline.get("status"), candidate.get("status")]
    add("runs_completed", statuses == [TERMINAL, TERMINAL], statuses, [TERMINAL, TERMINAL],
        f"run statuses {short(statuses)}: only completed runs can be compared")
    shas = [baseline.get("eval_config_sha256"), candidate.get("eval_config_sha256")]
    parity = all(isinstance(s, str) and s for s in shas) and shas[0] == shas[1]
    add("config_parity", parity, shas, "equal eval_config_sha256",
        f"eval configs differ or are missing ({short(shas, 160)}): the runs are not comparable")
    bt, ct = baseline.get("tasks"), candidate.get("tasks")
    bk, ck = set(map(str, bt)), set(map(str, ct))
    add("task_sets", bk == ck and bool(bk), {"baseline": sorted(bk), "candidate": sorted(ck)}, "equal, non-empty",
        f"task sets differ or are empty: only in baseline {sorted(bk - ck)}, only in candidate {sorted(ck - bk)}")
    return anomalies, checks


def _input_error(detail: str, threshold_info: dict) -> dict:
    return make_verdict(GATE, passed=False, failure_class="USER_CONFIG_ERROR", detail=detail,
                        decision=None, tasks={}, threshold=threshold_info,
                        next_action="Pass two run summaries (schemas/run-summary.schema.json) and a valid threshold.")


def evaluate_compare(baseline: Any, candidate: Any, *, threshold: Any = 0.01, relative: Any = False,
                     implausible_gain: Any = 0.02, z: Any = 1.645, paired: Any = None) -> dict:
    """Compare a candidate run summary to the baseline; never raises.

    ``threshold`` and ``implausible_gain`` are fractions: of the full scale for an absolute
    threshold (0.01 = 1 point on a 0-100 scale; metric units for an unbounded scale), of the
    baseline score for a relative one. ``paired`` maps task -> {"n", "mean_diff", "stderr_diff"}
    from per-sample records (in the task's scale); without it the standard error of the
    difference is sqrt(se_b^2 + se_c^2).
    """
    threshold_info = {"value": threshold, "relative": relative, "implausible_gain": implausible_gain, "z": z,
                      "units": "fraction of the baseline score" if relative is True else
                      "fraction of full scale (metric units for unbounded scales)",
                      "tolerance": {"rel": REL_TOL, "abs": ABS_TOL}}
    problems = _param_problems(threshold, relative, implausible_gain, z, paired)
    if problems:
        return _input_error("bad comparison parameters: " + "; ".join(problems), threshold_info)
    for side, run in (("baseline", baseline), ("candidate", candidate)):
        if not isinstance(run, dict) or not isinstance(run.get("tasks"), dict):
            return _input_error(f"{side} is not a run summary (an object with a 'tasks' object): "
                                f"{short(run)}", threshold_info)
    run_anomalies, checks = _run_problems(baseline, candidate)
    paired = paired or {}
    tasks: dict[str, dict] = {}
    for name in sorted(set(baseline["tasks"]) & set(candidate["tasks"]), key=str):
        b, c = baseline["tasks"][name], candidate["tasks"][name]
        anomalies, values = _task_anomalies(name, b, c, paired.get(name))
        base = {"baseline": b.get("score") if isinstance(b, dict) else None,
                "candidate": c.get("score") if isinstance(c, dict) else None,
                "metric": values.get("metric"), "scale": values.get("scale"),
                "higher_is_better": values.get("higher_is_better"), "threshold": threshold}
        if anomalies:
            result = dict(base, decision="ANOMALOUS", judgeable=False, reasons=anomalies, drop=None,
                          upper_bound=None, stderr_diff=None, stderr_source=None, n=None, samples_needed=None)
        else:
            result = dict(base, **_judge(values, paired.get(name), threshold, relative, implausible_gain, z))
        tasks[name] = result
        ok = result["decision"] == "ACCEPT"
        checks.append(check(f"task:{name}", ok, result["drop"], threshold,
                            None if ok else DECISION_CLASS[result["decision"]], "; ".join(result["reasons"])))
    decisions = [t["decision"] for t in tasks.values()] + (["ANOMALOUS"] if run_anomalies else [])
    if not decisions:
        decisions = ["ANOMALOUS"]
    decision = min(decisions, key=DECISION_ORDER.index)
    judgeable = not run_anomalies and all(t["judgeable"] for t in tasks.values() if t["decision"] == "ANOMALOUS")
    passed = decision == "ACCEPT"
    worst = [f"{n}: {'; '.join(t['reasons'])}" for n, t in tasks.items() if t["decision"] == decision]
    detail = f"{decision}: " + " | ".join((run_anomalies if decision == "ANOMALOUS" else []) + worst)[:1500]
    counts = {d: sum(1 for t in tasks.values() if t["decision"] == d) for d in DECISION_ORDER}
    needed = [t["samples_needed"] for t in tasks.values() if t["samples_needed"] is not None]
    return make_verdict(
        GATE, passed=passed, failure_class=DECISION_CLASS[decision], decision=decision, detail=detail,
        exit_code=0 if passed else (1 if judgeable else 2), checks=checks,
        metrics={"tasks_compared": len(tasks), "decisions": counts,
                 "max_samples_needed": max(needed) if needed else None},
        next_action=DECISION_NEXT[decision], tasks=tasks, threshold=threshold_info)
