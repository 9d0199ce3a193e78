"""Per-sample records of an eval run: reading them (release/records.py), invalid lines counted, paths kept
inside the run folder."""
from __future__ import annotations

import json

import pytest

from modelgate.contract import GateInputError
from modelgate.gates.paired import records_stats
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
    assert records_stats(pairs, invalid) == {"count": 7, "duplicate_ids": 0, "invalid": 5, "mean": 0.5, "min": 0.0,
                                             "max": 1.0}


def test_a_record_line_with_a_duplicate_key_or_an_overflowing_number_is_invalid(tmp_path):
    p = write(tmp_path / "r.jsonl", ['{"id": "a", "score": 0.0, "score": 1.0}', '{"id": "b", "score": 1e400}',
                                     '{"id": "c", "score": ' + "9" * 400 + "}", {"id": "d", "score": 1.0}])
    assert read_records(p) == ([("d", 1.0)], 3)


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
