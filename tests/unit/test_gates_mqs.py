"""MQS: every rule of references/mqs.md, as a pure function."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from cert_builders import GATEWAY_CATEGORY, evidence, full_marks, record
from hypothesis import given, settings
from hypothesis import strategies as st

from modelgate.contract import GateInputError, schema_errors
from modelgate.gates import mqs
from modelgate.gates.mqs import CATEGORY_MAX, GATEWAYS, failure_class_for, grade_for, normalize, score, status_for

REFS = Path(__file__).resolve().parents[2] / "skills" / "model-certification" / "references"
OTHER = ("PERF", "STAB", "COMP", "EDGE", "REGR")


def test_categories_sum_to_1000_with_the_documented_maxima():
    assert CATEGORY_MAX == {"QUAL": 200, "PERF": 150, "STAB": 200, "COMP": 150, "EDGE": 150, "REGR": 150}
    assert sum(CATEGORY_MAX.values()) == 1000


def test_all_corroborated_evidence_scores_1000_certified_a_plus():
    s = score(full_marks())
    assert (s["raw"], s["normalized"], s["grade"], s["status"]) == (1000.0, 100.0, "A+", "CERTIFIED")
    assert schema_errors("mqs-score", s) == []


def test_category_points_are_proportional_to_corroborated_over_executed():
    recs = [record("PERF", "Corroborated") for _ in range(3)] + [record("PERF", "Falsified")]
    s = score(evidence(recs + [record(c) for c in ("STAB", "COMP", "EDGE", "REGR")]))
    assert s["categories"]["PERF"]["points"] == pytest.approx(150 * 3 / 4)
    assert s["raw"] == pytest.approx(1000 - 150 / 4)


def test_category_with_no_evidence_scores_zero_not_full_marks():
    # only gateway records: QUAL, STAB, COMP have evidence; PERF, EDGE, REGR have none
    s = score(evidence())
    for cat in ("PERF", "EDGE", "REGR"):
        assert s["categories"][cat]["executed"] == 0
        assert s["categories"][cat]["points"] == 0
    assert s["raw"] == pytest.approx(200 + 200 + 150)
    assert s["status"] == "BLOCKED"


def test_a_few_passing_answers_cannot_score_1000():
    s = score(evidence([record("QUAL") for _ in range(3)]))
    assert s["raw"] < 1000 and s["status"] != "CERTIFIED"


def test_skipped_records_are_excluded_not_counted_as_passed():
    base = [record(c) for c in OTHER]
    with_skips = base + [record("REGR", "Skipped") for _ in range(5)] + [record("REGR", "Falsified")]
    s = score(evidence(with_skips))
    assert s["categories"]["REGR"] == {**s["categories"]["REGR"], "executed": 2, "corroborated": 1, "skipped": 5}
    assert s["categories"]["REGR"]["points"] == pytest.approx(75.0)


def test_a_category_with_only_skipped_records_scores_zero():
    recs = [record(c) for c in ("PERF", "STAB", "COMP", "REGR")] + [record("EDGE", "Skipped")]
    s = score(evidence(recs))
    assert s["categories"]["EDGE"]["points"] == 0 and s["categories"]["EDGE"]["skipped"] == 1
    assert s["raw"] == pytest.approx(850.0)


def test_each_crash_costs_20_points_beyond_its_share():
    recs = [record(c) for c in OTHER] + [record("PERF", "Crashed")]
    s = score(evidence(recs))
    assert s["penalties"]["crashed"] == 1 and s["penalties"]["crash_points"] == 20
    assert s["raw"] == pytest.approx(1000 - 150 / 2 - 20)


def test_each_timeout_costs_10_points_beyond_its_share():
    recs = [record(c) for c in OTHER] + [record("EDGE", "Timeout"), record("EDGE", "Timeout")]
    s = score(evidence(recs))
    assert s["penalties"]["timeout"] == 2 and s["penalties"]["timeout_points"] == 20
    assert s["raw"] == pytest.approx(1000 - 150 * 2 / 3 - 20)


def test_penalties_floor_the_score_at_zero():
    recs = [record("PERF", "Corroborated")] + [record("EDGE", "Crashed") for _ in range(60)]
    s = score(evidence(recs))
    assert s["points_before_gateways"] == 0.0 and s["raw"] == 0.0


@pytest.mark.parametrize("gateway", list(GATEWAYS))
@pytest.mark.parametrize("outcome", ["Falsified", "Crashed", "Timeout"])
def test_each_failed_gateway_zeroes_the_score_and_blocks(gateway, outcome):
    bad = record(GATEWAY_CATEGORY[gateway], outcome, gateway=gateway)
    doc = full_marks()
    doc["records"].append(bad)
    s = score(doc)
    assert s["gateways"][gateway]["pass"] is False
    assert s["gateways"][gateway]["failed_records"] == [bad["id"]]
    assert s["points_before_gateways"] > 700
    assert (s["raw"], s["normalized"], s["grade"], s["status"]) == (0.0, 0.0, "F", "BLOCKED")
    assert failure_class_for(s) == "GATEWAY_FAILED"


@pytest.mark.parametrize("gateway", list(GATEWAYS))
def test_a_gateway_without_executed_evidence_fails_as_no_evidence(gateway):
    doc = full_marks()
    doc["records"] = [r for r in doc["records"] if r["gateway"] != gateway]
    s = score(doc)
    assert s["gateways"][gateway]["pass"] is False
    assert s["gateways"][gateway]["reason"].startswith("no evidence")
    assert s["raw"] == 0.0 and s["status"] == "BLOCKED"


def test_a_gateway_whose_records_are_all_skipped_has_no_evidence():
    doc = full_marks()
    for r in doc["records"]:
        if r["gateway"] == "G1":
            r["outcome"] = "Skipped"
    s = score(doc)
    assert s["gateways"]["G1"]["pass"] is False and s["gateways"]["G1"]["skipped"] == 1
    assert "all skipped" in s["gateways"]["G1"]["reason"]


@pytest.mark.parametrize("raw,expected", [(0, 0.0), (1000, 100.0), (100, 100 * math.log10(1.9)),
                                          (500, 100 * math.log10(5.5)), (882.5, 95.1458948821007)])
def test_normalization_is_100_log_1_plus_9x_over_log_10(raw, expected):
    assert normalize(raw) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, 1000.5, "900", True, None])
def test_normalization_rejects_values_it_cannot_judge(bad):
    with pytest.raises(GateInputError):
        normalize(bad)


@pytest.mark.parametrize("normalized,grade", [
    (100, "A+"), (97, "A+"), (96.999, "A"), (93, "A"), (92.99, "A-"), (90, "A-"), (89.99, "B"), (83, "B"),
    (82.99, "C"), (70, "C"), (69.99, "D"), (60, "D"), (59.99, "F"), (0, "F")])
def test_grade_boundaries(normalized, grade):
    assert grade_for(normalized) == grade


def test_a_raw_score_that_normalizes_to_a_boundary_up_to_float_noise_gets_that_grade():
    raw_at_97 = (10 ** 0.97 - 1) / 9 * 1000
    assert grade_for(normalize(raw_at_97)) == "A+"
    assert grade_for(97 - 1e-12) == "A+"


@pytest.mark.parametrize("raw,status", [(1000, "CERTIFIED"), (850, "CERTIFIED"), (849.99, "PROVISIONAL"),
                                        (700, "PROVISIONAL"), (699.99, "BLOCKED"), (0, "BLOCKED")])
def test_status_thresholds_come_from_raw(raw, status):
    assert status_for(raw, gateways_pass=True, executed=10) == status


def test_status_is_blocked_when_gateways_fail_whatever_the_raw():
    assert status_for(1000, gateways_pass=False, executed=10) == "BLOCKED"


def test_status_threshold_comparison_tolerates_float_noise():
    assert status_for(850 - 1e-10, True, 1) == "CERTIFIED"
    assert status_for(0.1 * 7000 - 1e-10, True, 1) == "PROVISIONAL"


def test_no_evidence_at_all_is_pending_not_certified():
    s = score(evidence(with_gateways=False))
    assert s["status"] == "PENDING" and s["raw"] == 0.0
    assert failure_class_for(s) == "USER_CONFIG_ERROR"


def test_only_skipped_evidence_is_pending():
    s = score(evidence([record(c, "Skipped") for c in CATEGORY_MAX], with_gateways=False))
    assert s["status"] == "PENDING" and s["records"] == {"total": 6, "executed": 0, "skipped": 6}


def test_gateways_passing_but_raw_below_700_is_mqs_below_threshold():
    recs = [record(c, "Falsified") for c in OTHER] + [record(c) for c in OTHER]
    s = score(evidence(recs))
    assert s["gateways_pass"] and s["status"] == "BLOCKED" and s["raw"] < 700
    assert failure_class_for(s) == "MQS_BELOW_THRESHOLD"


def test_provisional_and_certified_have_no_failure_class():
    assert failure_class_for(score(full_marks())) is None


@pytest.mark.parametrize("mutate", [
    lambda d: d["records"][0].update(outcome="Passed"),
    lambda d: d["records"][0].update(category="SPEED"),
    lambda d: d["records"][0].update(gateway="G5"),
    lambda d: d["records"][0].update(reason=""),
    lambda d: d["records"][0]["metrics"].update(tokens_per_s=-1),
    lambda d: d["records"].append(dict(d["records"][0])),
    lambda d: d.pop("records"),
])
def test_invalid_evidence_is_refused_not_scored(mutate):
    doc = full_marks()
    mutate(doc)
    with pytest.raises(GateInputError) as exc:
        score(doc)
    assert exc.value.failure_class == "USER_CONFIG_ERROR"


def test_the_worked_example_in_the_reference_recomputes():
    text = (REFS / "mqs.md").read_text()
    counts = json.loads(re.search(r"<!-- mqs-example-input -->\n```json\n(.*?)```", text, re.S).group(1))
    expected = dict(re.findall(r"^- (raw|normalized|grade|status) = (\S+)$",
                               text.split("<!-- mqs-example-result -->")[1], re.M))
    recs = []
    for cat, by_outcome in counts.items():
        for outcome, n in by_outcome.items():
            recs += [record(cat, outcome) for _ in range(n)]
    # the gateway records are among the corroborated: retag one corroborated record per gateway
    for g, cat in GATEWAY_CATEGORY.items():
        next(r for r in recs if r["category"] == cat and r["outcome"] == "Corroborated"
             and r["gateway"] is None).update(gateway=g)
    s = score(evidence(recs, with_gateways=False))
    assert s["raw"] == pytest.approx(float(expected["raw"]))
    assert round(s["normalized"], 2) == pytest.approx(float(expected["normalized"]))
    assert (s["grade"], s["status"]) == (expected["grade"], expected["status"])
    # and the closing sentence: the falsified QUAL record tagged G4 zeroes it
    next(r for r in recs if r["outcome"] == "Falsified").update(gateway="G4")
    s = score(evidence(recs, with_gateways=False))
    assert (s["raw"], s["normalized"], s["grade"], s["status"]) == (0.0, 0.0, "F", "BLOCKED")


# --------------------------------------------------------------------------- properties

_record = st.builds(
    lambda cat, outcome, gw: record(cat, outcome, gateway=gw),
    st.sampled_from(list(CATEGORY_MAX)), st.sampled_from(list(mqs.OUTCOMES)),
    st.sampled_from([None, *GATEWAYS]))


@settings(max_examples=200, deadline=None)
@given(st.lists(_record, max_size=40))
def test_any_evidence_scores_within_bounds_and_valid_against_its_schema(recs):
    s = score(evidence(recs, with_gateways=False))
    assert 0.0 <= s["raw"] <= 1000.0 and 0.0 <= s["normalized"] <= 100.0
    assert s["status"] in mqs.STATUSES
    assert schema_errors("mqs-score", s) == []
    if s["status"] == "CERTIFIED":
        assert s["gateways_pass"] and s["raw"] >= 850


@settings(max_examples=200, deadline=None)
@given(st.lists(_record, max_size=40), st.sampled_from(["Falsified", "Crashed", "Timeout"]))
def test_garbage_flagged_by_g4_is_never_certified(recs, outcome):
    s = score(evidence(recs + [record("QUAL", outcome, gateway="G4")]))
    assert s["status"] != "CERTIFIED" and s["raw"] == 0.0
