"""Array comparisons between the OpenVINO side and the source side -> a plain dict of metrics.

Logits are compared only where both sides saw the same context: the prompt plus the common
prefix of their greedy continuations (after a divergence the inputs differ and so must the
logits). Scale is measured on row-centred logits, because softmax ignores a per-row shift but
not a scale -- a head multiplied by a constant keeps argmax and cosine similarity, and only a
magnitude ratio exposes it.
"""
from __future__ import annotations

import math

EQUAL_LOGITS_ATOL = 1e-6


def _np():
    import numpy as np
    return np


def nonfinite_counts(arr) -> dict:
    """NaN / Inf / size / shape / dtype of one output tensor."""
    np = _np()
    a = np.asarray(arr)
    floating = a.dtype.kind in "fc"
    return {"shape": list(a.shape), "dtype": str(a.dtype), "size": int(a.size),
            "nan": int(np.isnan(a).sum()) if floating else 0, "inf": int(np.isinf(a).sum()) if floating else 0}


def _finite_float(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def compare_arrays(ov, src) -> dict:
    """Element-wise comparison of two same-shaped float arrays whose last axis is a class/vocab axis.

    Returns max_abs_err, rel_err (max_abs_err / max |src|), cosine_mean / cosine_min (per row of the
    last axis), top1_agreement (argmax over the last axis), scale_ratio (RMS of row-centred values,
    ov / src), and ``rows``. Non-finite values yield None metrics (the numerical check reports them).
    """
    np = _np()
    a = np.asarray(ov, dtype=np.float64)
    b = np.asarray(src, dtype=np.float64)
    if a.shape != b.shape:
        return {"comparable": False, "reason": f"shape {list(a.shape)} vs source {list(b.shape)}",
                "ov_shape": list(a.shape), "src_shape": list(b.shape)}
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return {"comparable": False, "reason": "non-finite values", "ov_shape": list(a.shape)}
    a2 = a.reshape(-1, a.shape[-1]) if a.ndim >= 1 and a.size else a.reshape(1, -1)
    b2 = b.reshape(-1, b.shape[-1]) if b.ndim >= 1 and b.size else b.reshape(1, -1)
    diff = np.abs(a2 - b2)
    denom = max(float(np.abs(b2).max()), 1e-12)
    ac = a2 - a2.mean(axis=-1, keepdims=True)
    bc = b2 - b2.mean(axis=-1, keepdims=True)
    na, nb = np.linalg.norm(ac, axis=-1), np.linalg.norm(bc, axis=-1)
    # a row that is constant on both sides agrees perfectly; constant on one side only: cosine 0
    cos = np.where((na > 0) & (nb > 0), (ac * bc).sum(-1) / np.maximum(na * nb, 1e-300),
                   np.where((na == 0) & (nb == 0), 1.0, 0.0))
    rms_a, rms_b = float(np.sqrt((ac ** 2).mean())), float(np.sqrt((bc ** 2).mean()))
    out = {"comparable": True, "rows": int(a2.shape[0]), "max_abs_err": _finite_float(diff.max()),
           "rel_err": _finite_float(diff.max() / denom), "cosine_mean": _finite_float(cos.mean()),
           "cosine_min": _finite_float(cos.min()),
           "scale_ratio": _finite_float(rms_a / rms_b) if rms_b > 0 else None}
    if a2.shape[-1] > 1:
        out["top1_agreement"] = _finite_float((a2.argmax(-1) == b2.argmax(-1)).mean())
    return out


def equal_logit_rows(arr) -> dict:
    """How many rows (positions) have all-equal logits over the last axis."""
    np = _np()
    a = np.asarray(arr, dtype=np.float64)
    a2 = a.reshape(-1, a.shape[-1]) if a.ndim and a.size else a.reshape(1, -1)
    if a2.shape[-1] < 2 or not np.isfinite(a2).all():
        return {"rows": int(a2.shape[0]), "equal_rows": 0}
    spread = a2.max(-1) - a2.min(-1)
    tol = EQUAL_LOGITS_ATOL * (1.0 + np.abs(a2).max(-1))
    return {"rows": int(a2.shape[0]), "equal_rows": int((spread <= tol).sum())}


def sequence_degenerate(tokens: list[int]) -> bool:
    """A run of >= 4 tokens that is constant or alternates between two values (period <= 2)."""
    if len(tokens) < 4:
        return False
    return all(tokens[i] == tokens[i - 2] for i in range(2, len(tokens))) or len(set(tokens)) == 1


def compare_causal_runs(ov_runs: list[dict], src_runs: list[dict]) -> dict:
    """Compare greedy runs prompt by prompt (same prompt ids on both sides).

    greedy_match: mean over prompts of (common prefix of generated ids) / N. Logit metrics are over
    the positions with identical context (prompt + common prefix), pooled over prompts.
    """
    np = _np()
    ov_rows, src_rows, prefixes, n_new = [], [], [], []
    per_prompt = []
    for o, s in zip(ov_runs, src_runs):
        go, gs = list(o["generated"]), list(s["generated"])
        n = min(len(go), len(gs))
        common = next((i for i in range(n) if go[i] != gs[i]), n)
        # logits row p predicts token p+1; rows 0..P-1+common saw identical inputs
        rows = len(o["prompt_ids"]) + min(common, n - 1) if n else len(o["prompt_ids"])
        rows = min(rows, len(o["logits"]), len(s["logits"]))
        ov_rows.append(np.asarray(o["logits"])[:rows])
        src_rows.append(np.asarray(s["logits"])[:rows])
        prefixes.append(common)
        n_new.append(n)
        per_prompt.append({"ov_generated": go, "src_generated": gs, "common_prefix": common, "rows_compared": rows})
    out = compare_arrays(np.concatenate(ov_rows), np.concatenate(src_rows)) if ov_rows else {
        "comparable": False, "reason": "no runs"}
    out["greedy_match"] = (sum(p / n for p, n in zip(prefixes, n_new) if n) / len(n_new)) if n_new else None
    out["new_tokens"] = int(sum(n_new))
    out["per_prompt"] = per_prompt
    return out


class LogitComparison:
    """``compare_arrays`` over many inputs without keeping them: running maxima, sums and counts.

    ``summary()`` gives the same keys as ``compare_arrays`` (pooled over every ``add``) plus
    ``rel_fro`` (Frobenius-norm relative error, the logits' counterpart of a block's rel_err) and
    ``nonfinite`` (OpenVINO values that are NaN/Inf; their rows are left out of the metrics).
    """

    def __init__(self):
        self.rows = 0
        self.nonfinite = 0
        self.max_abs_err = 0.0
        self.max_abs_src = 0.0
        self.cos_sum = 0.0
        self.cos_min = 1.0
        self.sq_ov = 0.0
        self.sq_src = 0.0
        self.sq_err = 0.0
        self.sq_ref = 0.0
        self.top1 = 0
        self.width = None

    def add(self, ov, src) -> None:
        np = _np()
        a = np.asarray(ov, dtype=np.float64)
        b = np.asarray(src, dtype=np.float64)
        if a.shape != b.shape:
            raise ValueError(f"logits shape {list(a.shape)} vs source {list(b.shape)}")
        a2, b2 = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
        finite = np.isfinite(a2).all(-1) & np.isfinite(b2).all(-1)
        self.nonfinite += int((~np.isfinite(a2)).sum())
        a2, b2 = a2[finite], b2[finite]
        if not a2.size:
            return
        self.width = a2.shape[-1]
        d = a2 - b2
        self.max_abs_err = max(self.max_abs_err, float(np.abs(d).max()))
        self.max_abs_src = max(self.max_abs_src, float(np.abs(b2).max()))
        self.sq_err += float((d * d).sum())
        self.sq_ref += float((b2 * b2).sum())
        ac, bc = a2 - a2.mean(-1, keepdims=True), b2 - b2.mean(-1, keepdims=True)
        na, nb = np.linalg.norm(ac, axis=-1), np.linalg.norm(bc, axis=-1)
        cos = np.where((na > 0) & (nb > 0), (ac * bc).sum(-1) / np.maximum(na * nb, 1e-300),
                       np.where((na == 0) & (nb == 0), 1.0, 0.0))
        self.cos_sum += float(cos.sum())
        self.cos_min = min(self.cos_min, float(cos.min()))
        self.sq_ov += float((ac * ac).sum())
        self.sq_src += float((bc * bc).sum())
        self.top1 += int((a2.argmax(-1) == b2.argmax(-1)).sum())
        self.rows += int(a2.shape[0])

    def summary(self) -> dict:
        if not self.rows:
            return {"comparable": False, "reason": "no finite rows to compare", "rows": 0,
                    "nonfinite": self.nonfinite}
        out = {"comparable": True, "rows": self.rows, "nonfinite": self.nonfinite,
               "max_abs_err": self.max_abs_err, "rel_err": self.max_abs_err / max(self.max_abs_src, 1e-12),
               "rel_fro": math.sqrt(self.sq_err / self.sq_ref) if self.sq_ref > 0 else None,
               "cosine_mean": self.cos_sum / self.rows, "cosine_min": self.cos_min,
               "scale_ratio": math.sqrt(self.sq_ov / self.sq_src) if self.sq_src > 0 else None}
        if self.width and self.width > 1:
            out["top1_agreement"] = self.top1 / self.rows
        return out


def greedy_agreement(ov_runs: list[list[int]], src_runs: list[list[int]], horizon: int) -> dict:
    """Greedy-token agreement over the first ``horizon`` new tokens of each prompt.

    ``greedy_match`` = mean over prompts of (common prefix, capped at the horizon) / horizon: the
    same number whatever ``--new-tokens`` is (a longer continuation is not judged more harshly);
    ``prompts`` and ``horizon`` say what it rests on.
    """
    pairs = [(list(o), list(s)) for o, s in zip(ov_runs, src_runs)]
    h = min([horizon] + [min(len(o), len(s)) for o, s in pairs]) if pairs else 0
    if not pairs or h <= 0:
        return {"greedy_match": None, "greedy_horizon": h, "prompts": len(pairs)}
    prefixes = []
    for o, s in pairs:
        common = next((i for i in range(h) if o[i] != s[i]), h)
        prefixes.append(common)
    return {"greedy_match": sum(p / h for p in prefixes) / len(prefixes), "greedy_horizon": h,
            "prompts": len(pairs), "common_prefixes": prefixes}
