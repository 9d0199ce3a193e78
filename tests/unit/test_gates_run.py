"""gate_run as a pure function: completeness, sample accounting, structured error codes, arbitrary JSON."""
from __future__ import annotations

import pytest
from day0_builders import json_values, mutated, run_summary, task
from hypothesis import HealthCheck, given, settings

from modelgate.contract import schema_errors
from modelgate.gates.run import ERROR_CODE_CLASS, NON_TERMINAL, eval_config_sha256, evaluate_run


def judge(summary, records=None):
    v = evaluate_run(summary, records)
    assert schema_errors("run-verdict", v) == []
    return v


def failing(v):
    return {c["name"]: c.get("failure_class") for c in v["checks"] if c["pass"] is False}


def test_complete_run_passes_and_is_schema_valid():
    s = run_summary()
    assert schema_errors("run-summary", s) == []
    v = judge(s)
    assert (v["pass"], v["exit_code"], v["failure_class"]) == (True, 0, None)


@pytest.mark.parametrize("status", sorted(NON_TERMINAL))
def test_non_terminal_run_status_is_infra_transient(status):
    v = judge(run_summary(status=status))
    assert v["failure_class"] == "INFRA_TRANSIENT" and v["exit_code"] == 1


def test_failed_run_status_fails_as_scorer_failure():
    assert judge(run_summary(status="FAILED"))["failure_class"] == "EVAL_SCORER_FAILED"


def test_unknown_run_status_cannot_be_judged():
    v = judge(run_summary(status="DONE"))
    assert (v["failure_class"], v["exit_code"]) == ("USER_CONFIG_ERROR", 2)


@pytest.mark.parametrize("field", ["expected_samples", "scored_samples"])
def test_regression_seed_missing_sample_counts_fail_closed(field):
    t = task()
    del t[field]
    v = judge(run_summary(tasks={"digits": t}))
    assert v["failure_class"] == "SAMPLE_ACCOUNTING_FAILED" and not v["pass"]


@pytest.mark.parametrize("expected,scored", [(450, 449), (450.0, 450), ("450", "450"), (True, True), (0, 0),
                                             (450, -1), (None, 450)])
def test_invalid_or_unequal_sample_counts_fail(expected, scored):
    v = judge(run_summary(tasks={"digits": task(expected_samples=expected, scored_samples=scored)}))
    assert v["failure_class"] == "SAMPLE_ACCOUNTING_FAILED"


@pytest.mark.parametrize("score", [None, float("nan"), float("inf"), "0.9", True, [0.9]])
def test_missing_or_non_finite_scores_fail_as_scorer_failures(score):
    v = judge(run_summary(tasks={"digits": task(score)}))
    assert v["failure_class"] == "EVAL_SCORER_FAILED"


def test_regression_seed_unit_score_of_1_5_is_out_of_scale_not_a_percent():
    v = judge(run_summary(tasks={"digits": task(1.5)}))
    assert v["failure_class"] == "EVAL_SCORER_FAILED" and "outside the declared unit scale" in v["detail"]
    assert judge(run_summary(tasks={"digits": task(1.5, scale="percent")}))["pass"] is True


@pytest.mark.parametrize("field,value", [("scale", None), ("scale", "fraction"), ("metric", ""),
                                         ("higher_is_better", "yes")])
def test_undeclared_scale_metric_or_direction_cannot_be_judged(field, value):
    v = judge(run_summary(tasks={"digits": task(**{field: value})}))
    assert (v["failure_class"], v["exit_code"]) == ("USER_CONFIG_ERROR", 2)


def test_regression_seed_task_entry_that_is_not_an_object_gives_a_verdict_not_a_crash():
    v = judge(run_summary(tasks={"digits": task(), "broken": "oops"}))
    assert (v["failure_class"], v["exit_code"]) == ("USER_CONFIG_ERROR", 2)
    assert "broken:entry" in failing(v)


def test_no_tasks_is_a_sample_accounting_failure():
    assert judge(run_summary(tasks={}))["failure_class"] == "SAMPLE_ACCOUNTING_FAILED"


@pytest.mark.parametrize("status,cls", [("RUNNING", "INFRA_TRANSIENT"), ("FAILED", "EVAL_SCORER_FAILED"),
                                        ("SKIPPED", "SAMPLE_ACCOUNTING_FAILED")])
def test_unfinished_task_statuses_map_to_their_classes(status, cls):
    assert judge(run_summary(tasks={"digits": task(status=status)}))["failure_class"] == cls


@pytest.mark.parametrize("code,cls", sorted(ERROR_CODE_CLASS.items()))
def test_scorer_errors_are_classed_by_their_structured_code(code, cls):
    v = judge(run_summary(tasks={"digits": task(errors=[{"code": code, "message": "x"}])}))
    assert v["failure_class"] == cls


def test_regression_seed_author_field_missing_is_not_a_judge_failure_by_substring():
    # matching "judge" in messages is not enough; here only the code counts
    errors = [{"code": "INFRA", "message": "judge: author field missing"}]
    v = judge(run_summary(tasks={"digits": task(errors=errors)}))
    assert v["failure_class"] == "INFRA_TRANSIENT"
    errors = [{"code": "MISSING_REFERENCE", "message": "scorer exception in judge"}]
    assert judge(run_summary(tasks={"digits": task(errors=errors)}))["failure_class"] == "SAMPLE_ACCOUNTING_FAILED"


def test_unknown_error_code_still_fails_closed():
    v = judge(run_summary(tasks={"digits": task(errors=[{"code": "WEIRD", "message": ""}, "text"])}))
    assert v["failure_class"] == "EVAL_SCORER_FAILED"


def test_errors_that_are_not_a_list_cannot_be_judged():
    assert judge(run_summary(tasks={"digits": task(errors="boom")}))["failure_class"] == "USER_CONFIG_ERROR"


def test_eval_config_hash_must_match_the_config():
    s = run_summary()
    s["eval_config"]["seed"] = 1
    v = judge(s)
    assert v["failure_class"] == "INTEGRITY_MISMATCH"
    s["eval_config_sha256"] = eval_config_sha256(s["eval_config"])
    assert judge(s)["pass"] is True


def test_missing_identity_cannot_be_judged():
    s = run_summary()
    s["artifact_sha256"] = "not-a-hash"
    assert judge(s)["failure_class"] == "USER_CONFIG_ERROR"


def test_invalid_stderr_fails():
    assert judge(run_summary(tasks={"digits": task(stderr=-0.1)}))["failure_class"] == "EVAL_SCORER_FAILED"


def test_infra_transient_outranks_accounting_failures():
    t = task(scored_samples=10)
    v = judge(run_summary(tasks={"digits": t}, status="RUNNING"))
    assert v["failure_class"] == "INFRA_TRANSIENT"


def test_records_must_agree_with_the_summary():
    s = run_summary(tasks={"digits": task(0.5, records_path="records/digits.jsonl")})
    ok = {"digits": {"count": 450, "duplicate_ids": 0, "invalid": 0, "mean": 0.5}}
    assert judge(s, ok)["pass"] is True
    for bad in ({"count": 449, "duplicate_ids": 0, "invalid": 0, "mean": 0.5},
                {"count": 450, "duplicate_ids": 3, "invalid": 0, "mean": 0.5},
                {"count": 450, "duplicate_ids": 0, "invalid": 2, "mean": 0.5},
                {"count": 450, "duplicate_ids": 0, "invalid": 0, "mean": 0.6}, None):
        v = judge(s, {"digits": bad})
        assert v["failure_class"] == "SAMPLE_ACCOUNTING_FAILED", bad


@pytest.mark.parametrize("bad", [None, [], "x", 1.5])
def test_a_summary_that_is_not_an_object_cannot_be_judged(bad):
    v = judge(bad)
    assert (v["failure_class"], v["exit_code"]) == ("USER_CONFIG_ERROR", 2)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(summary=json_values, records=json_values)
def test_arbitrary_json_in_gives_a_schema_valid_verdict_never_an_exception(summary, records):
    judge(summary, records)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(summary=mutated(run_summary(), ["status", "variant", "run_id", "artifact_sha256", "eval_config",
                                       "eval_config_sha256", "tasks", "model", "timings", "schema_version", "x"]),
       entry=mutated(task(), ["status", "metric", "scale", "higher_is_better", "expected_samples", "scored_samples",
                              "score", "stderr", "errors", "records_path", "x"]))
def test_a_summary_the_gate_passes_is_valid_against_the_run_summary_schema(summary, entry):
    if isinstance(summary.get("tasks"), dict) and "digits" in summary["tasks"]:
        summary["tasks"]["digits"] = entry
    v = judge(summary)
    if v["pass"]:
        assert schema_errors("run-summary", summary) == []


@pytest.mark.parametrize("mutate", [lambda s: s.update(extra=1), lambda s: s.update(model=None),
                                    lambda s: s.pop("timings"), lambda s: s.update(schema_version="2.0"),
                                    lambda s: s["tasks"]["digits"].update(errors=None),
                                    lambda s: s["tasks"]["digits"].update(typo_score=0.9),
                                    lambda s: s["timings"].update(seconds=-1)])
def test_fields_outside_the_run_summary_schema_cannot_be_judged(mutate):
    s = run_summary()
    mutate(s)
    assert schema_errors("run-summary", s) != []
    v = judge(s)
    assert (v["failure_class"], v["exit_code"]) == ("USER_CONFIG_ERROR", 2)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(summary=json_values)
def test_the_command_turns_an_arbitrary_json_file_into_a_verdict_and_an_exit_code(summary):
    import contextlib
    import io
    import json
    import tempfile
    from pathlib import Path

    from modelgate.cli.day0 import GATE_RUN
    from modelgate.cli.spine import run_command

    with tempfile.TemporaryDirectory() as d:
        Path(d, "run_summary.json").write_text(json.dumps(summary))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = run_command(GATE_RUN, ["--run", str(Path(d, "run_summary.json"))])
    verdict = json.loads(out.getvalue())
    assert code == verdict["exit_code"] and code in (1, 2)
    assert schema_errors("envelope", verdict) == []


def test_non_string_task_names_from_python_callers_do_not_crash():
    v = judge(run_summary(tasks={1: task(), "digits": task()}))
    assert v["pass"] is True and set(v["tasks"]) == {"1", "digits"}


@pytest.mark.parametrize("metric", ["0.9", "", "-1", " acc", "acc\nnone", "a" * 200])
def test_regression_seed_a_metric_that_is_not_a_name_is_refused_by_gate_and_schema_alike(metric):
    """Found by the fuzzer: a number in the metric's place (a shifted column) passed gate_run."""
    doc = run_summary(tasks={"t": task(metric=metric)})
    v = judge(doc)
    assert (v["pass"], v["exit_code"], v["failure_class"]) == (False, 2, "USER_CONFIG_ERROR")
    assert "t:declared" in failing(v)
    assert schema_errors("run-summary", doc)


@pytest.mark.parametrize("metric", ["acc", "acc_norm,none", "exact_match,strict-match", "_private", "f1 (macro)"])
def test_metric_names_as_lm_eval_writes_them_pass_gate_and_schema_alike(metric):
    doc = run_summary(tasks={"t": task(metric=metric)})
    assert judge(doc)["pass"] is True
    assert schema_errors("run-summary", doc) == []
