"""Route a query to a skill (or to none) from similarities to the skills' descriptions.

How a route is decided (pure, backend-agnostic):

1. Each description is cut into *prototypes*: its sentences, and each sentence into its
   top-level semicolon-separated clauses ("Use when asked to certify a model; to compute an
   MQS score; ..." gives one clause per trigger; commas stay inside a clause, so a list of
   formats does not fall apart). A clause of a "Do NOT use for ..." sentence is a *negative*
   prototype: it is labelled with the sibling skill its own "(use X)" pointer names, or with
   ``none`` when it names no skill of the pack. Every other clause is labelled with its own
   skill. The full description is a prototype of its skill too. Descriptions are written for
   this: one trigger or one near miss per clause, which is also what an LLM router reads best.
2. A backend (embedding or lexical) gives the similarity of the query to every prototype; a
   label's score is the maximum over its prototypes (a query asks for one thing, and matching
   one trigger of a description is enough).
3. The route is the best-scoring label, unless its score is below ``threshold`` or it beats
   the runner-up label by less than ``margin``: then ``none`` (fail closed: an unsure router
   must not load a skill).

``threshold`` and ``margin`` are calibrated on the train split only (``calibrate``).
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from modelgate.gates.routing import routed_label
from modelgate.routing.cases import NONE

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_NEGATIVE_START = re.compile(r"^(do not use|don't use|not for)\b", re.IGNORECASE)
_POINTER = re.compile(r"\((?:use|call|see)\s+([^)]*)\)", re.IGNORECASE)
_LEADING_CONNECTOR = re.compile(r"^(?:use when asked to|use when asked for|use when|do not use|don't use|not for"
                                r"|and|or|for|to|,|;|:|\s)+\b", re.IGNORECASE)
_MIN_CLAUSE_WORDS = 3
DEFAULT_MARGINS = tuple(round(0.01 * i, 2) for i in range(0, 21))


@dataclass(frozen=True)
class Prototype:
    """One piece of a description and the label a query matching it should get."""
    text: str
    label: str      # a skill name or NONE
    skill: str      # whose description it came from
    negative: bool  # came from a "Do NOT use" sentence


def _split_top_level(text: str, seps: str = ",;") -> list[str]:
    """Split on separators that are not inside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        depth += ch == "("
        depth -= ch == ")" and depth > 0
        if ch in seps and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _merge_short(parts: list[str]) -> list[str]:
    """Glue fragments too short to mean anything on their own to the previous one."""
    out: list[str] = []
    for p in parts:
        if out and len(p.split()) < _MIN_CLAUSE_WORDS:
            out[-1] = f"{out[-1]}, {p}"
        else:
            out.append(p)
    return out


def _clean(text: str) -> str:
    return _LEADING_CONNECTOR.sub("", text).strip(" .,;")


def _pointer_label(segment: str, skills: Iterable[str]) -> str:
    m = _POINTER.search(segment)
    if not m:
        return NONE
    named = m.group(1).strip()
    return named if named in set(skills) else NONE


def prototypes(descriptions: Mapping[str, str], include_full: bool = True,
               keep_pointers: bool = False) -> list[Prototype]:
    """Cut every description into labelled prototypes (see the module docstring)."""
    skills = list(descriptions)
    out: list[Prototype] = []
    for skill, desc in descriptions.items():
        if include_full:
            out.append(Prototype(desc.strip(), skill, skill, False))
        for sentence in _SENTENCE_END.split(desc.strip()):
            negative = bool(_NEGATIVE_START.match(sentence))
            for clause in _merge_short(_split_top_level(sentence, ";")):
                label = _pointer_label(clause, skills) if negative else skill
                if negative and label != NONE and not keep_pointers:
                    continue  # the sibling's own description speaks for it
                text = _clean(_POINTER.sub("", clause))
                if text:
                    out.append(Prototype(text, label, skill, negative))
    return out


def label_scores(sims: Sequence[float], protos: Sequence[Prototype]) -> dict[str, float]:
    """Max similarity per label over that label's prototypes."""
    if len(sims) != len(protos):
        raise ValueError(f"{len(sims)} similarities for {len(protos)} prototypes")
    out: dict[str, float] = {}
    for s, p in zip(sims, protos):
        s = float(s)
        if not math.isfinite(s):
            raise ValueError(f"non-finite similarity for prototype {p.text!r}")
        if p.label not in out or s > out[p.label]:
            out[p.label] = s
    return out


def route(scores: Mapping[str, float], threshold: float, margin: float) -> str:
    """The label to route to: best label, or NONE below threshold / within margin of the runner-up."""
    if not scores:
        return NONE
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    best, s1 = ranked[0]
    return routed_label(best, s1, s1 - ranked[1][1] if len(ranked) > 1 else None, threshold, margin)


def _outcome(expected: str, got: str, should_trigger: bool, skill: str) -> tuple[bool, bool]:
    """(correct, false_trigger) for one case."""
    correct = got == expected
    false_trigger = (not should_trigger) and got != NONE and got != expected
    return correct, false_trigger


def evaluate_params(scored: Sequence[dict], threshold: float, margin: float) -> tuple[int, int]:
    """(false triggers, correct) over scored cases: dicts with expected, should_trigger, skill, scores."""
    ft = ok = 0
    for c in scored:
        correct, false_trigger = _outcome(c["expected"], route(c["scores"], threshold, margin),
                                          c["should_trigger"], c["skill"])
        ok += correct
        ft += false_trigger
    return ft, ok


def threshold_search(evaluate: Callable[[float], tuple[int, int]], values: Iterable[float]) -> dict:
    """The best threshold among the cut points of the observed ``values`` (below the lowest, between
    consecutive ones, above the highest), for ``evaluate(threshold) -> (false triggers, correct)``.

    Objective, in order: fewest false triggers, most correct, then robustness: the longest
    contiguous run of equally good cut points, whose centre is taken. Returns ``key`` (-false
    triggers, correct), ``width`` of that run, ``threshold``, ``false_triggers``, ``correct`` and
    ``threshold_interval``. Shared by the description-only and the exemplar/classifier calibrations.
    """
    vals = sorted(set(values))
    cuts = [vals[0] - 0.05] + [(a + b) / 2 for a, b in zip(vals, vals[1:])] + [vals[-1] + 0.05]
    results = [((-ft, ok), t) for t in cuts for ft, ok in [evaluate(t)]]
    top = max(key for key, _ in results)
    run: list[float] = []
    best_run: list[float] = []
    for key, t in results:
        if key == top:
            run.append(t)
            if len(run) > len(best_run):
                best_run = list(run)
        else:
            run = []
    return {"key": top, "width": best_run[-1] - best_run[0], "threshold": round((best_run[0] + best_run[-1]) / 2, 4),
            "false_triggers": -top[0], "correct": top[1],
            "threshold_interval": [round(best_run[0], 4), round(best_run[-1], 4)]}


def calibrate(scored: Sequence[dict], margins: Sequence[float] = DEFAULT_MARGINS) -> dict:
    """Choose (threshold, margin) on the given (train) cases.

    Objective, in order: fewest false triggers, most correct routes, then robustness: the
    widest run of equally good thresholds (between consecutive observed top scores), whose
    centre is taken (``threshold_search``). Margins are tried smallest first, so a wider margin
    is used only when it buys something.
    """
    if not scored:
        raise ValueError("cannot calibrate on zero cases")
    tops = [max(c["scores"].values()) for c in scored if c["scores"]]
    best = None
    for margin in margins:
        r = threshold_search(lambda t: evaluate_params(scored, t, margin), tops)  # noqa: B023 - called at once
        cand = (r["key"], r["width"], -margin)
        if best is None or cand > best[0]:
            best = (cand, {"threshold": r["threshold"], "margin": margin, "false_triggers": r["false_triggers"],
                           "correct": r["correct"], "cases": len(scored),
                           "threshold_interval": r["threshold_interval"]})
    return best[1]
