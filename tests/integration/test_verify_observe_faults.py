"""Fault injection: good fp16/int8 exports of two architectures pass; each way a converter really
breaks an IR is rejected with its own failure class.

The verifier runs in-process here (no crash isolation needed for these faults) and shares one
source run per architecture, so the 50-odd verifications stay within a couple of minutes; the CLI
tests cover the child-process path.
"""
import pytest

from modelgate import contract, fixtures
from modelgate.cli.verify import make_result
from modelgate.gates.verify import evaluate_verify, tolerances_for
from modelgate.openvino.convert import export_cached
from modelgate.verify.observe import Request, observe
from tests.support import faults

pytestmark = pytest.mark.integration

ARCHS = ("llama", "gpt2")
FORMATS = ("fp16", "int8")


@pytest.fixture(scope="module")
def source_cache():
    return {}


@pytest.fixture(scope="module")
def good_ir():
    return {(a, wf): export_cached(fixtures.hf_model(a), wf) for a in ARCHS for wf in FORMATS}


def verify(arch, ir_dir, cache):
    req = Request(model=str(fixtures.hf_model(arch)), converted=str(ir_dir), in_process=True, source_cache=cache)
    obs = observe(req)
    verdict = make_result(evaluate_verify(obs, tolerances_for(obs["weight_format"])), obs, req.evidence, req.timings)
    assert contract.schema_errors("verify-result", verdict) == []
    return verdict


@pytest.mark.parametrize("arch,wf", [(a, wf) for a in ARCHS for wf in FORMATS])
def test_good_export_passes_every_check_with_fidelity_judged(arch, wf, good_ir, source_cache):
    v = verify(arch, good_ir[(arch, wf)], source_cache)
    assert v["pass"] and v["verify_passed"] and v["e2e_passed"], v["detail"]
    assert v["decision"] == "VERIFIED" and v["weight_format"] == wf
    ran = {c["name"]: c["pass"] for c in v["checks"]}
    for name in ("outputs_finite", "tokenizer_ids_match", "config_matches_ir", "fidelity_top1",
                 "fidelity_greedy_match", "fidelity_scale_ratio"):
        assert ran[name] is True, name


@pytest.mark.parametrize("fault", sorted(faults.FAULTS))
@pytest.mark.parametrize("arch,wf", [(a, wf) for a in ARCHS for wf in FORMATS])
def test_injected_fault_is_rejected_with_its_failure_class(arch, wf, fault, good_ir, source_cache, tmp_path):
    bad = faults.inject(fault, good_ir[(arch, wf)], tmp_path / "bad")
    v = verify(arch, bad, source_cache)
    expected = faults.FAULTS[fault][1]
    assert not v["pass"] and v["exit_code"] == 1, v["detail"]
    assert v["failure_class"] == expected, v["detail"]
    failing = [c for c in v["checks"] if c["pass"] is False]
    assert failing and failing[0]["failure_class"] == expected
    assert v["error"] and v["verify_passed"] is False


def test_scaled_head_keeps_argmax_so_only_the_magnitude_check_catches_it_in_int8(good_ir, source_cache, tmp_path):
    bad = faults.inject("scaled_head", good_ir[("llama", "int8")], tmp_path / "bad")
    v = verify("llama", bad, source_cache)
    by = {c["name"]: c for c in v["checks"]}
    assert by["fidelity_top1"]["pass"] is True and by["fidelity_cosine"]["pass"] is True
    assert by["fidelity_scale_ratio"]["pass"] is False and by["fidelity_scale_ratio"]["measured"] > 2.5
