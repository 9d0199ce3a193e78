"""A catalog of the perturbable tensors of an OpenVINO IR, each with the role it plays, found from the graph.

Roles come from the consuming op and its other operand, never from names (GPT-2's Conv1D weights
are ``Transpose_16251``, norm parameters ``Constant_23076``); the layer is the block scope of the
consuming op (``modelgate.openvino.blocks.scope_of``):

==================  =========================================================================
matmul_weight       Constant (through a decompression chain) feeding a MatMul
head                the weight of the MatMul nearest the first model output
quant_scale         Constant multiplying a decompression chain (int codes -> Convert [-> Subtract] -> Multiply)
quant_zero_point    Constant subtracted in a decompression chain
embedding           Constant chain feeding Gather data, indexed by input_ids
position_table      the same indexed by position_ids or a Range (learned positions)
type_table          the same indexed by token_type_ids
bias                Constant added to a MatMul output
norm_weight         Constant multiplying an MVN output or x * rsqrt(mean(x^2) + eps)
norm_bias           Constant added to a norm_weight product
rms_eps             scalar Constant added to a mean of squares
mvn_eps             the eps attribute of an MVN op (edited in the .xml)
rotary              float Constant upstream of Sin/Cos (inverse frequencies)
==================  =========================================================================

A tied weight (GPT-2's wte: embedding and head) is listed once, as the embedding.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from modelgate.openvino.blocks import scope_of

CHAIN_OPS = frozenset({"Convert", "Reshape", "Transpose", "Unsqueeze", "Squeeze"})
INT_TYPES = frozenset({"u8", "i8", "u4", "i4", "nf4"})


@dataclass
class Tensor:
    """One perturbable tensor: its Constant (or MVN op), role, block and the op that consumes it."""
    name: str
    role: str
    layer: tuple[str, int] | None
    element_type: str
    shape: list[int]
    consumer: str
    extra: dict = field(default_factory=dict)


def _consumers(output) -> list:
    return [t.get_node() for t in output.get_target_inputs()]


def _is_decompression(op) -> bool:
    """A Subtract/Multiply whose data operand starts at an integer Constant (through chain ops)."""
    node = op.input_value(0).get_node()
    for _ in range(6):
        kind = node.get_type_name()
        if kind == "Constant":
            return node.get_output_element_type(0).get_type_name() in INT_TYPES
        if kind in CHAIN_OPS or kind in ("Subtract", "Multiply"):
            node = node.input_value(0).get_node()
            continue
        return False
    return False


def _through_chain(node, hops: int = 6):
    """Follow a constant forward through chain and decompression ops: (last chain node, its consumers)."""
    current = node
    for _ in range(hops):
        users = _consumers(current.output(0))
        if len(users) != 1:
            return current, users
        user = users[0]
        kind = user.get_type_name()
        if kind in CHAIN_OPS or (kind in ("Subtract", "Multiply") and _is_decompression(user)):
            current = user
            continue
        return current, users
    return current, _consumers(current.output(0))


def _depends_on(node, names: set[str], budget: int = 400) -> bool:
    seen, stack = set(), [node]
    while stack and len(seen) < budget:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if n.get_type_name() == "Parameter" and (n.get_output_tensor(0).get_names() & names):
            return True
        if n.get_type_name() == "Range" and "range" in names:
            return True
        stack.extend(v.get_node() for v in n.input_values())
    return False


def _downstream_has(node, kinds: set[str], budget: int = 60) -> bool:
    seen, stack = set(), [node]
    while stack and len(seen) < budget:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if n.get_type_name() in kinds:
            return True
        for o in n.outputs():
            stack.extend(_consumers(o))
    return False


def _other_input(op, node):
    return next((v.get_node() for v in op.input_values() if v.get_node() is not node), None)


def _upstream(node, kinds: set[str], hops: int = 4):
    for _ in range(hops):
        if node.get_type_name() in kinds:
            return node
        if node.get_type_name() in CHAIN_OPS and node.get_input_size():
            node = node.input_value(0).get_node()
            continue
        return None
    return node if node.get_type_name() in kinds else None


def _head(model):
    node = model.outputs[0].get_node().input_value(0).get_node()
    for _ in range(16):
        if node.get_type_name() == "MatMul":
            return node
        if not node.get_input_size():
            return None
        node = node.input_value(0).get_node()
    return None


def _rotary_constants(ops) -> set[str]:
    found = set()
    for op in ops:
        if op.get_type_name() not in ("Sin", "Cos"):
            continue
        seen, stack = set(), [op]
        while stack:
            n = stack.pop()
            if id(n) in seen:
                continue
            seen.add(id(n))
            if n.get_type_name() == "Constant":
                if n.get_output_element_type(0).is_real() and math.prod(n.get_shape()) > 1:
                    found.add(n.get_friendly_name())
                continue
            if n.get_type_name() not in ("Parameter", "ReadValue"):
                stack.extend(v.get_node() for v in n.input_values())
    return found


def _decompression_param(op, users) -> Tensor | None:
    """A quantization scale or zero point: operand 1 of a decompression Multiply / Subtract."""
    first = users[0]
    user = first if first.get_type_name() != "Convert" else (_consumers(first.output(0)) or [None])[0]
    if user is None or user.get_type_name() not in ("Multiply", "Subtract") or not _is_decompression(user):
        return None
    data = user.input_value(0).get_node()
    if data is first or data is op:
        return None
    role = "quant_scale" if user.get_type_name() == "Multiply" else "quant_zero_point"
    weight_users = _through_chain(user)[1]
    layer = next((scope_of(u.get_friendly_name()) for u in weight_users if scope_of(u.get_friendly_name())), None)
    return Tensor(op.get_friendly_name(), role, layer or scope_of(op.get_friendly_name()),
                  op.get_output_element_type(0).get_type_name(), list(op.get_shape()),
                  weight_users[0].get_friendly_name() if weight_users else "")


def catalog(model) -> list[Tensor]:
    """Every perturbable tensor of ``model`` (an ``ov.Model`` read from disk) with its role."""
    ops = list(model.get_ordered_ops())
    head = _head(model)
    rotary = _rotary_constants(ops)
    out: list[Tensor] = []
    for op in ops:
        kind = op.get_type_name()
        name = op.get_friendly_name()
        if kind == "MVN":
            out.append(Tensor(name, "mvn_eps", scope_of(name), "attr", [], name,
                              {"eps": float(op.get_attributes().get("eps", 0.0))}))
            continue
        if kind != "Constant":
            continue
        et = op.get_output_element_type(0).get_type_name()
        if not (op.get_output_element_type(0).is_real() or et in INT_TYPES):
            continue
        shape = list(op.get_shape())
        users = _consumers(op.output(0))
        if not users:
            continue
        end, uses = _through_chain(op)
        if users[0].get_type_name() in ("Multiply", "Subtract", "Convert") and len(users) == 1:
            param = _decompression_param(op, users)
            if param is not None:
                out.append(param)
                continue
        if name in rotary:
            layer = next((scope_of(u.get_friendly_name()) for u in uses if scope_of(u.get_friendly_name())), None)
            out.append(Tensor(name, "rotary", layer, et, shape, uses[0].get_friendly_name() if uses else ""))
            continue
        tied = False
        if len(uses) != 1:
            gathers = [u for u in uses if u.get_type_name() == "Gather"]
            if not gathers:
                continue
            uses, tied = gathers[:1], True
        user = uses[0]
        ukind, uname = user.get_type_name(), user.get_friendly_name()
        layer = scope_of(uname) or scope_of(name)
        numel = math.prod(shape) if shape else 1
        if numel <= 1:
            other = _other_input(user, end) if ukind == "Add" else None
            if other is not None and other.get_type_name() == "ReduceMean":
                out.append(Tensor(name, "rms_eps", layer, et, shape, uname))
            continue
        if ukind == "MatMul":
            port = next(k for k, v in enumerate(user.input_values()) if v.get_node() is end)
            out.append(Tensor(name, "head" if user is head else "matmul_weight", layer, et, shape, uname,
                              {"transpose_b": bool(user.get_attributes().get("transpose_b")), "port": port}))
        elif ukind == "Gather" and user.input_value(0).get_node() is end:
            index = user.input_value(1).get_node()
            if _depends_on(index, {"input_ids"}):
                role = "embedding"
            elif _depends_on(index, {"token_type_ids"}):
                role = "type_table"
            elif _depends_on(index, {"position_ids", "range"}):
                role = "rotary" if _downstream_has(user, {"Sin", "Cos"}) else "position_table"
            else:
                continue
            out.append(Tensor(name, role, layer, et, shape, uname, {"tied_head": tied}))
        elif ukind == "Multiply":
            other = _other_input(user, end)
            if other is not None and (other.get_type_name() == "MVN" or (other.get_type_name() == "Multiply" and any(
                    v.get_node().get_type_name() in ("Divide", "Sqrt", "Power") for v in other.input_values()))):
                out.append(Tensor(name, "norm_weight", layer, et, shape, uname))
        elif ukind == "Add":
            other = _other_input(user, end)
            okind = other.get_type_name() if other is not None else ""
            if okind == "MatMul" or (okind in CHAIN_OPS and _upstream(other, {"MatMul"})):
                out.append(Tensor(name, "bias", layer, et, shape, uname))
            elif okind == "Multiply" and any(v.get_node().get_type_name() == "MVN" for v in other.input_values()):
                out.append(Tensor(name, "norm_bias", layer, et, shape, uname))
    return out


def scales_of(cat: list[Tensor]) -> dict[str, tuple[Tensor | None, Tensor | None]]:
    """weight name -> (its quant_scale, its quant_zero_point) entries, matched by the consuming op."""
    scale = {t.consumer: t for t in cat if t.role == "quant_scale"}
    zero = {t.consumer: t for t in cat if t.role == "quant_zero_point"}
    return {t.name: (scale.get(t.consumer), zero.get(t.consumer)) for t in cat
            if t.role in ("matmul_weight", "head", "embedding", "position_table", "type_table")}
