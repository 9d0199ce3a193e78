"""One standard of evidence on every path of the day-0 gates, strict input, and the cases a hostile user
found (issue #12): each case is pinned here as the user wrote it, by hand, the way references/gates.md
describes the files, and run through the command as a user runs it."""
from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import pytest
from day0_builders import pair, run_summary, task

from modelgate.cli.day0 import GATE_COMPARE, GATE_PTQ, GATE_RUN
from modelgate.cli.spine import run_command
from modelgate.contract import schema_errors
from modelgate.gates.compare import evaluate_compare
from modelgate.gates.run import evaluate_run

SCHEMAS = {"gate-run": "run-verdict", "gate-compare": "compare-verdict", "gate-ptq": "ptq-verdict"}


def rule_of_three_floor(span: float, n: int) -> float:
    """The paired path's floor on the standard error, as references/gates.md states it."""
    return span * 3 / (1.645 * n)


def cli(cmd, *argv) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run_command(cmd, [str(a) for a in argv])
    verdict = json.loads(out.getvalue())
    assert verdict["exit_code"] == code
    assert schema_errors(SCHEMAS[verdict["gate"]], verdict) == []
    assert not verdict["detail"].startswith("internal error")
    return verdict


def write_run(folder: Path, variant: str, score: float, n: int, *, stderr=None, records=None,
              records_path="records/t.jsonl", scale="unit") -> Path:
    """A run summary written by hand (one task ``t``), with per-sample records when given."""
    folder.mkdir(parents=True, exist_ok=True)
    entry = task(score, stderr=stderr, n=n, scale=scale, metric="exact_match")
    if stderr is None:
        entry.pop("stderr")
    if records is not None or records_path != "records/t.jsonl":
        entry["records_path"] = records_path
    if records is not None:
        (folder / "records").mkdir(exist_ok=True)
        (folder / "records" / "t.jsonl").write_text("".join(json.dumps({"id": i, "score": s}) + "\n"
                                                           for i, s in records))
    doc = run_summary(variant, {"t": entry})
    (folder / "run_summary.json").write_text(json.dumps(doc))
    return folder / "run_summary.json"


def compare_files(tmp_path, b_kw, c_kw, *argv) -> dict:
    b = write_run(tmp_path / "b", "baseline", **b_kw)
    c = write_run(tmp_path / "c", "candidate", **c_kw)
    return cli(GATE_COMPARE, "--baseline", b, "--candidate", c, *argv)


# --------------------------------------------------------------------------- no ACCEPT on no evidence

def test_regression_seed_ten_of_ten_with_stderr_0_is_not_accepted_at_a_one_point_threshold(tmp_path):
    v = compare_files(tmp_path, {"score": 1.0, "n": 10, "stderr": 0.0}, {"score": 1.0, "n": 10, "stderr": 0.0},
                      "--threshold", "0.01")
    t = v["tasks"]["t"]
    assert (v["decision"], t["stderr_source"]) == ("INDETERMINATE", "independent")
    # the independent path has the paired path's floor: 3/n on ten samples
    assert t["upper_bound"] >= 1.645 * rule_of_three_floor(1.0, 10) and t["samples_needed"] >= 300
    assert "independent" in " ".join(v["coverage"]["not_exercised"])


def test_the_same_data_gets_the_same_answer_with_and_without_records(tmp_path):
    recs = [(i, 1.0) for i in range(10)]
    with_records = compare_files(tmp_path / "r", {"score": 1.0, "n": 10, "stderr": 0.0, "records": recs},
                                 {"score": 1.0, "n": 10, "stderr": 0.0, "records": recs}, "--threshold", "0.01")
    without = compare_files(tmp_path / "s", {"score": 1.0, "n": 10, "stderr": 0.0},
                            {"score": 1.0, "n": 10, "stderr": 0.0}, "--threshold", "0.01")
    assert with_records["decision"] == without["decision"] == "INDETERMINATE"
    assert with_records["tasks"]["t"]["stderr_source"] == "paired"


@pytest.mark.parametrize("n", [2, 10, 50, 100, 299])
def test_no_sample_of_perfect_agreement_smaller_than_3_over_the_threshold_is_accepted(n):
    for kw in ({"stderr": 0.0}, {"stderr": 0.0, "paired": True}):
        b, c = pair(1.0, 1.0, stderr=0.0, n=n)
        paired = {"digits": {"n": n, "mean_diff": 0.0, "stderr_diff": rule_of_three_floor(1.0, n)}} \
            if kw.get("paired") else None
        assert evaluate_compare(b, c, threshold=0.01, paired=paired)["decision"] == "INDETERMINATE"


@pytest.mark.parametrize("paired", [False, True])
def test_regression_seed_stderr_1e308_gives_a_number_or_null_and_the_right_reason(paired):
    b, c = pair(10.0, 10.0, stderr=1e308, n=4, scale="unbounded", metric="perplexity", hib=False)
    stats = {"digits": {"n": 4, "mean_diff": 0.0, "stderr_diff": 1.5e308}} if paired else None
    v = evaluate_compare(b, c, threshold=0.01, paired=stats)
    t = v["tasks"]["digits"]
    assert schema_errors("compare-verdict", v) == [] and v["decision"] == "INDETERMINATE"
    assert t["upper_bound"] is None and "Infinity" not in json.dumps(v)
    assert "sits on the threshold" not in t["reasons"][0]
    assert ("too large" if paired else "without per-sample records") in t["reasons"][0]


def test_a_drop_on_the_threshold_still_says_so():
    b, c = pair(0.90, 0.89, stderr=0.0)
    assert "sits on the threshold" in evaluate_compare(b, c, threshold=0.01)["tasks"]["digits"]["reasons"][0]


# --------------------------------------------------------------------------- gate_compare = gate_run first

def _records(score: float, n: int):
    ones = round(score * n)
    return [(i, 1.0 if i < ones else 0.0) for i in range(n)]


@pytest.mark.parametrize("case", ["mean_disagrees", "one_record_too_many", "records_missing", "out_of_scale"])
def test_regression_seed_compare_refuses_what_gate_run_refuses_and_says_why(tmp_path, case):
    good = _records(0.9, 100)
    b_kw = {"score": 0.9, "n": 100, "stderr": 0.03, "records": good}
    c_kw = dict(b_kw)
    if case == "mean_disagrees":  # records average 0.50, the summary says 0.90
        c_kw["records"] = _records(0.5, 100)
    elif case == "one_record_too_many":
        c_kw["records"] = good + [(100, 1.0)]
    elif case == "records_missing":
        c_kw = {"score": 0.9, "n": 100, "stderr": 0.03, "records_path": "records/none.jsonl"}
    else:  # 1.5 and -0.5 on a 0-1 task, averaging to the summary score
        c_kw = {"score": 0.5, "n": 4, "stderr": 0.03, "records": [(0, 1.5), (1, -0.5), (2, 1.5), (3, -0.5)]}
        b_kw = {"score": 0.5, "n": 4, "stderr": 0.03, "records": [(0, 1.0), (1, 0.0), (2, 1.0), (3, 0.0)]}
    v = compare_files(tmp_path, b_kw, c_kw, "--threshold", "0.5")
    assert (v["decision"], v["exit_code"]) == ("ANOMALOUS", 2)
    run_checks = [c for c in v["checks"] if c["name"].startswith("candidate:") and c["pass"] is False]
    assert run_checks and "candidate run does not pass gate-run" in v["detail"]
    expected = "t:record_scores" if case == "out_of_scale" else "t:records"
    assert f"candidate:{expected}" in {c["name"] for c in run_checks}


def test_regression_seed_per_sample_scores_outside_the_scale_fail_gate_run_even_when_the_mean_matches(tmp_path):
    summary = write_run(tmp_path, "baseline", 0.5, 4, stderr=0.1, records=[(0, 1.5), (1, -0.5), (2, 1.5), (3, -0.5)])
    v = cli(GATE_RUN, "--run", summary)
    assert (v["pass"], v["failure_class"]) == (False, "EVAL_SCORER_FAILED")
    assert "outside the declared unit scale" in v["detail"]


# --------------------------------------------------------------------------- pairing on the same samples

@pytest.mark.parametrize("overlap", [0, 50, 99])
def test_regression_seed_partial_or_no_overlap_of_sample_ids_is_never_better_than_full_overlap(tmp_path, overlap):
    base = [(f"q{i}", 1.0 if i % 10 else 0.0) for i in range(100)]
    shifted = [(f"q{i + 100 - overlap}", s) for i, (_, s) in enumerate(base)]
    kw = {"score": 0.9, "n": 100, "stderr": 0.03}
    partial = compare_files(tmp_path / "p", dict(kw, records=base), dict(kw, records=shifted), "--threshold", "0.15")
    full = compare_files(tmp_path / "f", dict(kw, records=base), dict(kw, records=base), "--threshold", "0.15")
    assert full["decision"] == "ACCEPT"
    assert partial["decision"] == "ANOMALOUS" and "per-sample ids differ" in partial["detail"]
    assert f"{overlap} shared" in partial["detail"]


def test_regression_seed_ids_written_as_integers_in_one_run_and_strings_in_the_other_pair(tmp_path):
    b = write_run(tmp_path / "b", "baseline", 1.0, 500, stderr=0.0, records=[(i, 1.0) for i in range(500)])
    c = write_run(tmp_path / "c", "candidate", 1.0, 500, stderr=0.0, records=[(str(i), 1.0) for i in range(500)])
    v = cli(GATE_COMPARE, "--baseline", b, "--candidate", c, "--threshold", "0.01")
    assert v["tasks"]["t"]["stderr_source"] == "paired" and v["tasks"]["t"]["n"] == 500
    assert v["decision"] == "ACCEPT"  # 3/500 = 0.006 <= 0.01: the floor is met


def test_records_on_one_side_only_fall_back_to_the_independent_floor(tmp_path):
    v = compare_files(tmp_path, {"score": 1.0, "n": 10, "stderr": 0.0, "records": [(i, 1.0) for i in range(10)]},
                      {"score": 1.0, "n": 10, "stderr": 0.0}, "--threshold", "0.01")
    assert v["tasks"]["t"]["stderr_source"] == "independent" and v["decision"] == "INDETERMINATE"


# --------------------------------------------------------------------------- strict input

def test_regression_seed_a_summary_with_a_task_key_twice_is_refused(tmp_path):
    doc = json.dumps(run_summary("baseline", {"t": task(0.5)}))
    twice = doc[:-1] + ', "tasks": ' + json.dumps({"t": task(1.0)}) + "}"
    (tmp_path / "s.json").write_text(twice)
    v = cli(GATE_RUN, "--run", tmp_path / "s.json")
    assert v["exit_code"] == 2 and "duplicate key 'tasks'" in v["detail"]


@pytest.mark.parametrize("where", ["score", "stderr", "expected_samples", "scored_samples", "timing"])
def test_regression_seed_a_400_digit_integer_is_refused_not_an_overflow_traceback(tmp_path, where):
    big = "9" * 400
    doc = run_summary("baseline", {"t": task(0.5)})
    text = json.dumps(doc)
    if where == "timing":
        text = text.replace('"seconds": 1.0', f'"seconds": {big}')
    else:
        text = text.replace(f'"{where}": {json.dumps(doc["tasks"]["t"][where])}', f'"{where}": {big}')
    assert big in text
    (tmp_path / "s.json").write_text(text)
    v = cli(GATE_RUN, "--run", tmp_path / "s.json")  # refused when read, like 1e400: exit 2, said why
    assert (v["exit_code"], v["failure_class"]) == (2, "USER_CONFIG_ERROR") and "does not fit" in v["detail"]
    c = run_summary("candidate", {"t": task(0.5)})
    (tmp_path / "c.json").write_text(json.dumps(c))
    v = cli(GATE_COMPARE, "--baseline", tmp_path / "s.json", "--candidate", tmp_path / "c.json")
    assert (v["exit_code"], v["failure_class"]) == (2, "USER_CONFIG_ERROR") and "does not fit" in v["detail"]


def test_huge_integers_never_reach_arithmetic_in_the_pure_gates():
    big = 10**400
    for field in ("score", "stderr", "expected_samples", "scored_samples"):
        b, c = pair(0.5, 0.5)
        c["tasks"]["digits"][field] = big
        v = evaluate_compare(b, c, threshold=0.01)
        assert v["decision"] == "ANOMALOUS" and schema_errors("compare-verdict", v) == []
        assert evaluate_run(c)["pass"] is False
    assert evaluate_compare(*pair(0.5, 0.5), threshold=big)["failure_class"] == "USER_CONFIG_ERROR"


def test_regression_seed_gate_ptq_refuses_an_observation_without_a_field_its_schema_requires(tmp_path):
    from test_gates_ptq import obs_for

    obs = obs_for()
    del obs["model_type"]
    obs.pop("recipe")
    (tmp_path / "obs.json").write_text(json.dumps(obs))
    v = cli(GATE_PTQ, "--recipe", "int8_asym", "--summary", tmp_path / "obs.json")
    assert (v["pass"], v["exit_code"]) == (False, 2) and "model_type" in v["detail"]
    # the same file with the field is judged
    obs["model_type"] = "llama"
    (tmp_path / "obs.json").write_text(json.dumps(obs))
    assert cli(GATE_PTQ, "--recipe", "int8_asym", "--summary", tmp_path / "obs.json")["pass"] is True


# --------------------------------------------------------------------------- coverage

def test_regression_seed_the_conductor_refuses_a_threshold_of_1_before_any_stage(tmp_path):
    from modelgate.cli.release import RELEASE

    (tmp_path / "digits.onnx").write_bytes(b"a classifier the chain would export")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run_command(RELEASE, ["--model", str(tmp_path / "digits.onnx"), "--recipe", "static_int8",
                                     "--threshold", "1", "--workspace", str(tmp_path / "ws")])
    v = json.loads(out.getvalue())
    assert (code, v["failure_class"], v["decision"]) == (2, "USER_CONFIG_ERROR", None)
    assert "threshold" in v["detail"] and schema_errors("release-report", v) == []
    assert not (tmp_path / "ws").exists()  # no workspace, no stage


def test_every_judged_day0_verdict_says_what_it_covered(tmp_path):
    b = write_run(tmp_path / "b", "baseline", 0.9, 450, stderr=0.01, records=_records(0.9, 450))
    c = write_run(tmp_path / "c", "candidate", 0.9, 450, stderr=0.01, records=_records(0.9, 450))
    run = cli(GATE_RUN, "--run", b)
    assert run["coverage"]["exercised"]["tasks"]["t"] == {"status": "COMPLETED", "samples": 450,
                                                          "records_checked": True}
    assert "450 samples" in run["coverage"]["summary"]
    v = cli(GATE_COMPARE, "--baseline", b, "--candidate", c, "--threshold", "0.01")
    assert v["decision"] == "ACCEPT"
    ex = v["coverage"]["exercised"]["tasks"]["t"]
    assert (ex["samples"], ex["stderr_source"]) == (450, "paired")
    assert "450 paired samples" in v["coverage"]["summary"]
    assert math.isclose(ex["upper_bound"], v["tasks"]["t"]["upper_bound"])
