"""The classifier router on synthetic vectors: fitting, out-of-round folds, routing and calibration."""
import math

import numpy as np
import pytest

from modelgate.routing import classifier, exemplar
from modelgate.routing.cases import NONE
from modelgate.routing.classifier import Example

DIM = 16
LABELS = ("alpha", "beta", NONE)
WORDS = {"alpha": "bake bread loaf", "beta": "ice cake frosting", NONE: "weather tomorrow rain"}


def _vec(label: str, rng) -> np.ndarray:
    """A unit vector near the label's own axis."""
    v = rng.normal(scale=0.15, size=DIM)
    v[LABELS.index(label)] += 1.0
    return v / np.linalg.norm(v)


def _data(rounds=("base", "r1", "r2", "r3"), per_label=3, seed=0):
    rng = np.random.default_rng(seed)
    exs, vecs = [], []
    for lb in LABELS:  # one description clause per label, never held out
        exs.append(Example(f"{WORDS[lb]} clause", lb, None))
        vecs.append(_vec(lb, rng))
    for rnd in rounds:
        for lb in LABELS:
            for i in range(per_label):
                exs.append(Example(f"please {WORDS[lb]} {rnd} {i}", lb, rnd))
                vecs.append(_vec(lb, rng))
    return exs, np.vstack(vecs)


@pytest.mark.parametrize("name,expected", [("r5-dr-ship", "r5"), ("r12-x", "r12"), ("dr-ship", "base"),
                                           ("rx-ship", "base"), ("h5-vc-x", "base"), ("r4", "base")])
def test_round_of_reads_the_writing_round_from_the_name_prefix(name, expected):
    assert classifier.round_of(name) == expected


def test_fit_and_predict_route_separable_labels_with_probabilities_that_sum_to_one():
    exs, vecs = _data()
    model = classifier.fit(vecs, [e.text for e in exs], [e.label for e in exs], C=16.0, tfidf_weight=1.0)
    rng = np.random.default_rng(1)
    queries = [(f"could you {WORDS[lb]} now", lb) for lb in LABELS]
    probs = classifier.predict(model, np.vstack([_vec(lb, rng) for _, lb in queries]), [q for q, _ in queries])
    for p, (_, lb) in zip(probs, queries):
        assert math.isclose(sum(p.values()), 1.0, abs_tol=1e-9)
        assert classifier.summary(p)["best"] == lb


def test_word_features_alone_can_decide_when_the_vectors_carry_nothing():
    exs, _ = _data()
    flat = np.ones((len(exs), DIM)) / math.sqrt(DIM)  # every text has the same vector
    model = classifier.fit(flat, [e.text for e in exs], [e.label for e in exs], C=16.0, tfidf_weight=1.0)
    p = classifier.predict(model, flat[:1], ["ice the cake with frosting"])[0]
    assert classifier.summary(p)["best"] == "beta"
    blind = classifier.fit(flat, [e.text for e in exs], [e.label for e in exs], C=16.0, tfidf_weight=0.0)
    p0 = classifier.predict(blind, flat[:1], ["ice the cake with frosting"])[0]
    assert max(p0.values()) < 0.5  # vectors only, all equal: nothing to go on


@pytest.mark.parametrize("bad", ["nan_vector", "one_label", "length", "C"])
def test_fit_rejects_bad_training_data(bad):
    exs, vecs = _data()
    texts, labels, C = [e.text for e in exs], [e.label for e in exs], 4.0
    if bad == "nan_vector":
        vecs[3, 0] = np.nan
    elif bad == "one_label":
        labels = ["alpha"] * len(labels)
    elif bad == "length":
        labels = labels[:-1]
    else:
        C = 0.0
    with pytest.raises(ValueError):
        classifier.fit(vecs, texts, labels, C=C, tfidf_weight=1.0)


def test_predict_rejects_a_non_finite_query_vector():
    exs, vecs = _data()
    model = classifier.fit(vecs, [e.text for e in exs], [e.label for e in exs], C=4.0, tfidf_weight=1.0)
    q = vecs[:1].copy()
    q[0, 0] = np.inf
    with pytest.raises(ValueError):
        classifier.predict(model, q, ["anything"])


def test_folds_are_writing_rounds_and_description_clauses_are_never_held_out():
    exs, _ = _data()
    f = classifier.folds(exs)
    assert [x for x, e in zip(f, exs) if e.round is None] == [None] * 3
    assert sorted({x for x in f if x is not None}) == ["base", "r1", "r2", "r3"]


def test_too_few_rounds_fall_back_to_round_robin_folds():
    exs, _ = _data(rounds=("base",), per_label=4)
    f = [x for x in classifier.folds(exs) if x is not None]
    assert sorted(set(f)) == [f"fold{i}" for i in range(classifier.FALLBACK_FOLDS)]


def test_a_round_is_never_predicted_by_a_model_that_saw_it():
    # Round r3 holds the only examples of "gamma": predicted out-of-round, gamma cannot even be a label.
    exs, vecs = _data()
    rng = np.random.default_rng(2)
    extra = [Example(f"gamma thing {i}", "gamma", "r3") for i in range(3)]
    vecs = np.vstack([vecs] + [_vec("alpha", rng) for _ in extra])
    probs = classifier.cross_validated(vecs, exs + extra, C=16.0, tfidf_weight=1.0)
    assert all(p is None for p, e in zip(probs, exs + extra) if e.round is None)
    for p, e in zip(probs, exs + extra):
        if e.round == "r3":
            assert "gamma" not in p
        elif e.round is not None:
            assert set(p) == set(LABELS) | {"gamma"}


def test_calibration_reports_what_its_parameters_score_out_of_round():
    exs, vecs = _data(per_label=2)
    flags = [None if e.round is None else e.label != NONE for e in exs]
    cal = classifier.calibrate(vecs, exs, flags, Cs=(1.0, 16.0), tfidf_weights=(0.0, 1.0))
    assert cal["C"] in (1.0, 16.0) and cal["tfidf_weight"] in (0.0, 1.0)
    probs = classifier.cross_validated(vecs, exs, cal["C"], cal["tfidf_weight"])
    routed = [(e, st, classifier.decide(classifier.summary(p), cal["threshold"], cal["margin"]))
              for e, st, p in zip(exs, flags, probs) if p is not None]
    assert cal["cases"] == len(routed) == len(exs) - 3
    assert cal["correct"] == sum(got == e.label for e, _, got in routed)
    assert cal["false_triggers"] == sum((not st) and got != NONE and got != e.label for e, st, got in routed) == 0


def test_a_none_winner_or_an_improbable_winner_routes_to_none():
    assert classifier.decide({"best": NONE, "evidence": 0.99, "gap": 0.9}, 0.5, 0.0) == NONE
    assert classifier.decide({"best": "alpha", "evidence": 0.45, "gap": 0.2}, 0.5, 0.0) == NONE
    assert classifier.decide({"best": "alpha", "evidence": 0.5, "gap": 0.2}, 0.5, 0.0) == "alpha"
    assert classifier.decide is exemplar.decide


def test_skill_mass_evidence_is_the_probability_of_any_skill_and_names_the_likeliest_skill():
    probs = {"alpha": 0.35, "beta": 0.25, NONE: 0.40}
    top = classifier.summary(probs)
    assert top["best"] == NONE and math.isclose(top["evidence"], 0.40)
    mass = classifier.summary(probs, classifier.SKILL_MASS)
    assert mass["best"] == "alpha"
    assert math.isclose(mass["evidence"], 0.60) and math.isclose(mass["gap"], 0.10)
    assert classifier.decide(mass, 0.55, 0.0) == "alpha"
    assert classifier.decide(mass, 0.65, 0.0) == NONE  # not enough mass: fail closed
    assert classifier.decide(mass, 0.55, 0.2) == NONE  # split between two skills: fail closed


def test_unknown_decision_rule_is_rejected():
    with pytest.raises(ValueError):
        classifier.summary({"alpha": 1.0}, "majority")


def test_character_ngrams_match_a_word_spelt_unlike_every_training_text():
    exs, _ = _data()
    flat = np.ones((len(exs), DIM)) / math.sqrt(DIM)  # vectors carry nothing: only the n-grams decide
    texts, labels = [e.text for e in exs], [e.label for e in exs]
    query = ["frostings"]  # an unseen word form: no word n-gram of the training texts matches it
    words_only = classifier.fit(flat, texts, labels, C=16.0, tfidf_weight=1.0)
    assert words_only.vectorizer.transform(query).nnz == 0
    with_chars = classifier.fit(flat, texts, labels, C=16.0, tfidf_weight=1.0, char_weight=1.0)
    p = classifier.predict(with_chars, flat[:1], query)[0]
    assert classifier.summary(p)["best"] == "beta"


def test_calibration_searches_the_char_weight_and_the_decision_rule():
    exs, vecs = _data(per_label=2)
    flags = [None if e.round is None else e.label != NONE for e in exs]
    cal = classifier.calibrate(vecs, exs, flags, Cs=(16.0,), tfidf_weights=(1.0,), char_weights=(0.0, 1.0))
    assert cal["char_weight"] in (0.0, 1.0) and cal["rule"] in classifier.RULES
    probs = classifier.cross_validated(vecs, exs, cal["C"], cal["tfidf_weight"], cal["char_weight"])
    routed = [(e, st, classifier.decide(classifier.summary(p, cal["rule"]), cal["threshold"], cal["margin"]))
              for e, st, p in zip(exs, flags, probs) if p is not None]
    assert cal["correct"] == sum(got == e.label for e, _, got in routed)
    assert cal["false_triggers"] == sum((not st) and got != NONE and got != e.label for e, st, got in routed)
