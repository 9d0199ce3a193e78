"""The gate contract: envelope, exit codes, strict JSON, atomic writes, no tracebacks."""
import io
import json
import math

import pytest

from modelgate import contract as c


def test_every_failure_class_has_a_triage_text():
    classes = c.failure_classes()
    assert "UNKNOWN" in classes and "FIDELITY_REGRESSION" in classes
    assert all(len(text) > 20 for text in classes.values())


def test_passing_verdict_is_schema_valid_and_exits_zero():
    v = c.make_verdict("g", passed=True, detail="ok", checks=[c.check("a", True, 1.0, 2.0)])
    assert c.schema_errors("envelope", v) == []
    assert v["exit_code"] == 0 and v["failure_class"] is None


@pytest.mark.parametrize("cls,code", [("USER_CONFIG_ERROR", 2), ("SOURCE_UNAVAILABLE", 2), ("UNKNOWN", 2),
                                      ("FIDELITY_REGRESSION", 1), ("TIMEOUT", 1)])
def test_exit_code_separates_unjudgeable_input_from_a_failed_gate(cls, code):
    assert c.make_verdict("g", passed=False, failure_class=cls, detail="x")["exit_code"] == code


def test_failing_verdict_without_a_class_is_unknown_not_a_pass():
    v = c.make_verdict("g", passed=False, detail="x")
    assert v["failure_class"] == "UNKNOWN" and v["exit_code"] == 2


def test_non_finite_measurements_are_kept_as_strings_so_the_json_stays_strict():
    v = c.make_verdict("g", passed=False, failure_class="NUMERICAL_INSANE", detail="x",
                       checks=[c.check("nan", False, float("nan"), 0.0)], metrics={"inf": math.inf})
    text = json.dumps(v, allow_nan=False)
    assert '"NaN"' in text and '"Infinity"' in text


def test_schema_violation_is_replaced_by_an_unknown_verdict_not_written_as_is(tmp_path, monkeypatch):
    monkeypatch.delenv(c.STRICT_VERDICTS_ENV, raising=False)
    bad = c.make_verdict("g", passed=True, detail="ok")
    bad["checks"] = [{"name": "missing fields"}]
    out = io.StringIO()
    code = c.emit(bad, "envelope", output=tmp_path / "v.json", stream=out)
    written = json.loads((tmp_path / "v.json").read_text())
    assert code == 2 and written["failure_class"] == "UNKNOWN" and "schema" in written["detail"]


def test_emit_names_its_schema_there_is_no_default():
    with pytest.raises(TypeError):
        c.emit(c.make_verdict("g", passed=True, detail="ok"))  # noqa - the missing schema is the point


def test_emit_to_a_folder_names_the_file_after_the_gate(tmp_path):
    c.emit(c.make_verdict("verify", passed=True, detail="ok"), "envelope", output=tmp_path, stream=io.StringIO())
    assert (tmp_path / "verify_result.json").is_file()


@pytest.mark.parametrize("make,fragment", [
    (lambda d: (d / "notes.txt").write_text("x") and d / "notes.txt", "existing file"),
    (lambda d: (d / "a").write_text("x") and d / "a" / "v.json", "existing file"),
    (lambda d: (d / "x.json" / "gate_run_result.json").mkdir(parents=True) or d / "x.json", "is a folder"),
    (lambda d: str(d / "a\x00b.json"), "not a usable path")])
def test_an_output_that_cannot_take_a_verdict_is_named_before_any_work(tmp_path, make, fragment):
    assert fragment in c.output_problem(make(tmp_path), "gate-run")


def test_an_output_folder_or_a_new_json_path_can_take_a_verdict(tmp_path):
    assert c.output_problem(tmp_path, "gate-run") is None
    assert c.output_problem(tmp_path / "new" / "deeper" / "v.json", "gate-run") is None
    assert c.output_problem(None, "gate-run") is None


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    c.atomic_write_json(tmp_path / "a.json", {"x": 1})
    c.atomic_write_json(tmp_path / "a.json", {"x": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 2}


@pytest.mark.parametrize("content,fragment", [(None, "not found"), ("{not json", "not valid JSON"),
                                              ('{"a": NaN}', "not valid JSON"),
                                              ('{"a": 1, "a": 2}', "duplicate key 'a'"),
                                              ('{"t": {"x": 1, "x": 1}}', "duplicate key 'x'"),
                                              ('{"a": 1e400}', "does not fit a 64-bit float"),
                                              ('{"a": ' + "9" * 5000 + "}", "not valid JSON"),
                                              ("[" * 100000 + "]" * 100000, "nested too deeply")])
def test_read_json_rejects_missing_corrupt_and_nan_input(tmp_path, content, fragment):
    p = tmp_path / "in.json"
    if content is not None:
        p.write_text(content)
    with pytest.raises(c.GateInputError) as err:
        c.read_json(p)
    assert err.value.failure_class == "USER_CONFIG_ERROR" and fragment in err.value.detail


def test_regression_seed_a_json_file_with_a_key_twice_is_refused_not_read_as_its_last_value(tmp_path):
    p = tmp_path / "run.json"
    p.write_text('{"tasks": {"a": {"score": 0.1}}, "tasks": {"a": {"score": 0.9}}}')
    with pytest.raises(c.GateInputError, match="duplicate key 'tasks'"):
        c.read_json(p)
    with pytest.raises(ValueError, match="does not fit a 64-bit float"):  # 400 digits: refused when read
        c.loads_strict('{"a": ' + "9" * 400 + "}")
    assert c.loads_strict('{"a": ' + "9" * 300 + "}")["a"] == int("9" * 300)  # within the float range


def test_a_check_that_is_not_judged_must_say_why():
    with pytest.raises(ValueError):
        c.check("fidelity_rel_err", None, 0.01, None)
    chk = c.check("fidelity_rel_err", None, 0.01, None, not_judged_because="not judged for int8 by design")
    assert chk["not_judged_because"] == "not judged for int8 by design"
    assert c.check("x", None, None, None, detail="not run: no source")["not_judged_because"] == \
        "not run: no source"


def test_a_null_check_without_a_reason_breaks_the_envelope_schema():
    v = c.make_verdict("g", passed=True, detail="ok",
                              checks=[{"name": "x", "pass": None, "measured": 1, "threshold": None}])
    assert any("not_judged_because" in e for e in c.schema_errors("envelope", c.stamp(v)))
    v["checks"][0]["not_judged_because"] = "deliberately not judged"
    assert c.schema_errors("envelope", v) == []


def test_every_verdict_carries_a_coverage_and_a_failure_vouches_for_nothing():
    ok = c.stamp(c.make_verdict("g", passed=True, detail="ok"))
    bad = c.stamp(c.error_verdict("g", "USER_CONFIG_ERROR", "model not found"))
    for v in (ok, bad):
        assert c.schema_errors("envelope", v) == []
        assert set(v["coverage"]) == {"summary", "exercised", "not_exercised"}
    assert "did not report" in ok["coverage"]["summary"]
    assert bad["coverage"]["exercised"] == {} and "nothing is vouched for" in bad["coverage"]["summary"]


def test_a_gate_states_its_own_coverage():
    cov = c.coverage("VERIFIED at f32 on 4 prompts", {"prompts": 4, "precisions": ("f32",)}, ["bf16"])
    v = c.stamp(c.make_verdict("g", passed=True, detail="ok", coverage=cov))
    assert v["coverage"] == {"summary": "VERIFIED at f32 on 4 prompts",
                             "exercised": {"prompts": 4, "precisions": ["f32"]}, "not_exercised": ["bf16"]}
    v["coverage"]["extra"] = 1
    assert c.schema_errors("envelope", v)
