"""gate_ptq on REAL quantized IRs of the tiny fixtures (optimum-intel exports and NNCF applied per recipe)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from modelgate import fixtures
from modelgate.cli.day0 import GATE_PTQ
from modelgate.cli.spine import run_command
from modelgate.contract import GateFailure, schema_errors
from modelgate.gates.ptq import evaluate_ptq
from modelgate.gates.release_decision import decide_release
from modelgate.openvino.convert import export_cached
from modelgate.release.ptq_observe import observe_ptq
from modelgate.release.recipes import get_recipe

pytestmark = pytest.mark.integration
IR = "openvino_model"


@pytest.fixture(scope="module")
def llama() -> Path:
    return fixtures.hf_model("llama")


@pytest.fixture(scope="module")
def fp32_ir(llama) -> Path:
    return export_cached(llama, "fp32")


@pytest.fixture(scope="module")
def int8_ir(llama) -> Path:
    return export_cached(llama, "int8")


def nncf_compress(fp32_dir: Path, recipe: dict, out: Path) -> Path:
    """Apply a weight-compression recipe's own NNCF kwargs to an fp32 IR; copy the side files like an export."""
    import nncf
    import openvino as ov

    cfg = recipe["nncf"]
    kwargs = {"mode": nncf.CompressWeightsMode[cfg["mode"].upper()]}
    if cfg["mode"].startswith("int4"):
        kwargs.update(group_size=cfg["group_size"], ratio=cfg["ratio"])
    model = nncf.compress_weights(ov.Core().read_model(fp32_dir / f"{IR}.xml"), **kwargs)
    out.mkdir(parents=True)
    ov.save_model(model, out / f"{IR}.xml", compress_to_fp16=False)
    for f in fp32_dir.iterdir():
        if f.is_file() and not f.name.startswith((IR + ".", ".")):
            shutil.copy2(f, out / f.name)
    return out


def judge(ckpt, source, recipe_name) -> dict:
    obs = observe_ptq(ckpt, source, get_recipe(recipe_name))
    assert schema_errors("ptq-observation", obs) == []
    v = evaluate_ptq(obs)
    assert schema_errors("ptq-verdict", v) == []
    return v


def failed(v):
    return {c["name"] for c in v["checks"] if c["pass"] is False}


def test_optimum_int8_export_keeps_the_int8_asym_promises(int8_ir, llama):
    v = judge(int8_ir, llama, "int8_asym")
    assert v["pass"] is True, v["detail"]
    assert v["metrics"]["coverage"] > 0.99
    assert set(v["metrics"]["layer_precision_counts"]) <= {"u8", "f32"}


def test_fp32_export_fails_coverage_and_size_for_an_int8_recipe(fp32_ir, llama):
    v = judge(fp32_ir, llama, "int8_asym")
    assert (v["pass"], v["failure_class"], v["exit_code"]) == (False, "QUANT_COVERAGE_FAILURE", 1)
    assert {"coverage", "primary_precision", "size_ratio_max", "artifact_smaller"} <= failed(v)
    assert v["metrics"]["size_ratio"] > 0.99


@pytest.mark.parametrize("recipe", ["int8_sym", "int4_asym_g32", "int4_asym_g64"])
def test_nncf_applied_with_the_recipe_keeps_its_promises(fp32_ir, llama, tmp_path, recipe):
    ckpt = nncf_compress(fp32_ir, get_recipe(recipe), tmp_path / recipe)
    v = judge(ckpt, llama, recipe)
    assert v["pass"] is True, v["detail"]


def test_int4_sym_weights_keep_the_promises_of_the_symmetric_int4_recipe(fp32_ir, llama, tmp_path):
    # NNCF keeps embedding/head in u8 (backup INT8_ASYM) even in symmetric int4 mode
    recipe = get_recipe("int4_sym_g32_awq")
    ckpt = nncf_compress(fp32_ir, recipe, tmp_path / "sym")
    v = judge(ckpt, llama, "int4_sym_g32_awq")
    assert v["pass"] is True, v["detail"]
    assert {"i4", "u8"} <= set(v["metrics"]["layer_precision_counts"])


def test_int4_ir_fails_an_int8_recipe_and_int8_ir_fails_an_int4_recipe(fp32_ir, int8_ir, llama, tmp_path):
    int4 = nncf_compress(fp32_ir, get_recipe("int4_asym_g32"), tmp_path / "int4")
    assert judge(int4, llama, "int8_asym")["failure_class"] == "QUANT_COVERAGE_FAILURE"
    v = judge(int8_ir, llama, "int4_asym_g32")
    assert v["failure_class"] == "QUANT_COVERAGE_FAILURE" and failed(v) >= {"primary_precision", "size_ratio_max"}


def test_changed_config_or_lost_tokenizer_is_an_integrity_mismatch(int8_ir, llama, tmp_path):
    ckpt = tmp_path / "tampered"
    shutil.copytree(int8_ir, ckpt)
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["eos_token_id"] = 0
    (ckpt / "config.json").write_text(json.dumps(cfg))
    (ckpt / "tokenizer.json").unlink()
    v = judge(ckpt, llama, "int8_asym")
    assert v["failure_class"] == "INTEGRITY_MISMATCH"
    assert "config.json:eos_token_id" in v["detail"] and "tokenizer.json" in v["detail"]


def test_truncated_weights_are_an_integrity_mismatch(int8_ir, llama, tmp_path):
    ckpt = tmp_path / "truncated"
    shutil.copytree(int8_ir, ckpt)
    with open(ckpt / f"{IR}.bin", "r+b") as fh:
        fh.truncate(1000)
    with pytest.raises(GateFailure) as exc:
        observe_ptq(ckpt, llama, get_recipe("int8_asym"))
    assert exc.value.failure_class == "INTEGRITY_MISMATCH"


def test_llm_recipe_on_an_encoder_is_model_unsupported_and_the_release_infeasible():
    bert = fixtures.hf_model("bert")
    v = judge(export_cached(bert, "int8"), bert, "int8_asym")
    assert v["failure_class"] == "MODEL_UNSUPPORTED"
    release = decide_release([v])
    assert (release["decision"], release["exit_code"]) == ("INFEASIBLE", 1)


def test_static_int8_on_the_digits_cnn_keeps_its_promises_and_fp32_does_not(tmp_path):
    import nncf
    import numpy as np
    import openvino as ov

    digits = fixtures.digits_cnn()
    recipe = get_recipe("static_int8")
    model = ov.Core().read_model(digits / "digits_cnn.onnx")
    fp32 = tmp_path / "fp32"
    ov.save_model(model, fp32 / f"{IR}.xml", compress_to_fp16=False)
    calib = np.load(digits / "calibration.npy")
    q = nncf.quantize(model, nncf.Dataset(list(calib), lambda x: x[None]), subset_size=recipe["nncf"]["subset_size"],
                      preset=nncf.QuantizationPreset[recipe["nncf"]["preset"].upper()])
    ov.save_model(q, tmp_path / "int8" / f"{IR}.xml", compress_to_fp16=False)
    source = digits / "digits_cnn.onnx"
    assert judge(tmp_path / "int8", source, "static_int8")["pass"] is True
    assert judge(fp32, source, "static_int8")["failure_class"] == "QUANT_COVERAGE_FAILURE"


def test_regression_seed_ptq_gate_reads_the_ir_itself_and_its_saved_summary_gives_the_same_verdict(
        int8_ir, llama, tmp_path, capsys):
    obs_file, out1, out2 = tmp_path / "obs.json", tmp_path / "v1.json", tmp_path / "v2.json"
    assert run_command(GATE_PTQ, ["--checkpoint", str(int8_ir), "--source", str(llama), "--recipe", "int8_asym",
                     "--save-observation", str(obs_file), "--output", str(out1)]) == 0
    assert run_command(GATE_PTQ, ["--summary", str(obs_file), "--recipe", "int8_asym", "--output", str(out2)]) == 0
    capsys.readouterr()
    v1, v2 = json.loads(out1.read_text()), json.loads(out2.read_text())
    assert v1["checks"] == v2["checks"] and v1["metrics"] == v2["metrics"]
