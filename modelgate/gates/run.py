"""Completeness gate of one evaluation run: is its score over the data it claims?

Pure: a run summary (schemas/run-summary.schema.json) in, a run verdict out. Failure
classes come from the run status and from *structured* error codes, never from
substrings of messages (an error message that mentions "judge" or "author" means
nothing here; its ``code`` does).
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from modelgate.contract import check, coverage, make_verdict
from modelgate.gates.values import is_count, is_number, short

GATE = "gate-run"
RUN_STATUSES = ("COMPLETED", "RUNNING", "QUEUED", "INTERRUPTED", "RESUMABLE", "FAILED")
NON_TERMINAL = frozenset({"RUNNING", "QUEUED", "INTERRUPTED", "RESUMABLE"})
TASK_STATUSES = ("COMPLETED", "RUNNING", "FAILED", "SKIPPED")
SCALE_RANGE = {"unit": (0.0, 1.0), "percent": (0.0, 100.0), "unbounded": (None, None)}
VARIANTS = ("baseline", "candidate")
# structured scorer error code -> failure class. Data, not message substrings.
ERROR_CODE_CLASS = {
    "SCORER_EXCEPTION": "EVAL_SCORER_FAILED",
    "PARSE_FAILURE": "EVAL_SCORER_FAILED",
    "INVALID_PREDICTION": "EVAL_SCORER_FAILED",
    "MISSING_REFERENCE": "SAMPLE_ACCOUNTING_FAILED",
    "TIMEOUT": "INFRA_TRANSIENT",
    "INFRA": "INFRA_TRANSIENT",
}
# task status -> failure class when it is not COMPLETED
TASK_STATUS_CLASS = {"RUNNING": "INFRA_TRANSIENT", "FAILED": "EVAL_SCORER_FAILED",
                     "SKIPPED": "SAMPLE_ACCOUNTING_FAILED"}
# when several checks fail, the verdict names the first class in this order
CLASS_PRIORITY = ("USER_CONFIG_ERROR", "INFRA_TRANSIENT", "INTEGRITY_MISMATCH", "SAMPLE_ACCOUNTING_FAILED",
                  "EVAL_SCORER_FAILED")
SHA256_HEX = frozenset("0123456789abcdef")
# the fields of a run summary and of a task entry (schemas/run-summary.schema.json); anything else is a typo
RUN_KEYS = frozenset({"schema_version", "run_id", "variant", "model", "artifact_sha256", "eval_config",
                      "eval_config_sha256", "status", "tasks", "timings"})
TASK_KEYS = frozenset({"status", "metric", "scale", "higher_is_better", "expected_samples", "scored_samples",
                       "score", "stderr", "records_path", "errors"})
# counts and score are required too, but their absence has its own class (accounting, scorer)
TASK_REQUIRED = frozenset({"status", "metric", "scale", "higher_is_better"})
# a metric's name (the schema's pattern): a number or an empty string in its place is a shifted column
METRIC_NAME = re.compile(r"[A-Za-z_][^\x00-\x1f]{0,127}")


def eval_config_sha256(eval_config: Any) -> str:
    """The canonical hash of an eval config: sha256 of its sorted, compact JSON (what producers must write)."""
    text = json.dumps(eval_config, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _is_sha(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= SHA256_HEX


def _form_check(name: str, obj: dict, known: frozenset, required: frozenset) -> dict:
    keys = {k for k in obj if isinstance(k, str)}
    unknown, missing = sorted(keys - known), sorted(required - keys)
    ok = not unknown and not missing
    return check(name, ok, {"unknown": unknown, "missing": missing}, "the schema's fields",
                 None if ok else "USER_CONFIG_ERROR",
                 None if ok else f"unknown fields {unknown} / missing fields {missing}")


def _header_checks(summary: dict) -> list[dict]:
    out = [_form_check("run_fields", summary, RUN_KEYS, RUN_KEYS)]
    timings = summary.get("timings")
    form_ok = (summary.get("schema_version") == "1.0" and isinstance(summary.get("model"), str)
               and bool(summary.get("model")) and isinstance(timings, dict)
               and all(is_number(v) and v >= 0 for v in timings.values()))
    out.append(check("run_form", form_ok, {"schema_version": summary.get("schema_version"),
                                           "model": short(summary.get("model"))},
                     "schema_version 1.0, a model name, timings in seconds", None if form_ok else "USER_CONFIG_ERROR",
                     None if form_ok else "schema_version, model or timings missing/invalid"))
    status = summary.get("status")
    known = isinstance(status, str) and status in RUN_STATUSES
    out.append(check("run_status_known", known, status, list(RUN_STATUSES),
                     None if known else "USER_CONFIG_ERROR", None if known else f"unknown run status {short(status)}"))
    if known:
        terminal = status not in NON_TERMINAL
        out.append(check("run_terminal", terminal, status, "COMPLETED or FAILED",
                         None if terminal else "INFRA_TRANSIENT",
                         None if terminal else f"run is {status}: resume or wait, do not judge the model yet"))
        if terminal:
            ok = status == "COMPLETED"
            out.append(check("run_completed", ok, status, "COMPLETED", None if ok else "EVAL_SCORER_FAILED",
                             None if ok else "run FAILED"))
    variant_ok = summary.get("variant") in VARIANTS
    out.append(check("variant", variant_ok, summary.get("variant"), list(VARIANTS),
                     None if variant_ok else "USER_CONFIG_ERROR",
                     None if variant_ok else "variant must be baseline or candidate"))
    ident = isinstance(summary.get("run_id"), str) and bool(summary.get("run_id")) and _is_sha(
        summary.get("artifact_sha256"))
    out.append(check("identity", ident, {"run_id": summary.get("run_id"),
                                         "artifact_sha256": summary.get("artifact_sha256")},
                     "run_id and a 64-hex artifact_sha256", None if ident else "USER_CONFIG_ERROR",
                     None if ident else "run_id or artifact_sha256 missing/invalid: the evaluated artifact is unknown"))
    cfg, sha = summary.get("eval_config"), summary.get("eval_config_sha256")
    if not isinstance(cfg, dict) or not _is_sha(sha):
        out.append(check("eval_config_hash", False, sha, "sha256 of eval_config", "USER_CONFIG_ERROR",
                         "eval_config (object) or eval_config_sha256 (64 hex) missing"))
    else:
        try:
            actual = eval_config_sha256(cfg)
        except (ValueError, RecursionError):  # NaN/Infinity (or absurd nesting) cannot be canonical JSON
            actual = None
        ok = actual == sha
        out.append(check("eval_config_hash", ok, sha, actual, None if ok else "INTEGRITY_MISMATCH",
                         None if ok else "eval_config_sha256 is not the hash of eval_config"))
    return out


def _error_checks(name: str, errors: Any) -> list[dict]:
    if not isinstance(errors, list):
        return [check(f"{name}:errors", False, short(errors), "a list of {code, message}", "USER_CONFIG_ERROR",
                      "errors is not a list")]
    out = []
    for i, err in enumerate(errors):
        code = err.get("code") if isinstance(err, dict) else None
        cls = ERROR_CODE_CLASS.get(code) if isinstance(code, str) else None
        # an unknown code is still an error: fail closed as a scorer failure
        cls = cls or "EVAL_SCORER_FAILED"
        message = err.get("message") if isinstance(err, dict) else err
        sample = err.get("sample_id") if isinstance(err, dict) else None
        out.append(check(f"{name}:error[{i}]", False, {"code": code, "message": short(message, 300),
                                                       "sample_id": sample}, "no errors",
                         cls, f"scorer error {short(code)}" + ("" if code in ERROR_CODE_CLASS else " (unknown code)")))
    return out


def _task_checks(name: str, task: Any) -> list[dict]:
    if not isinstance(task, dict):
        return [check(f"{name}:entry", False, short(task), "an object", "USER_CONFIG_ERROR",
                      f"task entry is a {type(task).__name__}, not an object")]
    out = [_form_check(f"{name}:fields", task, TASK_KEYS, TASK_REQUIRED)]
    status = task.get("status")
    if status not in TASK_STATUSES or not isinstance(status, str):
        out.append(check(f"{name}:status", False, status, list(TASK_STATUSES), "USER_CONFIG_ERROR",
                         f"unknown task status {short(status)}"))
    elif status != "COMPLETED":
        out.append(check(f"{name}:status", False, status, "COMPLETED", TASK_STATUS_CLASS[status],
                         f"task {status}"))
    else:
        out.append(check(f"{name}:status", True, status, "COMPLETED"))
    scale, metric, hib = task.get("scale"), task.get("metric"), task.get("higher_is_better")
    form_ok = (isinstance(scale, str) and scale in SCALE_RANGE and isinstance(metric, str)
               and METRIC_NAME.fullmatch(metric) is not None and isinstance(hib, bool))
    out.append(check(f"{name}:declared", form_ok, {"metric": metric, "scale": scale, "higher_is_better": hib},
                     {"scale": list(SCALE_RANGE), "metric": "a name", "higher_is_better": "boolean"},
                     None if form_ok else "USER_CONFIG_ERROR",
                     None if form_ok else "metric, scale and higher_is_better must be declared (never guessed)"))
    expected, scored = task.get("expected_samples"), task.get("scored_samples")
    if not is_count(expected) or not is_count(scored) or expected < 1:
        out.append(check(f"{name}:samples", False, {"expected": expected, "scored": scored},
                         "scored == expected >= 1", "SAMPLE_ACCOUNTING_FAILED",
                         "sample counts missing or invalid (must be integers, expected >= 1)"))
    else:
        ok = scored == expected
        out.append(check(f"{name}:samples", ok, {"expected": expected, "scored": scored}, "scored == expected",
                         None if ok else "SAMPLE_ACCOUNTING_FAILED", None if ok else f"scored {scored} of {expected}"))
    score = task.get("score")
    lo, hi = SCALE_RANGE.get(scale, (None, None)) if isinstance(scale, str) else (None, None)
    if not is_number(score):
        out.append(check(f"{name}:score", False, score, "finite number", "EVAL_SCORER_FAILED",
                         f"score {short(score)} is not a finite number"))
    elif form_ok and lo is not None and not lo <= score <= hi:
        out.append(check(f"{name}:score", False, score, [lo, hi], "EVAL_SCORER_FAILED",
                         f"score {score!r} is outside the declared {scale} scale [{lo:g}, {hi:g}]"))
    else:
        out.append(check(f"{name}:score", form_ok or None, score, [lo, hi] if lo is not None else "finite",
                         not_judged_because=None if form_ok else "the scale is not declared, so the score's "
                         "range cannot be judged (the declared check fails)"))
    stderr = task.get("stderr")
    if stderr is not None:
        ok = is_number(stderr) and stderr >= 0 and (hi is None or stderr <= hi)
        out.append(check(f"{name}:stderr", ok, stderr, ">= 0 and finite", None if ok else "EVAL_SCORER_FAILED",
                         None if ok else f"stderr {short(stderr)} is not a finite number >= 0 within the scale"))
    rp = task.get("records_path")
    if rp is not None and not (isinstance(rp, str) and rp):
        out.append(check(f"{name}:records_path", False, short(rp), "relative path", "USER_CONFIG_ERROR",
                         "records_path is not a path"))
    return out + (_error_checks(name, task["errors"]) if "errors" in task else [])


def _records_checks(summary_tasks: dict, records: Any) -> list[dict]:
    """Per-sample records (observed by the thin layer) must agree with the summary's counts and scores,
    and every per-sample score must lie in the task's declared scale."""
    if records is None:
        return []
    out = []
    for name, task in summary_tasks.items():
        rec = records.get(name) if isinstance(records, dict) else None
        if not isinstance(task, dict) or task.get("records_path") is None:
            continue
        if not isinstance(rec, dict) or not is_count(rec.get("count")):
            out.append(check(f"{name}:records", False, short(rec), "readable records", "SAMPLE_ACCOUNTING_FAILED",
                             "per-sample records missing or unreadable"))
            continue
        problems = []
        if rec["count"] != task.get("scored_samples"):
            problems.append(f"{rec['count']} records for {short(task.get('scored_samples'))} scored samples")
        if rec.get("duplicate_ids", 0):
            problems.append(f"{rec.get('duplicate_ids')} duplicate sample ids")
        if rec.get("invalid", 0):
            problems.append(f"{rec.get('invalid')} records without a finite score or an id")
        mean, score = rec.get("mean"), task.get("score")
        if mean is not None and not is_number(mean):
            problems.append("the records' mean is not a finite number")
        elif is_number(mean) and is_number(score) and abs(mean - score) > 1e-6 * max(1.0, abs(score)):
            problems.append(f"records mean {mean!r} != summary score {score!r}")
        out.append(check(f"{name}:records", not problems, rec, "count == scored, unique ids, mean == score",
                         "SAMPLE_ACCOUNTING_FAILED" if problems else None, "; ".join(problems) or None))
        scale = task.get("scale")
        lo, hi = SCALE_RANGE.get(scale, (None, None)) if isinstance(scale, str) else (None, None)
        low, high = rec.get("min"), rec.get("max")
        if lo is not None and (is_number(low) or is_number(high)):
            # a per-sample score outside the scale is a scorer fault, even when the mean looks right
            ok = not ((is_number(low) and low < lo) or (is_number(high) and high > hi))
            out.append(check(f"{name}:record_scores", ok, {"min": low, "max": high}, [lo, hi],
                             None if ok else "EVAL_SCORER_FAILED",
                             None if ok else f"per-sample scores span [{low!r}, {high!r}], outside the declared "
                             f"{scale} scale [{lo:g}, {hi:g}]"))
    return out


def _coverage(tasks: dict, records: Any, passed: bool, failure_class: str | None, first: list[dict]) -> dict:
    """What a run verdict vouches for: the tasks and sample counts judged, which had their records read."""
    exercised, no_records = {}, []
    for name, task in sorted(tasks.items(), key=lambda kv: str(kv[0])):
        if not isinstance(task, dict):
            continue
        has_records = task.get("records_path") is not None and records is not None
        exercised[str(name)] = {"status": task.get("status") if isinstance(task.get("status"), str) else None,
                                "samples": task.get("scored_samples") if is_count(task.get("scored_samples"))
                                else None, "records_checked": has_records}
        if not has_records:
            no_records.append(str(name))
    not_exercised = ["accuracy: gate_run judges completeness, not whether the score is good enough (gate_compare)"]
    if no_records:
        not_exercised.append("per-sample records of " + ", ".join(no_records[:20])
                             + (" (not read)" if records is None else " (the summary names none)"))
    if passed:
        counts = ", ".join(f"{n}: {e['samples']} samples" for n, e in list(exercised.items())[:10])
        summary = (f"run complete: {len(exercised)} task(s) scored over every expected sample ({counts}); "
                   f"per-sample records checked for {len(exercised) - len(no_records)} of {len(exercised)}")
    else:
        summary = (f"not complete ({failure_class}: {first[0]['name'] if first else 'run'}); nothing about its "
                   "scores is vouched for")
    return coverage(summary[:500], {"tasks": exercised, "records_checked": len(exercised) - len(no_records)},
                    not_exercised)


def evaluate_run(summary: Any, records: Any = None) -> dict:
    """Judge one run summary's completeness; never raises.

    ``records`` optionally maps task -> {"count", "duplicate_ids", "invalid", "mean"} observed
    from the per-sample JSONL (``modelgate.release.paired.records_stats``).
    """
    if not isinstance(summary, dict):
        return make_verdict(GATE, passed=False, failure_class="USER_CONFIG_ERROR", decision=None,
                            detail=f"run summary is a {type(summary).__name__}, not an object", tasks={},
                            next_action="Pass a run summary (schemas/run-summary.schema.json).")
    checks = _header_checks(summary)
    tasks = summary.get("tasks")
    if not isinstance(tasks, dict) or not tasks:
        checks.append(check("tasks", False, short(tasks), "a non-empty object of tasks", "SAMPLE_ACCOUNTING_FAILED",
                            "no tasks: nothing was evaluated"))
        tasks = tasks if isinstance(tasks, dict) else {}
    for name in sorted(tasks, key=str):
        checks += _task_checks(name, tasks[name])
    checks += _records_checks(tasks, records)
    failed = [c for c in checks if c["pass"] is False]
    classes = {c.get("failure_class") for c in failed}
    failure_class = next((k for k in CLASS_PRIORITY if k in classes), None)
    passed = failure_class is None
    task_status = {n: (t.get("status") if isinstance(t, dict) else None) for n, t in tasks.items()}
    # a number or null: an invalid score is reported by its check, never as a string in a numeric field
    scores = {n: t.get("score") if is_number(t.get("score")) else None for n, t in tasks.items() if isinstance(t, dict)}
    first = [c for c in failed if c.get("failure_class") == failure_class]
    detail = ("run complete: " + f"{len(tasks)} task(s) scored over all expected samples" if passed
              else f"{failure_class}: " + "; ".join(f"{c['name']}: {c.get('detail', '')}" for c in first)[:1500])
    return make_verdict(
        GATE, passed=passed, failure_class=failure_class, decision=None, detail=detail, checks=checks,
        metrics={"tasks": len(tasks), "failed_checks": len(failed), "scores": scores},
        next_action="none" if passed else "", tasks=task_status,
        coverage=_coverage(tasks, records, passed, failure_class, first))
