"""G4 output oracles for model certification: pure functions, stdlib only.

Each oracle takes model output (text or token ids) and returns a plain dict
``{"pass": bool, "reason": str, "measured": ..., "threshold": ...}``. A pass means the
hypothesis "this output is sound" was not refuted. Nothing here ever skips: an output an
oracle cannot judge (no number in an arithmetic answer, empty token lists) fails.

What earlier oracles got wrong and this module must not repeat: a garbage oracle flagged
"information" because it contains "inf"; an arithmetic oracle silently skipped
"What is 2+2?"; "HHHH..." and "RRRR..." outputs passed.
"""
from __future__ import annotations

import math
import re
import unicodedata

from modelgate.gates.values import ge_tol

# --------------------------------------------------------------------------- number words

# "zero" .. "nineteen", the tens, and the scales: enough to read answers up to the millions
SMALL_NUMBERS = {w: i for i, w in enumerate(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
     "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"])}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
        "ninety": 90}
HUNDRED = "hundred"
SCALES = {"thousand": 1_000, "million": 1_000_000}
NUMBER_WORDS = {**SMALL_NUMBERS, **TENS, HUNDRED: 100, **SCALES}
_WORD = "|".join(sorted(NUMBER_WORDS, key=len, reverse=True))
# a phrase of number words: "forty-two", "one thousand two hundred and five", "twelve hundred"
_WORD_PHRASE = rf"(?:{_WORD})(?:(?:[\s-]+and)?[\s-]+(?:{_WORD}))*"


def _number_words(phrase: str) -> list[str]:
    return [w for w in re.split(r"[\s-]+", phrase.lower()) if w]


def words_value(phrase: str) -> tuple[int, int] | None:
    """(value, words read) of the longest prefix of ``phrase`` that is a well-formed English number
    ("forty-two" -> 42, "one thousand two hundred" -> 1200, "twelve hundred" -> 1200, "two hundred
    and five" -> 205); None when it does not start with one. "four two" reads as 4 (one word): a
    run of number words is not one number."""
    words = _number_words(phrase)
    total, group, last, last_scale, read, i = 0, 0, None, None, 0, 0
    while i < len(words):
        w = words[i]
        if w == "and":  # "two hundred and five", "one thousand and one"
            nxt = words[i + 1] if i + 1 < len(words) else ""
            if last in ("hundred", "scale") and (nxt in TENS or SMALL_NUMBERS.get(nxt, 0) > 0):
                i += 1
                continue
            break
        if w == "zero":
            if last is None:
                read = i + 1
            break  # nothing follows "zero", and "zero" follows nothing
        if w in SMALL_NUMBERS:
            v = SMALL_NUMBERS[w]
            if last == "tens" and v <= 9:
                last = "tens_unit"
            elif last in (None, "hundred", "scale"):
                last = "teen" if v >= 10 else "unit"
            else:
                break
            group += v
        elif w in TENS:
            if last not in (None, "hundred", "scale"):
                break
            group += TENS[w]
            last = "tens"
        elif w == HUNDRED:
            if last not in ("unit", "teen", "tens", "tens_unit") or not 1 <= group <= 99:
                break
            group *= 100
            last = "hundred"
        elif w in SCALES:
            scale = SCALES[w]
            if last in (None, "scale") or group == 0 or (last_scale is not None and scale >= last_scale):
                break
            total += group * scale
            group, last, last_scale = 0, "scale", scale
        else:
            break
        i += 1
        read = i
    return None if read == 0 else (total + group, read)


def words_number(phrase: str) -> int | None:
    """The value of ``phrase`` when the whole of it is one number in words, else None."""
    parsed = words_value(phrase)
    return parsed[0] if parsed is not None and parsed[1] == len(_number_words(phrase)) else None


# --------------------------------------------------------------------------- degenerate output

# Defaults; a playbook's ``oracles.degenerate`` block overrides them.
DEGENERATE_DEFAULTS = {"max_char_run": 8, "min_period_reps": 3, "min_periodic_chars": 9}
# what a question expects as its answer: decides whether a run of digits or punctuation is content
EXPECTED_KINDS = ("text", "number", "symbols")

ALLOWED_CONTROL = frozenset("\n\t\r")
REPLACEMENT_CHAR = "\ufffd"
# A whole output that is nothing but non-finite number words ("nan", "inf", "-Infinity", ...).
# Matched against the WHOLE text, so words such as "information" or "infinite" never match.
NONFINITE_ONLY = re.compile(r"^\s*(?:[-+]?(?:nan|inf|infinity)\b[\s,;]*)+$", re.IGNORECASE)
# a number as digits: "42", "-3.5", "1,200", "1000000000000"
NUMBER_TOKEN = re.compile(r"[-+]?\d+(?:[.,]\d+)*")
PUNCT_RUN = re.compile(r"([^\w\s])\1+")


def answer_kind(answer) -> str:
    """The kind of answer a known answer is: "number" (digits or number words), "symbols" (no letter
    or digit), else "text"."""
    text = str(answer).strip()
    if NUMBER_TOKEN.fullmatch(text) or (text and words_number(text) is not None):
        return "number"
    return "symbols" if text and not any(ch.isalnum() for ch in text) else "text"


def _longest_run(text: str) -> tuple[str, int]:
    best_ch, best, cur, prev = "", 0, 0, None
    for ch in text:
        cur = cur + 1 if ch == prev else 1
        prev = ch
        if cur > best and not ch.isspace():
            best_ch, best = ch, cur
    return best_ch, best


def _longest_letter_run(text: str) -> tuple[str, int]:
    best_ch, best, cur, prev = "", 0, 0, None
    for ch in text:
        cur = cur + 1 if ch == prev else 1
        prev = ch
        if cur > best and ch.isalpha():
            best_ch, best = ch, cur
    return best_ch, best


def smallest_period(text: str, min_reps: int) -> int | None:
    """Smallest p such that ``text`` is a unit of length p repeated at least ``min_reps`` times
    (a trailing partial unit allowed), else None."""
    n = len(text)
    for p in range(1, n // min_reps + 1):
        if all(text[i] == text[i - p] for i in range(p, n)):
            return p
    return None


def _periodic_tail(text: str, cfg: dict) -> tuple[int, str] | None:
    """A repeating loop that fills the end of the output (the usual failure of a broken model)."""
    compact = " ".join(text.split())
    n = len(compact)
    if n < cfg["min_periodic_chars"]:
        return None
    # the loop must cover at least the last half of the output (and the whole of short outputs)
    for start in range(0, n // 2 + 1):
        tail = compact[start:]
        if len(tail) < cfg["min_periodic_chars"]:
            break
        p = smallest_period(tail, cfg["min_period_reps"])
        if p is not None:
            return p, tail[:p]
    return None


def _judged_text(text: str, expected: str) -> str:
    """The output as the run and loop checks see it: what the expected kind makes content is folded
    to one character (a number for a numeric question, a run of symbols for a symbolic answer)."""
    if expected == "number":
        return NUMBER_TOKEN.sub("0", text)
    if expected == "symbols":
        return PUNCT_RUN.sub(r"\1", text)
    return text


def degenerate_output(text, config: dict | None = None, expected: str = "text") -> dict:
    """Is ``text`` degenerate as an answer of the ``expected`` kind ("text", "number", "symbols")?

    Empty, control or replacement characters, non-finite-only, a long run of one letter, an output
    that is nothing but a long run of one digit or punctuation character (a run beside words, such as
    "Title\n----------", is content; a long number answers a numeric question; a run of symbols
    answers a symbolic one), or a periodic loop filling the end of the output."""
    if expected not in EXPECTED_KINDS:
        raise ValueError(f"expected kind must be one of {EXPECTED_KINDS}, got {expected!r}")
    cfg = dict(DEGENERATE_DEFAULTS, **(config or {}))
    thr = {"max_char_run": cfg["max_char_run"], "min_period_reps": cfg["min_period_reps"], "expected": expected}
    if not isinstance(text, str):
        return {"pass": False, "reason": f"output is not text ({type(text).__name__})", "measured": None,
                "threshold": thr}
    if not text.strip():
        return {"pass": False, "reason": "output is empty", "measured": {"chars": len(text)}, "threshold": thr}
    bad = [f"U+{ord(ch):04X}" for ch in text
           if ch == REPLACEMENT_CHAR or (unicodedata.category(ch) == "Cc" and ch not in ALLOWED_CONTROL)]
    if bad:
        return {"pass": False, "reason": f"output contains control/replacement characters {sorted(set(bad))[:5]}",
                "measured": {"bad_chars": len(bad)}, "threshold": thr}
    if NONFINITE_ONLY.match(text):
        return {"pass": False, "reason": "output is only non-finite number words (NaN/Inf)",
                "measured": {"text": text[:80]}, "threshold": thr}
    judged = _judged_text(text, expected)
    ch, run = _longest_letter_run(judged)
    if run >= cfg["max_char_run"]:
        return {"pass": False, "reason": f"letter {ch!r} repeated {run} times in a row (limit {cfg['max_char_run']})",
                "measured": {"longest_run": run}, "threshold": thr}
    ch, run = _longest_run(judged)
    if run >= cfg["max_char_run"] and not any(c.isalpha() for c in judged):
        return {"pass": False, "reason": f"output is nothing but {ch!r} repeated {run} times (limit "
                                         f"{cfg['max_char_run']}; expected a {expected} answer)",
                "measured": {"longest_run": run}, "threshold": thr}
    loop = _periodic_tail(judged, cfg)
    # a loop of symbols after words ("Title\n----------") is a separator, not a broken model
    if loop is not None and (any(c.isalnum() for c in loop[1]) or not any(c.isalpha() for c in judged)):
        p, unit = loop
        return {"pass": False, "reason": f"output ends in a loop repeating {unit!r} (period {p})",
                "measured": {"period": p}, "threshold": thr}
    return {"pass": True, "reason": f"no degeneration found in {len(text)} chars (longest run {run})",
            "measured": {"longest_run": run, "chars": len(text)}, "threshold": thr}


# --------------------------------------------------------------------------- arithmetic

OPERATORS = {"+": "+", "plus": "+", "add": "+", "-": "-", "minus": "-", "\u2212": "-",
             "*": "*", "x": "*", "\u00d7": "*", "times": "*", "multiplied by": "*",
             "/": "/", "\u00f7": "/", "divided by": "/", "over": "/"}
OPERATIONS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
              "/": lambda a, b: a / b if b != 0 else math.nan}
_NUM = r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?|[-+]?\d+(?:\.\d+)?"
_OPERAND = rf"(?:{_NUM}|{_WORD_PHRASE})"
# a hyphen between two letters joins a compound ("forty-two"); only a free-standing "-" is minus
_OP = "|".join(r"(?<![A-Za-z])-|-(?![A-Za-z])" if o == "-" else re.escape(o)
               for o in sorted(OPERATORS, key=len, reverse=True))
QUESTION = re.compile(rf"(?<![\w])({_OPERAND})\s*({_OP})\s*({_OPERAND})(?![\w])", re.IGNORECASE)
ANSWER_NUMBER = re.compile(rf"(?<![\w.])({_NUM}|{_WORD_PHRASE})(?![\w])", re.IGNORECASE)


def _value(token: str) -> float:
    """The value of a number written in digits ("1,200", "-3.5") or in words ("forty-two")."""
    t = token.strip()
    if re.fullmatch(_NUM, t):
        return float(t.replace(",", ""))
    value = words_number(t)
    if value is None:
        raise ValueError(f"not a number: {token!r}")
    return float(value)


def parse_arithmetic(question) -> tuple[float, str, float]:
    """(a, op, b) from "What is 2+2?", "what's 3 plus 5", "Compute 6 x 7", "12 divided by 4 =",
    "What is forty-two plus one thousand?" ...

    Raises ValueError when the question holds no binary operation: a playbook with such a
    question is a configuration error, never a silently skipped check.
    """
    if not isinstance(question, str):
        raise ValueError(f"arithmetic question must be text, got {type(question).__name__}")
    m = QUESTION.search(question)
    if not m:
        raise ValueError(f"no arithmetic expression found in {question!r}")
    for operand in (m.group(1), m.group(3)):
        if not re.fullmatch(_NUM, operand.strip()) and words_number(operand) is None:
            raise ValueError(f"{operand!r} in {question!r} is not one number")
    return _value(m.group(1)), OPERATORS[m.group(2).lower()], _value(m.group(3))


def extract_answer_number(answer: str, question: str | None = None) -> float | None:
    """The number an answer gives: after '=', else the first number once an echoed
    expression ("2+2", "2 plus 2") is removed. Digits ("42", "1,200") or words ("forty-two",
    "one thousand two hundred")."""
    if not isinstance(answer, str):
        return None
    text = answer
    if "=" in text:
        text = text.rsplit("=", 1)[1]
    else:
        text = QUESTION.sub(" ", text)  # drop an echoed expression, keep its result
    m = ANSWER_NUMBER.search(text)
    if not m:
        return None
    token = m.group(1)
    if re.fullmatch(_NUM, token):
        return float(token.replace(",", ""))
    return float(words_value(token)[0])  # the well-formed prefix: "four two" reads 4


def arithmetic_answer(question, answer, rel_tol: float = 1e-9, abs_tol: float = 1e-9) -> dict:
    """Does ``answer`` give the correct result of ``question``? Unparseable answer -> fail."""
    a, op, b = parse_arithmetic(question)
    expected = OPERATIONS[op](a, b)
    thr = {"expected": expected, "rel_tol": rel_tol, "abs_tol": abs_tol}
    got = extract_answer_number(answer)
    if got is None:
        return {"pass": False, "reason": f"no number found in the answer {str(answer)[:80]!r}",
                "measured": None, "threshold": thr}
    if not math.isfinite(expected):
        return {"pass": False, "reason": "the question has no finite answer", "measured": got, "threshold": thr}
    ok = math.isclose(got, expected, rel_tol=rel_tol, abs_tol=abs_tol)
    return {"pass": ok, "reason": f"answer {got:g} {'==' if ok else '!='} expected {expected:g}",
            "measured": got, "threshold": thr}


# --------------------------------------------------------------------------- exact answers

def first_word(text) -> str | None:
    """First alphanumeric word, lower-cased (how the trained fixture's answers are read)."""
    if not isinstance(text, str):
        return None
    m = re.search(r"[A-Za-z0-9]+", text)
    return m.group(0).lower() if m else None


def exact_answer(output, expected) -> dict:
    """Is the first word of ``output`` exactly ``expected`` (case-insensitive)?"""
    if not isinstance(expected, str) or not expected.strip():
        raise ValueError(f"expected answer must be non-empty text, got {expected!r}")
    got = first_word(output)
    ok = got is not None and got == expected.strip().lower()
    return {"pass": ok, "reason": f"first word {got!r} {'==' if ok else '!='} expected {expected!r}",
            "measured": got, "threshold": expected}


# --------------------------------------------------------------------------- reference agreement

# Minimum mean prefix agreement of greedy tokens with the safetensors ground truth, per format.
REFERENCE_TOLERANCE = {"safetensors": 1.0, "openvino-fp32": 1.0, "openvino-fp16": 0.9,
                       "openvino-int8": 0.75, "openvino-int4": 0.5}


def prefix_agreement(tokens, reference) -> float:
    """Length of the common prefix over the longer sequence (1.0 = identical)."""
    n = max(len(tokens), len(reference))
    if n == 0:
        return 0.0  # empty vs empty proves nothing: never a vacuous pass
    k = 0
    for a, b in zip(tokens, reference):
        if a != b:
            break
        k += 1
    return k / n


def _token_list(x) -> list[int] | None:
    if not isinstance(x, (list, tuple)) or not all(isinstance(t, int) and not isinstance(t, bool) for t in x):
        return None
    return list(x)


def reference_agreement(pairs, min_agreement: float) -> dict:
    """Greedy tokens vs ground truth over prompts: each pair is ``{"tokens": [...], "reference": [...]}``.

    Passes when the mean prefix agreement is >= ``min_agreement`` (with a tolerance). No pairs,
    malformed pairs, or an empty reference fail closed.
    """
    if not isinstance(min_agreement, (int, float)) or isinstance(min_agreement, bool) or \
            not math.isfinite(min_agreement) or not 0.0 <= min_agreement <= 1.0:
        raise ValueError(f"min_agreement must be a number in [0, 1], got {min_agreement!r}")
    if not isinstance(pairs, (list, tuple)) or not pairs:
        return {"pass": False, "reason": "no prompts compared with the ground truth", "measured": None,
                "threshold": min_agreement}
    scores, worst = [], None
    for i, p in enumerate(pairs):
        toks = _token_list(p.get("tokens")) if isinstance(p, dict) else None
        ref = _token_list(p.get("reference")) if isinstance(p, dict) else None
        if toks is None or ref is None:
            return {"pass": False, "reason": f"pair {i} has no token lists", "measured": None,
                    "threshold": min_agreement}
        if not ref:
            return {"pass": False, "reason": f"ground truth for pair {i} is empty: nothing to agree with",
                    "measured": None, "threshold": min_agreement}
        s = prefix_agreement(toks, ref)
        scores.append(s)
        if worst is None or s < scores[worst]:
            worst = i
    mean = sum(scores) / len(scores)
    ok = ge_tol(mean, min_agreement, abs_tol=1e-9)
    return {"pass": ok, "reason": f"mean greedy-token agreement {mean:.3f} {'>=' if ok else '<'} {min_agreement} "
                                  f"over {len(scores)} prompts (worst: prompt {worst}, {scores[worst]:.3f})",
            "measured": round(mean, 6), "threshold": min_agreement}
