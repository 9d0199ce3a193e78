"""Deployment precision on real IRs (issue: judge the model at the precision it will actually run in).

Fixtures built to break reduced precision while their exact function is unchanged
(``modelgate.fixtures``): ``llama-f16-overflow`` (MLP activations past f16's 65,504) and
``gpt2-bf16-offset`` (a residual stream offset by 1,024, where bf16's step is 8). No assumption about
the CPU: each test reads back the precision the plugin really used and asserts on that.
"""
import pytest

from modelgate import contract, family_fixtures, fixtures
from modelgate.cli.verify import make_result
from modelgate.gates.verify import evaluate_verify, tolerances_for
from modelgate.openvino.convert import export_cached
from modelgate.verify.observe import Request, observe

pytestmark = pytest.mark.integration


def verify(arch: str, wf: str, precision: str) -> dict:
    src = fixtures.hf_model(arch)
    req = Request(model=str(src), converted=str(export_cached(src, wf)), in_process=True,
                  inference_precision=precision)
    obs = observe(req)
    v = make_result(evaluate_verify(obs, tolerances_for(obs["weight_format"])), obs, req.evidence, req.timings)
    assert contract.schema_errors("verify-result", contract.stamp(v)) == []
    return v


def checks(v: dict) -> dict:
    return {c["name"]: c for c in v["checks"]}


def faithful_checks_pass(v: dict) -> bool:
    """Every check of the f32 run (not the precision_* ones) passed or is not judged for a stated reason."""
    return all(c["pass"] is not False for c in v["checks"] if not c["name"].startswith("precision_"))


def test_f16_overflow_is_named_at_f16_and_the_f32_run_stays_faithful():
    v = verify("llama-f16-overflow", "fp32", "f16")
    run = next(p for p in v["precisions"] if p["name"] == "f16")
    assert faithful_checks_pass(v), v["detail"]  # the conversion itself is faithful
    assert v["precisions"][0]["name"] == "f32" and v["precisions"][0]["ran_as"] == "f32"
    if run["ran_as"] == "f16":  # the plugin honours f16 here: the overflow must show
        assert v["failure_class"] == "PRECISION_OVERFLOW" and v["decision"] == "REJECTED", v["detail"]
        assert checks(v)["precision_f16_finite"]["pass"] is False
        assert "f32" in v["next_action"] and "DisablePrecisionConversion" in v["next_action"]
        assert v["coverage"]["summary"].startswith("REJECTED")
    else:  # no f16 kernels: the verdict says what really ran, and f32 arithmetic cannot overflow
        assert run["ran_as"] in ("f32", "bf16")
        assert checks(v)["precision_f16_finite"]["pass"] is True
        assert f"ran as {run['ran_as']}" in checks(v)["precision_f16_finite"]["detail"]


def test_bf16_loss_without_nan_is_named_at_bf16_and_passes_at_f32():
    v = verify("gpt2-bf16-offset", "fp32", "bf16")
    run = next(p for p in v["precisions"] if p["name"] == "bf16")
    assert faithful_checks_pass(v), v["detail"]
    if run["ran_as"] == "bf16":
        assert v["failure_class"] == "PRECISION_OVERFLOW", v["detail"]
        c = checks(v)
        assert c["precision_bf16_finite"]["pass"] is True  # no NaN at all: the loss is the finding
        assert c["precision_bf16_agreement"]["pass"] is False
    else:
        assert checks(v)["precision_bf16_agreement"]["pass"] is True


def test_verify_at_f32_only_passes_the_overflow_fixture_and_says_which_precisions_it_did_not_run():
    v = verify("llama-f16-overflow", "fp32", "f32")
    assert v["decision"] == "VERIFIED", v["detail"]
    assert [p["ran_as"] for p in v["precisions"]] == ["f32"] and v["deployment_precision"] is None
    assert v["coverage"]["summary"].startswith("VERIFIED at f32 on")
    assert any("f16 inference" in x for x in v["coverage"]["not_exercised"])


def test_the_default_run_reports_the_precision_the_plugin_chose():
    import openvino as ov

    from modelgate.openvino.precision import normalize
    v = verify("llama", "fp16", "default")
    expected = normalize(ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT"))
    assert v["decision"] == "VERIFIED", v["detail"]
    assert v["deployment_precision"] == expected
    assert [p["role"] for p in v["precisions"]] == ["faithfulness"] + (["deployment"] if expected != "f32" else [])


def test_a_task_family_that_loses_its_signal_at_bf16_is_named_at_its_deployment_precision():
    src = family_fixtures.family_model("vit-bf16-offset")  # a residual stream offset by 1,024 (ViT)
    req = Request(model=str(src), converted=str(export_cached(src, "fp32")), in_process=True)
    obs = observe(req)
    v = make_result(evaluate_verify(obs, tolerances_for(obs["weight_format"])), obs, req.evidence, req.timings)
    assert contract.schema_errors("verify-result", contract.stamp(v)) == []
    assert v["mode"] == "family" and faithful_checks_pass(v), v["detail"]  # the conversion is faithful
    run = next(p for p in v["precisions"] if p["name"] == "default")
    if run["ran_as"] == "bf16":  # the device computes in bf16 by default: the loss must show, without a NaN
        assert v["failure_class"] == "PRECISION_OVERFLOW" and v["decision"] == "REJECTED", v["detail"]
        assert checks(v)["precision_default_finite"]["pass"] is True
        assert checks(v)["precision_default_agreement"]["pass"] is False
    else:  # an f32 or f16 default keeps the 1,024 offset's O(1) signal (f16's step there is 1 ... judged)
        assert checks(v)["precision_default_finite"]["pass"] is True, v["detail"]
