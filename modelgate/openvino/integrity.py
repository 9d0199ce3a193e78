"""Artifact integrity: the IR's .bin is complete, config.json beside the IR agrees with the shapes
inside the IR, and the IR's config agrees with the source config.

The .bin check parses the .xml with the standard library only (no OpenVINO), so it runs before
anything tries to read a truncated file. Shape checks read the IR with OpenVINO (``ir.weight_constants``).
"""
from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

# config.json aliases per architectural quantity (data, not if-chains)
CONFIG_ALIASES = {
    "hidden_size": ("hidden_size", "n_embd", "d_model", "dim"),
    "num_hidden_layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "vocab_size": ("vocab_size",),
}
# config keys that define the architecture: IR config.json must carry the source's values
ARCH_KEYS = ("architectures", "model_type", "hidden_size", "n_embd", "d_model", "num_hidden_layers", "n_layer",
             "num_layers", "num_attention_heads", "n_head", "num_key_value_heads", "intermediate_size", "n_inner",
             "d_ff", "vocab_size", "max_position_embeddings", "n_positions", "head_dim", "tie_word_embeddings",
             "num_labels", "type_vocab_size")
# layer index inside weight names: model.layers.3. / transformer.h.3. / encoder.layer.3. / block.3.
LAYER_INDEX = re.compile(r"\.(?:layers|h|layer|block|blocks)\.(\d+)\.")


def bin_integrity(xml: str | os.PathLike) -> dict:
    """Compare the .bin size with the byte ranges the .xml's Const layers reference."""
    xml = Path(xml)
    binp = xml.with_suffix(".bin")
    out = {"xml": str(xml), "bin": str(binp), "bin_exists": binp.is_file(), "xml_parses": True,
           "bin_bytes": binp.stat().st_size if binp.is_file() else 0, "expected_min_bytes": 0, "consts": 0}
    try:
        root = ET.parse(xml).getroot()
    except (ET.ParseError, OSError) as exc:
        out.update(xml_parses=False, error=f"{type(exc).__name__}: {exc}")
        return out
    end = 0
    for layer in root.iter("layer"):
        if layer.get("type") != "Const":
            continue
        data = layer.find("data")
        if data is None or data.get("offset") is None:
            continue
        end = max(end, int(data.get("offset")) + int(data.get("size", 0)))
        out["consts"] += 1
    out["expected_min_bytes"] = end
    return out


def _alias(cfg: dict, key: str):
    for k in CONFIG_ALIASES[key]:
        if isinstance(cfg.get(k), int) and not isinstance(cfg.get(k), bool):
            return cfg[k]
    return None


def ir_shapes(xml_or_model, task: str | None = None) -> dict:
    """Architectural quantities measured inside the IR: hidden size and vocab rows (token embedding),
    number of layers (KV-cache states / 2, else layer indices in weight names), logits width."""
    from modelgate.openvino import ir

    model = ir.read_model(xml_or_model)
    consts = ir.weight_constants(model)
    gathers = []
    for op in model.get_ordered_ops():
        shape = list(op.get_shape()) if op.get_type_name() == "Constant" else []
        if len(shape) == 2 and "Gather" in _consumers(op):
            gathers.append({"name": op.get_friendly_name(), "shape": [int(d) for d in shape],
                            "numel": int(shape[0]) * int(shape[1]), "token_ids": _indexed_by_input_ids(op)})
    # the token embedding is the table indexed by input_ids (a position table can be larger than it:
    # a model with more positions than vocabulary entries); the largest table only as a fallback
    emb = max(gathers, key=lambda c: (c["token_ids"], c["numel"]), default=None)
    states = sum(1 for op in model.get_ordered_ops() if op.get_type_name() == "ReadValue")
    idx = {int(m.group(1)) for c in consts for m in [LAYER_INDEX.search(c["name"])] if m}
    layers = states // 2 if states else (max(idx) + 1 if idx else None)
    out_last = None
    for o in model.outputs:
        ps = o.get_partial_shape()
        if ps.rank.is_static and ps.rank.get_length() >= 2 and ps[ps.rank.get_length() - 1].is_static:
            out_last = ps[ps.rank.get_length() - 1].get_length()
            break
    return {"hidden_size": emb["shape"][1] if emb else None, "embedding_rows": emb["shape"][0] if emb else None,
            "embedding_name": emb["name"] if emb else None, "num_hidden_layers": layers,
            "kv_states": states, "logits_width": out_last}


def _indexed_by_input_ids(const, depth: int = 8) -> bool:
    """Whether a table constant is gathered (through decompression ops) with indices that come from the
    ``input_ids`` parameter."""
    from modelgate.openvino.ir import PASS_THROUGH_OPS
    frontier, gathers = [const], []
    for _ in range(depth):
        nxt = []
        for node in frontier:
            for out in node.outputs():
                for tgt in out.get_target_inputs():
                    consumer = tgt.get_node()
                    if consumer.get_type_name() == "Gather" and tgt.get_index() == 0:
                        gathers.append(consumer)
                    elif consumer.get_type_name() in PASS_THROUGH_OPS or consumer.get_type_name() in (
                            "Subtract", "Multiply"):
                        nxt.append(consumer)
        frontier = nxt
    for gather in gathers:
        todo, seen = [gather.input_value(1).get_node()], 0
        while todo and seen < 32:
            node = todo.pop()
            seen += 1
            if node.get_type_name() == "Parameter":
                if any("input_ids" in n for n in node.get_output_tensor(0).get_names()):
                    return True
                continue
            todo.extend(v.get_node() for v in node.input_values())
    return False


def _consumers(op, depth: int = 8) -> set[str]:
    """Op types a constant reaches through decompression/layout ops (every branch: a tied
    embedding feeds both a Gather and the head's MatMul)."""
    from modelgate.openvino.ir import PASS_THROUGH_OPS
    found, frontier = set(), [op]
    for _ in range(depth):
        nxt = []
        for node in frontier:
            for out in node.outputs():
                for tgt in out.get_target_inputs():
                    consumer = tgt.get_node()
                    kind = consumer.get_type_name()
                    if kind in PASS_THROUGH_OPS or (kind in ("Subtract", "Multiply") and tgt.get_index() == 0):
                        nxt.append(consumer)
                    else:
                        found.add(kind)
        if not nxt:
            break
        frontier = nxt
    return found


def config_vs_ir(cfg: dict, shapes: dict, causal_lm: bool) -> list[dict]:
    """Disagreements between config.json beside the IR and the shapes inside it."""
    diffs = []
    pairs = [("hidden_size", shapes.get("hidden_size")), ("num_hidden_layers", shapes.get("num_hidden_layers")),
             ("vocab_size", shapes.get("embedding_rows"))]
    if causal_lm:
        pairs.append(("vocab_size", shapes.get("logits_width")))
    for key, measured in pairs:
        declared = _alias(cfg, key)
        if declared is not None and measured is not None and declared != measured:
            diffs.append({"key": key, "config": declared, "ir": measured})
    return diffs


def config_vs_source(ir_cfg: dict, src_cfg: dict) -> list[dict]:
    """Architectural keys whose value in the IR's config.json differs from the source config."""
    return [{"key": k, "config": ir_cfg[k], "source": src_cfg[k]}
            for k in ARCH_KEYS if k in ir_cfg and k in src_cfg and ir_cfg[k] != src_cfg[k]]


def read_config(folder: str | os.PathLike) -> dict | None:
    """config.json of a folder, or None when absent; raises ValueError when it is not a JSON object."""
    p = Path(folder) / "config.json"
    if not p.is_file():
        return None
    cfg = json.loads(p.read_text(encoding="utf-8"))
    if not isinstance(cfg, dict):
        raise ValueError(f"{p} is not a JSON object")
    return cfg


# float element types whose constants are scanned for NaN/Inf (numpy dtype names)
FLOAT_ELEMENTS = {"f32": "float32", "f16": "float16", "f64": "float64"}
SCAN_CHUNK = 1 << 24  # elements per slice, so a large weight never doubles memory


def nonfinite_weights(xml: str | os.PathLike, limit: int = 5) -> dict:
    """Scan every floating-point Const (weights, scales, biases) for NaN/Inf through a memory map.

    A broken cast or a corrupted scale can leave NaN/Inf in the weights that some kernels then
    clamp or skip, so the outputs alone do not always show it. Returns ``{"scanned", "nonfinite",
    "constants": [{name, nonfinite}] (at most ``limit``)}``.
    """
    import numpy as np

    xml = Path(xml)
    binp = xml.with_suffix(".bin")
    out = {"scanned": 0, "nonfinite": 0, "constants": []}
    if not binp.is_file() or binp.stat().st_size == 0:
        return out
    mm = np.memmap(binp, dtype=np.uint8, mode="r")
    for layer in ET.parse(xml).getroot().iter("layer"):
        data = layer.find("data")
        if layer.get("type") != "Const" or data is None or data.get("element_type") not in FLOAT_ELEMENTS:
            continue
        off, size = int(data.get("offset")), int(data.get("size"))
        arr = mm[off: off + size].view(FLOAT_ELEMENTS[data.get("element_type")])
        bad = sum(int((~np.isfinite(arr[i: i + SCAN_CHUNK])).sum()) for i in range(0, arr.size, SCAN_CHUNK))
        out["scanned"] += int(arr.size)
        if bad:
            out["nonfinite"] += bad
            if len(out["constants"]) < limit:
                out["constants"].append({"name": layer.get("name"), "nonfinite": bad})
    return out
