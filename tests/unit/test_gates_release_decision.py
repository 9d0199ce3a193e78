"""Release decision and recipe-search decision as pure functions."""
from __future__ import annotations

import pytest
from day0_builders import json_values, pair
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelgate.contract import make_verdict, schema_errors
from modelgate.gates.compare import evaluate_compare
from modelgate.gates.release_decision import CLASS_DECISION, decide_release, decide_search


def stage(gate, passed=True, cls=None, decision=None):
    return make_verdict(gate, passed=passed, failure_class=cls, detail=f"{gate} said so", decision=decision)


def chain(compare_decision="ACCEPT"):
    b, c = pair(0.9, 0.9, stderr=0.0)
    cmp = evaluate_compare(b, c, threshold=0.05)  # 450 samples resolve 5 points with independent errors
    assert cmp["decision"] == compare_decision
    return [stage("gate-ptq"), stage("gate-canary"), stage("gate-run"), stage("gate-run"), cmp]


def decide(stages, **kw):
    v = decide_release(stages, **kw)
    assert schema_errors("release-report", v) == []
    return v


def test_all_stages_passing_with_an_accepted_comparison_is_accept():
    v = decide(chain())
    assert (v["decision"], v["pass"], v["exit_code"], v["deciding_stage"]) == ("ACCEPT", True, 0, None)


def test_regression_in_the_comparison_is_regression():
    b, c = pair(0.9, 0.8, stderr=0.0)
    stages = chain()[:-1] + [evaluate_compare(b, c, threshold=0.01)]
    v = decide(stages)
    assert (v["decision"], v["failure_class"], v["deciding_stage"]) == ("REGRESSION", "ACCURACY_REGRESSION", 4)


def test_regression_seed_infeasible_is_emitted_for_real_when_the_model_type_cannot_be_quantized():
    v = decide([stage("gate-ptq", False, "MODEL_UNSUPPORTED")])
    assert (v["decision"], v["failure_class"], v["pass"]) == ("INFEASIBLE", "MODEL_UNSUPPORTED", False)


@pytest.mark.parametrize("cls,decision", sorted(CLASS_DECISION.items()))
def test_first_failing_stage_class_maps_to_its_decision(cls, decision):
    v = decide([stage("gate-ptq"), stage("gate-run", False, cls)])
    assert v["decision"] == decision and v["deciding_stage"] == 1


@pytest.mark.parametrize("cls", ["QUANT_COVERAGE_FAILURE", "SIZE_NOT_REDUCED", "INTEGRITY_MISMATCH",
                                 "EVAL_SCORER_FAILED", "DEPLOYMENT_HEALTH_FAILED"])
def test_other_stage_failures_are_anomalous(cls):
    assert decide([stage("gate-ptq", False, cls)])["decision"] == "ANOMALOUS"


def test_the_first_failure_decides_not_a_later_one():
    v = decide([stage("gate-ptq", False, "MODEL_UNSUPPORTED"), stage("gate-run", False, "INFRA_TRANSIENT")])
    assert v["decision"] == "INFEASIBLE" and v["deciding_stage"] == 0


def test_incomplete_chain_is_never_accepted():
    v = decide([stage("gate-ptq"), stage("gate-run")])
    assert v["decision"] == "INDETERMINATE" and not v["pass"]


def test_required_stages_are_configurable():
    v = decide([stage("gate-ptq"), stage("gate-run"), chain()[-1]],
               required=["gate-ptq", "gate-canary", "gate-run", "gate-compare"])
    assert v["decision"] == "INDETERMINATE"


def test_a_passing_compare_stage_must_itself_say_accept():
    fake = stage("gate-compare", True, None, decision="REGRESSION")
    assert decide([stage("gate-ptq"), stage("gate-run"), fake])["decision"] == "ANOMALOUS"


@pytest.mark.parametrize("bad", [
    [], None, "x", [1], [{"gate": "gate-ptq"}], [{"gate": "gate-ptq", "pass": True, "failure_class": "UNKNOWN"}],
    [{"gate": "gate-ptq", "pass": False, "failure_class": "NOT_A_CLASS"}],
    [{"gate": "gate-ptq", "pass": False, "failure_class": ["x"]}]])
def test_malformed_stage_verdicts_cannot_be_decided(bad):
    v = decide(bad)
    assert (v["decision"], v["failure_class"], v["exit_code"]) == ("ANOMALOUS", "USER_CONFIG_ERROR", 2)


# --------------------------------------------------------------------------- search

def search(results):
    v = decide_search(results)
    assert schema_errors("release-report", v) == []
    return v


def test_search_chooses_the_smallest_accepted_recipe():
    v = search([{"recipe": "int8_asym", "decision": "ACCEPT", "output_weight_bytes": 120000},
                {"recipe": "int4_asym_g32", "decision": "ACCEPT", "output_weight_bytes": 85000},
                {"recipe": "int4_sym_g32_awq", "decision": "REGRESSION"}])
    assert (v["decision"], v["search"]["chosen"]) == ("ACCEPT", "int4_asym_g32")


def test_regression_seed_infeasible_is_emitted_for_real_when_no_recipe_meets_the_threshold():
    v = search([{"recipe": "int8_asym", "decision": "REGRESSION"},
                {"recipe": "int4_asym_g32", "decision": "INFEASIBLE"}])
    assert (v["decision"], v["failure_class"], v["exit_code"]) == ("INFEASIBLE", "INFEASIBLE", 1)
    assert v["search"]["chosen"] is None


def test_search_with_an_undecided_recipe_is_not_infeasible():
    v = search([{"recipe": "int8_asym", "decision": "INDETERMINATE"},
                {"recipe": "int4_asym_g32", "decision": "REGRESSION"}])
    assert v["decision"] == "INDETERMINATE"
    v = search([{"recipe": "int8_asym", "decision": "ANOMALOUS"},
                {"recipe": "int4_asym_g32", "decision": "INDETERMINATE"}])
    assert v["decision"] == "ANOMALOUS"


@pytest.mark.parametrize("bad", [[], None, [{"recipe": "a", "decision": "ACCEPT"}],
                                 [{"recipe": "a", "decision": "MAYBE"}],
                                 [{"decision": "ACCEPT", "output_weight_bytes": 1}]])
def test_malformed_search_results_cannot_be_decided(bad):
    v = search(bad)
    assert (v["failure_class"], v["exit_code"]) == ("USER_CONFIG_ERROR", 2)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stages=json_values, results=json_values)
def test_arbitrary_json_in_gives_schema_valid_decisions_never_an_exception(stages, results):
    decide(stages)
    search(results)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["MODEL_UNSUPPORTED", "ACCURACY_REGRESSION", "INFRA_TRANSIENT", None, None]),
                min_size=1, max_size=5))
def test_release_is_accepted_only_when_no_stage_failed(classes):
    stages = [stage(f"gate-{i}", c is None, c) for i, c in enumerate(classes)]
    v = decide(stages, required=[])
    assert (v["decision"] == "ACCEPT") == all(c is None for c in classes)
