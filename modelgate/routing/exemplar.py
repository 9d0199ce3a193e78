"""Exemplar router: route a query by a similarity-weighted vote of its nearest labelled exemplars (pure).

Why: a single similarity to a skill's description is dominated by topic words ("OpenVINO",
"certification", "release"), so a near miss ("renew the TLS certificate") scores like a real
request. Labelled examples of both sides of the boundary let the router learn where it is.

1. **Exemplars.** Each skill is represented by its description clauses (``router.prototypes``
   without the full description) plus the train split's cases whose correct route is that skill.
   The ``none`` class is represented by the "Do NOT use for ..." clauses that point at no sibling
   and by the train cases whose correct route is none. A case's exemplar label is its *expected*
   route: a should-not-trigger case whose ``routes_to`` names a sibling is a real request for that
   sibling, so it is an exemplar of the sibling; one with no ``routes_to`` is a ``none`` exemplar,
   whichever skill's file it sits in.
2. **Vote.** Over the exemplars the query may see (``candidates``: in leave-one-out a train case
   never sees itself, nor a case exemplar with the same text), the ``k`` most similar vote for
   their label with weight max(similarity, 0). A label's *share* is its weight over the total;
   its *evidence* is the similarity of its nearest exemplar.
3. **Route.** The label with the largest share, except ``none`` when: that label is ``none``;
   its evidence is below ``threshold``; or its share beats the runner-up by less than ``margin``
   (fail closed: an unsure router loads nothing).
4. **Calibration.** ``k``, ``threshold`` and ``margin`` are chosen on the train split only, by
   leave-one-out (``calibrate``).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from modelgate.gates.routing import routed_label
from modelgate.routing.cases import NONE
from modelgate.routing.router import Prototype, threshold_search

DEFAULT_KS = (1, 3, 5, 7, 9, 11, 15, 21)
DEFAULT_TEMPERATURES = (None, 0.1, 0.05, 0.02)
DEFAULT_MARGINS = tuple(round(0.05 * i, 2) for i in range(0, 11))
DESCRIPTION = "description"
CASE = "case"


@dataclass(frozen=True)
class Exemplar:
    """A labelled text the router votes with."""
    text: str
    label: str           # a skill name or NONE
    origin: str          # DESCRIPTION (a description clause) or CASE (a train case)
    key: str | None      # identity of the train case it came from; None for a description clause


def case_key(split: str, source: str, name: str) -> str:
    """Identity of a case (names are unique per file, not across files)."""
    return f"{split}|{source}|{name}"


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def build(protos: Iterable[Prototype], train_cases: Iterable) -> list[Exemplar]:
    """Exemplars from description clauses (``router.prototypes(..., include_full=False)``) and train cases."""
    out = [Exemplar(p.text, p.label, DESCRIPTION, None) for p in protos if p.text.strip()]
    for c in train_cases:
        out.append(Exemplar(c.query, c.expected, CASE, case_key(c.split, c.source, c.name)))
    return out


def candidates(exemplars: Sequence[Exemplar], key: str | None, text: str | None) -> list[int]:
    """Indices of the exemplars a query may vote with (leave-one-out: never itself, nor a duplicate of it)."""
    own = _norm(text) if text is not None else None
    return [i for i, e in enumerate(exemplars)
            if not (key is not None and e.key == key)
            and not (own is not None and e.origin == CASE and _norm(e.text) == own)]


def weight(sim: float, top: float, temperature: float | None) -> float:
    """Vote weight of a neighbour: max(sim, 0) (linear), or exp((sim - top) / temperature) (a kernel
    that lets a much closer neighbour outvote several loosely related ones)."""
    if temperature is None:
        return max(sim, 0.0)
    return math.exp((sim - top) / temperature)


def vote(sims: Sequence[float], exemplars: Sequence[Exemplar], k: int, allowed: Sequence[int] | None = None,
         temperature: float | None = None) -> dict:
    """Similarity-weighted vote of the ``k`` nearest allowed exemplars (weights: ``weight``).

    Returns ``{"shares": {label: share}, "evidence": {label: nearest similarity}, "neighbours":
    [index, ...]}``; every label of the exemplars appears in both maps (share 0 when it got no vote;
    evidence over all allowed exemplars of that label). Raises ValueError on a non-finite similarity
    or bad arguments.
    """
    if len(sims) != len(exemplars):
        raise ValueError(f"{len(sims)} similarities for {len(exemplars)} exemplars")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if temperature is not None and not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number or None, got {temperature!r}")
    idx = list(range(len(exemplars))) if allowed is None else list(allowed)
    for i in idx:
        if not math.isfinite(float(sims[i])):
            raise ValueError(f"non-finite similarity for exemplar {exemplars[i].text!r}")
    labels = sorted({e.label for e in exemplars})
    evidence = dict.fromkeys(labels, -1.0)
    for i in idx:
        lb = exemplars[i].label
        evidence[lb] = max(evidence[lb], float(sims[i]))
    nearest = sorted(idx, key=lambda i: (-float(sims[i]), i))[:k]
    weights = dict.fromkeys(labels, 0.0)
    top = float(sims[nearest[0]]) if nearest else 0.0
    for i in nearest:
        weights[exemplars[i].label] += weight(float(sims[i]), top, temperature)
    total = sum(weights.values())
    shares = {lb: (w / total if total > 0 else 0.0) for lb, w in weights.items()}
    return {"shares": shares, "evidence": evidence, "neighbours": nearest}


def summary(v: Mapping) -> dict:
    """What a route decision needs from a vote: the winning label, its evidence and its share lead."""
    ranked = sorted(v["shares"].items(), key=lambda kv: (-kv[1], kv[0]))
    if not ranked or ranked[0][1] <= 0:
        return {"best": NONE, "evidence": -1.0, "gap": 0.0}
    best, s1 = ranked[0]
    s2 = ranked[1][1] if len(ranked) > 1 else 0.0
    return {"best": best, "evidence": float(v["evidence"][best]), "gap": s1 - s2}


def decide(s: Mapping, threshold: float, margin: float) -> str:
    """Route from a vote summary: the winner, or NONE (winner is none, weak evidence, or too small a lead)."""
    return routed_label(s["best"], s["evidence"], s["gap"], threshold, margin)


def evaluate(summaries: Sequence[dict], threshold: float, margin: float) -> tuple[int, int]:
    """(false triggers, correct) over dicts with expected, should_trigger and a vote summary under "vote"."""
    ft = ok = 0
    for c in summaries:
        got = decide(c["vote"], threshold, margin)
        ok += got == c["expected"]
        ft += (not c["should_trigger"]) and got != NONE and got != c["expected"]
    return ft, ok


def calibrate(summaries_by_setting: Mapping[tuple, Sequence[dict]],
              margins: Sequence[float] = DEFAULT_MARGINS) -> dict:
    """Choose a setting, threshold and margin from leave-one-out vote summaries of the TRAIN cases.

    ``summaries_by_setting[setting]`` (a setting is any tuple, e.g. (center, k, temperature)) holds, per
    train case, ``expected``, ``should_trigger`` and ``vote`` (the ``summary`` of its leave-one-out vote
    with that setting).
    Objective, in order: fewest false triggers, most correct routes, then the widest run of
    equally good thresholds (cut points between consecutive observed evidence values), whose
    centre is taken. Settings are tried in the order given and margins smallest first; a tie keeps
    the earlier one, so a later (larger) one is used only when it buys something.
    """
    if not summaries_by_setting or not any(summaries_by_setting.values()):
        raise ValueError("cannot calibrate on zero cases")
    best = None
    for setting, summ in summaries_by_setting.items():
        if not summ:
            continue
        values = [c["vote"]["evidence"] for c in summ]
        for margin in margins:
            r = threshold_search(lambda t: evaluate(summ, t, margin), values)  # noqa: B023 - called at once
            cand = (r["key"], r["width"])
            if best is None or cand > best[0]:
                best = (cand, {"setting": setting, "threshold": r["threshold"], "margin": margin,
                               "false_triggers": r["false_triggers"], "correct": r["correct"], "cases": len(summ),
                               "threshold_interval": r["threshold_interval"]})
    return best[1]
