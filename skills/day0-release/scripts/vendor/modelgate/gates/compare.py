"""Baseline vs candidate comparison gate: ACCEPT / REGRESSION / INDETERMINATE / ANOMALOUS per task.

Pure: two run summaries (schemas/run-summary.schema.json) in, a compare verdict out.

First both runs must pass gate_run (with their per-sample records when given): its failing
checks are reported as this gate's own and the comparison is ANOMALOUS. Then, per task (see
skills/day0-release/references/gates.md):
1. every value is validated (type, finiteness, scale range, counts, parity of metric/scale/
   direction, per-sample ids shared in full) and an invalid one short-circuits to ANOMALOUS
   before any arithmetic;
2. a zero baseline with a relative threshold is ANOMALOUS (the ratio is undefined);
3. a gain above ``implausible_gain`` is ANOMALOUS (evaluations do not improve by quantizing);
4. a drop above the threshold (beyond tolerance) is REGRESSION;
5. a drop within the threshold whose one-sided upper confidence bound exceeds it is
   INDETERMINATE, with the sample size that would resolve it. One standard of evidence on both
   paths: the paired standard error never goes below the rule-of-three floor; the independent
   one never below the Agresti-Coull standard error of each side's proportion (n from the counts)
   nor below that floor, so a reported stderr of 0 on 10 samples resolves nothing;
6. otherwise ACCEPT.
Overall: ANOMALOUS > REGRESSION > INDETERMINATE > ACCEPT.
"""
from __future__ import annotations

import math
from typing import Any

from modelgate.contract import check, coverage, make_verdict
from modelgate.gates.paired import rule_of_three_floor
from modelgate.gates.run import evaluate_run
from modelgate.gates.values import ABS_TOL, REL_TOL, gt_tol, is_count, is_number, le_tol, short

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
# a one-sided z above this is not a confidence level anyone means (10 sigma); it would only overflow
MAX_Z = 10.0
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
                  "n_b": b["scored_samples"], "n_c": c["scored_samples"],
                  "n": min(b["scored_samples"], c["scored_samples"])}
    return problems, values


def _paired_anomalies(p: Any, b: dict, c: dict, full: float | None, earlier: list[str]) -> list[str]:
    """Paired statistics must cover exactly the samples both runs scored: partial or no overlap of
    the sample ids is an anomaly (the runs did not score the same data), never a weaker pairing."""
    if not isinstance(p, dict):
        return [f"paired statistics are not an object: {short(p)}"]
    out = []
    only = {side: p.get(f"{side}_only", 0) for side in ("baseline", "candidate")}
    if not all(is_count(v) for v in only.values()):
        out.append(f"paired id counts {short(only)} are not counts")
    elif any(only.values()):
        out.append(f"per-sample ids differ: {short(p.get('n'))} shared, {only['baseline']} only in the baseline, "
                   f"{only['candidate']} only in the candidate: the runs did not score the same samples")
    if not is_count(p.get("n")) or p.get("n") < 1:
        out.append(f"paired n {short(p.get('n'))} is not a positive count (no sample id in common)")
    if not is_number(p.get("mean_diff")):
        out.append(f"paired mean_diff {short(p.get('mean_diff'))} is not a finite number")
    se = p.get("stderr_diff")
    if se is not None and (not is_number(se) or se < 0):
        out.append(f"paired stderr_diff {short(se)} is not a finite number >= 0")
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


def agresti_coull_se(fraction: float, n: int, z: float) -> float:
    """The Agresti-Coull standard error of a proportion ``fraction`` observed on ``n`` samples: never 0,
    even at 0 % or 100 % (10 of 10 correct is still compatible with a true rate well below 1)."""
    n_adj = n + z * z
    p_adj = min(1.0, max(0.0, (fraction * n + z * z / 2) / n_adj))
    return math.sqrt(p_adj * (1 - p_adj) / n_adj)


def proportion_se_floor(fraction: float, n: int, z: float) -> float:
    """The least standard error a score with mean ``fraction`` (of a bounded scale) over ``n`` samples can
    be given without its per-sample records: the larger of the Agresti-Coull error and the plug-in
    error sqrt(p(1-p)/(n-1)). No sample of values in [0, 1] with that mean has a larger standard error
    than the plug-in one (a 0/1 sample has exactly it), and Agresti-Coull keeps it above 0 at 0 % and
    100 %."""
    fraction = min(1.0, max(0.0, fraction))
    plug_in = math.sqrt(fraction * (1 - fraction) / (n - 1)) if n > 1 else 0.0
    return max(agresti_coull_se(fraction, n, z), plug_in)


def _independent_se(v: dict, z: float, m: int) -> float | None:
    """Standard error of candidate - baseline (metric units) from two independent runs of ``m`` samples
    each (the reported errors scaled from the counts observed), or None when it cannot be bounded.

    Without per-sample records the gate cannot see how the scores spread, so a reported stderr is only
    trusted when it is larger than what the counts allow: on a bounded scale each side's error is at
    least ``proportion_se_floor`` of its score, and the combined error at least the floor a paired
    comparison has. On an unbounded scale nothing bounds the spread: without records, no bound.
    """
    se_b, se_c, full = v["se_b"], v["se_c"], v["full"]
    if se_b is None or se_c is None or full is None:
        return None
    se_b *= math.sqrt(v["n_b"] / m)
    se_c *= math.sqrt(v["n_c"] / m)
    floor_b = full * proportion_se_floor(v["b"] / full, m, z)
    floor_c = full * proportion_se_floor(v["c"] / full, m, z)
    return max(math.hypot(max(se_b, floor_b), max(se_c, floor_c)), rule_of_three_floor(full, m))


def _paired_se(paired_entry: dict, full: float | None, n_new: int) -> float | None:
    """Paired standard error at ``n_new`` samples (metric units); None when it cannot be bounded (an
    unbounded scale with no spread in the differences: the samples that could differ are unseen)."""
    se, n = paired_entry.get("stderr_diff"), paired_entry["n"]
    if se is None:
        return None
    se *= math.sqrt(n / n_new)
    if full is None:
        return se if se > 0 else None
    return max(se, rule_of_three_floor(full, n_new))


def _samples_needed(se_at, drop: float, threshold: float, z: float, n: int) -> int | None:
    """The smallest sample count at which the same drop would be resolved (``se_at(n)`` is the standard
    error there, already normalised), or None when none up to MAX_SAMPLES_NEEDED does."""
    def resolved(m: int) -> bool:
        se = se_at(m)
        return se is not None and math.isfinite(z * se) and le_tol(drop + z * se, threshold)
    if not resolved(MAX_SAMPLES_NEEDED):
        return None
    lo, hi = n, MAX_SAMPLES_NEEDED  # resolved(lo) is False (the caller saw it), resolved(hi) is True
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if resolved(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _judge(v: dict, paired_entry: dict | None, threshold: float, relative: bool,
           implausible_gain: float, z: float) -> dict:
    """Arithmetic on validated values only."""
    norm = v["full"] if v["full"] is not None else 1.0  # unit of an absolute threshold
    b_n, c_n = v["b"] / norm, v["c"] / norm
    drop = (b_n - c_n) if v["higher_is_better"] else (c_n - b_n)
    if paired_entry is not None:
        se_source, n = "paired", paired_entry["n"]

        def se_metric(m: int) -> float | None:
            return _paired_se(paired_entry, v["full"], m)
    else:
        se_source, n = "independent", v["n"]

        def se_metric(m: int) -> float | None:
            return _independent_se(v, z, m)
    scale = norm
    out = {"drop": None, "upper_bound": None, "stderr_diff": None, "stderr_source": se_source,
           "n": n, "samples_needed": None}
    if relative:
        if v["b"] == 0:
            return dict(out, decision="ANOMALOUS", judgeable=False,
                        reasons=["baseline score is 0: a relative threshold is undefined"])
        scale, drop = norm * abs(b_n), drop / abs(b_n)

    def se_at(m: int) -> float | None:
        se = se_metric(m)
        return None if se is None else se / scale

    se = se_at(n)
    if not is_number(drop) or (se is not None and not is_number(se)):
        return dict(out, decision="ANOMALOUS", judgeable=False,
                    reasons=["drop or its standard error overflowed (a score or stderr near the float limit, or a "
                             "baseline too close to 0)"])
    out.update(drop=drop, stderr_diff=se)
    if gt_tol(-drop, implausible_gain):
        return dict(out, decision="ANOMALOUS", judgeable=True,
                    reasons=[f"gain {-drop:.6g} exceeds the implausible-gain limit {implausible_gain:g}"])
    if gt_tol(drop, threshold):
        return dict(out, decision="REGRESSION", judgeable=True,
                    reasons=[f"drop {drop:.6g} exceeds the threshold {threshold:g}"])
    if se is None:
        if se_source == "independent" and (v["se_b"] is None or v["se_c"] is None):
            why = "no standard errors"
        elif se_source == "independent":
            why = ("an unbounded score's standard error cannot be bounded without per-sample records (a reported "
                   "stderr is a claim nothing can check)")
        else:
            why = "a paired standard error of 0 on an unbounded scale bounds nothing"
        return dict(out, decision="INDETERMINATE", judgeable=True,
                    reasons=[f"{why}: cannot tell whether the sample resolves the threshold"])
    upper = drop + z * se
    if math.isfinite(upper):
        out["upper_bound"] = upper
    if math.isfinite(upper) and not gt_tol(upper, threshold):
        return dict(out, decision="ACCEPT", judgeable=True,
                    reasons=[f"drop {drop:.6g} and its upper bound {upper:.6g} are within {threshold:g} "
                             f"({se_source} standard error {se:.3g} on {n} samples)"])
    margin = threshold - drop
    bound = f"{upper:.6g}" if math.isfinite(upper) else "beyond the float range"
    head = f"drop {drop:.6g} is within {threshold:g} but its upper {z:g}-sigma bound {bound} is not: "
    if margin <= max(ABS_TOL, REL_TOL * abs(threshold)):
        reason = head + "the observed drop sits on the threshold; no sample size resolves it"
        needed = None
    else:
        needed = _samples_needed(se_at, drop, threshold, z, n)
        reason = head + (f"about {needed} samples would resolve it" if needed else
                         f"the standard error {se:.3g} is too large for any sample size up to "
                         f"{MAX_SAMPLES_NEEDED:.0e} to resolve it")
    return dict(out, decision="INDETERMINATE", judgeable=True, samples_needed=needed, reasons=[reason])


def param_problems(threshold: Any, relative: Any = False, implausible_gain: Any = 0.02, z: Any = 1.645,
                   paired: Any = None) -> list[str]:
    """What is wrong with comparison parameters (empty: usable). The release conductor checks its
    arguments with this before any stage runs, so a threshold the comparison would refuse never
    starts a chain."""
    problems = []
    # a fraction: "--threshold 1" meant as 1 % would otherwise accept any drop
    if not is_number(threshold) or not 0 <= threshold < 1:
        problems.append(f"threshold {short(threshold)} must be a fraction in [0, 1) (0.01 = 1 point or 1 %)")
    if not isinstance(relative, bool):
        problems.append(f"relative {short(relative)} must be a boolean")
    if not is_number(implausible_gain) or not 0 < implausible_gain <= 1:
        problems.append(f"implausible_gain {short(implausible_gain)} must be a fraction in (0, 1]")
    if not is_number(z) or not 0 < z <= MAX_Z:
        problems.append(f"z {short(z)} must be a finite number in (0, {MAX_Z:g}]")
    if paired is not None and not isinstance(paired, dict):
        problems.append(f"paired must be an object of task -> statistics, got {type(paired).__name__}")
    return problems


def threshold_info(threshold: Any = None, relative: Any = None, implausible_gain: Any = None,
                   z: Any = None) -> dict:
    """The verdict's ``threshold`` object: the parameters as numbers (null where a given value is not a
    finite number: never a string in a numeric field), their units and the tolerance."""
    return {"value": threshold if is_number(threshold) else None,
            "relative": relative if isinstance(relative, bool) else None,
            "implausible_gain": implausible_gain if is_number(implausible_gain) else None,
            "z": z if is_number(z) else None,
            "units": "fraction of the baseline score" if relative is True else
                     "fraction of full scale (metric units for unbounded scales)",
            "tolerance": {"rel": REL_TOL, "abs": ABS_TOL}}


def _run_problems(baseline: dict, candidate: dict, records: tuple[Any, Any]) -> tuple[list[str], list[dict]]:
    """gate_run on both sides (its failing checks become this gate's own, named ``<side>:<check>``) and
    the whole-run parity checks; returns (anomalies, checks)."""
    anomalies, checks = [], []

    def add(name, ok, measured, expected, text):
        checks.append(check(name, ok, measured, expected, None if ok else "ANOMALOUS_RESULT",
                            None if ok else text))
        if not ok:
            anomalies.append(text)

    for side, run, rec in (("baseline", baseline, records[0]), ("candidate", candidate, records[1])):
        verdict = evaluate_run(run, rec)
        add(f"{side}_run_valid", verdict["pass"], verdict["failure_class"], "passes gate-run",
            f"{side} run does not pass gate-run: {verdict['detail'][:300]}")
        checks += [dict(c, name=f"{side}:{c['name']}") for c in verdict["checks"] if c["pass"] is False]
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


def _input_error(detail: str, info: dict) -> dict:
    return make_verdict(GATE, passed=False, failure_class="USER_CONFIG_ERROR", detail=detail,
                        decision=None, tasks={}, threshold=info,
                        next_action="Pass two run summaries (schemas/run-summary.schema.json) and a valid threshold.")


def _coverage(tasks: dict, decision: str, run_anomalies: list[str], info: dict, only_one: list[str]) -> dict:
    """What a comparison vouches for: per task the samples and the kind of standard error judged."""
    exercised = {name: {"decision": t["decision"], "samples": t["n"], "stderr_source": t["stderr_source"],
                        "drop": t["drop"], "upper_bound": t["upper_bound"]} for name, t in tasks.items()}
    not_exercised = ["whether the candidate is better than the baseline (the gate bounds a drop, it does not rank)"]
    independent = [n for n, t in tasks.items() if t["stderr_source"] == "independent"]
    if independent:
        not_exercised.append("paired per-sample statistics for " + ", ".join(independent[:20])
                             + " (no per-sample records on both sides: independent, conservative errors)")
    if only_one:
        not_exercised.append("tasks in one run only: " + ", ".join(only_one[:20]))
    if decision == "ACCEPT":
        parts = [f"{n} ({t['n']} {t['stderr_source']} samples, drop <= {t['upper_bound']:.3g} at one-sided "
                 f"z={info['z']:g})" for n, t in list(tasks.items())[:6]]
        units = "of the baseline score" if info["relative"] else "of full scale"
        summary = f"ACCEPT: no drop beyond {info['value']:g} {units} on " + "; ".join(parts)
    elif run_anomalies:
        summary = "ANOMALOUS: the runs are not comparable (" + run_anomalies[0][:200] + "); nothing is vouched for"
    else:
        summary = (f"{decision}: " + "; ".join(f"{n}: {t['decision']} on {t['n']} samples" for n, t in
                                              list(tasks.items())[:6]) + "; no accuracy claim can be made")
    return coverage(summary[:500], {"tasks": exercised, "threshold": info["value"], "relative": info["relative"]},
                    not_exercised)


def evaluate_compare(baseline: Any, candidate: Any, *, threshold: Any = 0.01, relative: Any = False,
                     implausible_gain: Any = 0.02, z: Any = 1.645, paired: Any = None,
                     baseline_records: Any = None, candidate_records: Any = None) -> dict:
    """Compare a candidate run summary to the baseline; never raises.

    ``threshold`` and ``implausible_gain`` are fractions: of the full scale for an absolute
    threshold (0.01 = 1 point on a 0-100 scale; metric units for an unbounded scale), of the
    baseline score for a relative one. ``paired`` maps task -> ``paired_stats`` from per-sample
    records (in the task's scale); without it the standard error of the difference is that of two
    independent runs (``_independent_se``). ``baseline_records`` / ``candidate_records`` map task ->
    ``records_stats`` of each run's records: gate_run judges each run with them first.
    """
    info = threshold_info(threshold, relative, implausible_gain, z)
    problems = param_problems(threshold, relative, implausible_gain, z, paired)
    if problems:
        return _input_error("bad comparison parameters: " + "; ".join(problems), info)
    for side, run in (("baseline", baseline), ("candidate", candidate)):
        if not isinstance(run, dict) or not isinstance(run.get("tasks"), dict):
            return _input_error(f"{side} is not a run summary (an object with a 'tasks' object): "
                                f"{short(run)}", info)
    run_anomalies, checks = _run_problems(baseline, candidate, (baseline_records, candidate_records))
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
    only_one = sorted(map(str, set(baseline["tasks"]) ^ set(candidate["tasks"])))
    return make_verdict(
        GATE, passed=passed, failure_class=DECISION_CLASS[decision], decision=decision, detail=detail,
        exit_code=0 if passed else (1 if judgeable else 2), checks=checks,
        metrics={"tasks_compared": len(tasks), "decisions": counts,
                 "max_samples_needed": max(needed) if needed else None},
        next_action=DECISION_NEXT[decision], tasks=tasks, threshold=info,
        coverage=_coverage(tasks, decision, run_anomalies, info, only_one))
