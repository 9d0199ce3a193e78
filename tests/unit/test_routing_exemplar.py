"""Exemplar router: exemplars, leave-one-out candidates, the vote, the route decision, calibration (pure)."""
import math

import numpy as np
import pytest

from modelgate.routing import exemplar, pipeline
from modelgate.routing.cases import NONE, Case
from modelgate.routing.router import Prototype

E = exemplar.Exemplar


def _case(name, query, expected, should_trigger=True, skill="alpha", split="train"):
    return Case(name, query, skill, should_trigger, expected, split, "f.json")


def test_exemplars_are_description_clauses_plus_train_cases_labelled_by_their_correct_route():
    protos = [Prototype("bake bread", "alpha", "alpha", False), Prototype("buying flour", NONE, "alpha", True)]
    train = [_case("p", "make me a loaf", "alpha"),
             _case("sib", "ice this cake", "beta", should_trigger=False),   # routes_to the sibling beta
             _case("n", "sell my oven", NONE, should_trigger=False)]
    ex = exemplar.build(protos, train)
    assert [(e.text, e.label, e.origin) for e in ex] == [
        ("bake bread", "alpha", "description"), ("buying flour", NONE, "description"),
        ("make me a loaf", "alpha", "case"), ("ice this cake", "beta", "case"), ("sell my oven", NONE, "case")]
    assert ex[0].key is None and ex[2].key == exemplar.case_key("train", "f.json", "p")


def test_leave_one_out_never_lets_a_case_see_itself_or_a_duplicate_of_its_text():
    ex = [E("bake bread", "alpha", "description", None), E("Make  me a LOAF", "alpha", "case", "k1"),
          E("make me a loaf", "alpha", "case", "k2"), E("other", NONE, "case", "k3")]
    assert exemplar.candidates(ex, "k2", "make me a loaf") == [0, 3]
    # a description clause with the same text stays: it is not a labelled case
    assert exemplar.candidates(ex, None, "bake bread") == [0, 1, 2, 3]


def test_leave_one_out_vote_of_a_train_case_ignores_its_own_perfect_match():
    train = [_case("a", "q-a", "alpha"), _case("b", "q-b", NONE, should_trigger=False)]
    ex = exemplar.build([], train)
    # case "a" matches itself perfectly (1.0) and the none exemplar weakly
    sims = [[1.0, 0.3], [0.3, 1.0]]
    votes = pipeline.exemplar_votes(train, ex, sims, k=1)
    assert votes[0]["neighbours"] == [1] and votes[0]["shares"] == {"alpha": 0.0, NONE: 1.0}
    assert votes[1]["neighbours"] == [0]


def test_held_out_case_sees_every_train_exemplar():
    train = [_case("a", "q-a", "alpha")]
    ex = exemplar.build([], train)
    held = [_case("a", "another query", "alpha", split="heldout")]
    assert pipeline.exemplar_votes(held, ex, [[0.8]], k=1)[0]["neighbours"] == [0]


def test_vote_is_similarity_weighted_over_the_k_nearest_only():
    ex = [E("a1", "alpha", "case", "1"), E("a2", "alpha", "case", "2"), E("n1", NONE, "case", "3"),
          E("b1", "beta", "case", "4")]
    v = exemplar.vote([0.6, 0.2, 0.5, 0.1], ex, k=2)
    assert v["neighbours"] == [0, 2]
    assert math.isclose(v["shares"]["alpha"], 0.6 / 1.1) and math.isclose(v["shares"][NONE], 0.5 / 1.1)
    assert v["shares"]["beta"] == 0.0
    # evidence is the nearest exemplar of each label among all it may see, not only the k nearest
    assert v["evidence"] == {"alpha": 0.6, NONE: 0.5, "beta": 0.1}


def test_a_much_closer_neighbour_outvotes_several_loose_ones_with_a_kernel_weight():
    ex = [E("n", NONE, "case", "0")] + [E(f"a{i}", "alpha", "case", str(i)) for i in range(1, 5)]
    sims = [0.97, 0.63, 0.62, 0.61, 0.60]
    assert exemplar.summary(exemplar.vote(sims, ex, k=5))["best"] == "alpha"          # linear: 4 loose votes win
    assert exemplar.summary(exemplar.vote(sims, ex, k=5, temperature=0.05))["best"] == NONE


def test_vote_refuses_nan_and_bad_k_and_bad_temperature():
    ex = [E("a", "alpha", "case", "1")]
    with pytest.raises(ValueError):
        exemplar.vote([math.nan], ex, k=1)
    with pytest.raises(ValueError):
        exemplar.vote([0.5], ex, k=0)
    with pytest.raises(ValueError):
        exemplar.vote([0.5], ex, k=1, temperature=0.0)
    with pytest.raises(ValueError):
        exemplar.vote([0.5, 0.4], ex, k=1)


def test_none_winning_the_vote_routes_to_none_however_strong_the_evidence():
    assert exemplar.decide({"best": NONE, "evidence": 0.99, "gap": 1.0}, threshold=0.1, margin=0.0) == NONE


def test_weak_evidence_routes_to_none_and_threshold_compares_with_tolerance():
    assert exemplar.decide({"best": "alpha", "evidence": 0.39, "gap": 1.0}, threshold=0.4, margin=0.0) == NONE
    assert exemplar.decide({"best": "alpha", "evidence": 0.1 + 0.2, "gap": 1.0}, threshold=0.3, margin=0.0) == "alpha"


def test_too_small_a_lead_over_the_runner_up_routes_to_none():
    assert exemplar.decide({"best": "alpha", "evidence": 0.9, "gap": 0.2}, threshold=0.1, margin=0.35) == NONE
    assert exemplar.decide({"best": "alpha", "evidence": 0.9, "gap": 0.4}, threshold=0.1, margin=0.35) == "alpha"


def test_summary_of_a_vote_with_no_weight_routes_to_none():
    s = exemplar.summary({"shares": {"alpha": 0.0, NONE: 0.0}, "evidence": {"alpha": -0.2, NONE: -0.3}})
    assert exemplar.decide(s, threshold=-1.0, margin=0.0) == NONE


def _s(expected, best, evidence, gap=1.0, should_trigger=True):
    return {"expected": expected, "should_trigger": should_trigger,
            "vote": {"best": best, "evidence": evidence, "gap": gap}}


def test_calibration_prefers_zero_false_triggers_over_accuracy():
    summ = [_s("alpha", "alpha", 0.50), _s("alpha", "alpha", 0.40), _s(NONE, "alpha", 0.45, should_trigger=False)]
    cal = exemplar.calibrate({("s",): summ}, margins=[0.0])
    assert cal["false_triggers"] == 0 and cal["correct"] == 2
    assert 0.45 < cal["threshold"] <= 0.50 and cal["setting"] == ("s",)


def test_calibration_uses_the_margin_when_it_removes_a_false_trigger():
    summ = [_s("alpha", "alpha", 0.8, gap=0.9), _s(NONE, "alpha", 0.8, gap=0.1, should_trigger=False)]
    cal = exemplar.calibrate({("s",): summ}, margins=[0.0, 0.5])
    assert cal["margin"] == 0.5 and cal["false_triggers"] == 0 and cal["correct"] == 2


def test_calibration_keeps_the_earlier_setting_on_a_tie_and_takes_a_better_later_one():
    good = [_s("alpha", "alpha", 0.8), _s(NONE, NONE, 0.8, should_trigger=False)]
    worse = [_s("alpha", NONE, 0.8), _s(NONE, NONE, 0.8, should_trigger=False)]
    assert exemplar.calibrate({(1,): good, (2,): good}, margins=[0.0])["setting"] == (1,)
    assert exemplar.calibrate({(1,): worse, (2,): good}, margins=[0.0])["setting"] == (2,)


def test_calibration_refuses_no_cases():
    with pytest.raises(ValueError):
        exemplar.calibrate({})
    with pytest.raises(ValueError):
        exemplar.calibrate({(1,): []})


def test_centring_removes_the_component_all_exemplars_share():
    shared = np.array([1.0, 0.0, 0.0])
    e = np.array([shared + [0, 0.1, 0], shared + [0, -0.1, 0]])
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    q = e[:1].copy()
    raw = pipeline.exemplar_similarities(q, e, center=False)[0]
    centred = pipeline.exemplar_similarities(q, e, center=True)[0]
    assert raw[1] > 0.9                      # the shared topic makes them look alike
    assert centred[1] < -0.9 and math.isclose(centred[0], 1.0, abs_tol=1e-6)


def test_cached_embeddings_of_the_wrong_shape_or_non_finite_are_not_used(tmp_path):
    good, nan = tmp_path / "good.npy", tmp_path / "nan.npy"
    np.save(good, np.ones((3, 4), dtype=np.float32))
    np.save(nan, np.array([[np.nan, 1.0]], dtype=np.float32))
    assert pipeline._load_cached(good, 3).shape == (3, 4)
    assert pipeline._load_cached(good, 2) is None
    assert pipeline._load_cached(nan, 1) is None
    assert pipeline._load_cached(tmp_path / "missing.npy", 1) is None
    (tmp_path / "corrupt.npy").write_bytes(b"not a numpy file")
    assert pipeline._load_cached(tmp_path / "corrupt.npy", 1) is None
