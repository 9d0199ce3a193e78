"""Per-sample records: reading, accounting stats and paired standard errors (release/paired.py)."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelgate.contract import GateInputError
from modelgate.gates.paired import RULE_OF_THREE, Z_FLOOR, paired_stats, records_stats
from modelgate.release.records import read_records, resolve_records_path


def write(path, lines):
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_records_are_read_with_invalid_lines_counted_not_dropped(tmp_path):
    p = write(tmp_path / "r.jsonl", [{"id": "a", "score": 1.0}, {"id": 2, "score": 0}, "{broken",
                                     {"id": "c", "score": "1"}, {"score": 1.0}, {"id": True, "score": 1.0},
                                     '{"id": "n", "score": NaN}', ""])
    pairs, invalid = read_records(p)
    assert pairs == [("a", 1.0), (2, 0.0)] and invalid == 5
    assert records_stats(pairs, invalid) == {"count": 7, "duplicate_ids": 0, "invalid": 5, "mean": 0.5}


def test_duplicate_ids_are_counted():
    assert records_stats([("a", 1.0), ("a", 0.0)])["duplicate_ids"] == 1


def test_missing_records_file_is_an_input_error(tmp_path):
    with pytest.raises(GateInputError):
        read_records(tmp_path / "none.jsonl")


def test_records_path_may_not_leave_the_run_folder(tmp_path):
    summary = tmp_path / "run" / "run_summary.json"
    assert resolve_records_path(summary, "records/a.jsonl") == (tmp_path / "run" / "records" / "a.jsonl").resolve()
    for bad in ("../other/a.jsonl", "/etc/passwd"):
        with pytest.raises(GateInputError, match="outside"):
            resolve_records_path(summary, bad)
    with pytest.raises(GateInputError, match="usable"):
        resolve_records_path(summary, "a\x00b")


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
