"""Observe the tensor invariants I-2..I-4 of an OpenVINO IR against its safetensors source.

I-1 reuses ``modelgate.openvino.infer`` (KV-cache greedy runs with logits) and I-5
``modelgate.openvino.tokenizer_parity``; see ``cells._contract_body``.

Runs inside a cell's child process. Returns plain dicts that the pure functions in
``modelgate.gates.invariants`` judge. Nothing here decides pass or fail.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from modelgate.certify.dequant import dequantized_weights, tensor_stats
from modelgate.gates.invariants import normalize_ir_name
from modelgate.openvino.ir import read_model, weight_constants

# texts for I-5: plain, digits, punctuation, unicode, leading/trailing spaces
TOKENIZER_TEXTS = ("the color of sky is", "What is 2+2? The answer is 4.", "hello world, this is a test!",
                   "  leading and trailing spaces  ", "naïve café ☕ 12345")


def source_tensors(source_dir: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of the source's safetensors files (float32)."""
    from safetensors.numpy import load_file

    files = sorted(Path(source_dir).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no .safetensors files in {source_dir}")
    out: dict[str, np.ndarray] = {}
    for f in files:
        try:
            for k, v in load_file(str(f)).items():
                out[k] = v.astype(np.float32)
        except TypeError:  # bf16 is not a numpy dtype: read through torch
            import torch
            from safetensors.torch import load_file as load_torch
            for k, v in load_torch(str(f)).items():
                out[k] = v.to(torch.float32).numpy()
    return out


def observe_tensors(source_dir: str, ir_dir: str) -> dict:
    """I-2, I-3 and I-4 observations: names/shapes, precisions of mapped weights, per-tensor stats."""
    src = source_tensors(source_dir)
    model = read_model(ir_dir)
    weights = [c for c in weight_constants(model) if c["role"] == "weight"]
    matrices = {k for k, v in src.items() if v.ndim >= 2}
    mapped = [c for c in weights if normalize_ir_name(c["name"]) in matrices]
    counts: dict[str, dict] = {}
    for c in mapped:
        slot = counts.setdefault(c["element_type"], {"count": 0, "bytes": 0, "params": 0})
        slot["count"] += 1
        slot["bytes"] += c["nbytes"]
        slot["params"] += c["numel"]
    deq = dequantized_weights(model, {c["name"] for c in mapped})
    pairs = []
    for name, arr in sorted(deq.items()):
        s = src[normalize_ir_name(name)]
        pairs.append({"name": name, "src": tensor_stats(s), "ir": tensor_stats(arr)})
    return {"source": {k: list(v.shape) for k, v in src.items()},
            "ir": [{"name": c["name"], "shape": c["shape"]} for c in weights],
            "precision_counts": counts, "stat_pairs": pairs}
