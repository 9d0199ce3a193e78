"""Edit an OpenVINO IR on disk: Constant values in the .bin (by friendly name), MVN eps in the .xml.

Works for f32 / f16 / bf16 / u8 / i8 constants and packed u4 / i4 ones (two codes per byte, low
nibble first; a read-write round trip is byte-identical).

The serializer stores identical constants once: several Const layers can point at the same bytes
(every RMSNorm epsilon, all-ones norm weights, zero biases). Writing those bytes in place would
change every one of them, so ``write_const`` gives a shared constant its own copy at the end of
the .bin and points only its layer at it.
"""
from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

XML, BIN = "openvino_model.xml", "openvino_model.bin"
NUMPY_TYPES = {"f32": "float32", "f16": "float16", "u8": "uint8", "i8": "int8", "i32": "int32", "i64": "int64"}
PACKED = {"u4": (0, 15), "i4": (-8, 7)}


@dataclass
class ConstRef:
    """Where a Const layer's data lives in the .bin."""
    name: str
    element_type: str
    shape: list[int]
    offset: int
    size: int


def _np():
    import numpy as np
    return np


def consts(ir: str | Path) -> dict[str, ConstRef]:
    """Every Const layer of ``ir/openvino_model.xml`` by friendly name."""
    out = {}
    for layer in ET.parse(Path(ir) / XML).getroot().iter("layer"):
        data = layer.find("data")
        if layer.get("type") != "Const" or data is None or data.get("offset") is None:
            continue
        shape = [int(s) for s in data.get("shape", "").split(",") if s.strip()]
        out[layer.get("name")] = ConstRef(layer.get("name"), data.get("element_type"), shape,
                                          int(data.get("offset")), int(data.get("size")))
    return out


def copy_ir(src: str | Path, dst: str | Path) -> Path:
    """A fresh copy of an IR folder (files only; a previous ``dst`` is replaced)."""
    src, dst = Path(src), Path(dst)
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file() and not f.name.startswith(".") and not f.name.endswith(".lock"):
            shutil.copyfile(f, dst / f.name)
    return dst


def read_const(ir: str | Path, c: ConstRef):
    """The values of a constant as numpy (packed 4-bit codes unpacked, bf16 widened to f32)."""
    np = _np()
    with open(Path(ir) / BIN, "rb") as fh:
        fh.seek(c.offset)
        raw = fh.read(c.size)
    n = int(np.prod(c.shape)) if c.shape else 1
    if c.element_type in PACKED:
        b = np.frombuffer(raw, np.uint8)
        v = np.empty(b.size * 2, np.uint8)
        v[0::2], v[1::2] = b & 0x0F, b >> 4
        v = v[:n].astype(np.int16)
        if c.element_type == "i4":
            v = np.where(v > 7, v - 16, v)
        return v.reshape(c.shape)
    if c.element_type == "bf16":
        return (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(c.shape)
    if c.element_type not in NUMPY_TYPES:
        raise ValueError(f"cannot read {c.name}: element type {c.element_type}")
    return np.frombuffer(raw, NUMPY_TYPES[c.element_type]).reshape(c.shape).copy()


def _encode(c: ConstRef, values) -> bytes:
    np = _np()
    a = np.asarray(values)
    if c.element_type in PACKED:
        lo, hi = PACKED[c.element_type]
        v = np.clip(np.rint(a), lo, hi).astype(np.int16).reshape(-1) & 0x0F
        if v.size % 2:
            v = np.append(v, 0)
        return (v[0::2] | (v[1::2] << 4)).astype(np.uint8).tobytes()
    if c.element_type == "bf16":
        return (a.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).tobytes()
    if c.element_type in ("u8", "i8"):
        info = np.iinfo(NUMPY_TYPES[c.element_type])
        return np.clip(np.rint(a), info.min, info.max).astype(NUMPY_TYPES[c.element_type]).tobytes()
    return np.ascontiguousarray(a.astype(NUMPY_TYPES[c.element_type])).tobytes()


def write_const(ir: str | Path, c: ConstRef, values) -> None:
    """Replace a constant's values; a constant whose bytes other layers share gets its own copy."""
    data = _encode(c, values)
    if len(data) != c.size:
        raise ValueError(f"patch of {c.name} has {len(data)} bytes, expected {c.size}")
    ir = Path(ir)
    shared = [o for o in consts(ir).values() if o.offset == c.offset and o.name != c.name]
    if shared:
        new_offset = (ir / BIN).stat().st_size
        with open(ir / BIN, "ab") as fh:
            fh.write(data)
        _set_offset(ir / XML, c.name, c.offset, new_offset)
        c.offset = new_offset
        return
    with open(ir / BIN, "r+b") as fh:
        fh.seek(c.offset)
        fh.write(data)


def _set_offset(xml: Path, name: str, old: int, new: int) -> None:
    text = xml.read_text(encoding="utf-8")
    pattern = re.compile(r'(<layer [^>]*name="' + re.escape(name) + r'"[^>]*type="Const"[^>]*>\s*<data [^>]*?offset=")'
                         + str(old) + '(")')
    text, n = pattern.subn(lambda m: m.group(1) + str(new) + m.group(2), text, count=1)
    if n != 1:
        raise KeyError(f"Const {name} at offset {old} not found in {xml}")
    xml.write_text(text, encoding="utf-8")


def set_mvn_eps(ir: str | Path, op_name: str, eps: float) -> float:
    """Rewrite the eps attribute of the MVN layer named ``op_name``; returns the old value."""
    path = Path(ir) / XML
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(r'(<layer [^>]*name="' + re.escape(op_name) + r'"[^>]*type="MVN"[^>]*>\s*<data [^>]*?eps=")'
                         r'([^"]+)(")')
    m = pattern.search(text)
    if not m:
        raise KeyError(op_name)
    path.write_text(text[:m.start(2)] + repr(float(eps)) + text[m.end(2):], encoding="utf-8")
    return float(m.group(2))
