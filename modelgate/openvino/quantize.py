"""NNCF post-training quantization of an OpenVINO IR, driven by a day0-release recipe.

Two kinds (``recipe["kind"]``):
- ``weight_compression`` (LLMs): ``nncf.compress_weights`` through optimum-intel's
  ``OVWeightQuantizationConfig`` on the fp32 IR, data-free or data-aware (AWQ, scale
  estimation) with the local calibration text of the fixtures;
- ``static_int8`` (non-LLM): ``nncf.quantize`` with an ``nncf.Dataset`` over a local
  calibration set (the digits images, or tokenized sentences for an encoder).

The heavy work runs in a child process with a timeout (``quantize``); the ``*_body``
functions are what the child runs. Nothing here downloads anything.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from modelgate import childproc
from modelgate.contract import GateInputError

IR_NAME = "openvino_model.xml"
# NNCF mode name in a recipe -> (bits, sym) of optimum-intel's OVWeightQuantizationConfig.
MODE_BITS_SYM = {"int8_asym": (8, False), "int8_sym": (8, True), "int4_asym": (4, False), "int4_sym": (4, True)}
# NNCF exception names that mean "this recipe cannot apply to this model" (not a crash).
QUANT_ERROR_CLASSES = {"InvalidGroupSizeError": "MODEL_UNSUPPORTED", "UnsupportedModelError": "MODEL_UNSUPPORTED"}
# static_int8 preset name -> nncf.QuantizationPreset attribute.
PRESETS = {"mixed": "MIXED", "performance": "PERFORMANCE"}


def calibration_texts() -> list[str]:
    """Local calibration text for data-aware LLM compression: the trained LM's own grammar."""
    from modelgate import data

    return data.calibration_text()


def copy_side_files(src_dir: Path, out_dir: Path) -> list[str]:
    """Copy tokenizer/config files the quantized IR must ship with (never the model weights)."""
    copied = []
    for f in sorted(Path(src_dir).iterdir()):
        if not f.is_file() or f.name.startswith(".") or f.name in (IR_NAME, "openvino_model.bin"):
            continue
        if f.name.endswith(".log") or (out_dir / f.name).exists():
            continue
        shutil.copy2(f, out_dir / f.name)
        copied.append(f.name)
    return copied


def weight_compression_body(ir_dir: str, out_dir: str, nncf_cfg: dict, tokenizer_dir: str | None) -> dict:
    """Child body: compress an LLM IR's weights with optimum-intel/NNCF and save it to ``out_dir``."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from optimum.intel import OVModelForCausalLM, OVWeightQuantizationConfig

    bits, sym = MODE_BITS_SYM[nncf_cfg["mode"]]
    kwargs = dict(bits=bits, sym=sym, ratio=float(nncf_cfg.get("ratio", 1.0)))
    group = nncf_cfg.get("group_size")
    if group is not None:
        kwargs["group_size"] = int(group)
    if nncf_cfg.get("dataset") == "calibration":
        texts = calibration_texts()
        kwargs.update(dataset=texts, tokenizer=tokenizer_dir or ir_dir, num_samples=len(texts),
                      awq=bool(nncf_cfg.get("awq")), scale_estimation=bool(nncf_cfg.get("scale_estimation")))
    t0 = time.monotonic()
    model = OVModelForCausalLM.from_pretrained(ir_dir, quantization_config=OVWeightQuantizationConfig(**kwargs),
                                               compile=False)
    model.save_pretrained(out_dir)
    seconds = time.monotonic() - t0
    copied = copy_side_files(Path(ir_dir), Path(out_dir))
    return {"seconds": seconds, "nncf_kwargs": {k: v for k, v in kwargs.items() if k not in ("dataset", "tokenizer")},
            "calibration_samples": len(kwargs.get("dataset") or []), "copied": copied}


def _digits_calibration(source_dir: Path, subset: int):
    import numpy as np

    calib = source_dir / "calibration.npy"
    if not calib.is_file():
        raise GateInputError("USER_CONFIG_ERROR", f"static_int8 needs a calibration set: {calib} not found")
    x = np.load(calib)
    return [x[i:i + 1].astype("float32") for i in range(min(subset, len(x)))]


def _text_calibration(tokenizer_dir: Path, input_names: list[str], subset: int):
    from transformers import AutoTokenizer

    from modelgate.openvino.evaluate import EMBEDDING_SENTENCES

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    items = []
    for s in EMBEDDING_SENTENCES[:subset]:
        enc = tok(s, return_tensors="np")
        items.append({k: v for k, v in enc.items() if k in input_names})
    return items


def static_int8_body(ir_xml: str, out_dir: str, nncf_cfg: dict, calibration_source: str) -> dict:
    """Child body: full INT8 PTQ (weights + activations) of a non-LLM IR with ``nncf.quantize``."""
    import nncf
    import openvino as ov

    model = ov.Core().read_model(ir_xml)
    subset = int(nncf_cfg.get("subset_size", 128))
    src = Path(calibration_source)
    names = [next(iter(i.get_names())) for i in model.inputs]
    if (src / "calibration.npy").is_file():
        items, model_type = [{names[0]: x} for x in _digits_calibration(src, subset)], None
    elif (src / "tokenizer.json").is_file() or (src / "tokenizer_config.json").is_file():
        items, model_type = _text_calibration(src, names, subset), nncf.ModelType.TRANSFORMER
    else:
        raise GateInputError("USER_CONFIG_ERROR", f"no calibration set in {src}: static_int8 needs calibration.npy "
                             "(image models) or a tokenizer (text encoders, calibrated on the pack's sentences)")
    t0 = time.monotonic()
    kwargs = dict(preset=getattr(nncf.QuantizationPreset, PRESETS[nncf_cfg.get("preset", "mixed")]),
                  subset_size=min(subset, len(items)))
    if model_type is not None:
        kwargs["model_type"] = model_type
    quantized = nncf.quantize(model, nncf.Dataset(items), **kwargs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out / IR_NAME), compress_to_fp16=False)
    copied = copy_side_files(Path(ir_xml).parent, out)
    return {"seconds": time.monotonic() - t0, "calibration_samples": len(items), "copied": copied,
            "nncf_kwargs": {"preset": nncf_cfg.get("preset", "mixed"), "subset_size": kwargs["subset_size"]}}


def quantize(recipe: dict, baseline_ir: str | Path, out_dir: str | Path, *,
             calibration_source: str | Path | None = None, tokenizer_dir: str | Path | None = None,
             timeout: float = 900.0) -> childproc.ChildResult:
    """Quantize the fp32 IR in ``baseline_ir`` (folder or .xml) into ``out_dir`` per ``recipe``.

    Returns the child's result; ``value`` holds what NNCF was asked to do and how long it took.
    A crash, hang or NNCF error becomes a failed ``ChildResult`` (CONVERSION_FAILED, TIMEOUT, ...).
    """
    base = Path(baseline_ir)
    xml = base if base.suffix == ".xml" else base / IR_NAME
    if not xml.is_file():
        raise GateInputError("USER_CONFIG_ERROR", f"baseline IR not found: {xml}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kind = recipe.get("kind")
    if kind == "weight_compression":
        mode = recipe["nncf"].get("mode")
        if mode not in MODE_BITS_SYM:
            raise GateInputError("USER_CONFIG_ERROR", f"recipe {recipe.get('name')}: unknown NNCF mode {mode!r}")
        return _classify(childproc.run_function(
            "modelgate.openvino.quantize:weight_compression_body",
            dict(ir_dir=str(xml.parent), out_dir=str(out), nncf_cfg=dict(recipe["nncf"]),
                 tokenizer_dir=str(tokenizer_dir) if tokenizer_dir else None),
            timeout=timeout, crash_class="CONVERSION_FAILED", error_class="CONVERSION_FAILED"))
    if kind == "static_int8":
        if calibration_source is None:
            raise GateInputError("USER_CONFIG_ERROR", "static_int8 needs a calibration source folder")
        return _classify(childproc.run_function(
            "modelgate.openvino.quantize:static_int8_body",
            dict(ir_xml=str(xml), out_dir=str(out), nncf_cfg=dict(recipe["nncf"]),
                 calibration_source=str(calibration_source)),
            timeout=timeout, crash_class="CONVERSION_FAILED", error_class="CONVERSION_FAILED"))
    raise GateInputError("USER_CONFIG_ERROR", f"recipe {recipe.get('name')}: unknown kind {kind!r}")


def _classify(res: childproc.ChildResult) -> childproc.ChildResult:
    """Re-class NNCF errors that mean the recipe does not fit the model (-> INFEASIBLE downstream)."""
    if not res.ok and res.failure_class == "CONVERSION_FAILED":
        name = res.detail.split(":", 1)[0].strip()
        res.failure_class = QUANT_ERROR_CLASSES.get(name, res.failure_class)
    return res
