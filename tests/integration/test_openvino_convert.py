"""The conversion engine on real fixtures: path A (optimum-cli), path B (convert_model), bad input."""
import json
import time

import pytest

from modelgate import fixtures
from modelgate.contract import GateInputError
from modelgate.openvino import convert, ir

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("make,cls", [
    (lambda tmp: str(tmp / "no" / "such" / "model"), "USER_CONFIG_ERROR"),
    (lambda tmp: (tmp / "text.onnx").write_text("not a model") and str(tmp / "text.onnx"), "USER_CONFIG_ERROR"),
    (lambda tmp: (tmp / "empty").mkdir() or str(tmp / "empty"), "SOURCE_UNAVAILABLE"),
    (lambda tmp: str(fixtures.hf_model("needs-remote-code")), "USER_CONFIG_ERROR"),
    (lambda tmp: "some-org/some-model-that-is-not-cached", "SOURCE_UNAVAILABLE"),
])
def test_unusable_sources_are_rejected_as_input_errors_within_seconds(tmp_path, make, cls):
    src = make(tmp_path)
    t0 = time.monotonic()
    with pytest.raises(GateInputError) as err:
        convert.detect_source(src)
    assert err.value.failure_class == cls
    assert time.monotonic() - t0 < 10


def test_remote_code_model_is_accepted_only_when_the_user_trusts_it():
    info = convert.detect_source(str(fixtures.hf_model("needs-remote-code")), trust_remote_code=True)
    assert info.kind == "hf-dir" and info.needs_remote_code


def test_int4_group_size_divides_tiny_hidden_sizes():
    assert convert.int4_group_size({"hidden_size": 64, "intermediate_size": 128}) == 64
    assert convert.int4_group_size({"hidden_size": 4096, "intermediate_size": 11008}) == 128
    assert convert.int4_group_size({"hidden_size": 96, "intermediate_size": 192}) == 32


def test_optimum_export_records_its_provenance_and_keeps_the_openvino_tokenizer():
    ir_dir = convert.export_cached(fixtures.hf_model("llama"), "fp32")
    record = json.loads((ir_dir / convert.CONVERSION_RECORD).read_text())
    assert record["conversion_path"] == "optimum-cli" and record["task"] == "text-generation-with-past"
    assert (ir_dir / "openvino_tokenizer.xml").is_file() and (ir_dir / "openvino_detokenizer.xml").is_file()
    assert set(ir.layer_precision_counts(ir_dir)) == {"f32"}


def test_int8_export_really_compresses_the_weights():
    counts = ir.layer_precision_counts(convert.export_cached(fixtures.hf_model("llama"), "int8"))
    assert counts["u8"]["count"] >= 14  # every linear layer plus embedding and head
    assert counts.get("f32", {"bytes": 0})["bytes"] < 0.01 * counts["u8"]["bytes"]


def test_onnx_and_torchscript_convert_through_convert_model(tmp_path):
    digits = fixtures.digits_cnn()
    onnx = convert.convert(str(digits / "digits_cnn.onnx"), tmp_path / "onnx", weight_format="fp16")
    pt = convert.convert(str(digits / "digits_cnn.pt"), tmp_path / "pt", weight_format="fp32")
    assert onnx.ok and onnx.conversion_path == "convert_model" and onnx.ir_xml.is_file()
    assert pt.ok and pt.source_kind == "pytorch" and (tmp_path / "pt" / convert.INPUT_SPEC).is_file()


def test_torchscript_without_an_input_spec_fails_with_a_clear_reason(tmp_path):
    import shutil
    shutil.copy(fixtures.digits_cnn() / "digits_cnn.pt", tmp_path / "net.pt")
    res = convert.convert(str(tmp_path / "net.pt"), tmp_path / "out", weight_format="fp32")
    assert not res.ok and res.failure_class == "CONVERSION_FAILED" and "input spec" in res.detail


def test_output_folder_holding_an_ir_is_refused_so_nothing_is_overwritten(tmp_path):
    digits = fixtures.digits_cnn()
    assert convert.convert(str(digits / "digits_cnn.onnx"), tmp_path, weight_format="fp32").ok
    with pytest.raises(GateInputError):
        convert.convert(str(digits / "digits_cnn.onnx"), tmp_path, weight_format="fp32")
