"""PTQ gate: does a quantized IR keep the promises of the recipe that produced it?

Pure: an observation (``modelgate.release.ptq_observe.observe_ptq`` reads the real IR) and
the recipe in, a ptq verdict out. Checks, in the order their classes take precedence:
model supported by the recipe (MODEL_UNSUPPORTED), metadata and parameters intact
(INTEGRITY_MISMATCH), coverage of the promised precisions (QUANT_COVERAGE_FAILURE),
weight-size ratio inside the recipe's band and a smaller artifact (SIZE_NOT_REDUCED).
"""
from __future__ import annotations

from typing import Any

from modelgate.contract import check, make_verdict, schema_errors
from modelgate.contract import coverage as coverage_of
from modelgate.gates.values import is_count, is_fraction, le_tol, short

GATE = "gate-ptq"
CLASS_PRIORITY = ("USER_CONFIG_ERROR", "MODEL_UNSUPPORTED", "INTEGRITY_MISMATCH", "QUANT_COVERAGE_FAILURE",
                  "SIZE_NOT_REDUCED")
MODEL_KINDS = ("llm", "non-llm")
# (file, key) differences between source and output metadata that exporters make on purpose.
BENIGN_METADATA = frozenset({
    ("config.json", "transformers_version"),   # the exporting transformers writes its own version
    ("config.json", "_name_or_path"),          # a local path, differs per machine
    ("config.json", "quantization_config"),    # describes the compression we asked for
    ("tokenizer_config.json", "is_local"),     # added by transformers' save_pretrained
    ("tokenizer_config.json", "name_or_path"),
})
# Output parameters of eligible weights may differ from the source's by this fraction
# (small constants such as rotary inverse frequencies reach a MatMul in the IR).
PARAM_TOLERANCE = 0.01
REQUIRED_INTS = ("source_weight_params", "source_weight_bytes", "output_weight_bytes", "source_bytes", "output_bytes")


def _recipe_problems(recipe: Any) -> list[str]:
    if not isinstance(recipe, dict):
        return [f"recipe is a {type(recipe).__name__}, not an object"]
    problems = []
    if not isinstance(recipe.get("name"), str) or not recipe.get("name"):
        problems.append("recipe has no name")
    if not is_count(recipe.get("version")) or recipe.get("version") < 1:
        problems.append(f"recipe version {short(recipe.get('version'))} is not an integer >= 1")
    if recipe.get("applies_to") not in MODEL_KINDS:
        problems.append(f"recipe applies_to {short(recipe.get('applies_to'))} not in {list(MODEL_KINDS)}")
    promises = recipe.get("promises")
    if not isinstance(promises, dict):
        return problems + ["recipe has no promises object"]
    for key in ("weight_precisions", "primary_precisions"):
        vals = promises.get(key)
        if not isinstance(vals, list) or not vals or not all(isinstance(v, str) and v for v in vals):
            problems.append(f"promises.{key} {short(vals)} is not a non-empty list of element types")
    for key in ("min_coverage", "min_primary_fraction"):
        if not is_fraction(promises.get(key)):
            problems.append(f"promises.{key} {short(promises.get(key))} is not a fraction in (0, 1]")
    band = promises.get("size_ratio")
    if not (isinstance(band, list) and len(band) == 2 and all(is_fraction(x) for x in band) and band[0] <= band[1]):
        problems.append(f"promises.size_ratio {short(band)} is not a band [low, high] within (0, 1]")
    return problems


def _observation_problems(obs: dict) -> list[str]:
    # every field the observation schema requires, with its type (what --save-observation writes)
    problems = [f"observation {e}" for e in schema_errors("ptq-observation", obs)[:8]]
    for key in REQUIRED_INTS:
        if not is_count(obs.get(key)):
            problems.append(f"{key} {short(obs.get(key))} is not a non-negative integer")
    if obs.get("model_kind") not in MODEL_KINDS:
        problems.append(f"model_kind {short(obs.get('model_kind'))} not in {list(MODEL_KINDS)}")
    lpc = obs.get("layer_precision_counts")
    if not isinstance(lpc, dict):
        problems.append("layer_precision_counts is not an object")
    else:
        for etype, slot in lpc.items():
            if not isinstance(slot, dict) or not all(is_count(slot.get(k)) for k in ("count", "bytes", "params")):
                problems.append(f"layer_precision_counts[{short(etype)}] needs integer count, bytes and params")
    diffs = obs.get("metadata_diffs")
    if not isinstance(diffs, list) or not all(isinstance(d, dict) and isinstance(d.get("file"), str)
                                              and isinstance(d.get("key"), str) for d in diffs):
        problems.append("metadata_diffs is not a list of {file, key, source, output}")
    if problems:
        return problems
    if sum(s["bytes"] for s in lpc.values()) > obs["output_weight_bytes"]:
        problems.append("output_weight_bytes is smaller than the weight constants it must include")
    if obs["source_weight_bytes"] == 0 or obs["source_weight_params"] == 0:
        problems.append("the source has no weights (source_weight_bytes/params is 0)")
    return problems


def _fail_input(detail: str, recipe: Any) -> dict:
    name = recipe.get("name") if isinstance(recipe, dict) and isinstance(recipe.get("name"), str) else None
    return make_verdict(GATE, passed=False, failure_class="USER_CONFIG_ERROR", decision=None, detail=detail,
                        recipe={"name": name, "version": None}, next_action="Fix the arguments or the observation "
                        "(re-run gate_ptq on the checkpoint instead of a hand-written summary).")


def evaluate_ptq(obs: Any) -> dict:
    """Judge a PTQ observation against its recipe's promises; never raises."""
    if not isinstance(obs, dict):
        return _fail_input(f"observation is a {type(obs).__name__}, not an object", None)
    recipe = obs.get("recipe")
    problems = list(dict.fromkeys(_recipe_problems(recipe) + _observation_problems(obs)))
    if problems:
        return _fail_input("cannot judge: " + "; ".join(problems[:8]), recipe)
    promises = recipe["promises"]
    lpc = obs["layer_precision_counts"]
    checks = []

    def add(name, ok, measured, threshold, cls, text):
        checks.append(check(name, ok, measured, threshold, None if ok else cls, text))

    eligible = sum(s["params"] for s in lpc.values())
    supported = obs["model_kind"] == recipe["applies_to"]
    add("model_supported", supported and eligible > 0,
        {"model_kind": obs["model_kind"], "model_type": obs.get("model_type"), "eligible_params": eligible},
        {"applies_to": recipe["applies_to"], "eligible_params": "> 0"}, "MODEL_UNSUPPORTED",
        None if supported and eligible > 0 else
        (f"recipe {recipe['name']} applies to {recipe['applies_to']} models, this is {obs['model_kind']} "
         f"({obs.get('model_type')})" if not supported else "the IR has no MatMul/Gather/Conv weights to quantize"))
    blocking = [d for d in obs["metadata_diffs"] if (d["file"], d["key"]) not in BENIGN_METADATA]
    ignored = [f"{d['file']}:{d['key']}" for d in obs["metadata_diffs"] if (d["file"], d["key"]) in BENIGN_METADATA]
    add("metadata_intact", not blocking, {"blocking": blocking[:20], "ignored_benign": ignored},
        "no differences outside the benign list",
        "INTEGRITY_MISMATCH", f"{len(blocking)} metadata difference(s): "
        + ", ".join(f"{d['file']}:{d['key'] or '<content>'}" for d in blocking[:5]) if blocking else None)
    src_params = obs["source_weight_params"]
    param_dev = abs(eligible - src_params) / src_params
    add("parameters_intact", le_tol(param_dev, PARAM_TOLERANCE), {"output": eligible, "source": src_params},
        f"within {PARAM_TOLERANCE:.0%}", "INTEGRITY_MISMATCH",
        None if le_tol(param_dev, PARAM_TOLERANCE) else
        f"the IR holds {eligible} weight parameters, the source {src_params}: weights were dropped or added")
    promised, primary = set(promises["weight_precisions"]), set(promises["primary_precisions"])
    in_promised = sum(s["params"] for t, s in lpc.items() if t in promised)
    in_primary = sum(s["params"] for t, s in lpc.items() if t in primary)
    coverage = in_promised / eligible if eligible else 0.0
    primary_fraction = in_primary / eligible if eligible else 0.0
    add("coverage", le_tol(promises["min_coverage"], coverage), round(coverage, 6),
        {"min": promises["min_coverage"], "precisions": sorted(promised)}, "QUANT_COVERAGE_FAILURE",
        None if le_tol(promises["min_coverage"], coverage) else
        f"only {coverage:.1%} of eligible weight parameters are in {sorted(promised)} "
        f"(promised {promises['min_coverage']:.0%}); by precision: "
        + ", ".join(f"{t}={s['params']}" for t, s in sorted(lpc.items(), key=lambda kv: str(kv[0]))))
    add("primary_precision", le_tol(promises["min_primary_fraction"], primary_fraction), round(primary_fraction, 6),
        {"min": promises["min_primary_fraction"], "precisions": sorted(primary)}, "QUANT_COVERAGE_FAILURE",
        None if le_tol(promises["min_primary_fraction"], primary_fraction) else
        f"only {primary_fraction:.1%} of eligible weight parameters are in {sorted(primary)} "
        f"(the precision {recipe['name']} is named for; promised {promises['min_primary_fraction']:.0%})")
    lo, hi = promises["size_ratio"]
    ratio = obs["output_weight_bytes"] / obs["source_weight_bytes"]
    add("size_ratio_max", le_tol(ratio, hi), round(ratio, 6), hi, "SIZE_NOT_REDUCED",
        None if le_tol(ratio, hi) else f"weights are {ratio:.3f} of the fp32 source, above the recipe band "
        f"[{lo}, {hi}]")
    # below the band: quantized harder than the recipe (dropped weights are caught by parameters_intact)
    add("size_ratio_min", le_tol(lo, ratio), round(ratio, 6), lo, "QUANT_COVERAGE_FAILURE",
        None if le_tol(lo, ratio) else f"weights are {ratio:.3f} of the fp32 source, below what {recipe['name']} "
        f"produces ({lo}): quantized with another recipe?")
    smaller = obs["output_bytes"] < obs["source_bytes"]
    add("artifact_smaller", smaller, {"output_bytes": obs["output_bytes"], "source_bytes": obs["source_bytes"]},
        "output < source", "SIZE_NOT_REDUCED",
        None if smaller else
        f"the IR ({obs['output_bytes']} B) is not smaller than the source ({obs['source_bytes']} B)")
    classes = {c.get("failure_class") for c in checks if c["pass"] is False}
    failure_class = next((k for k in CLASS_PRIORITY if k in classes), None)
    passed = failure_class is None
    detail = (f"{recipe['name']} v{recipe['version']}: coverage {coverage:.1%}, weights {ratio:.3f} of fp32, "
              f"no metadata changes" if passed else
              f"{failure_class}: " + "; ".join(c["detail"] for c in checks
                                               if c.get("failure_class") == failure_class and c.get("detail")))
    precisions = sorted(str(t) for t, slot in lpc.items() if slot["params"])
    files = obs.get("metadata_files_compared")
    over = (f"{len(files)} metadata file(s) compared" if isinstance(files, list)
            else "metadata files compared: not reported")
    summary = (f"{recipe['name']} v{recipe['version']}: {coverage:.1%} of {eligible:,} eligible weight parameters in "
               f"{sorted(promised)}, weights {ratio:.3f} of fp32, {len(blocking)} blocking metadata difference(s) "
               f"({over})" + ("" if passed else f"; {failure_class}: the IR does not keep the recipe's promises"))
    cov = coverage_of(summary[:500], {"eligible_params": eligible, "precisions": precisions,
                                      "model_kind": obs["model_kind"], "metadata_files_compared": files or []},
                      ["accuracy of the quantized model (gate_compare after the evaluations)",
                       "whether AWQ or scale estimation ran (they change values, not precisions)",
                       "inference: the IR is read, not compiled or run (the deploy canary)"])
    return make_verdict(
        GATE, passed=passed, failure_class=failure_class, decision=None, detail=detail[:1500], checks=checks,
        coverage=cov,
        metrics={"coverage": coverage, "primary_fraction": primary_fraction, "size_ratio": ratio,
                 "eligible_params": eligible, "source_weight_params": src_params,
                 "output_weight_bytes": obs["output_weight_bytes"], "source_weight_bytes": obs["source_weight_bytes"],
                 "output_bytes": obs["output_bytes"], "source_bytes": obs["source_bytes"],
                 "layer_precision_counts": lpc, "metadata_diffs": len(obs["metadata_diffs"]),
                 "model_type": obs.get("model_type"), "model_kind": obs["model_kind"],
                 # reported as measured (observer provenance), not judged
                 "output_qparam_bytes": obs.get("output_qparam_bytes"), "source_kind": obs.get("source_kind"),
                 "metadata_files_compared": obs.get("metadata_files_compared"),
                 "ir_xml": obs.get("ir_xml"), "source": obs.get("source")},
        next_action="none" if passed else "", recipe={"name": recipe["name"], "version": recipe["version"]})
