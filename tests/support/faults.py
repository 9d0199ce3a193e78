"""Fault injection: corrupt a good OpenVINO IR the ways real converters fail.

Each fault function takes a good IR folder and writes a corrupted copy (``fault(src, dst) -> Path``);
``FAULTS`` maps a fault name to (function, the failure class verify-conversion must report).
Weights are edited by patching the ``.bin`` byte ranges that the ``.xml`` Const layers reference,
which works the same for f32/f16 weights and for compressed (u8/u4 + scale + zero point) ones:
a multiplicative fault on a compressed weight edits its scale, a layout fault edits the codes.
Which constant is the head / the embedding is found through the OpenVINO graph, not by name
(GPT-2's exported Conv1D weights have no readable names).
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support.ir_edit import ConstRef as Const
from tests.support.ir_edit import consts as read_consts

IR_XML = "openvino_model.xml"
TOKENIZER_FILES = ("openvino_tokenizer.xml", "openvino_tokenizer.bin", "openvino_detokenizer.xml",
                   "openvino_detokenizer.bin")
# OpenVINO element type -> numpy dtype for patchable constants
ELEMENT_DTYPE = {"f32": "float32", "f16": "float16", "u8": "uint8", "i8": "int8", "bf16": None}
# ops a weight passes through between its Constant and the op that uses it
DECOMPRESSION_OPS = frozenset({"Convert", "Subtract", "Multiply", "Reshape", "Transpose", "Unsqueeze"})


def _np():
    import numpy as np
    return np


def _read(ir: Path, c: Const):
    np = _np()
    dtype = ELEMENT_DTYPE.get(c.element_type)
    if dtype is None:
        raise ValueError(f"cannot patch {c.name}: element type {c.element_type}")
    with open(ir / IR_XML.replace(".xml", ".bin"), "rb") as fh:
        fh.seek(c.offset)
        raw = fh.read(c.size)
    return np.frombuffer(raw, dtype=dtype).reshape(c.shape).copy()


def _write(ir: Path, c: Const, arr) -> None:
    np = _np()
    data = np.ascontiguousarray(arr.astype(ELEMENT_DTYPE[c.element_type])).tobytes()
    if len(data) != c.size:
        raise ValueError(f"patch of {c.name} has {len(data)} bytes, expected {c.size}")
    with open(ir / "openvino_model.bin", "r+b") as fh:
        fh.seek(c.offset)
        fh.write(data)


def _copy(src: Path, dst: Path) -> Path:
    src, dst = Path(src), Path(dst)
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".complete", "*.lock"))
    return dst


# --------------------------------------------------------------------------- finding weights

@dataclass
class Weight:
    """A weight as the model uses it: the stored codes/values, and for compressed weights the scale."""
    data: Const
    scale: Const | None


def _weight_root(node):
    """Walk from a weight-consuming input back to its Constant (through decompression ops, operand 0)."""
    for _ in range(8):
        if node.get_type_name() == "Constant":
            return node
        if node.get_type_name() not in DECOMPRESSION_OPS:
            return None
        node = node.input_value(0).get_node()
    return None


def _roles(ir: Path) -> dict:
    """Names of the head weight, the token embedding and all matmul weights, via the OpenVINO graph."""
    import openvino as ov
    model = ov.Core().read_model(str(ir / IR_XML))
    head = None
    node = model.outputs[0].get_node().input_value(0).get_node()
    for _ in range(16):  # Result <- ... <- MatMul(hidden, head weight)
        if node.get_type_name() == "MatMul":
            root = _weight_root(node.input_value(1).get_node())
            head = root.get_friendly_name() if root is not None else None
            break
        node = node.input_value(0).get_node()
    gathers, matmuls = [], []
    for op in model.get_ordered_ops():
        if op.get_type_name() not in ("Gather", "MatMul"):
            continue
        port = 0 if op.get_type_name() == "Gather" else 1
        root = _weight_root(op.input_value(port).get_node())
        if root is None or len(root.get_shape()) != 2:
            continue
        (gathers if port == 0 else matmuls).append(root.get_friendly_name())
    consts = read_consts(ir)
    emb = max(gathers, key=lambda n: consts[n].size, default=None) if gathers else None
    return {"head": head, "embedding": emb, "matmuls": list(dict.fromkeys(matmuls))}


def _weight(consts: dict[str, Const], name: str) -> Weight:
    return Weight(consts[name], consts.get(f"{name}/scale"))


def _inner_weights(ir: Path) -> tuple[dict, list[Weight], dict]:
    consts = read_consts(ir)
    roles = _roles(ir)
    inner = [_weight(consts, n) for n in roles["matmuls"] if n not in (roles["head"], roles["embedding"])]
    return consts, inner, roles


def _scale_values(ir: Path, w: Weight, fn: Callable) -> None:
    """Apply ``fn`` to the effective values of a weight (the scale when the weight is compressed)."""
    target = w.scale if w.scale is not None else w.data
    arr = _read(ir, target).astype("float32")
    _write(ir, target, fn(arr))


# --------------------------------------------------------------------------- faults

def _poison(value: float):
    def fault(src: Path, dst: Path) -> Path:
        ir = _copy(src, dst)
        _, inner, _ = _inner_weights(ir)

        def put(arr):
            arr.reshape(-1)[: max(1, arr.size // 64)] = value  # a few bad values, as a broken cast leaves
            return arr
        _scale_values(ir, inner[0], put)
        return ir
    return fault


nan_weight = _poison(float("nan"))
nan_weight.__doc__ = "NaN in the first layer's first matmul weight (the scale of a compressed weight)."
inf_weight = _poison(float("inf"))
inf_weight.__doc__ = "Inf in the first layer's first matmul weight."


def _head_fault(fn: Callable):
    def fault(src: Path, dst: Path) -> Path:
        ir = _copy(src, dst)
        consts = read_consts(ir)
        _scale_values(ir, _weight(consts, _roles(ir)["head"]), fn)
        return ir
    return fault


zero_head = _head_fault(lambda a: a * 0.0)
zero_head.__doc__ = "Output head zeroed: every logit equal."
scaled_head = _head_fault(lambda a: a * 3.0)
scaled_head.__doc__ = "Output head multiplied by 3: argmax and cosine similarity unchanged, magnitudes wrong."


def negated_embedding(src: Path, dst: Path) -> Path:
    """Token embedding negated (a sign flip in a converter's weight transform)."""
    ir = _copy(src, dst)
    consts = read_consts(ir)
    _scale_values(ir, _weight(consts, _roles(ir)["embedding"]), lambda a: -a)
    return ir


def permuted_rows(src: Path, dst: Path) -> Path:
    """Rows of a non-square matmul weight permuted (a wrong head/channel reorder)."""
    ir = _copy(src, dst)
    _, inner, _ = _inner_weights(ir)
    w = next(x for x in inner if x.data.shape[0] != x.data.shape[1])
    perm = _np().random.default_rng(0).permutation(w.data.shape[0])
    _write(ir, w.data, _read(ir, w.data)[perm])
    return ir


def transposed_weight(src: Path, dst: Path) -> Path:
    """A square matmul weight stored transposed (shape still matches, so nothing complains)."""
    ir = _copy(src, dst)
    _, inner, _ = _inner_weights(ir)
    w = next(x for x in inner if x.data.shape[0] == x.data.shape[1])
    _write(ir, w.data, _read(ir, w.data).T)
    return ir


def swapped_layers(src: Path, dst: Path) -> Path:
    """The same weight of the first and a later layer swapped (codes and scales together)."""
    ir = _copy(src, dst)
    _, inner, _ = _inner_weights(ir)
    half = len(inner) // 2
    a = inner[0]
    b = next(x for x in inner[half:] if x.data.shape == a.data.shape and x.data.element_type == a.data.element_type)
    for ca, cb in [(a.data, b.data)] + ([(a.scale, b.scale)] if a.scale and b.scale else []):
        va, vb = _read(ir, ca), _read(ir, cb)
        _write(ir, ca, vb)
        _write(ir, cb, va)
    return ir


def truncated_bin(src: Path, dst: Path) -> Path:
    """The weights file cut short (an interrupted copy or download)."""
    ir = _copy(src, dst)
    binp = ir / "openvino_model.bin"
    size = binp.stat().st_size
    with open(binp, "r+b") as fh:
        fh.truncate(int(size * 0.6))
    return ir


def missing_tokenizer(src: Path, dst: Path) -> Path:
    """openvino_tokenizer/detokenizer absent (optimum-intel drops them when tokenizer conversion fails)."""
    ir = _copy(src, dst)
    for name in TOKENIZER_FILES:
        (ir / name).unlink(missing_ok=True)
    return ir


def foreign_tokenizer(src: Path, dst: Path, donor: str | os.PathLike | None = None) -> Path:
    """Another model's OpenVINO tokenizer shipped beside the IR (default donor: the tiny BERT export)."""
    ir = _copy(src, dst)
    if donor is None:
        from modelgate import fixtures
        from modelgate.openvino.convert import export_cached
        donor = export_cached(fixtures.hf_model("bert"), "fp32")
    for name in TOKENIZER_FILES:
        shutil.copyfile(Path(donor) / name, ir / name)
    return ir


def config_mismatch(src: Path, dst: Path) -> Path:
    """config.json beside the IR lies about the architecture (layers and vocabulary)."""
    ir = _copy(src, dst)
    cfg = json.loads((ir / "config.json").read_text(encoding="utf-8"))
    for key in ("num_hidden_layers", "n_layer"):
        if key in cfg:
            cfg[key] += 1
    cfg["vocab_size"] = cfg.get("vocab_size", 0) + 64
    (ir / "config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    return ir


# name -> (fault function, failure class verify-conversion must report)
FAULTS: dict[str, tuple[Callable[..., Path], str]] = {
    "nan_weight": (nan_weight, "NUMERICAL_INSANE"),
    "inf_weight": (inf_weight, "NUMERICAL_INSANE"),
    "zero_head": (zero_head, "DEGENERATE_OUTPUT"),
    "scaled_head": (scaled_head, "FIDELITY_REGRESSION"),
    "permuted_rows": (permuted_rows, "FIDELITY_REGRESSION"),
    "transposed_weight": (transposed_weight, "FIDELITY_REGRESSION"),
    "swapped_layers": (swapped_layers, "FIDELITY_REGRESSION"),
    "negated_embedding": (negated_embedding, "FIDELITY_REGRESSION"),
    "truncated_bin": (truncated_bin, "INTEGRITY_MISMATCH"),
    "foreign_tokenizer": (foreign_tokenizer, "TOKENIZER_MISMATCH"),
    "config_mismatch": (config_mismatch, "INTEGRITY_MISMATCH"),
    "missing_tokenizer": (missing_tokenizer, "TOKENIZER_MISMATCH"),
}


def inject(name: str, src: str | os.PathLike, dst: str | os.PathLike, **kwargs) -> Path:
    """Write a copy of IR folder ``src`` with fault ``name`` into ``dst``."""
    if name not in FAULTS:
        raise KeyError(f"unknown fault {name!r}; known: {sorted(FAULTS)}")
    return FAULTS[name][0](Path(src), Path(dst), **kwargs)
