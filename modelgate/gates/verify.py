"""The verify-conversion decision: observations of one converted model -> verdict fields.

Pure: a dict in (what ``modelgate.verify.observe`` measured on the real IR and source), a dict
out. No I/O, no OpenVINO. Each check is a hypothesis the run tried to refute ("the IR is
complete", "no output is NaN", "block 3 matches the source within the int8 noise", ...); the
verdict passes only when none was refuted, and a check that could not run is ``pass: null`` with
its ``not_judged_because`` (never counted as a pass; listed in the coverage's not_exercised).
Checks are listed -- and their classes take precedence -- in the order of ``CHECK_ORDER``: a
truncated .bin explains NaN logits, a block that diverges mid-network explains degenerate output
(FIDELITY_REGRESSION at that layer, not DEGENERATE_OUTPUT), and the f32 run's failures explain a
low-precision run's, not the other way round. All-equal logits come first among the output checks
(the head produces no signal, whatever the blocks do); repetitive generation comes after the
layer-wise checks, which name the block that causes it.
"""
from __future__ import annotations

from typing import Any

from modelgate.contract import check, coverage
from modelgate.gates import layerwise as layerwise_gate
from modelgate.gates import precision as precision_gate
from modelgate.gates.values import ge_tol, is_count, is_number, le_tol
from modelgate.gates.verify_report import family_detail, next_action, verify_coverage

GATE = "verify-conversion"
WEIGHT_FORMATS = ("fp32", "fp16", "int8", "int4")

# Behaviour floors on the logits of the short prompts, per weight format: the artifact must still
# act like its source (cosine, top-1, greedy tokens, magnitude). rel_err (max |ov - src| / max |src|)
# is judged for every format: against REL_ERR_MARGIN x the simulated format's own rel_err when the
# source was simulated (Hugging Face sources), else against this row. layer_margin / layer_floor:
# the layer-wise limits (see modelgate.gates.layerwise).
TOLERANCES: dict[str, dict[str, float]] = {
    "fp32": {"rel_err_max": 5e-3, "cosine_min": 0.9999, "top1_min": 0.99, "greedy_match_min": 0.9,
             "scale_band": 0.01, "layer_margin": 1.25, "layer_floor": 2e-4},
    "fp16": {"rel_err_max": 2e-2, "cosine_min": 0.999, "top1_min": 0.95, "greedy_match_min": 0.75,
             "scale_band": 0.02, "layer_margin": 1.25, "layer_floor": 2e-4},
    "int8": {"rel_err_max": 0.15, "cosine_min": 0.98, "top1_min": 0.75, "greedy_match_min": 0.5,
             "scale_band": 0.05, "layer_margin": 1.25, "layer_floor": 2e-4},
    "int4": {"rel_err_max": 0.6, "cosine_min": 0.9, "top1_min": 0.5, "greedy_match_min": 0.25,
             "scale_band": 0.15, "layer_margin": 1.25, "layer_floor": 2e-4},
}
TOLERANCE_KEYS = ("rel_err_max", "cosine_min", "top1_min", "greedy_match_min", "scale_band", "layer_margin",
                  "layer_floor")
# Bounds each tolerance must respect (lo, hi), validated before any comparison.
TOLERANCE_BOUNDS = {"rel_err_max": (0.0, 10.0), "cosine_min": (-1.0, 1.0), "top1_min": (0.0, 1.0),
                    "greedy_match_min": (0.0, 1.0), "scale_band": (0.0, 10.0), "layer_margin": (1.0, 100.0),
                    "layer_floor": (0.0, 1.0)}
# rel_err's limit is this margin x the simulated format's own rel_err (a max over many values: a
# little more room than the per-block Frobenius errors need)
REL_ERR_MARGIN = 1.5

# check name -> failure class, in precedence order. precision_<name>_* checks follow, in run order.
CHECK_ORDER = (
    ("conversion", "CONVERSION_FAILED"),
    ("ir_bin_complete", "INTEGRITY_MISMATCH"),
    ("weights_finite", "NUMERICAL_INSANE"),
    ("ir_loads_and_runs", "LOAD_FAILED"),
    ("outputs_finite", "NUMERICAL_INSANE"),
    ("outputs_shape", "NUMERICAL_INSANE"),
    ("config_matches_ir", "INTEGRITY_MISMATCH"),
    ("config_matches_source", "INTEGRITY_MISMATCH"),
    ("config_constants_match", "INTEGRITY_MISMATCH"),
    ("ov_tokenizer_present", "TOKENIZER_MISMATCH"),
    ("tokenizer_ids_match", "TOKENIZER_MISMATCH"),
    ("detokenizer_text_match", "TOKENIZER_MISMATCH"),
    ("source_ran", "SOURCE_UNAVAILABLE"),
    ("logits_not_constant", "DEGENERATE_OUTPUT"),
    ("layerwise_blocks", "FIDELITY_REGRESSION"),
    ("layerwise_hidden_states", "FIDELITY_REGRESSION"),
    ("generation_not_degenerate", "DEGENERATE_OUTPUT"),
    ("layerwise_head", "FIDELITY_REGRESSION"),
    ("fidelity_rel_err", "FIDELITY_REGRESSION"),
    ("fidelity_cosine", "FIDELITY_REGRESSION"),
    ("fidelity_top1", "FIDELITY_REGRESSION"),
    ("fidelity_greedy_match", "FIDELITY_REGRESSION"),
    ("fidelity_scale_ratio", "FIDELITY_REGRESSION"),
)
CHECK_CLASS = dict(CHECK_ORDER)
PRECISION_PREFIX = "precision_"
# Every class a verify-conversion verdict can carry: the checks' own, the converter's and the
# runtime's (passed through from the observation), bad input, interruption and internal errors.
EMITTED_CLASSES = tuple(sorted(set(CHECK_CLASS.values()) | {
    precision_gate.FAILURE_CLASS, "USER_CONFIG_ERROR", "MODEL_UNSUPPORTED", "CONVERSION_FAILED",
    "RESOURCE_EXHAUSTED", "TIMEOUT", "PLUGIN_CRASH", "INFERENCE_FAILED", "INFRA_TRANSIENT", "UNKNOWN"}))
# checks that belong to the end-to-end inference (the pipeline's e2e_passed)
E2E_CHECKS = frozenset({"ir_loads_and_runs", "outputs_finite", "outputs_shape", "logits_not_constant",
                        "generation_not_degenerate", "layerwise_blocks", "layerwise_hidden_states", "layerwise_head",
                        "fidelity_rel_err", "fidelity_cosine", "fidelity_top1", "fidelity_greedy_match",
                        "fidelity_scale_ratio"})
# how a source run that failed for lack of time or memory is reported (not as a missing source)
SOURCE_STAGE_CLASSES = frozenset({"TIMEOUT", "RESOURCE_EXHAUSTED"})
# why a check is not judged although the run went fine: the documented reasons (SKILL.md lists them)
NOT_APPLICABLE = {
    "no_tokenizer": "the task has no text tokenizer to convert",
    "no_config": "nothing to compare: no config.json beside the IR",
    "not_generative": "not a generative task",
    "no_class_axis": "the outputs have no class axis",
    "outputs_only": "the source is compared on its outputs only: block hooks need a Hugging Face source",
}


def tolerance_problems(tol: Any) -> list[str]:
    """Why a tolerance set is unusable (empty list = usable). Every key must be present."""
    if not isinstance(tol, dict):
        return [f"tolerances must be an object, got {type(tol).__name__}"]
    problems = []
    for key in TOLERANCE_KEYS:
        if key not in tol:
            problems.append(f"tolerance {key} is missing")
            continue
        v = tol[key]
        lo, hi = TOLERANCE_BOUNDS[key]
        if not is_number(v) or not (lo <= v <= hi):
            problems.append(f"tolerance {key}={v!r} is not a finite number in [{lo}, {hi}]")
    return problems


def tolerances_for(weight_format: str, overrides: dict | None = None) -> dict:
    """The tolerance row of a weight format with user overrides applied (not validated here).

    An overridden key is recorded in ``overridden``: its value is then used as given, never replaced
    by the limit derived from the simulated format.
    """
    if weight_format not in TOLERANCES:
        raise KeyError(f"unknown weight format {weight_format!r}; one of {WEIGHT_FORMATS}")
    row = dict(TOLERANCES[weight_format])
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    row.update(given)
    row["overridden"] = sorted(given)
    return row


def _not_run(name: str, why: str) -> dict:
    return check(name, None, None, None, detail=why)


def _fail(name: str, measured, threshold, detail: str) -> dict:
    return check(name, False, measured, threshold, failure_class=CHECK_CLASS[name], detail=detail)


def _pass(name: str, measured, threshold, detail: str | None = None) -> dict:
    return check(name, True, measured, threshold, detail=detail)


def _conversion_checks(obs: dict) -> list[dict]:
    conv = obs.get("conversion")
    if not isinstance(conv, dict) or not isinstance(conv.get("ok"), bool):
        return [_fail("conversion", None, "conversion record with ok", "no conversion record observed")]
    if conv["ok"]:
        return [_pass("conversion", conv.get("conversion_path"), "converted or existing IR", conv.get("detail"))]
    c = _fail("conversion", conv.get("failure_class"), "exporter exit 0",
              str(conv.get("detail") or "conversion failed"))
    c["failure_class"] = conv.get("failure_class") or "CONVERSION_FAILED"
    return [c]


def _bin_check(integ: dict) -> dict:
    if not isinstance(integ, dict):
        return _fail("ir_bin_complete", None, "integrity observed", "no integrity observation")
    if integ.get("xml_parses") is False:
        return _fail("ir_bin_complete", integ.get("error"), "a parseable .xml", "the IR .xml does not parse")
    have, need = integ.get("bin_bytes"), integ.get("expected_min_bytes")
    if not (is_count(have) and is_count(need)):
        return _fail("ir_bin_complete", have, need, "bin size or expected size missing (fail closed)")
    if not integ.get("bin_exists", True) or have < need:
        return _fail("ir_bin_complete", have, need, f".bin holds {have} bytes but the .xml references {need}")
    return _pass("ir_bin_complete", have, need)


def _load_check(load: Any) -> dict:
    if not isinstance(load, dict) or not isinstance(load.get("ok"), bool):
        return _fail("ir_loads_and_runs", None, "compiled and inferred", "no load/inference observation")
    if load["ok"]:
        return _pass("ir_loads_and_runs", load.get("seconds"), "compiled and inferred", load.get("detail"))
    c = _fail("ir_loads_and_runs", load.get("failure_class"), "compiled and inferred",
              str(load.get("detail") or "load/inference failed"))
    c["failure_class"] = load.get("failure_class") or "LOAD_FAILED"
    return c


def _weights_check(w: Any) -> dict:
    if not isinstance(w, dict) or not is_count(w.get("scanned")) or not is_count(w.get("nonfinite")):
        return _fail("weights_finite", None, "0 NaN/Inf weights", "weight scan missing (fail closed)")
    if w["nonfinite"]:
        names = ", ".join(f"{c.get('name')} ({c.get('nonfinite')})" for c in w.get("constants", [])
                          if isinstance(c, dict))
        return _fail("weights_finite", w["nonfinite"], 0, f"{w['nonfinite']} NaN/Inf values in IR constants: {names}")
    return _pass("weights_finite", f"0 of {w['scanned']}", 0)


def _output_checks(outputs: Any) -> list[dict]:
    if not isinstance(outputs, list) or not outputs:
        return [_fail("outputs_finite", None, "at least one output", "no output tensors observed (fail closed)"),
                _not_run("outputs_shape", "no outputs")]
    bad_finite, bad_shape, total = [], [], 0
    for o in outputs:
        if not isinstance(o, dict) or not all(is_count(o.get(k)) for k in ("size", "nan", "inf")):
            bad_finite.append(f"{o.get('name') if isinstance(o, dict) else o}: counts missing")
            continue
        total += o["size"]
        if o["size"] == 0:
            bad_finite.append(f"{o.get('name')}: empty")
        elif o["nan"] or o["inf"]:
            bad_finite.append(f"{o.get('name')}: {o['nan']} NaN, {o['inf']} Inf of {o['size']}")
        exp = o.get("expected_shape")
        if exp is not None and list(o.get("shape") or []) != list(exp):
            bad_shape.append(f"{o.get('name')}: shape {o.get('shape')} != expected {exp}")
        exp_kind = o.get("expected_dtype_kind")
        if exp_kind and not str(o.get("dtype", "")).startswith(exp_kind):
            bad_shape.append(f"{o.get('name')}: dtype {o.get('dtype')} is not {exp_kind}*")
    nonfinite = sum(o.get("nan", 0) + o.get("inf", 0) for o in outputs
                    if isinstance(o, dict) and is_count(o.get("nan")) and is_count(o.get("inf")))
    finite = (_fail("outputs_finite", {"nonfinite": nonfinite, "elements": total}, "0 NaN/Inf, non-empty",
                    "; ".join(bad_finite)) if bad_finite
              else _pass("outputs_finite", {"nonfinite": 0, "elements": total}, "0 NaN/Inf, non-empty"))
    shape = (_fail("outputs_shape", [o.get("shape") for o in outputs if isinstance(o, dict)], "source shapes",
                   "; ".join(bad_shape)) if bad_shape
             else _pass("outputs_shape", [o.get("shape") for o in outputs if isinstance(o, dict)], "source shapes"))
    return [finite, shape]


def _config_checks(integ: dict) -> list[dict]:
    out = []
    for name, key, what in (("config_matches_ir", "config_vs_ir", "config.json beside the IR vs shapes in the IR"),
                            ("config_matches_source", "config_vs_source", "IR config.json vs source config")):
        diffs = integ.get(key) if isinstance(integ, dict) else None
        if diffs is None:
            out.append(_not_run(name, NOT_APPLICABLE["no_config"]))
        elif not isinstance(diffs, list):
            out.append(_fail(name, diffs, [], f"{what}: malformed observation"))
        elif diffs:
            out.append(_fail(name, diffs, [], f"{what} disagree: " + ", ".join(
                f"{d.get('key')}={d.get('config')} vs {d.get('ir', d.get('source'))}"
                for d in diffs if isinstance(d, dict))))
        else:
            out.append(_pass(name, [], [], what))
    return out


def _constants_check(cc: Any, mode: str | None) -> dict:
    """Norm epsilons and rotary frequencies in the IR against config.json (exact, no inference)."""
    name = "config_constants_match"
    if cc is None and mode == "raw":
        return _not_run(name, NOT_APPLICABLE["no_config"])
    if not isinstance(cc, dict) or not all(isinstance(cc.get(k), dict) for k in ("eps", "rotary")):
        return _fail(name, None, "eps and rotary observed", "no config-constant observation (fail closed)")
    eps, rot = cc["eps"], cc["rotary"]
    judged = [k for k in ("eps", "rotary") if cc[k].get("judged")]
    if not judged:
        return _not_run(name, f"nothing to compare: {eps.get('reason')}; {rot.get('reason')}")
    problems = []
    if eps.get("judged"):
        if not is_count(eps.get("mismatched")):
            problems.append("epsilon mismatch count missing (fail closed)")
        elif eps["mismatched"]:
            m = (eps.get("mismatches") or [{}])[0]
            problems.append(f"{eps['mismatched']} norm epsilon(s) differ from config.json {eps.get('config')}: "
                            f"{m.get('value')} at {m.get('node')}")
    if rot.get("judged"):
        if not is_count(rot.get("mismatched")):
            problems.append("rotary mismatch count missing (fail closed)")
        elif rot["mismatched"]:
            c = next((c for c in rot.get("constants") or [] if c.get("bad_indices")), {})
            problems.append(f"rotary frequency [{c.get('index')}] = {_g(c.get('value'))} in {c.get('node')}, but "
                            f"rope_theta={_g(rot.get('theta'))} (dim {rot.get('dim')}) gives {_g(c.get('expected'))}")
    measured = {k: {"judged": bool(cc[k].get("judged")), "mismatched": cc[k].get("mismatched"),
                    "reason": cc[k].get("reason")} for k in ("eps", "rotary")}
    if problems:
        return _fail(name, measured, "equal to config.json", "; ".join(problems))
    not_judged = [f"{k}: {cc[k].get('reason')}" for k in ("eps", "rotary") if not cc[k].get("judged")]
    return _pass(name, measured, "equal to config.json", "; ".join([f"{', '.join(judged)} equal to config.json"]
                                                                    + not_judged))


def _g(x: Any) -> str:
    return f"{x:.4g}" if is_number(x) else str(x)


def _tokenizer_checks(tok: Any) -> list[dict]:
    names = ("ov_tokenizer_present", "tokenizer_ids_match", "detokenizer_text_match")
    if tok is None:
        return [_not_run(n, NOT_APPLICABLE["no_tokenizer"]) for n in names]
    if not isinstance(tok, dict):
        return [_fail(names[0], None, "tokenizer observation", "malformed tokenizer observation")] + [
            _not_run(n, "no tokenizer observation") for n in names[1:]]
    if tok.get("error"):
        return [_fail(names[0], tok.get("error"), "tokenizer runs",
                      f"tokenizer parity failed to run: {tok['error']}")] + [
            _not_run(n, "tokenizer did not run") for n in names[1:]]
    present = tok.get("present") or {}
    if not (present.get("tokenizer") and present.get("detokenizer")):
        return [_fail(names[0], present, {"tokenizer": True, "detokenizer": True},
                      "openvino_tokenizer.xml / openvino_detokenizer.xml missing beside the IR")] + [
            _not_run(n, "no OpenVINO tokenizer") for n in names[1:]]
    n = tok.get("n_texts")
    ids_bad, det_bad = tok.get("id_mismatches"), tok.get("detok_mismatches")
    if not (is_count(n) and n > 0 and is_count(ids_bad) and is_count(det_bad)):
        return [_pass(names[0], present, "both present"),
                _fail(names[1], ids_bad, 0, "tokenizer parity counts missing (fail closed)"),
                _fail(names[2], det_bad, 0, "tokenizer parity counts missing (fail closed)")]
    first = next((t for t in tok.get("texts", []) if isinstance(t, dict) and not t.get("ids_match")), None)
    ex = f"; e.g. {first.get('text')!r}: HF {first.get('hf_ids')[:8]} vs OV {first.get('ov_ids')[:8]}" if first else ""
    return [_pass(names[0], present, "both present"),
            (_fail(names[1], f"{ids_bad}/{n} texts differ", 0, "OpenVINO tokenizer ids differ from Hugging Face" + ex)
             if ids_bad else _pass(names[1], f"0/{n} texts differ", 0)),
            (_fail(names[2], f"{det_bad}/{n} texts differ", 0,
                   "OpenVINO detokenizer text differs from Hugging Face decode")
             if det_bad else _pass(names[2], f"0/{n} texts differ", 0))]


def _not_above_source(name: str, total: Any, bad: Any, src_bad: Any, unit: str, missing: str, why: str) -> dict:
    """``bad`` of ``total`` must not exceed the source's own count (fail closed on missing counts)."""
    if not (is_count(total) and is_count(bad) and total > 0):
        return _fail(name, bad, 0, f"{missing} (fail closed)")
    limit = f"<= {src_bad} (source)"
    if bad > (src_bad if is_count(src_bad) else 0):
        return _fail(name, f"{bad}/{total} {unit}", limit, why)
    return _pass(name, f"{bad}/{total} {unit}", limit)


def _degenerate_checks(deg: Any) -> list[dict]:
    if deg is None:
        return [_not_run("logits_not_constant", "no logits observed"),
                _not_run("generation_not_degenerate", NOT_APPLICABLE["not_generative"])]
    out = [_not_above_source("logits_not_constant", deg.get("rows"), deg.get("equal_rows"),
                             deg.get("src_equal_rows", 0), "positions", "equal-logit counts missing",
                             "rows of all-equal logits: the head produces no signal")]
    if deg.get("sequences") is None:
        out.append(_not_run("generation_not_degenerate", NOT_APPLICABLE["not_generative"]))
    else:
        out.append(_not_above_source("generation_not_degenerate", deg.get("sequences"), deg.get("ov_degenerate"),
                                     deg.get("src_degenerate", 0), "sequences", "generation counts missing",
                                     "generated tokens are a constant or period-2 run"))
    return out


FIDELITY_METRICS = (  # (check, metric key, tolerance key, direction)
    ("fidelity_rel_err", "rel_err", "rel_err_max", "max"),
    ("fidelity_cosine", "cosine_mean", "cosine_min", "min"),
    ("fidelity_top1", "top1_agreement", "top1_min", "min"),
    ("fidelity_greedy_match", "greedy_match", "greedy_match_min", "min"),
    ("fidelity_scale_ratio", "scale_ratio", "scale_band", "band"),
)


def rel_err_limit(fid: dict, tol: dict) -> tuple[float, str]:
    """(limit, how it was set) for fidelity_rel_err: REL_ERR_MARGIN x the simulated format's rel_err when
    the source was simulated and the user did not override it, else the tolerance row."""
    expected = (fid.get("expected") or {}).get("rel_err") if isinstance(fid.get("expected"), dict) else None
    if "rel_err_max" not in tol.get("overridden", []) and is_number(expected) and expected > 0:
        lim = max(REL_ERR_MARGIN * expected, TOLERANCES["fp32"]["rel_err_max"])
        return lim, f"{REL_ERR_MARGIN:g} x the simulated format's {expected:.3g}"
    return tol["rel_err_max"], "the format's row"


def _fidelity_checks(fid: Any, tol: dict, generative: bool) -> list[dict]:
    names = [m[0] for m in FIDELITY_METRICS]
    if not isinstance(fid, dict):
        return [_fail("source_ran", None, "source observation", "no fidelity observation (fail closed)")] + [
            _not_run(n, "no source run") for n in names]
    if not fid.get("source_ran"):
        why = str(fid.get("reason") or "source did not run")
        if fid.get("source_expected", True):
            failed = _fail("source_ran", False, True, f"the source model could not be run for comparison: {why}")
            if fid.get("failure_class") in SOURCE_STAGE_CLASSES:  # out of time or memory: not a missing source
                failed["failure_class"] = fid["failure_class"]
            return [failed] + [_not_run(n, "no source run") for n in names]
        return [_not_run("source_ran", why)] + [_not_run(n, why) for n in names]
    out = [_pass("source_ran", True, True, fid.get("source_kind"))]
    if fid.get("comparable") is False:
        return out + [_fail(names[0], fid.get("reason"), "comparable outputs",
                            f"outputs cannot be compared with the source: {fid.get('reason')}")] + [
            _not_run(n, "outputs not comparable") for n in names[1:]]
    for name, key, tkey, direction in FIDELITY_METRICS:
        threshold = tol.get(tkey)
        value = fid.get(key)
        how = None
        if key == "greedy_match" and not generative:
            out.append(_not_run(name, NOT_APPLICABLE["not_generative"]))
            continue
        if key == "top1_agreement" and key not in fid:
            out.append(_not_run(name, NOT_APPLICABLE["no_class_axis"]))
            continue
        if key == "rel_err":
            threshold, how = rel_err_limit(fid, tol)
        if not is_number(value):
            out.append(_fail(name, value, threshold, f"{key} missing or non-finite (fail closed)"))
            continue
        if direction == "max":
            ok, shown = le_tol(value, threshold), f"<= {threshold:.4g}"
        elif direction == "min":
            ok, shown = ge_tol(value, threshold), f">= {threshold}"
        else:
            ok, shown = le_tol(abs(value - 1.0), threshold), f"1 +/- {threshold}"
        extra = f" ({how})" if how else ""
        if key == "greedy_match" and is_count(fid.get("greedy_horizon")):
            extra = f" (first {fid['greedy_horizon']} new tokens of {fid.get('prompts')} prompts)"
        extra += _simulated_note(fid, key, threshold, direction)
        out.append(_pass(name, value, shown, (how and f"limit: {how}") or None) if ok else
                   _fail(name, value, shown, f"{key}={value:.6g} outside {shown}{extra}"))
    return out


def _simulated_note(fid: dict, key: str, threshold: Any, direction: str) -> str:
    """When the weight format simulated on the source already misses the limit, say so: the loss is the
    format's, not the conversion's (the evidence next_action's advice rests on)."""
    expected = fid.get("expected") if isinstance(fid.get("expected"), dict) else {}
    sim = expected.get(key)
    if key == "rel_err" or not is_number(sim) or not is_number(threshold):
        return ""
    misses = (sim < threshold) if direction == "min" else (abs(sim - 1.0) > threshold) if direction == "band" else False
    return (f"; the format simulated on the source gives {sim:.6g}, also outside: the format itself loses this"
            if misses else f"; the format simulated on the source gives {sim:.6g}")


def _first_failure(checks: list[dict]) -> dict | None:
    failed = [c for c in checks if c["pass"] is False]
    return min(failed, key=lambda c: _order(c["name"])) if failed else None


def _order(name: str) -> tuple[int, str, int]:
    """Precedence of a check: CHECK_ORDER, then the precision runs (finite before agreement)."""
    index = {n: i for i, (n, _) in enumerate(CHECK_ORDER)}
    if name in index:
        return index[name], "", 0
    run, _, kind = name.rpartition("_")
    return len(index), run, 0 if kind == "finite" else 1


def _class_of(name: str) -> str:
    if name.startswith(PRECISION_PREFIX):
        return precision_gate.FAILURE_CLASS
    return CHECK_CLASS.get(name, "UNKNOWN")


def _skip_after(checks: list[dict], stage_failed: str) -> list[dict]:
    done = {c["name"] for c in checks}
    return [_not_run(name, f"{stage_failed} failed") for name, _ in CHECK_ORDER if name not in done]


def _e2e_detail(obs: dict, precisions: list[dict]) -> str:
    fid = obs.get("fidelity") or {}
    mode = obs.get("mode")
    plan = obs.get("plan") or {}
    at = " and ".join(f"{p['ran_as']}" for p in precisions) or "f32"
    if mode == "causal-lm":
        return (f"ran {plan.get('prompts')} prompts teacher-forced through the OpenVINO runtime (prompt in one call, "
                f"continuation through the KV cache, up to position {plan.get('longest_position')}) and "
                f"{plan.get('greedy_prompts')} greedy generations of {plan.get('new_tokens')} tokens at {at}; compared "
                "every block output, the logits and the greedy tokens with the transformers source")
    if mode == "forward":
        return (f"ran {plan.get('inputs')} inputs (up to position {plan.get('longest_position')}) through the OpenVINO "
                f"runtime at {at} and compared every block output and the outputs with the transformers source")
    if mode == "family":
        return family_detail(obs, at)
    return f"ran a forward pass on seeded realistic inputs through the OpenVINO runtime ({mode})" + (
        " and compared every output with the source" if fid.get("source_ran") else "")


# tasks whose outputs are hidden states, not scores over classes: an argmax over channels names no class,
# so top-1 agreement is not judged for them (a near-tie between two channels is not a defect)
HIDDEN_STATE_TASKS = frozenset({"feature-extraction", "sentence-similarity"})


def _without_top1(metrics: Any) -> Any:
    return {k: v for k, v in metrics.items() if k != "top1_agreement"} if isinstance(metrics, dict) else metrics


def _class_axis_view(obs: dict) -> dict:
    """The observations as the fidelity and precision checks judge them: without top-1 agreement when the
    outputs are hidden states (``HIDDEN_STATE_TASKS``)."""
    if obs.get("task") not in HIDDEN_STATE_TASKS:
        return obs
    view = dict(obs, fidelity=_without_top1(obs.get("fidelity")))
    if isinstance(obs.get("precisions"), dict):
        view["precisions"] = {name: (dict(run, **{k: _without_top1(run.get(k)) for k in run
                                                   if isinstance(run.get(k), dict) and "top1_agreement" in run[k]})
                                     if isinstance(run, dict) else run)
                              for name, run in obs["precisions"].items()}
    return view


def _precision_runs(obs: dict) -> list[tuple[str, dict]]:
    runs = obs.get("precisions") if isinstance(obs.get("precisions"), dict) else {}
    return [(name, run) for name, run in runs.items() if name != "f32"]


def evaluate_verify(observations: dict, tolerances: dict) -> dict:
    """Decide a verify-conversion verdict from observations and a tolerance row.

    Returns the verdict fields: pass, failure_class, decision (VERIFIED | SANE_ONLY | REJECTED |
    NOT_JUDGED), detail, checks, metrics, next_action, coverage, the layer-wise table and first
    divergent layer, the precisions, and the pipeline's fields (verify_passed, e2e_passed,
    conversion_path, task, e2e_detail, error).
    """
    if not isinstance(observations, dict):
        return _input_error(f"observations must be an object, got {type(observations).__name__}", {})
    problems = tolerance_problems(tolerances)
    if problems:
        return _input_error("; ".join(problems), observations)
    obs = observations
    checks = _conversion_checks(obs)
    table, divergent = [], None
    if checks[0]["pass"] is not False:
        integ = obs.get("integrity")
        checks.append(_bin_check(integ))
        if checks[-1]["pass"]:
            checks.append(_weights_check(obs.get("weights")))
            checks.append(_load_check(obs.get("load")))
            if checks[-1]["pass"]:
                checks += _output_checks(obs.get("outputs"))
                checks += _config_checks(integ)
                checks.append(_constants_check(obs.get("config_constants"), obs.get("mode")))
                checks += _tokenizer_checks(obs.get("tokenizer"))
                checks += _degenerate_checks(obs.get("degenerate"))
                judged = _class_axis_view(obs)
                checks += _fidelity_checks(judged.get("fidelity"), tolerances,
                                           obs.get("mode") == "causal-lm" or obs.get("generative") is True)
                lw_checks, table, divergent = _layerwise(obs, tolerances)
                checks += lw_checks
                for name, run in _precision_runs(judged):
                    checks += precision_gate.precision_checks(name, run)
            else:
                checks += _config_checks(integ)
                checks += _tokenizer_checks(obs.get("tokenizer"))
    checks += _skip_after(checks, checks[-1]["name"] if checks[-1]["pass"] is False else "a previous stage")
    checks.sort(key=lambda c: _order(c["name"]))
    first = _first_failure(checks)
    passed = first is None
    ran = {c["name"]: c["pass"] for c in checks}
    e2e_ran = [ran.get(n) for n in E2E_CHECKS if ran.get(n) is not None]
    e2e_passed = bool(e2e_ran) and all(e2e_ran) and ran.get("ir_loads_and_runs") is True
    fidelity_judged = any(ran.get(m[0]) for m in FIDELITY_METRICS)
    precisions = _precision_summary(obs)
    if passed:
        decision = "VERIFIED" if fidelity_judged else "SANE_ONLY"
        cls = None
        at = " and ".join(p["ran_as"] for p in precisions) or "f32"
        detail = (f"converted IR runs, is numerically sane and matches the source within the "
                  f"{obs.get('weight_format')} noise at {at}" if fidelity_judged else
                  "converted IR runs and is numerically sane; no source comparison was possible")
    else:
        cls = first.get("failure_class") or _class_of(first["name"])
        decision = "NOT_JUDGED" if cls in ("USER_CONFIG_ERROR", "SOURCE_UNAVAILABLE", "UNKNOWN") else "REJECTED"
        where = ""
        if divergent is not None and cls in ("FIDELITY_REGRESSION", "DEGENERATE_OUTPUT"):
            where = f" (first divergent layer: {divergent['layer']})"
        detail = f"{first['name']}: {first.get('detail') or 'failed'}{where}"
    conv = obs.get("conversion") if isinstance(obs.get("conversion"), dict) else {}
    fid = obs.get("fidelity") if isinstance(obs.get("fidelity"), dict) else {}
    metrics = {k: fid.get(k) for k in ("max_abs_err", "rel_err", "rel_fro", "cosine_mean", "cosine_min",
                                       "top1_agreement", "greedy_match", "greedy_horizon", "scale_ratio", "rows",
                                       "new_tokens") if k in fid}
    metrics["failed_checks"] = sum(1 for c in checks if c["pass"] is False)
    metrics["skipped_checks"] = sum(1 for c in checks if c["pass"] is None)
    if is_count(obs.get("usable_cpus")):
        metrics["usable_cpus"] = obs["usable_cpus"]
    verdict_tol = {k: v for k, v in tolerances.items() if k != "overridden"}
    if is_number(fid.get("rel_err")) or isinstance(fid.get("expected"), dict):
        verdict_tol["rel_err_effective"] = rel_err_limit(fid, tolerances)[0] if fid.get("source_ran") else None
    out = {"pass": passed, "failure_class": cls, "decision": decision, "detail": detail, "checks": checks,
           "metrics": metrics, "tolerances": verdict_tol, "verify_passed": passed, "e2e_passed": e2e_passed,
           "conversion_path": conv.get("conversion_path"), "task": obs.get("task"),
           "e2e_detail": _e2e_detail(obs, precisions), "error": None if passed else detail,
           "layerwise": table, "first_divergent_layer": divergent, "precisions": precisions,
           "deployment_precision": next((p["ran_as"] for p in precisions if p["name"] != "f32"), None)}
    out["coverage"] = verify_coverage(obs, out, checks)
    out["next_action"] = next_action(obs, out, first)
    return out


def _layerwise(obs: dict, tol: dict) -> tuple[list[dict], list[dict], dict | None]:
    if obs.get("mode") in ("raw", None) and obs.get("layerwise") is None:
        return [_not_run(n, NOT_APPLICABLE["outputs_only"]) for n in layerwise_gate.CHECKS], [], None
    fid = obs.get("fidelity")
    if isinstance(fid, dict) and not fid.get("source_ran"):
        return [_not_run(n, "no source run") for n in layerwise_gate.CHECKS], [], None
    return layerwise_gate.layerwise_checks(obs.get("layerwise"), tol["layer_margin"], tol["layer_floor"])


def _precision_summary(obs: dict) -> list[dict]:
    runs = obs.get("precisions") if isinstance(obs.get("precisions"), dict) else {}
    out = []
    for name, run in runs.items():
        if not isinstance(run, dict):
            continue
        used = precision_gate.ran_at(run) or "unknown"
        item = {"name": name, "requested": run.get("requested", name), "ran_as": used,
                "kv_cache_precision": (run.get("ran_as") or {}).get("kv_cache_precision")
                if isinstance(run.get("ran_as"), dict) else None,
                "role": "faithfulness" if name == "f32" else "deployment"}
        vs = run.get("vs_f32")
        if isinstance(vs, dict):
            item["vs_f32"] = {k: vs.get(k) for k in ("rel_err", "cosine_mean", "top1_agreement", "nonfinite")}
            item["band"] = precision_gate.BANDS.get(used)
        if isinstance(run.get("greedy_vs_f32"), dict):
            item["greedy_vs_f32"] = run["greedy_vs_f32"].get("greedy_match")
        out.append(item)
    return out


def _input_error(why: str, obs: dict) -> dict:
    detail = f"cannot judge: {why}"
    conv = obs.get("conversion") if isinstance(obs, dict) and isinstance(obs.get("conversion"), dict) else {}
    return {"pass": False, "failure_class": "USER_CONFIG_ERROR", "decision": "NOT_JUDGED", "detail": detail,
            "checks": [], "metrics": {}, "tolerances": {}, "verify_passed": False, "e2e_passed": False,
            "conversion_path": conv.get("conversion_path"), "task": obs.get("task") if isinstance(obs, dict) else None,
            "e2e_detail": "nothing was run", "error": detail, "layerwise": [], "first_divergent_layer": None,
            "precisions": [], "deployment_precision": None,
            "coverage": coverage(f"nothing was judged: {why}"[:500], {}, ["everything: the input could not be judged"]),
            "next_action": "Fix the tolerance or observation arguments named in detail and rerun."}
