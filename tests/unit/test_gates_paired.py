"""Paired statistics of per-sample records (gates/paired.py): accounting stats and paired standard errors."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelgate.gates.paired import RULE_OF_THREE, Z_FLOOR, paired_stats, records_stats, sample_key


def test_duplicate_ids_are_counted():
    assert records_stats([("a", 1.0), ("a", 0.0)])["duplicate_ids"] == 1


def test_paired_differences_use_common_ids_and_count_the_ids_one_run_lacks():
    s = paired_stats([("a", 1.0), ("b", 0.0), ("x", 1.0)], [("a", 1.0), ("b", 1.0), ("y", 0.0)], span=None)
    assert s["n"] == 2 and s["mean_diff"] == pytest.approx(0.5)
    assert s["stderr_diff"] == pytest.approx(math.sqrt(0.5 / 2))
    assert (s["baseline_only"], s["candidate_only"]) == (1, 1)


def test_regression_seed_integer_and_string_ids_of_one_sample_pair():
    ints = [(i, 1.0) for i in range(100)]
    strings = [(str(i), 1.0) for i in range(100)]
    s = paired_stats(ints, strings, span=1.0)
    assert (s["n"], s["baseline_only"], s["candidate_only"]) == (100, 0, 0)
    assert sample_key(0) == sample_key("0")
    # and within one run they are the same sample twice
    assert records_stats([(0, 1.0), ("0", 1.0)])["duplicate_ids"] == 1


def test_disjoint_ids_share_nothing():
    s = paired_stats([(f"q{i}", 1.0) for i in range(100)], [(f"q{i + 100}", 1.0) for i in range(100)], span=1.0)
    assert (s["n"], s["baseline_only"], s["candidate_only"], s["mean_diff"], s["stderr_diff"]) == (0, 100, 100,
                                                                                                   None, None)


def test_scores_near_the_float_limit_give_non_finite_statistics_not_an_exception():
    s = paired_stats([("a", -1e308), ("b", 1e308)], [("a", 1e308), ("b", -1e308)], span=None)
    assert not math.isfinite(s["mean_diff"]) or not math.isfinite(s["stderr_diff"])
    assert not math.isfinite(records_stats([("a", 1e308), ("b", 1e308)])["mean"])


def test_perfect_agreement_keeps_the_rule_of_three_floor():
    same = [(i, float(i % 2)) for i in range(450)]
    s = paired_stats(same, same, span=1.0)
    assert s["mean_diff"] == 0 and s["stderr_diff"] == pytest.approx(RULE_OF_THREE / (Z_FLOOR * 450))
    assert paired_stats(same, same, span=None)["stderr_diff"] == 0


def test_one_pair_has_only_the_floor_and_none_on_an_unbounded_scale():
    assert paired_stats([("a", 1.0)], [("a", 1.0)], span=1.0)["stderr_diff"] == pytest.approx(RULE_OF_THREE / Z_FLOOR)
    assert paired_stats([("a", 1.0)], [("a", 1.0)], span=None)["stderr_diff"] is None


@settings(max_examples=200, deadline=None)
@given(b=st.lists(st.tuples(st.integers(0, 50), st.floats(0, 1)), max_size=60),
       c=st.lists(st.tuples(st.integers(0, 50), st.floats(0, 1)), max_size=60))
def test_paired_statistics_are_finite_and_floored(b, c):
    s = paired_stats(b, c, span=1.0)
    assert s["n"] + s["baseline_only"] == len({k for k, _ in b})
    assert s["n"] + s["candidate_only"] == len({k for k, _ in c})
    if s["n"]:
        assert math.isfinite(s["mean_diff"]) and s["stderr_diff"] >= RULE_OF_THREE / (Z_FLOOR * s["n"]) - 1e-15
