"""NNCF post-training quantization of an OpenVINO IR, driven by a day0-release recipe.

Two kinds (``recipe["kind"]``):
- ``weight_compression`` (LLMs): ``nncf.compress_weights`` through optimum-intel's
  ``OVWeightQuantizationConfig`` on the fp32 IR, data-free or data-aware (AWQ, scale
  estimation) with a calibration text set;
- ``static_int8`` (non-LLM): ``nncf.quantize`` with an ``nncf.Dataset`` over a calibration set
  (images for a classifier, tokenized text for an encoder).

Calibration data (``resolve_calibration``) is the user's ``--calibration-data`` (a text JSONL, or
an image folder / image JSONL), else a ``calibration.npy`` beside an image model, else for text
models the pack's general-text set (``modelgate/data/calibration_text.jsonl``: 64 paragraphs written
for the pack, never fixture data). Its content hash is part of the quantization stage's inputs.

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


CALIBRATION_TEXT = Path(__file__).resolve().parents[1] / "data" / "calibration_text.jsonl"
# the pack's general-text set, what an LLM or an encoder calibrates on without --calibration-data
BUILTIN_TEXT = "built-in general text (modelgate/data/calibration_text.jsonl)"


def resolve_calibration(model_kind: str, path: str | Path | None, model_file_dir: Path) -> dict:
    """The calibration set of a model as a plain dict for the child: ``{"kind": "text", "texts"}``,
    ``{"kind": "image", "images"}`` or ``{"kind": "npy", "path"}``, with ``source``, ``samples`` and
    ``sha256``. A file that does not fit the model kind, or no set for an image model, is exit 2."""
    import hashlib
    import json

    from modelgate.release.eval_data import load_eval_data, rows_sha256

    if path is not None:
        kind, rows = load_eval_data(path, kinds=("image",) if model_kind == "classifier" else ("text", "prompt"),
                                     what="calibration data")
        if kind == "image":
            return {"kind": "image", "images": [r["image"] for r in rows], "source": str(Path(path).resolve()),
                    "samples": len(rows), "sha256": rows_sha256(kind, rows)}
        texts = [r.get("text") or r["prompt"] for r in rows]
        return {"kind": "text", "texts": texts, "source": str(Path(path).resolve()), "samples": len(texts),
                "sha256": hashlib.sha256(json.dumps(texts).encode()).hexdigest()}
    if model_kind == "classifier":
        npy = model_file_dir / "calibration.npy"
        if not npy.is_file():
            raise GateInputError("USER_CONFIG_ERROR", "static_int8 on an image model needs calibration data: "
                                 "--calibration-data DIR (a folder <label>/<image>) or an image JSONL, or a "
                                 f"calibration.npy (N x C x H x W) beside the model in {model_file_dir}")
        from modelgate.release.workspace import file_sha256

        return {"kind": "npy", "path": str(npy), "source": str(npy), "samples": None, "sha256": file_sha256(npy)}
    _, rows = load_eval_data(CALIBRATION_TEXT, kinds=("text",))
    texts = [r["text"] for r in rows]
    return {"kind": "text", "texts": texts, "source": BUILTIN_TEXT, "samples": len(texts),
            "sha256": hashlib.sha256(json.dumps(texts).encode()).hexdigest()}


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


def weight_compression_body(ir_dir: str, out_dir: str, nncf_cfg: dict, tokenizer_dir: str | None,
                            calibration: dict | None = None) -> dict:
    """Child body: compress an LLM IR's weights with optimum-intel/NNCF and save it to ``out_dir``."""
    import logging
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from optimum.intel import OVModelForCausalLM, OVWeightQuantizationConfig

    # a local IR folder is not a hub repository: optimum's revision lookup only logs noise about it
    logging.getLogger("optimum").setLevel(logging.ERROR)

    bits, sym = MODE_BITS_SYM[nncf_cfg["mode"]]
    kwargs = dict(bits=bits, sym=sym, ratio=float(nncf_cfg.get("ratio", 1.0)))
    group = nncf_cfg.get("group_size")
    if group is not None:
        kwargs["group_size"] = int(group)
    if nncf_cfg.get("dataset") == "calibration":
        if not calibration or calibration.get("kind") != "text":
            raise GateInputError("USER_CONFIG_ERROR", f"{nncf_cfg.get('mode')} with a dataset needs calibration text")
        texts = list(calibration["texts"])
        kwargs.update(dataset=texts, tokenizer=tokenizer_dir or ir_dir, num_samples=len(texts),
                      awq=bool(nncf_cfg.get("awq")), scale_estimation=bool(nncf_cfg.get("scale_estimation")))
    t0 = time.monotonic()
    model = OVModelForCausalLM.from_pretrained(ir_dir, quantization_config=OVWeightQuantizationConfig(**kwargs),
                                               compile=False, export=False)
    model.save_pretrained(out_dir)
    seconds = time.monotonic() - t0
    copied = copy_side_files(Path(ir_dir), Path(out_dir))
    return {"seconds": seconds, "nncf_kwargs": {k: v for k, v in kwargs.items() if k not in ("dataset", "tokenizer")},
            "calibration_samples": len(kwargs.get("dataset") or []), "copied": copied}


def _image_items(calibration: dict, shape: list[int], subset: int) -> list:
    """Calibration images as float32 [1, C, H, W] in [0, 1] (the evaluation's own image loader)."""
    import numpy as np

    from modelgate.openvino.evaluate import _load_image

    if calibration["kind"] == "npy":
        x = np.load(calibration["path"], allow_pickle=False)
        return [x[i:i + 1].astype("float32") for i in range(min(subset, len(x)))]
    return [_load_image(p, shape)[None].astype("float32") for p in calibration["images"][:subset]]


def _text_items(tokenizer_dir: Path, input_names: list[str], texts: list[str], subset: int) -> list:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    return [{k: v for k, v in tok(t, return_tensors="np", truncation=True).items() if k in input_names}
            for t in texts[:subset]]


def static_int8_body(ir_xml: str, out_dir: str, nncf_cfg: dict, calibration: dict) -> dict:
    """Child body: full INT8 PTQ (weights + activations) of a non-LLM IR with ``nncf.quantize``."""
    import nncf
    import openvino as ov

    model = ov.Core().read_model(ir_xml)
    subset = int(nncf_cfg.get("subset_size", 128))
    names = [next(iter(i.get_names())) for i in model.inputs]
    model_type = None
    if calibration["kind"] == "text":
        items, model_type = _text_items(Path(ir_xml).parent, names, calibration["texts"], subset), \
            nncf.ModelType.TRANSFORMER
    else:
        shape = model.inputs[0].get_partial_shape()
        chw = [shape[i].get_length() if shape[i].is_static else None for i in (1, 2, 3)] \
            if shape.rank.is_static and shape.rank.get_length() == 4 else None
        if calibration["kind"] == "image" and (chw is None or None in chw):
            raise GateInputError("USER_CONFIG_ERROR", f"image calibration needs a [N, C, H, W] input with static "
                                 f"C, H, W; the model's is {shape}")
        items = [{names[0]: x} for x in _image_items(calibration, chw, subset)]
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
            "calibration_source": calibration["source"],
            "nncf_kwargs": {"preset": nncf_cfg.get("preset", "mixed"), "subset_size": kwargs["subset_size"]}}


def quantize(recipe: dict, baseline_ir: str | Path, out_dir: str | Path, *, calibration: dict | None = None,
             tokenizer_dir: str | Path | None = None, timeout: float = 900.0) -> childproc.ChildResult:
    """Quantize the fp32 IR in ``baseline_ir`` (folder or .xml) into ``out_dir`` per ``recipe``.

    ``calibration``: what ``resolve_calibration`` returns (needed by static_int8 and by data-aware
    weight compression). Returns the child's result; ``value`` holds what NNCF was asked to do and
    how long it took. A crash, hang or NNCF error becomes a failed ``ChildResult``.
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
        if recipe["nncf"].get("dataset") == "calibration" and calibration is None:
            calibration = resolve_calibration("llm", None, xml.parent)
        res = _classify(childproc.run_function(
            "modelgate.openvino.quantize:weight_compression_body",
            dict(ir_dir=str(xml.parent), out_dir=str(out), nncf_cfg=dict(recipe["nncf"]),
                 tokenizer_dir=str(tokenizer_dir) if tokenizer_dir else None, calibration=calibration),
            timeout=timeout, crash_class="CONVERSION_FAILED", error_class="CONVERSION_FAILED"))
        if res.ok and calibration and recipe["nncf"].get("dataset") == "calibration":
            res.value["calibration_source"] = calibration["source"]
        return res
    if kind == "static_int8":
        if calibration is None:
            raise GateInputError("USER_CONFIG_ERROR", "static_int8 needs a calibration set")
        return _classify(childproc.run_function(
            "modelgate.openvino.quantize:static_int8_body",
            dict(ir_xml=str(xml), out_dir=str(out), nncf_cfg=dict(recipe["nncf"]), calibration=calibration),
            timeout=timeout, crash_class="CONVERSION_FAILED", error_class="CONVERSION_FAILED"))
    raise GateInputError("USER_CONFIG_ERROR", f"recipe {recipe.get('name')}: unknown kind {kind!r}")


def _classify(res: childproc.ChildResult) -> childproc.ChildResult:
    """Re-class NNCF errors that mean the recipe does not fit the model (-> INFEASIBLE downstream)."""
    if not res.ok and res.failure_class == "CONVERSION_FAILED":
        name = res.detail.split(":", 1)[0].strip()
        res.failure_class = QUANT_ERROR_CLASSES.get(name, res.failure_class)
    return res
