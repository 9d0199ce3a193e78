"""Read what an OpenVINO IR really contains: its weight constants and their precisions.

A compressed weight is a chain ``Constant(u8/u4/...) -> Convert -> [Subtract zero-point] ->
Multiply scale -> [Reshape] -> [Convert] -> MatMul/Gather``. Each constant is classified by
walking forward through that chain: it is a *weight* if it reaches a compute op on the data
path, a *zero_point* / *scale* if it enters Subtract / Multiply as the second operand.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# ops that pass a weight through unchanged in meaning (decompression / layout)
PASS_THROUGH_OPS = frozenset({"Convert", "Reshape", "Transpose", "Unsqueeze", "Squeeze"})
# ops that consume weights: reaching one of these makes a constant a weight
COMPUTE_OPS = frozenset({"MatMul", "Gather", "Convolution", "GroupConvolution", "ConvolutionBackpropData",
                         "GroupConvolutionBackpropData", "FullyConnected", "Embedding", "EmbeddingBagOffsetsSum",
                         "EmbeddingSegmentsSum"})
# decompression ops whose second operand is a quantization parameter
PARAM_OPS = {"Subtract": "zero_point", "Multiply": "scale"}
MAX_CHAIN = 8


def read_model(xml_or_model: Any):
    """An ``ov.Model`` from a path (folder or .xml) or an existing model."""
    if isinstance(xml_or_model, (str, os.PathLike)):
        import openvino as ov

        from modelgate.openvino.convert import find_ir_xml
        return ov.Core().read_model(str(find_ir_xml(Path(xml_or_model))))
    return xml_or_model


def _classify(op) -> tuple[str, str | None, int | None]:
    """(role, consumer op type, consumer input port) for a Constant node."""
    node, hops = op, 0
    while hops < MAX_CHAIN:
        # a set: a shared constant's first consumer must not depend on the process's set order
        targets = sorted(node.output(0).get_target_inputs(),
                         key=lambda t: (t.get_node().get_friendly_name(), t.get_index()))
        if not targets:
            return "other", None, None
        tgt = targets[0]
        nxt, port = tgt.get_node(), tgt.get_index()
        kind = nxt.get_type_name()
        if kind in COMPUTE_OPS:
            return "weight", kind, port
        if kind in PARAM_OPS:
            if port == 1:
                return PARAM_OPS[kind], kind, port
        elif kind not in PASS_THROUGH_OPS:
            return "other", kind, port
        node, hops = nxt, hops + 1
    return "other", None, None


def weight_constants(xml_or_model: Any, min_rank: int = 2) -> list[dict]:
    """Every Constant with its role. Weights must have rank >= ``min_rank`` (biases/scalars are not weights).

    Each item: name, element_type (OpenVINO type name: f32, f16, bf16, i8, u8, i4, u4, nf4, ...),
    shape, numel, nbytes, role (weight | zero_point | scale | other), consumer, consumer_port.
    """
    model = read_model(xml_or_model)
    out = []
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Constant":
            continue
        shape = [int(d) for d in op.get_shape()]
        numel = 1
        for d in shape:
            numel *= d
        role, consumer, port = _classify(op)
        if role == "weight" and len(shape) < min_rank:
            role = "other"
        out.append({"name": op.get_friendly_name(), "element_type": op.get_element_type().get_type_name(),
                    "shape": shape, "numel": numel, "nbytes": int(op.get_byte_size()), "role": role,
                    "consumer": consumer, "consumer_port": port})
    return out


def layer_precision_counts(xml_or_model: Any) -> dict[str, dict]:
    """Per element type: how many weight constants, their bytes and parameter count."""
    counts: dict[str, dict] = {}
    for c in weight_constants(xml_or_model):
        if c["role"] != "weight":
            continue
        slot = counts.setdefault(c["element_type"], {"count": 0, "bytes": 0, "params": 0})
        slot["count"] += 1
        slot["bytes"] += c["nbytes"]
        slot["params"] += c["numel"]
    return counts


def ir_files_bytes(xml_or_dir: str | os.PathLike) -> int:
    """Bytes of the model's .xml + .bin on disk."""
    from modelgate.openvino.convert import find_ir_xml
    xml = find_ir_xml(Path(xml_or_dir))
    return xml.stat().st_size + (xml.with_suffix(".bin").stat().st_size if xml.with_suffix(".bin").exists() else 0)
