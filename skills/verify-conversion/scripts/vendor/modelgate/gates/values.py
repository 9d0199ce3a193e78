"""Value checks shared by the pure gates: type, finiteness, range, tolerant comparison.

Every number a gate reads passes one of these predicates *before* any arithmetic,
so a string, a bool, NaN or infinity can never reach a subtraction.
"""
from __future__ import annotations

import math
import sys
from typing import Any

# Thresholds are compared with this tolerance, never with raw float <=:
# 0.90 - 0.89 is 0.010000000000000009 in binary floating point, and a drop of exactly
# the threshold must not become a regression through representation error.
REL_TOL = 1e-9
ABS_TOL = 1e-12
# the largest integer that converts to a finite float
MAX_FLOAT_INT = int(sys.float_info.max)
# The largest count a gate accepts: every integer up to 2**53 is exact as a float, so counts mix with
# float arithmetic without overflow or rounding. (A JSON integer of 400 digits is not a count.)
MAX_COUNT = 2**53


def is_number(value: Any) -> bool:
    """A finite int or float (bool is not a number here). An int too large for a float (a JSON
    integer of 400 digits) is not finite: it would overflow the first float operation."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int):
        return -MAX_FLOAT_INT <= value <= MAX_FLOAT_INT
    return math.isfinite(value)


def is_count(value: Any) -> bool:
    """A non-negative int up to ``MAX_COUNT`` (not bool, not a float such as 450.0)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT


def is_fraction(value: Any) -> bool:
    """A finite number in (0, 1]."""
    return is_number(value) and 0 < value <= 1


def le_tol(a: float, b: float, *, rel_tol: float = REL_TOL, abs_tol: float = ABS_TOL) -> bool:
    """a <= b, with a difference within tolerance counting as equal."""
    return a <= b or math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol)


def ge_tol(a: float, b: float, *, rel_tol: float = REL_TOL, abs_tol: float = ABS_TOL) -> bool:
    """a >= b, with a difference within tolerance counting as equal."""
    return le_tol(b, a, rel_tol=rel_tol, abs_tol=abs_tol)


def gt_tol(a: float, b: float, *, rel_tol: float = REL_TOL, abs_tol: float = ABS_TOL) -> bool:
    """a > b by more than the tolerance."""
    return not le_tol(a, b, rel_tol=rel_tol, abs_tol=abs_tol)


def lt_tol(a: float, b: float, *, rel_tol: float = REL_TOL, abs_tol: float = ABS_TOL) -> bool:
    """a < b by more than the tolerance."""
    return not ge_tol(a, b, rel_tol=rel_tol, abs_tol=abs_tol)


def short(value: Any, limit: int = 80) -> str:
    """A bounded repr for a detail sentence (model output and files can be huge)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
