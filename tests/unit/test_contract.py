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


def test_schema_violation_is_replaced_by_an_unknown_verdict_not_written_as_is(tmp_path):
    bad = c.make_verdict("g", passed=True, detail="ok")
    bad["checks"] = [{"name": "missing fields"}]
    out = io.StringIO()
    code = c.emit(bad, output=tmp_path / "v.json", stream=out)
    written = json.loads((tmp_path / "v.json").read_text())
    assert code == 2 and written["failure_class"] == "UNKNOWN" and "schema" in written["detail"]


def test_emit_to_a_folder_names_the_file_after_the_gate(tmp_path):
    c.emit(c.make_verdict("verify", passed=True, detail="ok"), output=tmp_path, stream=io.StringIO())
    assert (tmp_path / "verify_result.json").is_file()


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    c.atomic_write_json(tmp_path / "a.json", {"x": 1})
    c.atomic_write_json(tmp_path / "a.json", {"x": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 2}


@pytest.mark.parametrize("content,fragment", [(None, "not found"), ("{not json", "not valid JSON"),
                                              ('{"a": NaN}', "not valid JSON")])
def test_read_json_rejects_missing_corrupt_and_nan_input(tmp_path, content, fragment):
    p = tmp_path / "in.json"
    if content is not None:
        p.write_text(content)
    with pytest.raises(c.GateInputError) as err:
        c.read_json(p)
    assert err.value.failure_class == "USER_CONFIG_ERROR" and fragment in err.value.detail


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
