"""Faults in multi-IR exports (one sub-model of an encoder-decoder, a VLM, a diffusion pipeline),
each written into a copy of a good export folder:

- ``garbled_weight``: the largest weight of one sub-model has its elements reversed in the .bin
  (same values and statistics, wrong places: a layout bug the loader cannot notice). Chosen by
  size, not by name, so the same rule applies to every family.
- ``swapped_sub_model``: one sub-model (.xml + .bin) replaced by the same sub-model of a twin export
  (same architecture, other weights): loads and runs, wrong model.
- ``lying_config``: a behaviour key of config.json / generation_config.json beside the IR changed
  (labels, decoder start token) -- the user's pipeline reads it.
- ``deleted_sub_model``: one sub-model's .xml removed (a partial copy / upload).
"""
from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

FLOAT_ELEMENTS = {"f32": "float32", "f16": "float16", "u8": "uint8", "i8": "int8"}


def copy_export(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".complete", "*.lock"))
    return dst


def garbled_weight(src: Path, dst: Path, sub_model: str) -> dict:
    """Reverse the largest weight constant (rank >= 2, float or 8-bit) of ``sub_model`` in a copy."""
    import numpy as np
    copy_export(src, dst)
    xml = dst / sub_model
    best = None
    for layer in ET.parse(xml).getroot().iter("layer"):
        data = layer.find("data")
        if layer.get("type") != "Const" or data is None or data.get("element_type") not in FLOAT_ELEMENTS:
            continue
        if (data.get("shape") or "").count(",") < 1:
            continue
        size = int(data.get("size"))
        if best is None or size > best[2]:
            best = (layer.get("name"), data, size)
    name, data, size = best
    binp = xml.with_suffix(".bin")
    raw = bytearray(binp.read_bytes())
    off = int(data.get("offset"))
    arr = np.frombuffer(bytes(raw[off: off + size]), dtype=FLOAT_ELEMENTS[data.get("element_type")])
    raw[off: off + size] = arr[::-1].tobytes()
    binp.write_bytes(bytes(raw))
    return {"sub_model": sub_model, "const": name, "shape": data.get("shape")}


def swapped_sub_model(src: Path, dst: Path, sub_model: str, twin: Path) -> dict:
    copy_export(src, dst)
    for suffix in (".xml", ".bin"):
        shutil.copy2((twin / sub_model).with_suffix(suffix), (dst / sub_model).with_suffix(suffix))
    return {"sub_model": sub_model, "twin": str(twin)}


def lying_config(src: Path, dst: Path, file: str, key: str, change) -> dict:
    """``key`` of ``file`` beside the IR replaced by ``change(old value)``."""
    copy_export(src, dst)
    p = dst / file
    cfg = json.loads(p.read_text())
    old = cfg.get(key)
    value = change(old)
    assert value != old, f"{file}:{key} lie leaves {old!r} unchanged"
    cfg[key] = value
    p.write_text(json.dumps(cfg, indent=2))
    return {"file": file, "key": key, "was": old, "now": value}


def next_id(v):
    """Another token id (the next one)."""
    return int(v) + 1


def permuted_labels(v: dict) -> dict:
    """The same label names on other ids (a shifted id2label)."""
    keys = sorted(v, key=int)
    return {k: v[keys[(i + 1) % len(keys)]] for i, k in enumerate(keys)}


def one_more(v):
    return int(v) + 1


def deleted_sub_model(src: Path, dst: Path, sub_model: str) -> dict:
    copy_export(src, dst)
    (dst / sub_model).unlink()
    return {"sub_model": sub_model}
