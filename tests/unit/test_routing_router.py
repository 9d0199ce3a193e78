"""Router: description prototypes, threshold/margin decision, calibration (pure)."""
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelgate.routing import router
from modelgate.routing.cases import NONE

DESCS = {
    "alpha": "Bakes bread from flour and water, proving the dough twice. Use when asked to bake bread; "
             "to make sourdough. Do NOT use for cakes (use beta); for buying flour in a shop.",
    "beta": "Decorates cakes with icing. Use when asked to ice a cake. Do NOT use for bread (use alpha).",
}


def test_use_when_clauses_become_positive_prototypes_of_their_skill():
    protos = router.prototypes(DESCS, include_full=False)
    alpha = {p.text for p in protos if p.label == "alpha"}
    assert "bake bread" in alpha and "make sourdough" in alpha


def test_do_not_use_clause_without_pointer_is_a_none_prototype_and_pointer_clauses_are_dropped():
    protos = router.prototypes(DESCS, include_full=False)
    negatives = [p for p in protos if p.negative]
    assert [(p.text, p.label) for p in negatives if p.skill == "alpha"] == [("buying flour in a shop", NONE)]
    kept = router.prototypes(DESCS, include_full=False, keep_pointers=True)
    assert ("cakes", "beta") in {(p.text, p.label) for p in kept if p.negative}


def test_full_description_is_a_prototype_of_its_own_skill():
    protos = router.prototypes(DESCS)
    assert any(p.text == DESCS["beta"] and p.label == "beta" for p in protos)


def test_label_score_is_the_max_over_that_labels_prototypes():
    protos = [router.Prototype("x", "alpha", "alpha", False), router.Prototype("y", "alpha", "alpha", False),
              router.Prototype("z", NONE, "alpha", True)]
    assert router.label_scores([0.2, 0.7, 0.4], protos) == {"alpha": 0.7, NONE: 0.4}


def test_nan_similarity_is_refused_not_ranked():
    protos = [router.Prototype("x", "alpha", "alpha", False)]
    with pytest.raises(ValueError):
        router.label_scores([math.nan], protos)


def test_below_threshold_routes_to_none():
    assert router.route({"alpha": 0.30, "beta": 0.10}, threshold=0.35, margin=0.0) == NONE


def test_threshold_compares_with_tolerance():
    assert router.route({"alpha": 0.1 + 0.2, "beta": 0.0}, threshold=0.3, margin=0.0) == "alpha"


def test_within_margin_of_runner_up_routes_to_none():
    assert router.route({"alpha": 0.60, "beta": 0.57}, threshold=0.3, margin=0.05) == NONE
    assert router.route({"alpha": 0.60, "beta": 0.50}, threshold=0.3, margin=0.05) == "alpha"


def test_best_none_prototype_routes_to_none_even_above_threshold():
    assert router.route({NONE: 0.9, "alpha": 0.8}, threshold=0.1, margin=0.0) == NONE


@given(st.dictionaries(st.sampled_from(["alpha", "beta", NONE]), st.floats(-1, 1), min_size=1),
       st.floats(-1, 1), st.floats(0, 0.5))
def test_route_is_none_or_the_top_label(scores, threshold, margin):
    got = router.route(scores, threshold, margin)
    assert got == NONE or scores[got] == max(scores.values())


def _case(expected, scores, should_trigger=True):
    return {"expected": expected, "should_trigger": should_trigger, "skill": "alpha", "scores": scores}


def test_calibration_prefers_zero_false_triggers_over_accuracy():
    scored = [_case("alpha", {"alpha": 0.50, "beta": 0.1}),
              _case("alpha", {"alpha": 0.40, "beta": 0.1}),
              _case(NONE, {"alpha": 0.45, "beta": 0.1}, should_trigger=False)]
    cal = router.calibrate(scored, margins=[0.0])
    assert cal["false_triggers"] == 0
    assert 0.45 < cal["threshold"] <= 0.50
    assert cal["correct"] == 2


def test_calibration_takes_the_centre_of_the_widest_equally_good_interval():
    scored = [_case("alpha", {"alpha": 0.80, "beta": 0.1}),
              _case(NONE, {"alpha": 0.20, "beta": 0.1}, should_trigger=False)]
    cal = router.calibrate(scored, margins=[0.0])
    assert cal["correct"] == 2 and cal["false_triggers"] == 0
    assert math.isclose(cal["threshold"], 0.5, abs_tol=1e-9)


def test_calibration_refuses_no_cases():
    with pytest.raises(ValueError):
        router.calibrate([])
