"""Contract invariants I-1..I-5 of an OpenVINO IR against its safetensors source: the pure decisions.

The observing half (``modelgate.certify.invariants_observe``) reads the IR, the safetensors and both
tokenizers and hands plain dicts to these functions. Each returns
``{"pass": bool, "reason": str, "measured": ..., "threshold": ...}``. No vacuous passes:
nothing compared (no tensors, no prompts, empty token lists on both sides) is a failure.
"""
from __future__ import annotations

import re

from modelgate.gates.values import gt_tol, is_number, lt_tol

# I-1: per format, first-step logits of the IR vs the source and whole greedy sequences.
#   max_rel_logit_diff: max |ir - src| / (max(src) - min(src)) over prompts
#   min_top1_agreement: fraction of prompts whose first greedy token agrees
#   min_sequence_match: fraction of prompts whose whole greedy continuation is identical
ROUNDTRIP_TOLERANCE = {
    "openvino-fp32": {"max_rel_logit_diff": 1e-3, "min_top1_agreement": 1.0, "min_sequence_match": 1.0},
    "openvino-fp16": {"max_rel_logit_diff": 3e-2, "min_top1_agreement": 1.0, "min_sequence_match": 0.8},
    "openvino-int8": {"max_rel_logit_diff": 0.05, "min_top1_agreement": 0.8, "min_sequence_match": 0.5},
    "openvino-int4": {"max_rel_logit_diff": 0.2, "min_top1_agreement": 0.6, "min_sequence_match": 0.3},
}

# I-3: element types a format promises for its weight constants (share of weight parameters).
PRECISION_PROMISE = {
    "openvino-fp32": {"allowed": ["f32"], "primary": ["f32"], "min_primary_share": 1.0},
    "openvino-fp16": {"allowed": ["f16"], "primary": ["f16"], "min_primary_share": 1.0},
    "openvino-int8": {"allowed": ["u8", "i8"], "primary": ["u8", "i8"], "min_primary_share": 1.0},
    # int4 keeps some layers (embeddings, head) in 8 bit in optimum's default mixed mode
    "openvino-int4": {"allowed": ["u4", "i4", "nf4", "u8", "i8"], "primary": ["u4", "i4", "nf4"],
                      "min_primary_share": 0.3},
}

# I-4: per format, how far the dequantized IR tensor statistics may drift from the source:
#   relative to the source tensor's std (mean, min, max) and to itself (std).
STAT_TOLERANCE = {
    "openvino-fp32": {"mean": 1e-5, "std": 1e-5, "min": 1e-5, "max": 1e-5},
    "openvino-fp16": {"mean": 2e-3, "std": 2e-3, "min": 5e-3, "max": 5e-3},
    "openvino-int8": {"mean": 0.02, "std": 0.02, "min": 0.05, "max": 0.05},
    "openvino-int4": {"mean": 0.1, "std": 0.15, "min": 0.35, "max": 0.35},
}

# I-2: IR constants with no source counterpart that are explained (non-parameter buffers).
EXPLAINED_EXTRA_PATTERNS = (r"rotary_emb", r"inv_freq", r"position_ids", r"attention_mask", r"causal_mask")

STAT_KEYS = ("mean", "std", "min", "max")
# fp16 exports name a weight ``<name>_compressed`` (the f16 constant before its Convert)
COMPRESSED_SUFFIX = "_compressed"


def _result(ok: bool, reason: str, measured, threshold) -> dict:
    return {"pass": bool(ok), "reason": reason, "measured": measured, "threshold": threshold}


def _known(table: dict, fmt: str) -> dict:
    if fmt not in table:
        raise ValueError(f"no tolerance for format {fmt!r}; known: {sorted(table)}")
    return table[fmt]


# --------------------------------------------------------------------------- I-1

def i1_roundtrip(prompts, fmt: str, tolerance: dict | None = None) -> dict:
    """I-1 round-trip identity. ``prompts``: list of ``{"src_logits": [...], "ir_logits": [...],
    "src_tokens": [...], "ir_tokens": [...]}`` (first-step logits, greedy continuations)."""
    tol = dict(_known(ROUNDTRIP_TOLERANCE, fmt), **(tolerance or {}))
    if not isinstance(prompts, list) or not prompts:
        return _result(False, "no prompts were compared", None, tol)
    diffs, top1, seq = [], 0, 0
    for i, p in enumerate(prompts):
        src, ir = p.get("src_logits"), p.get("ir_logits")
        st, it = p.get("src_tokens"), p.get("ir_tokens")
        if not (isinstance(src, list) and isinstance(ir, list) and src and len(src) == len(ir)):
            return _result(False, f"prompt {i}: logits missing or of different length", None, tol)
        if not all(is_number(v) for v in src) or not all(is_number(v) for v in ir):
            return _result(False, f"prompt {i}: non-finite logits", None, tol)
        if not (isinstance(st, list) and isinstance(it, list)) or not st:
            return _result(False, f"prompt {i}: empty ground-truth continuation (nothing to compare)", None, tol)
        span = max(src) - min(src)
        if span <= 0:
            return _result(False, f"prompt {i}: source logits are constant", None, tol)
        diffs.append(max(abs(a - b) for a, b in zip(src, ir)) / span)
        top1 += int(src.index(max(src)) == ir.index(max(ir)))
        seq += int(st == it)
    n = len(prompts)
    measured = {"max_rel_logit_diff": max(diffs), "top1_agreement": top1 / n, "sequence_match": seq / n,
                "prompts": n}
    fails = []
    if gt_tol(measured["max_rel_logit_diff"], tol["max_rel_logit_diff"]):
        fails.append(f"logit diff {measured['max_rel_logit_diff']:.2e} > {tol['max_rel_logit_diff']:.2e}")
    for key, lim in (("top1_agreement", "min_top1_agreement"), ("sequence_match", "min_sequence_match")):
        if lt_tol(measured[key], tol[lim]):
            fails.append(f"{key} {measured[key]:.3f} < {tol[lim]}")
    if fails:
        return _result(False, "round trip diverges: " + "; ".join(fails), measured, tol)
    return _result(True, f"{n} prompts: logit diff {measured['max_rel_logit_diff']:.2e}, top-1 "
                         f"{measured['top1_agreement']:.2f}, sequences {measured['sequence_match']:.2f}", measured, tol)


# --------------------------------------------------------------------------- I-2

def normalize_ir_name(name: str) -> str:
    """IR constant name -> source tensor name (optimum prefixes ``self.``; compressed
    constants may carry a ``/suffix``, fp16 ones ``_compressed``)."""
    name = name.split("/")[0] if not name.startswith("__module") else name
    name = name[:-len(COMPRESSED_SUFFIX)] if name.endswith(COMPRESSED_SUFFIX) else name
    return name[5:] if name.startswith("self.") else name


def i2_bijection(source: dict, ir: list, extra_patterns=EXPLAINED_EXTRA_PATTERNS) -> dict:
    """I-2 tensor name bijection. ``source``: ``{name: shape}`` of every source tensor; ``ir``:
    ``[{"name", "shape"}]`` of the IR's weight constants.

    Every source tensor of rank >= 2 must map to one IR constant of the same element count.
    An IR constant with no source name is explained only if it is a non-parameter buffer
    (``extra_patterns``) or a reshaped 1-D source tensor (e.g. a norm weight) of equal size.
    """
    if not isinstance(source, dict) or not source or not isinstance(ir, list) or not ir:
        return _result(False, "nothing to compare: source or IR tensor list is empty",
                       {"source": len(source or {}), "ir": len(ir or [])}, "bijection")

    def numel(shape):
        n = 1
        for d in shape:
            n *= int(d)
        return n

    matrices = {k: v for k, v in source.items() if len(v) >= 2}
    vectors = {k: numel(v) for k, v in source.items() if len(v) < 2}
    by_name: dict[str, dict] = {}
    for c in ir:
        by_name.setdefault(normalize_ir_name(c["name"]), c)
    missing, size_mismatch = [], []
    for k, shape in matrices.items():
        c = by_name.get(k)
        if c is None:
            missing.append(k)
        elif numel(c["shape"]) != numel(shape):
            size_mismatch.append(k)
    unmatched_vectors = sorted(vectors.values())
    unexplained = []
    for c in ir:
        n = normalize_ir_name(c["name"])
        if n in matrices or n in vectors:
            continue
        if any(re.search(p, c["name"]) for p in extra_patterns):
            continue
        size = numel(c["shape"])
        if size in unmatched_vectors:
            unmatched_vectors.remove(size)  # each 1-D source tensor explains one constant
            continue
        unexplained.append(c["name"])
    measured = {"source_weights": len(matrices), "ir_weights": len(ir), "missing": missing[:20],
                "size_mismatch": size_mismatch[:20], "unexplained_extra": unexplained[:20]}
    if not matrices:
        return _result(False, "source has no weight tensors of rank >= 2", measured, "bijection")
    if missing or size_mismatch or unexplained:
        return _result(False, f"{len(missing)} source weights missing from the IR, {len(size_mismatch)} of a "
                              f"different size, {len(unexplained)} unexplained IR constants", measured, "bijection")
    return _result(True, f"all {len(matrices)} source weights map to IR constants; no unexplained extras",
                   measured, "bijection")


# --------------------------------------------------------------------------- I-3

def i3_no_silent_fallback(fmt: str, precision_counts: dict) -> dict:
    """I-3: the IR's weight precisions are what the format promises. ``precision_counts``:
    ``{element_type: {"count", "params"}}`` of weight constants (``ir.layer_precision_counts``)."""
    promise = _known(PRECISION_PROMISE, fmt)
    if not isinstance(precision_counts, dict) or not precision_counts:
        return _result(False, "the IR has no weight constants", None, promise)
    total = 0
    for et, v in precision_counts.items():
        p = v.get("params") if isinstance(v, dict) else None
        if not isinstance(p, int) or p < 0:
            return _result(False, f"parameter count for {et} missing", None, promise)
        total += p
    if total == 0:
        return _result(False, "the IR's weight constants hold no parameters", None, promise)
    shares = {et: v["params"] / total for et, v in precision_counts.items()}
    foreign = sorted(et for et in precision_counts if et not in promise["allowed"])
    primary = sum(s for et, s in shares.items() if et in promise["primary"])
    measured = {"shares": {k: round(v, 6) for k, v in shares.items()}, "primary_share": round(primary, 6)}
    if foreign:
        return _result(False, f"weights in {foreign}, which {fmt} does not promise (silent fallback)", measured,
                       promise)
    if lt_tol(primary, promise["min_primary_share"]):
        return _result(False, f"only {primary:.1%} of weights in {promise['primary']} "
                              f"(< {promise['min_primary_share']:.0%})", measured, promise)
    return _result(True, f"weights in {sorted(precision_counts)} as {fmt} promises ({primary:.1%} primary)",
                   measured, promise)


# --------------------------------------------------------------------------- I-4

def i4_statistics(pairs, fmt: str, tolerance: dict | None = None) -> dict:
    """I-4 statistical preservation. ``pairs``: ``[{"name", "src": {mean,std,min,max}, "ir": {...}}]``
    of the dequantized IR weight vs its source tensor. Drift of mean/min/max is measured in units
    of the source std; drift of std relative to the source std."""
    tol = dict(_known(STAT_TOLERANCE, fmt), **(tolerance or {}))
    if not isinstance(pairs, list) or not pairs:
        return _result(False, "no tensor pairs were compared", None, tol)
    worst = dict.fromkeys(STAT_KEYS, (0.0, None))
    for p in pairs:
        src, ir = p.get("src"), p.get("ir")
        if not isinstance(src, dict) or not isinstance(ir, dict) or \
                not all(is_number(src.get(k)) and is_number(ir.get(k)) for k in STAT_KEYS):
            return _result(False, f"{p.get('name')}: statistics missing or non-finite", None, tol)
        scale = src["std"]
        if scale <= 0:
            scale = max(abs(src["max"]), abs(src["min"]), 1e-12)  # constant tensor: compare in its own units
        for k in STAT_KEYS:
            d = abs(ir[k] - src[k]) / scale
            if d > worst[k][0]:
                worst[k] = (d, p.get("name"))
    measured = {k: {"drift": v[0], "tensor": v[1]} for k, v in worst.items()}
    measured["tensors"] = len(pairs)
    fails = [f"{k} drift {worst[k][0]:.3g} > {tol[k]} ({worst[k][1]})" for k in STAT_KEYS
             if gt_tol(worst[k][0], tol[k])]
    if fails:
        return _result(False, "statistics drift: " + "; ".join(fails), measured, tol)
    return _result(True, f"{len(pairs)} tensors within tolerance (worst std drift {worst['std'][0]:.2e})",
                   measured, tol)


# --------------------------------------------------------------------------- I-5

def i5_tokenizer_roundtrip(samples) -> dict:
    """I-5: HF and openvino-tokenizers agree. ``samples``: ``[{"text", "hf_ids", "ov_ids",
    "hf_text", "ov_text"}]`` (ids of the text, decoded text of those ids)."""
    if not isinstance(samples, list) or not samples:
        return _result(False, "no texts were tokenized", None, "identical ids and text")
    id_mismatch, text_mismatch = [], []
    for i, s in enumerate(samples):
        hf, ov = s.get("hf_ids"), s.get("ov_ids")
        if not isinstance(hf, list) or not isinstance(ov, list):
            return _result(False, f"sample {i}: token ids missing", None, "identical ids and text")
        if not hf and not ov:
            return _result(False, f"sample {i} ({s.get('text')!r}): both tokenizers returned no ids "
                                  "(empty vs empty proves nothing)", None, "identical ids and text")
        if hf != ov:
            id_mismatch.append(i)
        if s.get("hf_text") != s.get("ov_text"):
            text_mismatch.append(i)
    measured = {"samples": len(samples), "id_mismatch": id_mismatch, "text_mismatch": text_mismatch}
    if id_mismatch or text_mismatch:
        return _result(False, f"{len(id_mismatch)} id and {len(text_mismatch)} text mismatches of "
                              f"{len(samples)} samples", measured, "identical ids and text")
    return _result(True, f"{len(samples)} samples: identical ids and decoded text", measured,
                   "identical ids and text")
