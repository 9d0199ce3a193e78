"""Find the output of every block (decoder layer, encoder layer, vision block) in an OpenVINO IR.

The IR keeps the module path of the op that produced each tensor in its friendly name
(``__module.model.layers.3/aten::add/Add_1``, ``self.model.layers.3.mlp.up_proj.weight``,
``/model/layers.3/Add_1`` from the ONNX frontend). ``scope_of`` parses that path into
(stack, block index); a *stack* is a container whose indices are exactly 0..N-1 (N >= 2):
``model.layers``, ``transformer.h``, ``bert.encoder.layer``, ``vit.encoder.layer``, ``block``...

The output of block i is the tensor that block i produces and block i+1 consumes through a data
edge (for the last block: that an op outside the stack consumes), restricted to float tensors of
the model width that depend on a model input. That excludes the shared rotary tables computed
once in block 0 (other width), the KV cache (consumed by Assign) and weight decompression chains
(constant-only). The embedding output is found the same way: produced outside the stack, consumed
by block 0. Discovery runs on the saved graph (``read_model``), never on a compiled one, whose
fused ops no longer carry these names.

``expose`` adds the block outputs of a stack as model outputs (optionally gathered at chosen
positions so a long prompt keeps only a bounded sample), ``decouple`` rewires a copy so every
block reads its input from a new Parameter: fed with the source's previous hidden state, each
block's error is then its own, not the sum of everything before it. Both work on clones; the
original model is left unchanged, and at the f32 runtime config the added outputs do not change
what the model computes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# consumers that do not make a tensor a data boundary (outputs, state writes, shape reads)
NON_DATA_CONSUMERS = frozenset({"Result", "Assign", "ShapeOf", "ReadValue"})
SCOPE_PREFIXES = ("__module.", "self.")
POSITIONS_INPUT = "mg_positions"
DECOUPLED_INPUT_PREFIX = "mg_block_input_"
_INDEX = re.compile(r"^\d+$")


def scope_of(name: str) -> tuple[str, int] | None:
    """(stack path, block index) named by an op's friendly name, or None when it names no indexed block.

    The first integer path component that follows a named component is the block index; nested
    indices (T5's ``block.0.layer.1``) resolve to the outer one.
    """
    text = name
    for prefix in SCOPE_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    if text.startswith("/"):  # ONNX frontend: /model/layers.3/self_attn/Add_1 -> all but the op name
        path = ".".join(text.strip("/").split("/")[:-1])
    else:
        path = text.split("/")[0]
    parts = [p for p in path.split(".") if p]
    for k, part in enumerate(parts):
        if k > 0 and _INDEX.match(part) and not _INDEX.match(parts[k - 1]):
            return ".".join(parts[:k]), int(part)
    return None


@dataclass(frozen=True)
class BlockOutput:
    """One tensor of a stack: block ``index``'s output (``-1``: the embedding output, block 0's input)."""
    index: int
    node: str
    port: int
    candidates: int = 1  # boundary tensors of the model width found; > 1 means the last was taken

    @property
    def unique(self) -> bool:
        return self.candidates == 1


@dataclass
class BlockStack:
    """A stack of blocks in an IR and the tensor that carries each block's output."""
    path: str
    width: int
    blocks: list[BlockOutput]
    embedding: BlockOutput | None = None
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.blocks)

    def all_outputs(self) -> list[BlockOutput]:
        """The embedding output (when found uniquely) followed by every block's output."""
        head = [self.embedding] if self.embedding is not None and self.embedding.unique else []
        return head + list(self.blocks)

    def describe(self) -> dict:
        return {"stack": self.path, "blocks": len(self.blocks), "width": self.width,
                "embedding_output": self.embedding.node if self.embedding else None,
                "ambiguous_blocks": [b.index for b in self.blocks if not b.unique], "notes": list(self.notes)}


def _last_dim(output) -> int | None:
    shape = output.get_partial_shape()
    if shape.rank.is_dynamic or shape.rank.get_length() < 2:
        return None
    dim = shape[shape.rank.get_length() - 1]
    return dim.get_length() if dim.is_static else None


def find_block_stacks(model, hidden_size: int | None = None) -> dict[str, BlockStack]:
    """Every block stack of ``model`` (an ``ov.Model`` read from disk) with each block's output tensor.

    ``hidden_size`` (from config.json) fixes the model width; without it the width is the last
    dimension common to every block boundary. A stack whose boundaries cannot be found is left out
    (the caller reports that no block was judged, never a pass).
    """
    ops = list(model.get_ordered_ops())
    order = {id(op): k for k, op in enumerate(ops)}
    live: set[int] = set()  # ops that depend on a model input: activations, not folded constants
    for op in ops:
        if op.get_type_name() == "Parameter" or any(id(v.get_node()) in live for v in op.input_values()):
            live.add(id(op))
    scope = {id(op): scope_of(op.get_friendly_name()) for op in ops}
    indices: dict[str, set[int]] = {}
    for s in scope.values():
        if s is not None:
            indices.setdefault(s[0], set()).add(s[1])
    stacks = {path: len(ix) for path, ix in indices.items() if len(ix) >= 2 and sorted(ix) == list(range(len(ix)))}
    # boundary candidates: (producer scope, consumer scope or None for "outside any block of the stack")
    crossing: dict[str, dict[tuple[int, int], list]] = {p: {} for p in stacks}
    for op in ops:
        if id(op) not in live:
            continue
        src = scope[id(op)]
        for port, out in enumerate(op.outputs()):
            if not out.get_element_type().is_real():
                continue
            for target in out.get_target_inputs():
                consumer = target.get_node()
                if consumer.get_type_name() in NON_DATA_CONSUMERS and consumer.get_type_name() != "Result":
                    continue
                dst = scope[id(consumer)]
                for path in stacks:
                    a = src[1] if src is not None and src[0] == path else None
                    b = dst[1] if dst is not None and dst[0] == path else None
                    if a == b:
                        continue
                    if consumer.get_type_name() == "Result" and a is None:
                        continue
                    key = (-1 if a is None else a, -1 if b is None else b)
                    bucket = crossing[path].setdefault(key, [])
                    if (op, port) not in [(o, p) for o, p, _ in bucket]:
                        bucket.append((op, port, out))
    result: dict[str, BlockStack] = {}
    for path, n in stacks.items():
        found = _stack_outputs(path, n, crossing[path], order, hidden_size)
        if found is not None:
            result[path] = found
    return result


def _stack_outputs(path: str, n: int, crossing: dict, order: dict, hidden_size: int | None) -> BlockStack | None:
    per_block = []
    for i in range(n):
        if i + 1 < n:
            cands = list(crossing.get((i, i + 1), []))
        else:  # last block: consumed by an op outside the stack (final norm, pooler) or the model output
            cands = list(crossing.get((i, -1), []))
        per_block.append([c for c in cands if _last_dim(c[2]) is not None])
    width = hidden_size
    if width is None:
        common = set.intersection(*[{_last_dim(c[2]) for c in cands} for cands in per_block]) if per_block else set()
        if not common:
            return None
        width = max(common)
    blocks = []
    for i, cands in enumerate(per_block):
        cands = sorted((c for c in cands if _last_dim(c[2]) == width), key=lambda c: order[id(c[0])])
        if not cands:
            return None
        op, port, _ = cands[-1]
        blocks.append(BlockOutput(i, op.get_friendly_name(), port, len(cands)))
    emb_cands = sorted((c for c in crossing.get((-1, 0), []) if _last_dim(c[2]) == width
                        and c[0].get_type_name() not in ("Parameter", "Constant")), key=lambda c: order[id(c[0])])
    embedding = None
    notes = []
    if emb_cands:
        op, port, _ = emb_cands[-1]
        embedding = BlockOutput(-1, op.get_friendly_name(), port, len(emb_cands))
        if len(emb_cands) > 1:
            notes.append(f"embedding output ambiguous ({len(emb_cands)} candidates): not compared")
    else:
        notes.append("no embedding output found before block 0")
    return BlockStack(path, width, blocks, embedding, notes)


def main_stack(stacks: dict[str, BlockStack], prefer: str | None = None) -> BlockStack | None:
    """The stack to judge: ``prefer`` when present, else the deepest (ties: the lexically first path)."""
    if prefer and prefer in stacks:
        return stacks[prefer]
    if not stacks:
        return None
    return sorted(stacks.values(), key=lambda s: (-len(s.blocks), s.path))[0]


def _by_name(model) -> dict:
    return {op.get_friendly_name(): op for op in model.get_ordered_ops()}


def _output_index(model, node_name: str, port: int) -> int:
    for j, result in enumerate(model.outputs):
        src = result.get_node().input_value(0)
        if src.get_node().get_friendly_name() == node_name and src.get_index() == port:
            return j
    raise KeyError(f"{node_name}:{port} is not an output")


def expose(model, outputs: list[BlockOutput], gather_positions: bool = False):
    """A copy of ``model`` with ``outputs`` added as model outputs.

    With ``gather_positions`` every added output is ``Gather(h, mg_positions, axis=1)``: the plugin
    then keeps only the positions fed in the new ``mg_positions`` input (i64, 1-D, positions within
    the current call), so memory does not grow with the prompt. Returns (model, {index: output
    position in the copy's outputs}).
    """
    import openvino as ov
    from openvino import opset13 as opset

    copy = model.clone()
    nodes = _by_name(copy)
    tensors = [nodes[o.node].output(o.port) for o in outputs]
    if not gather_positions:
        copy.add_outputs(tensors)
        return copy, {o.index: _output_index(copy, o.node, o.port) for o in outputs}
    positions = ov.op.Parameter(ov.Type.i64, ov.PartialShape([-1]))
    positions.set_friendly_name(POSITIONS_INPUT)
    positions.output(0).get_tensor().set_names({POSITIONS_INPUT})
    axis = opset.constant(1, ov.Type.i64)
    first = len(copy.outputs)
    copy.add_outputs([opset.gather(t, positions, axis).output(0) for t in tensors])
    copy.add_parameters([positions])
    copy.validate_nodes_and_infer_types()
    return copy, {o.index: first + k for k, o in enumerate(outputs)}


def decouple(model, stack: BlockStack):
    """A copy of ``model`` whose blocks read their input from new Parameters instead of the previous block.

    Block i's input edges from the previous tensor (block i-1's output, or the embedding output for
    block 0) are replaced by a Parameter named ``mg_block_input_<i>``; so are the edges from the last
    block into what follows the stack (final norm, head), under index N = number of blocks. Every
    block's output is added as a model output. Returns (model, {block index: input name},
    {block index: output position}). A block whose input could not be rewired is absent from the
    input map (its error then accumulates: the caller leaves it out).
    """
    import openvino as ov

    copy = model.clone()
    nodes = _by_name(copy)
    scope = {op.get_friendly_name(): scope_of(op.get_friendly_name()) for op in copy.get_ordered_ops()}
    producers = ([stack.embedding] if stack.embedding is not None and stack.embedding.unique else []) + stack.blocks
    copy.add_outputs([nodes[b.node].output(b.port) for b in stack.blocks])
    out_index = {b.index: _output_index(copy, b.node, b.port) for b in stack.blocks}
    n = len(stack.blocks)
    params, inputs = [], {}
    for prev in producers:
        consumer_block = prev.index + 1
        tensor = nodes[prev.node].output(prev.port)
        if consumer_block < n:
            targets = [t for t in tensor.get_target_inputs()
                       if scope.get(t.get_node().get_friendly_name()) == (stack.path, consumer_block)]
        else:  # the head: consumers outside the stack that are not outputs or state writes
            targets = [t for t in tensor.get_target_inputs()
                       if t.get_node().get_type_name() not in NON_DATA_CONSUMERS
                       and (scope.get(t.get_node().get_friendly_name()) or (None,))[0] != stack.path]
        if not targets:
            continue
        name = f"{DECOUPLED_INPUT_PREFIX}{consumer_block}"
        param = ov.op.Parameter(tensor.get_element_type(), tensor.get_partial_shape())
        param.set_friendly_name(name)
        param.output(0).get_tensor().set_names({name})
        for target in targets:
            target.replace_source_output(param.output(0))
        params.append(param)
        inputs[consumer_block] = name
    copy.add_parameters(params)
    copy.validate_nodes_and_infer_types()
    return copy, inputs, out_index
