"""Dequantize an OpenVINO IR's weight constants back to float32 with numpy.

A compressed weight is ``Constant(u8/i8/u4/i4/f16) -> Convert -> [Subtract zero_point] ->
Multiply scale -> [Reshape] -> [Convert] -> MatMul/Gather``. We replay that chain on the
constant's data, so I-4 compares what the IR really computes with, not what it claims.
"""
from __future__ import annotations

import numpy as np

from modelgate.openvino.ir import COMPUTE_OPS, MAX_CHAIN, read_model, weight_constants

# OpenVINO element type -> numpy dtype for Convert targets (data, not if-chains)
CONVERT_DTYPE = {"f32": np.float32, "f16": np.float16, "bf16": np.float32, "f64": np.float64}
PACKED_4BIT = {"u4": False, "i4": True}  # type -> signed


class DequantError(ValueError):
    """A decompression chain this module cannot replay (an unknown op or packing)."""


def constant_array(op) -> np.ndarray:
    """A Constant's values in its logical shape (4-bit types unpacked, low nibble first)."""
    et = op.get_element_type().get_type_name()
    shape = [int(d) for d in op.get_shape()]
    data = np.asarray(op.get_data())
    if et in PACKED_4BIT:
        raw = data.astype(np.uint8).ravel()
        out = np.empty(raw.size * 2, dtype=np.int16)
        out[0::2] = raw & 0x0F
        out[1::2] = raw >> 4
        if PACKED_4BIT[et]:
            out = np.where(out >= 8, out - 16, out)
        n = int(np.prod(shape)) if shape else 1
        return out[:n].reshape(shape)
    if et in ("nf4", "f4e2m1", "f8e4m3", "f8e5m2"):
        raise DequantError(f"element type {et} is not replayed by this dequantizer")
    return data.reshape(shape)


def _operand(node) -> np.ndarray:
    """Value of a decompression parameter (zero point / scale): a Constant, maybe behind Converts/Reshapes."""
    hops = 0
    chain = []
    while node.get_type_name() != "Constant":
        if node.get_type_name() not in ("Convert", "Reshape", "Unsqueeze", "Squeeze") or hops > MAX_CHAIN:
            raise DequantError(f"parameter comes from {node.get_type_name()}, not a constant")
        chain.append(node)
        node = node.input(0).get_source_output().get_node()
        hops += 1
    x = constant_array(node).astype(np.float32)
    for n in reversed(chain):
        x = x.reshape([int(d) for d in n.get_output_shape(0)]) if n.get_type_name() != "Convert" else x
    return x


def dequantize_constant(op) -> np.ndarray:
    """Replay the decompression chain from weight Constant ``op`` up to its compute op."""
    x = constant_array(op).astype(np.float32)
    node, hops = op, 0
    while hops < MAX_CHAIN:
        targets = list(node.output(0).get_target_inputs())
        if not targets:
            return x
        tgt = targets[0]
        nxt = tgt.get_node()
        kind = nxt.get_type_name()
        if kind in COMPUTE_OPS:
            return x
        other = nxt.input(1 - tgt.get_index()).get_source_output().get_node() if nxt.get_input_size() > 1 else None
        if kind == "Convert":
            dt = CONVERT_DTYPE.get(nxt.get_output_element_type(0).get_type_name())
            if dt is None:
                raise DequantError(f"Convert to {nxt.get_output_element_type(0).get_type_name()}")
            x = x.astype(dt).astype(np.float32)
        elif kind == "Subtract":
            x = x - _operand(other)
        elif kind == "Multiply":
            x = x * _operand(other)
        elif kind in ("Reshape", "Unsqueeze", "Squeeze"):
            x = x.reshape([int(d) for d in nxt.get_output_shape(0)])
        elif kind == "Transpose":
            x = np.transpose(x, _operand(other).astype(np.int64).tolist())
        else:
            raise DequantError(f"unexpected {kind} in the decompression chain of {op.get_friendly_name()}")
        node, hops = nxt, hops + 1
    raise DequantError(f"decompression chain of {op.get_friendly_name()} longer than {MAX_CHAIN}")


def dequantized_weights(xml_or_model, names: set[str] | None = None) -> dict[str, np.ndarray]:
    """``{constant name: float32 array}`` for the weight constants in ``names`` (default: all).

    Name the source-mapped weights: a constant that scales activations directly (a norm
    weight folded into Multiply) has no decompression chain and raises DequantError.
    """
    model = read_model(xml_or_model)
    wanted = {c["name"] for c in weight_constants(model) if c["role"] == "weight"}
    if names is not None:
        wanted &= set(names)
    out = {}
    for op in model.get_ordered_ops():
        if op.get_type_name() == "Constant" and op.get_friendly_name() in wanted:
            out[op.get_friendly_name()] = dequantize_constant(op)
    return out


def tensor_stats(x: np.ndarray) -> dict:
    """mean, std, min, max of a tensor as Python floats (float64 accumulation)."""
    x = np.asarray(x, dtype=np.float64)
    return {"mean": float(x.mean()), "std": float(x.std()), "min": float(x.min()), "max": float(x.max())}
