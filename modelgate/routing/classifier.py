"""Classifier router: a linear model over MiniLM sentence vectors and word n-grams, trained on the
description clauses and the train cases (the gate of the ``embedding`` backend).

Why: a nearest-neighbour vote (``exemplar``) asks "which labelled text is this query most like?",
so a query phrased unlike every exemplar falls to whichever label happens to sit nearest. A
linear model asks "which directions separate the labels?" and learns them from all the examples
at once: the sentence vector carries the meaning, the n-grams carry the words that decide a
boundary ("certify", "MQS", "ship ... only if", "GGUF"), and their weights are fitted, not
hand-tuned. Measured on cases from a writer who never saw the train cases, it routes far more
of them right than the exemplar vote (``docs/routing-evals.md``).

1. **Examples.** Description clauses (``router.prototypes(..., include_full=False)``: trigger
   clauses labelled with their skill, "Do NOT use" clauses that point at no sibling labelled
   ``none``) and the train cases, each labelled with its expected route (a should-not-trigger case
   that names a sibling in ``routes_to`` is an example of that sibling).
2. **Features.** The MiniLM vector, shifted by the mean training vector and renormalised (the
   component every example shares, the pack's common topic, is removed), next to a sublinear
   (1,2)-gram TF-IDF vector fitted on the training texts, scaled by ``tfidf_weight``.
3. **Model.** Multinomial logistic regression (scikit-learn, L2, inverse strength ``C``): one
   probability per label, ``none`` included.
4. **Route.** The most probable label, except ``none`` when that label is ``none``, its
   probability is below ``threshold``, or it beats the runner-up by less than ``margin`` (fail
   closed: an unsure router loads nothing).
5. **Calibration and honest train accuracy.** Cross-validation by *writing round*: the train
   cases were written in rounds (the name prefix ``r1-``, ``r2-``, ...; unprefixed cases are one
   round), and each round is predicted by a model fitted on the other rounds and the description
   clauses. A round left out is new phrasing, as a user's query is; leaving out single cases
   would keep a near-twin of each case in training. ``C``, ``tfidf_weight``, ``threshold`` and
   ``margin`` are chosen on those out-of-round predictions (``exemplar.calibrate``: fewest false
   triggers, then most correct, then the middle of the widest run of equally good thresholds).
   The held-out split never feeds any of it.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelgate.routing import exemplar
from modelgate.routing.cases import NONE

DEFAULT_CS = (4.0, 16.0, 64.0)
DEFAULT_TFIDF_WEIGHTS = (1.0, 1.5, 2.0)
DEFAULT_CHAR_WEIGHTS = (0.0, 1.0)
DEFAULT_MARGINS = (0.0,)
TOP_LABEL = "top-label"      # evidence: the probability of the most probable label (none included)
SKILL_MASS = "skill-mass"    # evidence: 1 - p(none), the probability that the query asks for some skill
RULES = (TOP_LABEL, SKILL_MASS)
DEFAULT_RULES = RULES
CHAR_NGRAMS = (3, 5)
MIN_ROUNDS = 3        # fewer writing rounds than this: cross-validate by FALLBACK_FOLDS instead
FALLBACK_FOLDS = 5
MAX_ITER = 5000
BASE_ROUND = "base"
TOKEN_PATTERN = r"(?u)\b[\w][\w.-]*\b"
_ROUND = re.compile(r"^(r\d+)-")


@dataclass(frozen=True)
class Example:
    """A labelled training text: a description clause (``round`` None: always trained on) or a train case."""
    text: str
    label: str
    round: str | None


@dataclass
class Model:
    """A fitted router: the centring vector, the n-gram vectorisers and the logistic regression."""
    mean: Any
    vectorizer: Any
    clf: Any
    tfidf_weight: float
    char_vectorizer: Any = None
    char_weight: float = 0.0

    @property
    def labels(self) -> list[str]:
        return [str(c) for c in self.clf.classes_]


def round_of(case_name: str) -> str:
    """The writing round of a train case, from its name prefix (``r5-...`` -> ``r5``; none -> ``base``)."""
    m = _ROUND.match(case_name)
    return m.group(1) if m else BASE_ROUND


def examples(protos: Sequence, train_cases: Sequence) -> list[Example]:
    """Training examples: description clauses (never left out) and train cases (left out by round)."""
    out = [Example(p.text, p.label, None) for p in protos if p.text.strip()]
    out += [Example(c.query, c.expected, round_of(c.name)) for c in train_cases]
    return out


def _unit_rows(x):
    import numpy as np

    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def _features(model: Model, vecs, texts: Sequence[str]):
    import numpy as np
    from scipy.sparse import csr_matrix, hstack

    dense = _unit_rows(np.asarray(vecs, dtype=np.float64) - model.mean)
    blocks = [csr_matrix(dense), model.vectorizer.transform(list(texts)) * model.tfidf_weight]
    if model.char_vectorizer is not None:
        blocks.append(model.char_vectorizer.transform(list(texts)) * model.char_weight)
    return hstack(blocks).tocsr()


def fit(vecs, texts: Sequence[str], labels: Sequence[str], C: float, tfidf_weight: float,
        char_weight: float = 0.0) -> Model:
    """Fit the router on training vectors (L2-normalised MiniLM, one row per text), texts and labels.

    ``char_weight`` > 0 adds sublinear TF-IDF character n-grams (3-5, within word boundaries),
    scaled by it: they match a word the training texts spell differently (a typo, an inflection,
    a model name's variant) where the word n-grams see an unknown token.

    Raises ValueError on non-finite vectors, mismatched lengths or fewer than two labels.
    """
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    vecs = np.asarray(vecs, dtype=np.float64)
    if vecs.ndim != 2 or vecs.shape[0] != len(texts) or len(texts) != len(labels):
        raise ValueError(f"{vecs.shape} vectors for {len(texts)} texts and {len(labels)} labels")
    if not np.isfinite(vecs).all():
        raise ValueError("non-finite training vector")
    if len(set(labels)) < 2:
        raise ValueError(f"need at least two labels to train a router, got {sorted(set(labels))}")
    if not (C > 0 and tfidf_weight >= 0 and char_weight >= 0):
        raise ValueError(f"C must be > 0 and the n-gram weights >= 0, got C={C!r}, tfidf_weight={tfidf_weight!r}, "
                         f"char_weight={char_weight!r}")
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True,
                                 token_pattern=TOKEN_PATTERN).fit(list(texts))
    chars = (TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, sublinear_tf=True, lowercase=True)
             .fit(list(texts)) if char_weight > 0 else None)
    model = Model(mean=vecs.mean(axis=0, keepdims=True), vectorizer=vectorizer, clf=None,
                  tfidf_weight=float(tfidf_weight), char_vectorizer=chars, char_weight=float(char_weight))
    # One BLAS thread: the problem is small (hundreds of rows), and on a shared 2-core machine a
    # multi-threaded BLAS oversubscribes the cores and makes each fit many times slower.
    with threadpool_limits(limits=1):
        model.clf = LogisticRegression(C=C, max_iter=MAX_ITER).fit(_features(model, vecs, texts), list(labels))
    return model


def summary(probs: dict[str, float], rule: str = TOP_LABEL) -> dict:
    """What a route needs from the label probabilities: the winner, its evidence and its lead.

    ``top-label``: the most probable label (``none`` included), its probability, its lead over the
    runner-up. ``skill-mass``: the most probable *skill*, the probability that the query asks for
    any skill (1 - p(none)), and that skill's lead over the next skill. A query the model finds
    skill-like but splits between two siblings keeps its evidence under ``skill-mass``; the
    threshold, calibrated against false triggers, decides how much is enough.
    """
    if rule not in RULES:
        raise ValueError(f"unknown decision rule {rule!r} (known: {', '.join(RULES)})")
    if rule == SKILL_MASS:
        skills = sorted(((lb, p) for lb, p in probs.items() if lb != NONE), key=lambda kv: (-kv[1], kv[0]))
        if skills:
            best, p1 = skills[0]
            p2 = skills[1][1] if len(skills) > 1 else 0.0
            return {"best": best, "evidence": float(1.0 - probs.get(NONE, 0.0)), "gap": float(p1 - p2)}
    ranked = sorted(probs.items(), key=lambda kv: (-kv[1], kv[0]))
    best, p1 = ranked[0]
    p2 = ranked[1][1] if len(ranked) > 1 else 0.0
    return {"best": best, "evidence": float(p1), "gap": float(p1 - p2)}


def predict(model: Model, vecs, texts: Sequence[str]) -> list[dict[str, float]]:
    """Label probabilities for each text; raises ValueError on a non-finite vector."""
    import numpy as np

    vecs = np.asarray(vecs, dtype=np.float64)
    if vecs.shape[0] != len(texts):
        raise ValueError(f"{vecs.shape[0]} vectors for {len(texts)} texts")
    if not len(texts):
        return []
    if not np.isfinite(vecs).all():
        raise ValueError("non-finite query vector")
    probs = model.clf.predict_proba(_features(model, vecs, texts))
    return [{lb: float(p) for lb, p in zip(model.labels, row)} for row in probs]


decide = exemplar.decide  # winner, or none: the winner is none, too improbable, or too small a lead


def folds(exs: Sequence[Example]) -> list[str | None]:
    """Fold of every example: its writing round, or (fewer than MIN_ROUNDS rounds) a round-robin fold.
    Description clauses get None: they are in every training fold."""
    rounds = sorted({e.round for e in exs if e.round is not None})
    if len(rounds) >= MIN_ROUNDS:
        return [e.round for e in exs]
    out, i = [], 0
    for e in exs:
        if e.round is None:
            out.append(None)
        else:
            out.append(f"fold{i % FALLBACK_FOLDS}")
            i += 1
    return out


def cross_validated(vecs, exs: Sequence[Example], C: float, tfidf_weight: float,
                    char_weight: float = 0.0) -> list[dict[str, float] | None]:
    """Out-of-round label probabilities of every example (None for description clauses, never held out)."""
    import numpy as np

    vecs = np.asarray(vecs, dtype=np.float64)
    fold = folds(exs)
    out: list[dict[str, float] | None] = [None] * len(exs)
    for f in sorted({x for x in fold if x is not None}):
        tr = [i for i, x in enumerate(fold) if x != f]
        te = [i for i, x in enumerate(fold) if x == f]
        model = fit(vecs[tr], [exs[i].text for i in tr], [exs[i].label for i in tr], C, tfidf_weight, char_weight)
        for i, p in zip(te, predict(model, vecs[te], [exs[i].text for i in te])):
            out[i] = p
    return out


def calibrate(vecs, exs: Sequence[Example], should_trigger: Sequence[bool | None],
              Cs: Sequence[float] = DEFAULT_CS, tfidf_weights: Sequence[float] = DEFAULT_TFIDF_WEIGHTS,
              margins: Sequence[float] = DEFAULT_MARGINS, char_weights: Sequence[float] = DEFAULT_CHAR_WEIGHTS,
              rules: Sequence[str] = DEFAULT_RULES) -> dict:
    """Choose C, tfidf_weight, char_weight, the decision rule, threshold and margin on the
    out-of-round predictions of the train cases.

    ``should_trigger[i]`` is the case flag of example i (None for a description clause, which is
    never scored). Returns the chosen parameters and what they scored (false triggers, correct, cases).
    """
    by_setting = {}
    for C in Cs:
        for w in tfidf_weights:
            for cw in char_weights:
                probs = cross_validated(vecs, exs, C, w, cw)
                for rule in rules:
                    by_setting[(C, w, cw, rule)] = [
                        {"expected": e.label, "should_trigger": st, "vote": summary(p, rule)}
                        for e, st, p in zip(exs, should_trigger, probs) if p is not None]
    cal = exemplar.calibrate(by_setting, margins=margins)
    C, w, cw, rule = cal.pop("setting")
    return {"C": C, "tfidf_weight": w, "char_weight": cw, "rule": rule, **cal}
