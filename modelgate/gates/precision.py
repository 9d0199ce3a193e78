"""The deployment-precision decision: what a reduced inference precision (bf16, f16) does to the IR.

Pure. The f32 run asks "is the conversion faithful"; a run at the device's default precision (bf16
on CPUs with AMX/AVX512-BF16, f16 on GPUs) asks "what does the user get". Each low-precision run is
compared with the f32 run of the same IR (so its own effect is judged, not the conversion's) and
judged against its precision's band, measured on good exports (bf16: rel_err <= 0.07, top-1 >= 0.95
on the fixtures; f16: rel_err <= 0.013, top-1 >= 0.986) with about 2x headroom for larger models.

Two ways to fail, one class (PRECISION_OVERFLOW): values that are NaN/Inf only at the low precision
(f16 overflows at 65,504; a fused kernel can too), and a large loss only there (bf16 keeps f32's
range but only 8 bits of mantissa: a residual stream offset by 1,024 loses its whole signal without
a single NaN).
"""
from __future__ import annotations

from typing import Any

from modelgate.contract import check
from modelgate.gates.values import ge_tol, is_number, le_tol

FAILURE_CLASS = "PRECISION_OVERFLOW"
# band per precision the run actually used (read back from the plugin), against the f32 run
BANDS: dict[str, dict[str, float]] = {
    "bf16": {"rel_err_max": 0.10, "cosine_min": 0.995, "top1_min": 0.90},
    "f16": {"rel_err_max": 0.03, "cosine_min": 0.9995, "top1_min": 0.97},
    # a "default" that resolved to f32 still differs from the faithful run (f16/u8 KV cache, dynamic
    # activation quantization): judged like f16
    "f32": {"rel_err_max": 0.03, "cosine_min": 0.9995, "top1_min": 0.97},
}
METRICS = (("rel_err", "rel_err_max", "max"), ("cosine_mean", "cosine_min", "min"),
           ("top1_agreement", "top1_min", "min"))


def ran_at(run: dict) -> str | None:
    """The precision a run really used (the plugin's read-back), or None when it was not reported."""
    ran = run.get("ran_as") if isinstance(run, dict) else None
    value = ran.get("inference_precision") if isinstance(ran, dict) else None
    return value if isinstance(value, str) else None


def precision_checks(name: str, run: Any) -> list[dict]:
    """``precision_<name>_finite`` and ``precision_<name>_agreement`` for one low-precision run."""
    finite_name, agree_name = f"precision_{name}_finite", f"precision_{name}_agreement"
    if not isinstance(run, dict):
        return [check(finite_name, False, None, "run observed", FAILURE_CLASS, f"no {name} run observed (fail closed)"),
                check(agree_name, None, None, None, detail=f"no {name} run observed")]
    used = ran_at(run)
    band = BANDS.get(used or "")
    label = f"{name} (ran as {used})" if name != used else name
    bad_entries = run.get("nonfinite_entries")
    vs = run.get("vs_f32") if isinstance(run.get("vs_f32"), dict) else {}
    nonfinite = vs.get("nonfinite")
    out = []
    if not isinstance(bad_entries, list) or not (isinstance(nonfinite, int) and not isinstance(nonfinite, bool)):
        out.append(check(finite_name, False, None, "0 NaN/Inf", FAILURE_CLASS,
                         f"{label}: NaN/Inf counts missing (fail closed)"))
    elif bad_entries or nonfinite:
        layer = run.get("first_nonfinite_layer")
        where = f"; first at {'block ' + str(layer) if isinstance(layer, int) else layer}" if layer is not None else ""
        out.append(check(finite_name, False, {"nonfinite_values": nonfinite, "inputs": bad_entries[:5],
                                              "first_nonfinite_layer": layer}, "0 NaN/Inf", FAILURE_CLASS,
                         f"NaN/Inf only at {label}, finite at f32{where}"))
    else:
        out.append(check(finite_name, True, 0, "0 NaN/Inf", detail=f"{label}: every output finite"))
    if band is None:
        out.append(check(agree_name, False, used, sorted(BANDS), FAILURE_CLASS,
                         f"{name}: the plugin reported no known inference precision ({used!r}) (fail closed)"))
        return out
    if vs.get("comparable") is False:
        out.append(check(agree_name, None, None, None,
                         detail=f"{label}: no finite rows to compare with the f32 run"))
        return out
    failed, measured = [], {}
    for key, tkey, direction in METRICS:
        value = vs.get(key)
        measured[key] = value if is_number(value) else None
        if key == "top1_agreement" and key not in vs:
            continue  # outputs without a class axis
        ok = is_number(value) and (le_tol(value, band[tkey]) if direction == "max" else ge_tol(value, band[tkey]))
        if not ok:
            failed.append(f"{key} {value if not is_number(value) else f'{value:.4g}'} "
                          f"{'>' if direction == 'max' else '<'} {band[tkey]:g}")
    shown = {k: band[k] for _, k, _ in METRICS}
    if failed:
        out.append(check(agree_name, False, measured, shown, FAILURE_CLASS,
                         f"large loss only at {label} against the f32 run: " + "; ".join(failed)))
    else:
        out.append(check(agree_name, True, measured, shown, detail=f"{label} agrees with f32 within the {used} band"))
    return out
