"""gate_compare as a pure function: every branch, known bugs of earlier gates pinned, and arbitrary JSON in."""
from __future__ import annotations

import math

import pytest
from day0_builders import json_values, mutated, pair, run_summary, task
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelgate.contract import schema_errors
from modelgate.gates.compare import evaluate_compare, proportion_se_floor
from modelgate.gates.paired import rule_of_three_floor


def compare(b, c, **kw):
    v = evaluate_compare(b, c, **kw)
    assert schema_errors("compare-verdict", v) == []
    return v


# --------------------------------------------------------------------------- decisions

def test_equal_scores_accept_at_a_threshold_the_sample_resolves():
    b, c = pair(0.95, 0.95, stderr=0.001)
    v = compare(b, c, threshold=0.03)
    assert (v["decision"], v["pass"], v["exit_code"], v["failure_class"]) == ("ACCEPT", True, 0, None)
    assert v["tasks"]["digits"]["stderr_source"] == "independent"
    assert "ACCEPT" in v["coverage"]["summary"] and v["coverage"]["exercised"]["tasks"]["digits"]["samples"] == 450


def test_a_reported_stderr_below_what_the_counts_allow_is_not_trusted():
    # 450 samples at 95 % cannot resolve 1 point with independent errors, whatever stderr the file claims
    b, c = pair(0.95, 0.95, stderr=0.001)
    t = compare(b, c, threshold=0.01)["tasks"]["digits"]
    assert t["decision"] == "INDETERMINATE"
    assert t["stderr_diff"] >= math.hypot(proportion_se_floor(0.95, 450, 1.645), proportion_se_floor(0.95, 450, 1.645))


def test_drop_beyond_threshold_is_regression_with_exit_1():
    b, c = pair(0.95, 0.90, stderr=0.001)
    v = compare(b, c, threshold=0.01)
    assert (v["decision"], v["failure_class"], v["exit_code"]) == ("REGRESSION", "ACCURACY_REGRESSION", 1)
    assert v["tasks"]["digits"]["drop"] == pytest.approx(0.05)


def test_regression_seed_drop_of_exactly_the_threshold_is_not_a_regression_through_float_error():
    # 0.90 - 0.89 == 0.010000000000000009 in binary floating point
    b, c = pair(0.90, 0.89, stderr=0.0)
    v = compare(b, c, threshold=0.01)
    assert v["decision"] == "INDETERMINATE" and "sits on the threshold" in v["tasks"]["digits"]["reasons"][0]
    b, c = pair(90.0, 89.0, scale="percent", stderr=0.0)
    assert compare(b, c, threshold=0.01)["decision"] == "INDETERMINATE"


def test_drop_exactly_at_threshold_with_noise_is_indeterminate_without_a_sample_size():
    b, c = pair(0.90, 0.89, stderr=0.005)
    t = compare(b, c, threshold=0.01)["tasks"]["digits"]
    assert t["decision"] == "INDETERMINATE" and t["samples_needed"] is None


def test_drop_just_beyond_tolerance_is_a_regression():
    b, c = pair(0.90, 0.8899, stderr=0.0)
    assert compare(b, c, threshold=0.01)["decision"] == "REGRESSION"


@pytest.mark.parametrize("score,stderr", [(0.90, 0.02), (0.90, 0.05), (1.0, 0.0), (0.5, 0.001)])
def test_small_sample_that_cannot_resolve_the_threshold_is_indeterminate_with_samples_needed(score, stderr):
    b, c = pair(score, score, stderr=stderr, n=100)
    v = compare(b, c, threshold=0.02)
    t = v["tasks"]["digits"]
    assert (v["decision"], v["failure_class"], v["exit_code"]) == ("INDETERMINATE", "INSUFFICIENT_POWER", 1)
    needed = t["samples_needed"]
    # with that many samples (reported errors shrink by sqrt) the same scores are accepted, with one fewer not
    for n, decision in ((needed, "ACCEPT"), (needed - 1, "INDETERMINATE")):
        b2, c2 = pair(score, score, stderr=stderr * math.sqrt(100 / n), n=n)
        assert compare(b2, c2, threshold=0.02)["decision"] == decision


def test_missing_standard_errors_are_indeterminate_not_accepted():
    b, c = pair(0.90, 0.90, stderr=None)
    v = compare(b, c, threshold=0.01)
    assert v["decision"] == "INDETERMINATE"
    assert "no standard errors" in v["tasks"]["digits"]["reasons"][0]


def test_paired_errors_resolve_a_one_percent_threshold_when_predictions_agree():
    b, c = pair(0.90, 0.90, stderr=0.014, n=450)  # independent errors alone cannot resolve 1 %
    assert compare(b, c, threshold=0.01)["decision"] == "INDETERMINATE"
    paired = {"digits": {"n": 450, "mean_diff": 0.0, "stderr_diff": 0.002}}
    v = compare(b, c, threshold=0.01, paired=paired)
    assert v["decision"] == "ACCEPT" and v["tasks"]["digits"]["stderr_source"] == "paired"


def test_paired_statistics_that_disagree_with_the_summaries_are_anomalous():
    b, c = pair(0.90, 0.90, stderr=0.01)
    v = compare(b, c, threshold=0.01, paired={"digits": {"n": 450, "mean_diff": -0.05, "stderr_diff": 0.001}})
    assert v["decision"] == "ANOMALOUS" and v["exit_code"] == 2


def test_paired_statistics_over_other_samples_are_anomalous():
    b, c = pair(0.90, 0.90, stderr=0.01)
    v = compare(b, c, threshold=0.01, paired={"digits": {"n": 449, "mean_diff": 0.0, "stderr_diff": 0.001}})
    assert v["decision"] == "ANOMALOUS"


@pytest.mark.parametrize("bad", [{"n": 0, "mean_diff": 0.0, "stderr_diff": 0.0},
                                 {"n": 450, "mean_diff": float("nan"), "stderr_diff": 0.0},
                                 {"n": 450, "mean_diff": 0.0, "stderr_diff": -1.0}, "x"])
def test_invalid_paired_statistics_are_anomalous_before_arithmetic(bad):
    b, c = pair(0.90, 0.90, stderr=0.01)
    assert compare(b, c, threshold=0.01, paired={"digits": bad})["decision"] == "ANOMALOUS"


def test_regression_seed_plus_4_9_point_gain_is_anomalous_not_plausible():
    b, c = pair(0.900, 0.949, stderr=0.001)
    v = compare(b, c, threshold=0.01)
    assert (v["decision"], v["failure_class"]) == ("ANOMALOUS", "ANOMALOUS_RESULT")
    assert v["exit_code"] == 1  # the values were judged: the gain itself is implausible
    assert "implausible" in v["tasks"]["digits"]["reasons"][0]


def test_implausible_gain_limit_is_configurable():
    b, c = pair(0.900, 0.949, stderr=0.001)
    assert compare(b, c, threshold=0.01, implausible_gain=0.05)["decision"] == "ACCEPT"


def test_gain_exactly_at_the_implausible_limit_is_accepted():
    b, c = pair(0.90, 0.92, stderr=0.0, n=4500)
    assert compare(b, c, threshold=0.01, implausible_gain=0.02)["decision"] == "ACCEPT"


def test_regression_seed_relative_threshold_with_zero_baseline_is_anomalous_not_accepted():
    b, c = pair(0.0, 0.5, stderr=0.001)
    v = compare(b, c, threshold=0.01, relative=True)
    assert v["decision"] == "ANOMALOUS" and v["exit_code"] == 2
    assert "baseline score is 0" in v["tasks"]["digits"]["reasons"][0]


def test_relative_threshold_scales_with_the_baseline():
    b, c = pair(0.50, 0.496, stderr=0.0, n=10**7)  # 0.4 points = 0.8 % of 0.50
    assert compare(b, c, threshold=0.01, relative=True)["decision"] == "ACCEPT"
    assert compare(b, c, threshold=0.005, relative=True)["decision"] == "REGRESSION"
    assert compare(b, c, threshold=0.005, relative=False)["decision"] == "ACCEPT"


def test_absolute_threshold_is_a_fraction_of_full_scale_on_percent_tasks():
    b, c = pair(90.0, 88.5, scale="percent", stderr=0.0, n=10**6)  # 1.5 points
    assert compare(b, c, threshold=0.01)["decision"] == "REGRESSION"
    assert compare(b, c, threshold=0.02)["decision"] == "ACCEPT"


def test_lower_is_better_metrics_regress_when_they_rise():
    b, c = pair(10.0, 10.5, scale="unbounded", metric="perplexity", hib=False, stderr=0.0)
    v = compare(b, c, threshold=0.02, relative=True)  # +5 %
    assert v["decision"] == "REGRESSION"
    b, c = pair(10.0, 10.1, scale="unbounded", metric="perplexity", hib=False, stderr=0.01)
    paired = {"digits": {"n": 450, "mean_diff": 0.1, "stderr_diff": 0.01}}
    assert compare(b, c, threshold=0.02, relative=True, paired=paired)["decision"] == "ACCEPT"


def test_an_unbounded_score_without_records_is_never_accepted_on_its_reported_stderr():
    for stderr in (0.0, 1e-9, 0.01):
        b, c = pair(10.0, 10.0, scale="unbounded", metric="perplexity", hib=False, stderr=stderr)
        t = compare(b, c, threshold=0.02, relative=True)["tasks"]["digits"]
        assert t["decision"] == "INDETERMINATE" and "without per-sample records" in t["reasons"][0]


def test_a_paired_zero_stderr_on_an_unbounded_scale_bounds_nothing():
    b, c = pair(10.0, 10.0, scale="unbounded", metric="perplexity", hib=False, stderr=0.0)
    paired = {"digits": {"n": 450, "mean_diff": 0.0, "stderr_diff": 0.0}}
    t = compare(b, c, threshold=0.02, relative=True, paired=paired)["tasks"]["digits"]
    assert t["decision"] == "INDETERMINATE" and "bounds nothing" in t["reasons"][0]


def test_overall_decision_takes_the_worst_task():
    b = run_summary("baseline", {"a": task(0.9, stderr=0.0), "b": task(0.9, stderr=0.0), "c": task(0.9, stderr=0.03)})
    c = run_summary("candidate", {"a": task(0.9, stderr=0.0), "b": task(0.8, stderr=0.0), "c": task(0.9, stderr=0.03)})
    v = compare(b, c, threshold=0.05)
    assert v["decision"] == "REGRESSION"
    assert {n: t["decision"] for n, t in v["tasks"].items()} == {"a": "ACCEPT", "b": "REGRESSION", "c": "INDETERMINATE"}
    c["tasks"]["a"]["score"] = 1.5
    assert compare(b, c, threshold=0.05)["decision"] == "ANOMALOUS"


# --------------------------------------------------------------------------- invalid values

def test_regression_seed_unit_score_of_1_5_is_not_reread_as_percent_and_accepted():
    b, c = pair(0.90, 0.90, stderr=0.001)
    c["tasks"]["digits"]["score"] = 1.5
    v = compare(b, c, threshold=0.01)
    assert (v["decision"], v["exit_code"]) == ("ANOMALOUS", 2)
    assert "outside the unit scale" in v["tasks"]["digits"]["reasons"][0]
    assert v["tasks"]["digits"]["drop"] is None  # no arithmetic on an invalid value


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), "0.9", None, True, [0.9], {"v": 1}])
def test_regression_seed_non_numeric_or_non_finite_scores_short_circuit_before_arithmetic(value):
    b, c = pair(0.90, 0.90, stderr=0.001)
    c["tasks"]["digits"]["score"] = value
    v = compare(b, c, threshold=0.01)
    assert (v["decision"], v["exit_code"], v["tasks"]["digits"]["drop"]) == ("ANOMALOUS", 2, None)


@pytest.mark.parametrize("field,value", [("scale", None), ("scale", "fraction"), ("scale", ["unit"]),
                                         ("metric", "f1"), ("higher_is_better", False), ("expected_samples", 451),
                                         ("scored_samples", 449), ("scored_samples", None), ("stderr", -0.1),
                                         ("stderr", float("nan")), ("status", "FAILED")])
def test_mismatched_or_invalid_task_fields_are_anomalous(field, value):
    b, c = pair(0.90, 0.90, stderr=0.001)
    c["tasks"]["digits"][field] = value
    assert compare(b, c, threshold=0.01)["decision"] == "ANOMALOUS"


def test_regression_seed_task_entry_that_is_not_an_object_does_not_crash():
    b, c = pair(0.90, 0.90)
    c["tasks"]["digits"] = 0.9
    v = compare(b, c, threshold=0.01)
    assert v["decision"] == "ANOMALOUS" and "not an object" in v["tasks"]["digits"]["reasons"][0]


def test_mismatched_task_sets_are_anomalous_exit_2():
    b = run_summary("baseline", {"a": task(), "b": task()})
    c = run_summary("candidate", {"a": task()})
    v = compare(b, c, threshold=0.01)
    assert (v["decision"], v["exit_code"]) == ("ANOMALOUS", 2)
    assert next(ch for ch in v["checks"] if ch["name"] == "task_sets")["pass"] is False


def test_different_eval_configs_are_anomalous():
    b, c = pair(0.9, 0.9)
    c = run_summary("candidate", c["tasks"], config={"tasks": ["digits"], "seed": 1, "limit": None})
    v = compare(b, c, threshold=0.01)
    assert v["decision"] == "ANOMALOUS"
    assert next(ch for ch in v["checks"] if ch["name"] == "config_parity")["pass"] is False


def test_a_run_that_fails_gate_run_is_not_compared():
    b, c = pair(0.9, 0.9, stderr=0.0)
    c["eval_config"]["seed"] = 7  # hash no longer matches the config
    v = compare(b, c, threshold=0.01)
    assert v["decision"] == "ANOMALOUS"
    assert next(ch for ch in v["checks"] if ch["name"] == "candidate_run_valid")["pass"] is False


def test_swapped_baseline_and_candidate_are_anomalous():
    b, c = pair(0.9, 0.9, stderr=0.0)
    assert compare(c, b, threshold=0.01)["decision"] == "ANOMALOUS"


def test_unfinished_runs_are_not_compared():
    b, c = pair(0.9, 0.9, stderr=0.0)
    c["status"] = "RUNNING"
    assert compare(b, c, threshold=0.01)["decision"] == "ANOMALOUS"


def test_empty_task_sets_are_anomalous():
    b, c = run_summary("baseline", {}), run_summary("candidate", {})
    assert compare(b, c, threshold=0.01)["decision"] == "ANOMALOUS"


@pytest.mark.parametrize("kw", [{"threshold": float("nan")}, {"threshold": -0.01}, {"threshold": "0.01"},
                                {"threshold": 1}, {"implausible_gain": 2.0},
                                {"implausible_gain": 0}, {"z": float("inf")}, {"relative": "yes"},
                                {"paired": [1]}])
def test_bad_parameters_are_user_config_errors_exit_2(kw):
    b, c = pair(0.9, 0.9)
    v = compare(b, c, **{"threshold": 0.01, **kw})
    assert (v["failure_class"], v["exit_code"], v["decision"]) == ("USER_CONFIG_ERROR", 2, None)


@pytest.mark.parametrize("bad", [None, [], "run", 3, {"tasks": []}])
def test_inputs_that_are_not_run_summaries_are_user_config_errors(bad):
    b, _ = pair(0.9, 0.9)
    v = compare(b, bad, threshold=0.01)
    assert (v["failure_class"], v["exit_code"]) == ("USER_CONFIG_ERROR", 2)


# --------------------------------------------------------------------------- properties

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(b=json_values, c=json_values, threshold=json_values, relative=json_values, paired=json_values)
def test_arbitrary_json_in_gives_a_schema_valid_verdict_never_an_exception(b, c, threshold, relative, paired):
    v = evaluate_compare(b, c, threshold=threshold, relative=relative, paired=paired)
    assert schema_errors("compare-verdict", v) == []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entry=mutated(task(0.9), ["status", "metric", "scale", "higher_is_better", "expected_samples",
                                 "scored_samples", "score", "stderr"]),
       threshold=st.floats(0, 0.5), relative=st.booleans())
def test_arbitrary_task_fields_give_a_schema_valid_verdict_and_accept_only_valid_values(entry, threshold, relative):
    b = run_summary("baseline", {"digits": task(0.9)})
    c = run_summary("candidate", {"digits": entry})
    v = evaluate_compare(b, c, threshold=threshold, relative=relative)
    assert schema_errors("compare-verdict", v) == []
    if v["decision"] == "ACCEPT":
        assert schema_errors("run-summary", c) == []
        assert math.isfinite(entry["score"]) and 0 <= entry["score"] <= 1


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c=mutated(run_summary("candidate", {"digits": task(0.9)}),
                 ["status", "variant", "run_id", "artifact_sha256", "eval_config", "eval_config_sha256", "tasks",
                  "model", "timings", "schema_version", "x"]))
def test_only_schema_valid_run_summaries_are_ever_accepted(c):
    b = run_summary("baseline", {"digits": task(0.9)})
    v = evaluate_compare(b, c, threshold=0.01)
    assert schema_errors("compare-verdict", v) == []
    if v["decision"] == "ACCEPT":
        assert schema_errors("run-summary", c) == []


@settings(max_examples=300, deadline=None)
@given(bs=st.floats(0, 1), cs=st.floats(0, 1), se=st.floats(0, 0.05), threshold=st.floats(0, 0.2))
def test_valid_unit_scores_follow_the_decision_rules(bs, cs, se, threshold):
    b, c = pair(bs, cs, stderr=se)
    v = evaluate_compare(b, c, threshold=threshold, implausible_gain=0.02)
    assert schema_errors("compare-verdict", v) == []
    drop = bs - cs
    if drop > threshold + 1e-6:
        assert v["decision"] == "REGRESSION"
    elif -drop > 0.02 + 1e-6:
        assert v["decision"] == "ANOMALOUS"
    elif v["decision"] == "ACCEPT":
        # never on less evidence than the reported errors, the proportions' own errors or the rule of three
        floor = math.hypot(max(se, proportion_se_floor(bs, 450, 1.645)), max(se, proportion_se_floor(cs, 450, 1.645)))
        assert drop + 1.645 * max(floor, rule_of_three_floor(1.0, 450)) <= threshold + 1e-6


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(b=json_values, c=json_values)
def test_the_command_turns_arbitrary_json_files_into_a_verdict_and_an_exit_code(b, c):
    import contextlib
    import io
    import json
    import tempfile
    from pathlib import Path

    from modelgate.cli.day0 import GATE_COMPARE
    from modelgate.cli.spine import run_command

    with tempfile.TemporaryDirectory() as d:
        paths = []
        for name, doc in (("b.json", b), ("c.json", c)):
            Path(d, name).write_text(json.dumps(doc))  # NaN is written as a NaN literal: rejected on read
            paths.append(str(Path(d, name)))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = run_command(GATE_COMPARE, ["--baseline", paths[0], "--candidate", paths[1]])
    verdict = json.loads(out.getvalue())
    assert code == verdict["exit_code"] and code in (1, 2)
    assert schema_errors("compare-verdict", verdict) == [] or verdict["failure_class"] == "USER_CONFIG_ERROR"
    assert schema_errors("envelope", verdict) == []
