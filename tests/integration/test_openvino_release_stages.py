"""Conductor stages on real fixtures: NNCF quantization, the deploy canary, the evaluations."""
import json
import shutil

import pytest

from modelgate import fixtures
from modelgate.contract import GateInputError
from modelgate.gates.canary import canary_verdict
from modelgate.openvino import evaluate as ev
from modelgate.openvino.canary import observe_canary
from modelgate.openvino.convert import convert, export_cached
from modelgate.openvino.ir import layer_precision_counts
from modelgate.openvino.quantize import BUILTIN_TEXT, quantize, resolve_calibration
from modelgate.release.recipes import get_recipe

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def llm_fp32():
    return export_cached(fixtures.hf_model("trained-llama"), "fp32")


@pytest.fixture(scope="module")
def digits_fp32(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "ir"
    conv = convert(str(fixtures.digits_cnn() / "digits_cnn.onnx"), out, weight_format="fp32")
    assert conv.ok, conv.detail
    return out


@pytest.fixture(scope="module")
def awq_ir(llm_fp32, tmp_path_factory):
    out = tmp_path_factory.mktemp("awq") / "ir"
    res = quantize(get_recipe("int4_sym_g32_awq"), llm_fp32, out, tokenizer_dir=fixtures.hf_model("trained-llama"),
                   timeout=600)
    assert res.ok, res.detail
    return out, res.value


def test_data_aware_awq_recipe_calibrates_on_the_packs_general_text_and_writes_int4_weights(awq_ir):
    out, info = awq_ir
    assert info["calibration_samples"] > 10 and info["nncf_kwargs"]["awq"] is True
    assert info["calibration_source"] == BUILTIN_TEXT
    lpc = layer_precision_counts(out / "openvino_model.xml")
    assert lpc.get("i4", {}).get("count", 0) > 0
    assert (out / "openvino_tokenizer.xml").is_file()  # served with its tokenizer


def test_static_int8_quantizes_the_digits_cnn_with_its_calibration_set(digits_fp32, tmp_path):
    res = quantize(get_recipe("static_int8"), digits_fp32, tmp_path / "ir",
                   calibration=resolve_calibration("classifier", None, fixtures.digits_cnn()), timeout=600)
    assert res.ok, res.detail
    assert res.value["calibration_samples"] == 128
    assert layer_precision_counts(tmp_path / "ir" / "openvino_model.xml").get("i8", {}).get("count", 0) >= 4


def test_static_int8_calibrates_on_a_labelled_image_folder(digits_fp32, tmp_path):
    from PIL import Image

    from modelgate import data

    x, y, _, _ = data.digits_data()
    for i in range(40):
        folder = tmp_path / "calib" / str(int(y[i]))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((x[i, 0] * 255).round().astype("uint8"), mode="L").save(folder / f"{i}.png")
    cal = resolve_calibration("classifier", tmp_path / "calib", tmp_path)
    res = quantize(get_recipe("static_int8"), digits_fp32, tmp_path / "ir", calibration=cal, timeout=600)
    assert res.ok, res.detail
    assert res.value["calibration_samples"] == 40 and res.value["calibration_source"] == str(tmp_path / "calib")
    assert layer_precision_counts(tmp_path / "ir" / "openvino_model.xml").get("i8", {}).get("count", 0) >= 4


def test_static_int8_without_a_calibration_set_is_an_input_error(digits_fp32, tmp_path):
    with pytest.raises(GateInputError, match="calibration"):
        quantize(get_recipe("static_int8"), digits_fp32, tmp_path / "ir", timeout=600)


def test_llm_canary_reports_llm_bench_metrics_through_genai(awq_ir):
    obs = observe_canary(awq_ir[0], llm=True, timeout=300)
    v = canary_verdict(obs)
    assert v["pass"], v["detail"]
    assert obs["generated_tokens"] == obs["requested_tokens"] and obs["ttft_ms"] > 0 and obs["tpot_ms"] > 0


def test_canary_on_a_truncated_weights_file_fails_deployment_health(llm_fp32, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(llm_fp32, broken)
    binf = broken / "openvino_model.bin"
    binf.write_bytes(binf.read_bytes()[:1000])
    v = canary_verdict(observe_canary(broken, llm=True, timeout=300))
    assert not v["pass"] and v["failure_class"] == "DEPLOYMENT_HEALTH_FAILED"


def test_digits_top1_through_openvino_matches_the_torch_training_accuracy(digits_fp32, tmp_path):
    cfg = ev.make_eval_config(["fixture:digits"])
    s, info = ev.run_evaluation(digits_fp32, cfg, tmp_path, variant="baseline", run_id="t", model_label="digits")
    t = s["tasks"]["fixture:digits"]
    assert info["runtime"]["fixture:digits"]["INFERENCE_PRECISION_HINT"] == "f32"
    torch_top1 = json.loads((fixtures.digits_cnn() / "train_metrics.json").read_text())["test_top1"]
    assert t["scored_samples"] == t["expected_samples"] == 450
    assert abs(t["score"] - torch_top1) < 1e-9 and t["stderr"] > 0
    recs = [json.loads(ln) for ln in (tmp_path / t["records_path"]).read_text().splitlines()]
    assert len(recs) == 450 and abs(sum(r["score"] for r in recs) / 450 - t["score"]) < 1e-12


def test_embedding_similarity_of_the_fp32_export_to_its_torch_source_is_near_one(tmp_path):
    src = fixtures.minilm()
    ir = export_cached(src, "fp32", task="feature-extraction")
    cfg = ev.make_eval_config(["embedding-similarity"], limit=4, reference_model=str(src))
    s, _ = ev.run_evaluation(ir, cfg, tmp_path, variant="baseline", run_id="t", model_label="minilm")
    assert s["tasks"]["embedding-similarity"]["score"] > 0.999


def test_evaluating_a_folder_without_an_ir_is_an_input_error(tmp_path):
    with pytest.raises(GateInputError):
        ev.run_evaluation(tmp_path, ev.make_eval_config(["fixture:digits"]), tmp_path / "o", variant="baseline",
                          run_id="t", model_label="x")


def test_eval_data_sentence_pairs_score_an_encoder_against_the_labels(tmp_path):
    src = fixtures.minilm()
    ir = export_cached(src, "fp32", task="feature-extraction")
    rows = [{"id": "same", "text_a": "A man is playing a guitar.", "text_b": "A man plays the guitar.", "score": 5.0,
             "scale_max": 5.0},
            {"id": "other", "text_a": "A man is playing a guitar.", "text_b": "The stock market fell today.",
             "score": 0.0, "scale_max": 5.0}]
    cfg = ev.make_eval_config(["eval-data:pair"], eval_data=("pair", rows), data_root=tmp_path)
    s, _ = ev.run_evaluation(ir, cfg, tmp_path / "eval", variant="baseline", run_id="t", model_label="minilm",
                             data_root=tmp_path)
    t = s["tasks"]["eval-data:pair"]
    recs = {json.loads(ln)["id"]: json.loads(ln) for ln in (tmp_path / "eval" / t["records_path"]).read_text()
            .splitlines()}
    assert t["scored_samples"] == 2 and recs["same"]["prediction"] > 0.8 > recs["other"]["prediction"]
    assert recs["same"]["score"] > 0.8 and recs["other"]["score"] > 0.7  # agreement with the human label
