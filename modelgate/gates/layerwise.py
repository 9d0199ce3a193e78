"""The layer-wise fidelity decision: each block's error against the noise a good export of its format has.

Pure: the observation of ``modelgate.openvino.layerwise`` (the IR's per-block errors against the
source) and of ``modelgate.openvino.reference.expected_noise`` (the same errors of the source with
the IR's weight format simulated on it) in, checks and the first divergent layer out.

A block passes when ``error <= margin * sqrt(expected^2 + floor^2)``:

- ``expected`` is the simulated format's error at that block (0 for an fp32 IR), which a good export
  reproduces to three digits (it rounds the same tensors the same way); ``floor`` is f32 arithmetic
  noise (summation order), which an fp32 IR shows and a large model accumulates;
- ``margin`` leaves room for an exporter that rounds differently (data-aware int4 rounds better,
  never worse). A fault adds to the format's error; for an error independent of the rounding they
  add in quadrature, so with margin 1.25 any fault larger than 0.75x the good export's own error
  is caught.

Three views, each catching what the others cannot:

- ``layerwise_blocks`` (decoupled): block i fed the source's block i-1 output; its *update* error.
  Flat over depth, so a fault in a middle block is not hidden by the noise accumulated before it,
  and the first block over its limit is the faulty one.
- ``layerwise_hidden_states`` (accumulated): the embedding output and every block's output of a
  normal run, per position bucket: faults before the first block (embedding, position tables) and
  faults that grow with position (rotary constants, position tables, the KV cache) in the deep buckets.
- ``layerwise_head``: the final norm and head fed the source's last hidden state.
"""
from __future__ import annotations

import math
from typing import Any

from modelgate.contract import check
from modelgate.gates.values import is_number, le_tol

LAYER_MARGIN = 1.25
FLOAT_FLOOR = 2e-4   # f32 arithmetic noise allowed at any block (measured 5e-7 .. 3e-6 on fixtures and 200 M)
# f32 rounding of a block's output, relative to that output's norm. A block's update error is relative
# to the update's norm, so when the residual stream is much larger than the update (a large constant
# offset in it) the same rounding shows magnified by ||h|| / ||update||: the update's floor is
# max(FLOAT_FLOOR, UPDATE_FLOAT_NOISE x that ratio), which equals FLOAT_FLOOR for ratios up to 10.
UPDATE_FLOAT_NOISE = 2e-5
CHECKS = ("layerwise_blocks", "layerwise_hidden_states", "layerwise_head")


def limit(expected: Any, margin: float, floor: float) -> float:
    """The largest error a block may show: margin x sqrt(expected^2 + floor^2) (expected missing -> 0)."""
    e = expected if is_number(expected) and expected > 0 else 0.0
    return margin * math.sqrt(e * e + floor * floor)


def _label(index: int, blocks: int) -> str | int:
    if index < 0:
        return "embedding"
    if index >= blocks:
        return "head"
    return index


def _expected(expected: dict | None, view: str, index: int, key: str, bucket: str | None = None):
    if not isinstance(expected, dict):
        return 0.0
    row = (expected.get(view) or {}).get(str(index), (expected.get(view) or {}).get(index))
    if not isinstance(row, dict):
        return None
    if bucket is not None:
        return (row.get("rel_err_by_position") or {}).get(bucket)
    return row.get(key)


def _row(table: dict, index: int):
    row = table.get(str(index), table.get(index)) if isinstance(table, dict) else None
    return row if isinstance(row, dict) else None


def block_table(lw: dict, margin: float = LAYER_MARGIN, floor: float = FLOAT_FLOOR) -> list[dict]:
    """Per tensor (embedding, blocks, head): measured errors, limits and ratios (the verdict's table).

    Each row: ``layer``, ``update_rel_err`` / ``update_limit`` (decoupled; the head's own rel_err),
    ``rel_err`` / ``limit`` (accumulated, all positions), ``worst_position_bucket`` with its error and
    limit, and ``ratio`` = the largest error / limit of the row (> 1: over).
    """
    n = lw.get("blocks")
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        return []
    exp = lw.get("expected") if lw.get("expected") is not None else {}
    acc, dec = lw.get("accumulated") or {}, lw.get("decoupled") or {}
    rows = []
    for index in range(-1, n + 1):
        r: dict = {"layer": _label(index, n)}
        ratios = []
        d = _row(dec, index)
        if index >= 0 and d is not None:
            key = "rel_err" if index == n else "update_rel_err"
            r["update_rel_err"] = d.get(key)
            magnified = d.get("update_norm_ratio") if key == "update_rel_err" else None
            fl = max(floor, UPDATE_FLOAT_NOISE * magnified) if is_number(magnified) else floor
            r["update_limit"] = limit(_expected(exp, "decoupled", index, key), margin, fl)
            ratios.append(_ratio(r["update_rel_err"], r["update_limit"]))
        a = _row(acc, index)
        if a is not None and index < n:
            r["rel_err"] = a.get("rel_err")
            r["limit"] = limit(_expected(exp, "accumulated", index, "rel_err"), margin, floor)
            ratios.append(_ratio(r["rel_err"], r["limit"]))
            worst = None
            for bucket, value in (a.get("rel_err_by_position") or {}).items():
                lim = limit(_expected(exp, "accumulated", index, "rel_err", bucket), margin, floor)
                ratio = _ratio(value, lim)
                if worst is None or ratio > worst[2]:
                    worst = (bucket, value, ratio, lim)
            if worst is not None:
                r.update(worst_position_bucket=worst[0], position_rel_err=worst[1], position_limit=worst[3])
                ratios.append(worst[2])
            r["max_position"] = a.get("max_position")
        if len(r) == 1:
            continue
        r["ratio"] = max(ratios) if ratios else math.inf
        rows.append(r)
    return rows


def _ratio(value: Any, lim: float) -> float:
    """value / limit; a missing or non-finite value is infinitely over (fail closed)."""
    if not is_number(value):
        return math.inf
    return value / lim if lim > 0 else math.inf


def _over(row: dict, keys: tuple[str, str]) -> bool:
    value, lim = row.get(keys[0]), row.get(keys[1])
    if keys[0] not in row:
        return False
    return not (is_number(value) and le_tol(value, lim))


def first_divergent_layer(rows: list[dict], stack: str | None) -> dict | None:
    """Where triage starts: the embedding output if it is over; else the first block whose decoupled
    error is over (it localizes); else the first block whose accumulated error (any position bucket)
    is over; else the head. None when nothing is over."""
    def found(row, metric, value_key, limit_key):
        blocks = [r for r in rows if isinstance(r["layer"], int)]
        over_blocks = [r for r in blocks if _over(r, ("update_rel_err", "update_limit"))]
        value = row.get(value_key)
        return {"layer": row["layer"], "stack": stack, "metric": metric,
                "measured": value if is_number(value) else None, "limit": row.get(limit_key),
                "ratio": row["ratio"] if math.isfinite(row["ratio"]) else None,
                "position_bucket": row.get("worst_position_bucket") if metric == "position_rel_err" else None,
                "blocks_over": [r["layer"] for r in over_blocks],
                "all_blocks_over": bool(blocks) and len(over_blocks) == len(blocks)}

    for row in rows:
        if row["layer"] == "embedding" and (_over(row, ("rel_err", "limit"))
                                            or _over(row, ("position_rel_err", "position_limit"))):
            return found(row, "rel_err", "rel_err", "limit")
    for row in rows:
        if isinstance(row["layer"], int) and _over(row, ("update_rel_err", "update_limit")):
            return found(row, "update_rel_err", "update_rel_err", "update_limit")
    for row in rows:
        if isinstance(row["layer"], int):
            if _over(row, ("rel_err", "limit")):
                return found(row, "rel_err", "rel_err", "limit")
            if _over(row, ("position_rel_err", "position_limit")):
                return found(row, "position_rel_err", "position_rel_err", "position_limit")
    for row in rows:
        if row["layer"] == "head" and _over(row, ("update_rel_err", "update_limit")):
            return found(row, "head_rel_err", "update_rel_err", "update_limit")
    return None


def _shown(margin: float, floor: float) -> str:
    return f"<= {margin:g} x sqrt(expected^2 + {floor:g}^2) per block"


def layerwise_checks(lw: Any, margin: float = LAYER_MARGIN, floor: float = FLOAT_FLOOR,
                     failure_class: str = "FIDELITY_REGRESSION") -> tuple[list[dict], list[dict], dict | None]:
    """(checks, the per-layer table, first divergent layer) for a layer-wise observation.

    Not judged (with the observation's reason) when the observer could not compare blocks; a judged
    observation with a missing number fails closed.
    """
    names = CHECKS
    if not isinstance(lw, dict):
        return [check(n, False, None, "layer-wise observation", failure_class,
                      "no layer-wise observation (fail closed)") for n in names], [], None
    if not lw.get("judged"):
        why = str(lw.get("not_judged_because") or "the layer-wise comparison did not run")
        return [check(n, None, None, None, detail=why) for n in names], [], None
    rows = block_table(lw, margin, floor)
    if not rows:
        return [check(n, False, None, "per-block errors", failure_class,
                      "layer-wise comparison judged but no per-block errors observed (fail closed)")
                for n in names], [], None
    stack = (lw.get("stack") or {}).get("stack") if isinstance(lw.get("stack"), dict) else lw.get("stack")
    fmt = (lw.get("format") or {}).get("weight_format", "fp32") if isinstance(lw.get("format"), dict) else "fp32"
    shown = _shown(margin, floor)
    blocks = [r for r in rows if isinstance(r["layer"], int)]
    head = [r for r in rows if r["layer"] == "head"]
    hidden = [r for r in rows if r["layer"] == "embedding"] + blocks
    out = []
    bad = [r for r in blocks if _over(r, ("update_rel_err", "update_limit")) or "update_rel_err" not in r]
    worst = max((r for r in blocks), key=lambda r: _ratio(r.get("update_rel_err"), r.get("update_limit", 0) or 0),
                default=None)
    measured = {"blocks": len(blocks), "worst_block": worst["layer"] if worst else None,
                "worst_ratio": _finite(_ratio(worst.get("update_rel_err"), worst.get("update_limit", 0) or 0))
                if worst else None}
    if bad:
        r = bad[0]
        out.append(check("layerwise_blocks", False, measured, shown, failure_class,
                         f"block {r['layer']} of {stack} diverges on its own (fed the source's input): update error "
                         f"{_fmt(r.get('update_rel_err'))} > {_fmt(r.get('update_limit'))}, the limit from the "
                         f"{fmt} format's expected {_fmt(_unmargin(r.get('update_limit'), margin, floor))}"
                         + (f"; blocks over: {[x['layer'] for x in bad]}" if len(bad) > 1 else "")))
    else:
        out.append(check("layerwise_blocks", True, measured, shown,
                         detail=f"every block of {stack} within its {fmt} noise when fed the source's input"))
    bad_h = [r for r in hidden if _over(r, ("rel_err", "limit")) or _over(r, ("position_rel_err", "position_limit"))
             or "rel_err" not in r]
    worst_h = max(hidden, key=lambda r: r["ratio"], default=None)
    measured_h = {"tensors": len(hidden), "worst": worst_h["layer"] if worst_h else None,
                  "worst_ratio": _finite(worst_h["ratio"]) if worst_h else None,
                  "max_position": max((r.get("max_position") or -1 for r in hidden), default=-1)}
    if bad_h:
        r = bad_h[0]
        where = ("the embedding output" if r["layer"] == "embedding" else f"block {r['layer']}")
        if _over(r, ("position_rel_err", "position_limit")) and not _over(r, ("rel_err", "limit")):
            what = (f"at positions {r.get('worst_position_bucket')}: {_fmt(r.get('position_rel_err'))} > "
                    f"{_fmt(r.get('position_limit'))} (a fault that grows with position: rotary constants, position "
                    "table, KV cache)")
        else:
            what = f"{_fmt(r.get('rel_err'))} > {_fmt(r.get('limit'))}"
        out.append(check("layerwise_hidden_states", False, measured_h, shown.replace("per block", "per tensor and "
                         "position bucket"), failure_class, f"{where} of {stack} differs from the source's {what}"))
    else:
        out.append(check("layerwise_hidden_states", True, measured_h,
                         shown.replace("per block", "per tensor and position bucket"),
                         detail="embedding output and every block output within the format's noise at every "
                                "position bucket"))
    if not head:
        out.append(check("layerwise_head", None, None, None,
                         detail="the head could not be fed the source's last hidden state (no rewirable edge)"))
    elif _over(head[0], ("update_rel_err", "update_limit")):
        r = head[0]
        out.append(check("layerwise_head", False, _finite(r.get("update_rel_err")), _fmt(r.get("update_limit")),
                         failure_class, f"the final norm and head, fed the source's last hidden state, differ from "
                         f"the source: {_fmt(r.get('update_rel_err'))} > {_fmt(r.get('update_limit'))}"))
    else:
        out.append(check("layerwise_head", True, _finite(head[0].get("update_rel_err")),
                         _fmt(head[0].get("update_limit"))))
    return out, rows, first_divergent_layer(rows, stack)


def _unmargin(lim: Any, margin: float, floor: float) -> float | None:
    if not is_number(lim):
        return None
    base = (lim / margin) ** 2 - floor ** 2
    return math.sqrt(base) if base > 0 else 0.0


def _finite(x: Any):
    return x if is_number(x) else None


def _fmt(x: Any) -> str:
    return f"{x:.3g}" if is_number(x) else str(x)
