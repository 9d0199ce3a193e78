"""Streaming comparison of one tensor (a block's output) between two runs: running sums only.

A block's relative error is ``||a - b|| / ||b||`` over every compared token, i.e. relative to the
layer's own norm (the residual stream grows with depth; an absolute limit would mean something
else at every layer). The sums are also kept per position bucket, so a position fault that grows
with position (a rotary constant, a position table, the KV cache) shows in the deep buckets, and
for a decoupled block (fed the reference's previous hidden state) the *update* error
``||(a - prev) - (b - prev)|| / ||b - prev||``: the error of the block's own function.

Nothing here holds an array after ``add`` returns: memory is the sums, whatever the prompt length.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

# position bucket lower edges; a bucket runs to the next edge (the last one is open)
POSITION_EDGES = (0, 64, 256, 1024, 2048)


def bucket_label(k: int) -> str:
    lo = POSITION_EDGES[k]
    return f"{lo}+" if k + 1 == len(POSITION_EDGES) else f"{lo}-{POSITION_EDGES[k + 1] - 1}"


BUCKET_LABELS = tuple(bucket_label(k) for k in range(len(POSITION_EDGES)))


def _np():
    import numpy as np
    return np


@dataclass
class ErrorSums:
    """Sums of squared error and squared reference, overall and per position bucket (+ update sums)."""
    sq_err: float = 0.0
    sq_ref: float = 0.0
    tokens: int = 0
    nonfinite: int = 0
    cos_min: float = 1.0
    bucket_err: list = field(default_factory=lambda: [0.0] * len(POSITION_EDGES))
    bucket_ref: list = field(default_factory=lambda: [0.0] * len(POSITION_EDGES))
    bucket_tokens: list = field(default_factory=lambda: [0] * len(POSITION_EDGES))
    upd_err: float = 0.0
    upd_ref: float = 0.0
    max_position: int = -1

    def add(self, ov, ref, positions, prev=None) -> None:
        """Compare rows of ``ov`` with ``ref`` ([tokens, width] or broadcastable); ``positions`` per row.

        ``prev``: the reference input of the block (decoupled runs), for the update error.
        """
        np = _np()
        a = np.asarray(ov, dtype=np.float64).reshape(-1, np.shape(ov)[-1])
        b = np.asarray(ref, dtype=np.float64).reshape(-1, np.shape(ref)[-1])
        pos = np.asarray(positions, dtype=np.int64).reshape(-1)
        if a.shape != b.shape or pos.shape[0] != a.shape[0]:
            raise ValueError(f"cannot compare shapes {a.shape} and {b.shape} at {pos.shape[0]} positions")
        finite = np.isfinite(a).all(axis=-1)
        self.nonfinite += int((~finite).sum())
        a, b, pos = a[finite], b[finite], pos[finite]
        if not a.size:
            return
        d = a - b
        e2 = (d * d).sum(-1)
        r2 = (b * b).sum(-1)
        self.sq_err += float(e2.sum())
        self.sq_ref += float(r2.sum())
        self.tokens += int(a.shape[0])
        self.max_position = max(self.max_position, int(pos.max()))
        na, nb = np.sqrt((a * a).sum(-1)), np.sqrt(r2)
        both = (na > 0) & (nb > 0)
        if both.any():
            self.cos_min = min(self.cos_min, float(((a * b).sum(-1)[both] / (na[both] * nb[both])).min()))
        which = np.searchsorted(np.asarray(POSITION_EDGES), pos, side="right") - 1
        for k in np.unique(which):
            sel = which == k
            self.bucket_err[k] += float(e2[sel].sum())
            self.bucket_ref[k] += float(r2[sel].sum())
            self.bucket_tokens[k] += int(sel.sum())
        if prev is not None:
            p = np.asarray(prev, dtype=np.float64).reshape(-1, np.shape(prev)[-1])[finite]
            ua, ub = a - p, b - p
            self.upd_err += float(((ua - ub) ** 2).sum())
            self.upd_ref += float((ub * ub).sum())

    @staticmethod
    def _ratio(err: float, ref: float) -> float | None:
        return math.sqrt(err / ref) if ref > 0 else None

    def summary(self) -> dict:
        """rel_err overall and per bucket, update_rel_err (decoupled), tokens, cos_min, nonfinite rows."""
        out = {"rel_err": self._ratio(self.sq_err, self.sq_ref), "tokens": self.tokens,
               "nonfinite_rows": self.nonfinite, "cos_min": self.cos_min if self.tokens else None,
               "max_position": self.max_position,
               "rel_err_by_position": {BUCKET_LABELS[k]: self._ratio(self.bucket_err[k], self.bucket_ref[k])
                                       for k in range(len(POSITION_EDGES)) if self.bucket_tokens[k]},
               "tokens_by_position": {BUCKET_LABELS[k]: self.bucket_tokens[k]
                                      for k in range(len(POSITION_EDGES)) if self.bucket_tokens[k]}}
        if self.upd_ref > 0:
            out["update_rel_err"] = self._ratio(self.upd_err, self.upd_ref)
            # ||h_i|| / ||h_i - h_(i-1)||: how much f32 rounding of the block output is magnified in the update
            out["update_norm_ratio"] = self._ratio(self.sq_ref, self.upd_ref)
        return out


class ErrorTable:
    """ErrorSums per tensor index (-1 = embedding output, 0..N-1 = blocks), created on first use."""

    def __init__(self):
        self.sums: dict[int, ErrorSums] = {}

    def add(self, index: int, ov, ref, positions, prev=None) -> None:
        self.sums.setdefault(index, ErrorSums()).add(ov, ref, positions, prev)

    def summary(self) -> dict[int, dict]:
        return {i: s.summary() for i, s in sorted(self.sums.items())}
