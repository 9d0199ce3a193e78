"""Layer-wise fidelity on real IRs: block discovery, good exports reproducing their format, the issue's
named faults rejected at the layer they hit, and the static config-constant checks."""
import json

import openvino as ov
import pytest

from modelgate import contract, fixtures
from modelgate.cli.verify import make_result
from modelgate.gates.verify import evaluate_verify, tolerances_for
from modelgate.openvino import blocks, config_constants
from modelgate.openvino.convert import export_cached
from modelgate.verify.observe import Request, observe
from tests.support import fault_draws

pytestmark = pytest.mark.integration

STACKS = {"llama": "model.layers", "gpt2": "transformer.h", "bert": "bert.encoder.layer"}


@pytest.fixture(scope="module")
def source_cache():
    return {}


def verify(arch, ir, cache, precision="f32"):
    req = Request(model=str(fixtures.hf_model(arch)), converted=str(ir), in_process=True, source_cache=cache,
                  inference_precision=precision)
    obs = observe(req)
    v = make_result(evaluate_verify(obs, tolerances_for(obs["weight_format"])), obs, req.evidence, req.timings)
    assert contract.schema_errors("verify-result", contract.stamp(v)) == []
    return v


@pytest.mark.parametrize("arch", sorted(STACKS))
@pytest.mark.parametrize("wf", ["fp32", "fp16", "int8", "int4"])
def test_every_blocks_output_is_found_by_graph_structure_in_every_weight_format(arch, wf):
    model = ov.Core().read_model(str(export_cached(fixtures.hf_model(arch), wf) / "openvino_model.xml"))
    stack = blocks.main_stack(blocks.find_block_stacks(model))
    config = json.loads((fixtures.hf_model(arch) / "config.json").read_text())
    assert stack.path == STACKS[arch] and len(stack) == config.get("num_hidden_layers", config.get("n_layer"))
    assert all(b.unique for b in stack.blocks) and stack.embedding is not None and stack.embedding.unique
    decoupled, inputs, outputs = blocks.decouple(model, stack)
    assert sorted(inputs) == list(range(len(stack) + 1)) and sorted(outputs) == list(range(len(stack)))


@pytest.mark.parametrize("arch,wf", [("llama", "fp16"), ("llama", "int8"), ("llama", "int4"), ("gpt2", "int8"),
                                     ("bert", "fp16"), ("bert", "int8")])
def test_a_good_export_reproduces_its_simulated_format_at_every_block(arch, wf, source_cache):
    v = verify(arch, export_cached(fixtures.hf_model(arch), wf), source_cache)
    rows = v["layerwise"]
    assert {r["layer"] for r in rows} == {"embedding", 0, 1, "head"}  # embedding, every block, the head
    # the IR computes what the rounded source computes: every error at 1 / margin of its limit
    assert max(r["ratio"] for r in rows) < 0.85, rows
    assert all(c["pass"] for c in v["checks"] if c["name"].startswith("layerwise_"))


def _named(arch, wf, fault, tmp_path, cache):
    good = export_cached(fixtures.hf_model(arch), wf)
    cat = fault_draws.catalog_of(good)
    bad = fault_draws.apply_named(fault_draws.named(fault, cat), good, tmp_path / fault, cat, 16)
    return verify(arch, bad, cache)


@pytest.mark.parametrize("arch,wf,fault", [
    ("llama-deep", "int8", "scale_x1.25"), ("llama-deep", "int8", "mlp_noise"), ("llama-deep", "fp16", "head_zeroed"),
    ("bert-deep", "int8", "scale_x1.25"), ("bert-deep", "fp16", "mlp_noise"), ("bert-deep", "int8", "head_zeroed")])
def test_the_issues_mid_network_faults_are_fidelity_regressions_at_the_block_they_hit(arch, wf, fault, tmp_path,
                                                                                        source_cache):
    v = _named(arch, wf, fault, tmp_path, source_cache)
    assert v["failure_class"] == "FIDELITY_REGRESSION", v["detail"]
    assert v["first_divergent_layer"]["layer"] == 1 and v["first_divergent_layer"]["metric"] == "update_rel_err"
    assert ".1 in the IR" in v["next_action"]


@pytest.mark.parametrize("arch,wf", [("llama-deep", "int8"), ("bert-deep", "int8"), ("bert-deep", "fp16")])
def test_a_norm_epsilon_set_to_one_is_caught_exactly_even_under_int8_noise(arch, wf, tmp_path, source_cache):
    v = _named(arch, wf, "eps_1.0", tmp_path, source_cache)
    assert v["failure_class"] == "INTEGRITY_MISMATCH" and "epsilon" in v["detail"], v["detail"]


@pytest.mark.parametrize("fault", ["rotary_x1.5", "rotary_lowest_x1.5"])
def test_a_wrong_rotary_constant_is_caught_by_config_and_by_the_blocks(fault, tmp_path, source_cache):
    v = _named("llama-deep", "int8", fault, tmp_path, source_cache)
    assert v["failure_class"] == "INTEGRITY_MISMATCH" and "rotary" in v["detail"]
    assert v["first_divergent_layer"]["layer"] == 0


def test_config_constants_of_good_exports_match_their_config_in_every_format():
    for arch in ("llama", "gpt2", "bert", "llama-deep"):
        config = json.loads((fixtures.hf_model(arch) / "config.json").read_text())
        for wf in ("fp32", "fp16", "int8", "int4"):
            found = config_constants.observe(export_cached(fixtures.hf_model(arch), wf) / "openvino_model.xml", config)
            assert found["eps"]["judged"] and found["eps"]["mismatched"] == 0, (arch, wf, found["eps"])
            rotary = found["rotary"]
            assert (rotary["judged"] and rotary["mismatched"] == 0) if "llama" in arch else not rotary["judged"]


@pytest.mark.parametrize("arch", ["gpt2-deep", "gpt2", "llama", "bert-deep"])
def test_the_token_embedding_is_the_table_indexed_by_input_ids_even_when_a_position_table_is_larger(arch):
    from modelgate.openvino import integrity
    ir = export_cached(fixtures.hf_model(arch), "fp16")
    config = json.loads((ir / "config.json").read_text())
    shapes = integrity.ir_shapes(str(ir / "openvino_model.xml"))
    assert shapes["embedding_rows"] == config["vocab_size"]  # gpt2-deep: 512 positions, 320 tokens
    assert integrity.config_vs_ir(config, shapes, causal_lm=arch != "bert-deep") == []
