"""The observing code on real models: raw ONNX/TorchScript paths, an encoder, tokenizer parity,
greedy-token helpers. (Decoder LMs and their faults: test_verify_observe_faults.py.)"""
import pytest

from modelgate import fixtures
from modelgate.gates.verify import evaluate_verify, tolerances_for
from modelgate.openvino import infer, integrity
from modelgate.openvino.convert import export_cached
from modelgate.openvino.inputs import TEXT_PROMPTS
from modelgate.openvino.tokenizer_parity import load_hf_tokenizer, tokenizer_parity
from modelgate.verify.observe import Request, observe
from modelgate.verify.plan import ENCODER_BATCH

pytestmark = pytest.mark.integration


def decide(req):
    obs = observe(req)
    return obs, evaluate_verify(obs, tolerances_for(obs["weight_format"]))


@pytest.mark.parametrize("source,wf", [("digits_cnn.onnx", "fp16"), ("digits_cnn.pt", "int8")])
def test_raw_models_are_compared_with_their_own_runtime_on_seeded_nonzero_inputs(source, wf, tmp_path):
    req = Request(model=str(fixtures.digits_cnn() / source), weight_format=wf, output=tmp_path)
    obs, v = decide(req)
    assert v["pass"] and v["decision"] == "VERIFIED", v["detail"]
    assert obs["mode"] == "raw" and obs["fidelity"]["rows"] == 8  # dynamic batch -> 8 seeded images
    assert obs["fidelity"]["top1_agreement"] == 1.0


def test_encoder_classifier_is_verified_by_one_forward_pass_and_tokenizer_parity():
    req = Request(model=str(fixtures.hf_model("bert")),
                  converted=str(export_cached(fixtures.hf_model("bert"), "int8")), in_process=True)
    obs, v = decide(req)
    assert v["pass"], v["detail"]
    assert obs["mode"] == "forward" and obs["tokenizer"]["id_mismatches"] == 0
    # the encoder is compared batch by batch over the plan's sentences (not on a handful of prompts)
    assert obs["outputs"][0]["expected_shape"] == [ENCODER_BATCH, 3]


def test_tokenizer_parity_detects_another_models_tokenizer():
    llama, bert = fixtures.hf_model("llama"), export_cached(fixtures.hf_model("bert"), "fp32")
    same = tokenizer_parity(llama, export_cached(llama, "fp16"))
    other = tokenizer_parity(llama, bert)
    assert same["id_mismatches"] == 0 and same["detok_mismatches"] == 0
    assert other["id_mismatches"] == other["n_texts"]


def test_greedy_helpers_agree_between_openvino_fp16_and_transformers():
    src = fixtures.hf_model("llama")
    tok = load_hf_tokenizer(src)
    prompts = [tok(t)["input_ids"] for t in TEXT_PROMPTS]
    ov = infer.greedy_tokens(str(export_cached(src, "fp16") / "openvino_model.xml"), prompts, 6)
    ref = infer.source_greedy_tokens(str(src), prompts, 6)
    assert ov == ref and all(len(g) == 6 for g in ov)


def test_truncated_bin_is_seen_from_the_xml_alone(tmp_path):
    import shutil
    ir = shutil.copytree(export_cached(fixtures.hf_model("gpt2"), "fp16"), tmp_path / "ir")
    xml = ir / "openvino_model.xml"
    good = integrity.bin_integrity(xml)
    assert good["bin_bytes"] == good["expected_min_bytes"] > 0
    with open(ir / "openvino_model.bin", "r+b") as fh:
        fh.truncate(1000)
    assert integrity.bin_integrity(xml)["bin_bytes"] < good["expected_min_bytes"]


def test_int4_band_accepts_a_trained_model_but_rejects_int4_of_random_weights():
    cache = {}
    trained = Request(model=str(fixtures.hf_model("trained-llama")),
                      converted=str(export_cached(fixtures.hf_model("trained-llama"), "int4")),
                      in_process=True, source_cache=cache)
    _, v = decide(trained)
    assert v["pass"] and v["tolerances"]["top1_min"] == tolerances_for("int4")["top1_min"], v["detail"]
    random_weights = Request(model=str(fixtures.hf_model("llama")),
                             converted=str(export_cached(fixtures.hf_model("llama"), "int4")), in_process=True)
    _, v = decide(random_weights)
    assert v["failure_class"] == "FIDELITY_REGRESSION"
