"""Simulate an IR's weight format on its source model: the noise a *good* export of that format has.

A good fp16 export differs from its source because every float constant was rounded to f16 (the
weights, the norms, and buffers such as the rotary ``inv_freq``, whose rounding makes a good fp16
rotary model drift with position); a good int8/int4 export because NNCF rounded each weight to a
grid. Applying the same rounding to the source's tensors and running it predicts the good IR's
per-block error to two digits (measured on llama, gpt2, bert, MiniLM, trained llama: fp16, int8,
int4). The gate's limits are a margin times that prediction: they adapt to the model (good int8
per-block noise ranges 4e-3 to 2e-2 across models) instead of one number per format.

The format's *structure* is read from the IR (element types, group size from the scale shapes,
zero points or not, which weights stayed int8); its *values* never are: the source is rounded
afresh, so a wrong scale in the IR stays an error. Data-aware int4 (AWQ, scale estimation, GPTQ)
cannot be reproduced without its data; round-to-nearest is then an upper bound (those methods
beat it), i.e. the limit is looser, never stricter.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

INT_BITS = {"u8": 8, "i8": 8, "u4": 4, "i4": 4, "nf4": 4}


@dataclass(frozen=True)
class FormatSpec:
    """How an IR stores its weights, enough to re-create the rounding on the source."""
    weight_format: str               # fp32 | fp16 | int8 | int4
    float_storage: str = "f32"       # element type of the float constants that are not quantized
    bits: int | None = None          # bits of the block weights (8 or 4), None when not quantized
    group_size: int = -1             # -1: one scale per output channel
    symmetric: bool = False
    embedding_bits: int | None = None  # embeddings and the head (int4 IRs keep them int8)
    scale_storage: str = "f16"

    def to_dict(self) -> dict:
        return asdict(self)


def spec_from_ir(xml) -> FormatSpec:
    """Read the weight format of an IR from its constants (see ``modelgate.openvino.ir``)."""
    from modelgate.openvino import ir

    consts = ir.weight_constants(xml)
    weights = [c for c in consts if c["role"] == "weight"]
    quantized = [c for c in weights if c["element_type"] in INT_BITS]
    has_zero_point = any(c["role"] == "zero_point" for c in consts)
    scale_types = Counter(c["element_type"] for c in consts if c["role"] == "scale")
    floats = Counter(c["element_type"] for c in consts
                     if c["role"] in ("weight", "other") and c["element_type"] in ("f32", "f16", "bf16")
                     and c["numel"] > 1)
    float_storage = "f16" if floats.get("f16", 0) > floats.get("f32", 0) else "f32"
    if not quantized:
        fmt = "fp16" if float_storage == "f16" else "fp32"
        return FormatSpec(fmt, float_storage)
    bits = Counter(INT_BITS[c["element_type"]] for c in quantized)
    main = min(bits) if bits.get(4) else 8
    group = -1
    groups = Counter(c["shape"][-1] for c in quantized if INT_BITS[c["element_type"]] == main and len(c["shape"]) == 3)
    if groups:
        group = groups.most_common(1)[0][0]
    gathers = [c for c in quantized if c["consumer"] == "Gather"]
    emb_bits = INT_BITS[gathers[0]["element_type"]] if gathers else (8 if bits.get(8) else main)
    return FormatSpec("int4" if main == 4 else "int8", float_storage, main, group, not has_zero_point, emb_bits,
                      scale_types.most_common(1)[0][0] if scale_types else "f16")


def _round_to(tensor, storage: str):
    import torch
    dtype = {"f16": torch.float16, "bf16": torch.bfloat16}.get(storage)
    return tensor if dtype is None else tensor.to(dtype).to(tensor.dtype)


def quantize_dequantize(weight, input_axis: int, bits: int, group_size: int, symmetric: bool,
                        scale_storage: str = "f16"):
    """NNCF's integer weight rounding along the input axis (per output channel or per group), undone.

    Asymmetric: range [min(0, w_min), max(0, w_max)] on 2^b levels, zero point rounded; symmetric:
    scale from the largest magnitude over 2^(b-1). Codes use the f32 scale, the dequantization the
    scale as the IR stores it (f16): what the runtime multiplies.
    """
    import torch

    w = weight.detach().float()
    if input_axis == 0:
        w = w.t()
    out_features, in_features = w.shape
    g = group_size if group_size and group_size > 0 and in_features % group_size == 0 else in_features
    x = w.reshape(out_features, in_features // g, g)
    eps = torch.finfo(torch.float32).eps
    if symmetric:
        factor = 2 ** (bits - 1)
        lo_abs = x.amin(-1, keepdim=True).abs()
        hi = x.amax(-1, keepdim=True)
        scale = torch.where(lo_abs >= hi, lo_abs, -hi) / factor
        scale = torch.where(scale.abs() < eps, torch.full_like(scale, eps), scale)
        q = torch.clamp(torch.round(x / scale), -factor, factor - 1)
        deq = q * _round_to(scale, scale_storage)
    else:
        levels = 2 ** bits - 1
        lo = torch.minimum(x.amin(-1, keepdim=True), torch.zeros(1))
        hi = torch.maximum(x.amax(-1, keepdim=True), torch.zeros(1))
        scale = (hi - lo) / levels
        scale = torch.where(scale.abs() < eps, torch.full_like(scale, eps), scale)
        zero_point = torch.clamp(-torch.round(lo / scale), 0, levels)
        q = torch.clamp(torch.round(x / scale + zero_point), 0, levels)
        deq = (q - zero_point) * _round_to(scale, scale_storage)
    deq = deq.reshape(out_features, in_features)
    return (deq.t() if input_axis == 0 else deq).to(weight.dtype)


def _weight_modules(model):
    """(name, module, weight, input axis, is embedding-like) of every matmul/gather weight of a torch model."""
    import torch

    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # transformers without GPT-2's Conv1D: nothing of that kind to find
        Conv1D = ()
    out = []
    for name, mod in model.named_modules():
        w = getattr(mod, "weight", None)
        if not isinstance(w, torch.nn.Parameter) or w.dim() < 2:
            continue
        if isinstance(mod, torch.nn.Embedding):
            out.append((name, mod, w, 1, True))
        elif isinstance(mod, torch.nn.Linear):
            out.append((name, mod, w, 1, False))
        elif Conv1D and isinstance(mod, Conv1D):
            out.append((name, mod, w, 0, False))
        elif isinstance(mod, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)):
            out.append((name, mod, w, 1, False))
    return out


def simulate(model, spec: FormatSpec) -> dict:
    """Round the model's tensors in place the way the IR of ``spec`` stores them. Returns what was done.

    The output head (the model's output embeddings) and every embedding use ``embedding_bits``;
    a tied weight is rounded once, as its embedding.
    """
    import torch

    done = Counter()
    if spec.weight_format == "fp32":
        return {"rounded": {}}
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    head_weight = getattr(head, "weight", None)
    seen: set[int] = set()
    with torch.no_grad():
        if spec.bits:
            mods = _weight_modules(model)
            embedding_ids = {id(w) for _, _, w, _, emb in mods if emb} | ({id(head_weight)} if head_weight is not None
                                                                           else set())
            for _, _mod, w, axis, _ in mods:
                if id(w) in seen:
                    continue
                seen.add(id(w))
                is_emb = id(w) in embedding_ids
                bits = (spec.embedding_bits or spec.bits) if is_emb else spec.bits
                group = -1 if bits == 8 else spec.group_size
                flat = w.data.reshape(w.shape[0], -1) if w.dim() > 2 else w.data
                # a backup precision (int8 embeddings of an int4 IR) is NNCF's default INT8_ASYM
                symmetric = spec.symmetric if bits == spec.bits else False
                new = quantize_dequantize(flat, axis, bits, group, symmetric, spec.scale_storage)
                w.data.copy_(new.reshape(w.shape))
                done[f"int{bits}"] += 1
        if spec.float_storage in ("f16", "bf16"):
            for p in model.parameters():
                if id(p) not in seen and p.is_floating_point():
                    p.data.copy_(_round_to(p.data, spec.float_storage))
                    done[spec.float_storage] += 1
            for b in model.buffers():
                if b.is_floating_point():
                    b.copy_(_round_to(b, spec.float_storage))
                    done[f"{spec.float_storage} buffer"] += 1
    return {"rounded": dict(done)}
