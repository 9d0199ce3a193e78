"""Paired statistics of per-sample records (gates/paired.py): accounting stats and paired standard errors."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelgate.gates.paired import RULE_OF_THREE, Z_FLOOR, paired_stats, records_stats


def test_duplicate_ids_are_counted():
    assert records_stats([("a", 1.0), ("a", 0.0)])["duplicate_ids"] == 1


def test_paired_differences_use_common_ids_only():
    s = paired_stats([("a", 1.0), ("b", 0.0), ("x", 1.0)], [("a", 1.0), ("b", 1.0), ("y", 0.0)], span=None)
    assert s["n"] == 2 and s["mean_diff"] == pytest.approx(0.5)
    assert s["stderr_diff"] == pytest.approx(math.sqrt(0.5 / 2))


def test_perfect_agreement_keeps_the_rule_of_three_floor():
    same = [(i, float(i % 2)) for i in range(450)]
    s = paired_stats(same, same, span=1.0)
    assert s["mean_diff"] == 0 and s["stderr_diff"] == pytest.approx(RULE_OF_THREE / (Z_FLOOR * 450))
    assert paired_stats(same, same, span=None)["stderr_diff"] == 0


def test_fewer_than_two_pairs_give_no_paired_statistics():
    assert paired_stats([("a", 1.0)], [("a", 1.0)], span=1.0) is None


@settings(max_examples=200, deadline=None)
@given(b=st.lists(st.tuples(st.integers(0, 50), st.floats(0, 1)), max_size=60),
       c=st.lists(st.tuples(st.integers(0, 50), st.floats(0, 1)), max_size=60))
def test_paired_statistics_are_finite_and_floored(b, c):
    s = paired_stats(b, c, span=1.0)
    if s is not None:
        assert math.isfinite(s["mean_diff"]) and s["stderr_diff"] >= RULE_OF_THREE / (Z_FLOOR * s["n"]) - 1e-15
