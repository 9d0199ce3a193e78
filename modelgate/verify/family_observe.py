"""Observe one task family's export (seq2seq, speech, vision-to-text, VLM, audio / image
classification, question answering, Stable Diffusion) end to end against its source.

Every sub-model IR is checked for integrity and NaN/Inf weights first (a truncated sub-model is
never handed to the runtime). Then the source child makes the family's seeded inputs with the
source folder's own processor and runs the transformers / diffusers source on them (f32); the
OpenVINO child runs the same inputs through the optimum-intel class a user loads, at f32
inference precision (faithfulness), then once more per deployment precision (the device's default
unless ``--inference-precision`` says otherwise), judged against the f32 run in its precision's band.
The two sides never hold their models at the same time. The
observation has the same shape as the other paths' so ``modelgate.gates.verify`` judges it.
"""
from __future__ import annotations

import time
from pathlib import Path

from modelgate.contract import GateInputError
from modelgate.openvino import families, fidelity, integrity

# config keys an export may legitimately change (versions, provenance, dtype bookkeeping)
BENIGN_KEYS = frozenset({"transformers_version", "torch_dtype", "dtype", "use_cache", "name_or_path",
                         "export_model_type"})
# files beside the IR that are the exporter's own, not copies of the source's
EXPORT_ONLY = frozenset({"modelgate_conversion.json", "openvino_config.json"})
# tokenizer files the exporter re-saves (adding defaults) rather than copies: not configs of the model
TOKENIZER_FILES = ("tokenizer", "special_tokens_map", "added_tokens", "vocab", "chat_template")
# export sub-folder -> source sub-folder (diffusers: both VAE halves come from vae/)
SUBFOLDER_SOURCE = {"vae_decoder": "vae", "vae_encoder": "vae"}


def require_source_files(src_dir: str, family: str) -> None:
    """Exit-2 (USER_CONFIG_ERROR) when the source folder cannot make the family's inputs."""
    missing = families.missing_source_files(src_dir, family)
    if missing:
        raise GateInputError("USER_CONFIG_ERROR", f"the {family} source {src_dir} has no "
                             f"{families.FAMILIES[family].needs_what}: missing {', '.join(missing)}; it cannot "
                             "be fed the inputs a user would give it")


def require_irs(ir_dir: Path, family: str) -> Path:
    """The main IR of an existing export; exit-2 naming every missing sub-model IR."""
    missing = families.missing_irs(ir_dir, family)
    if missing:
        raise GateInputError("USER_CONFIG_ERROR", f"the {family} export {ir_dir} is missing sub-model IR "
                             f"file(s): {', '.join(missing)} (it needs {', '.join(families.FAMILIES[family].irs)})")
    return ir_dir / families.MAIN_IR[family]


def sub_model_integrity(ir_dir: Path, family: str) -> tuple[dict, dict]:
    """(integrity, weights) over every sub-model: the first incomplete .bin, else the main IR's record with
    every sub-model's; NaN/Inf weight counts summed over all of them."""
    subs = families.sub_models(ir_dir, family)
    records = [integrity.bin_integrity(x) for x in subs]
    bad = next((r for r in records if _truncated(r)), None)
    integ = dict(bad or records[0])
    integ["sub_models"] = [{"xml": str(Path(r["xml"]).relative_to(ir_dir)), "bin_bytes": r["bin_bytes"],
                            "expected_min_bytes": r["expected_min_bytes"]} for r in records]
    weights = {"scanned": 0, "nonfinite": 0, "constants": []}
    if bad is None:
        for x in subs:
            w = integrity.nonfinite_weights(x)
            weights["scanned"] += w["scanned"]
            weights["nonfinite"] += w["nonfinite"]
            weights["constants"] += [dict(c, name=f"{x.relative_to(ir_dir)}:{c.get('name')}")
                                     for c in w.get("constants", [])]
    return integ, weights


def _truncated(r: dict) -> bool:
    return not r["xml_parses"] or not r["bin_exists"] or r["expected_min_bytes"] > r["bin_bytes"]


def config_diffs(ir_dir: Path, src_dir: str) -> list[dict] | None:
    """Keys of the JSON configs beside the IR (config.json, generation_config.json, processor, scheduler,
    per sub-model) that disagree with the source's copy of the same file: the user's pipeline reads them
    (labels, start tokens, image tokens, the scheduler). Keys starting with ``_`` and BENIGN_KEYS are
    bookkeeping. None when the export holds no config.json at all."""
    if not any(ir_dir.rglob("config.json")):
        return None
    out = []
    for p in sorted(ir_dir.rglob("*.json")):
        rel = p.relative_to(ir_dir)
        if p.name in EXPORT_ONLY or p.name.startswith(("openvino_",) + TOKENIZER_FILES):
            continue
        parts = list(rel.parts)
        if len(parts) > 1:
            parts[0] = SUBFOLDER_SOURCE.get(parts[0], parts[0])
        ir_cfg, src_cfg = families.read_json(p), families.read_json(Path(src_dir).joinpath(*parts))
        if ir_cfg is None or src_cfg is None:
            continue
        ir_cfg, src_cfg = _flat(_meaningful(ir_cfg)), _flat(_meaningful(src_cfg))
        out += [{"key": f"{rel}:{k}", "config": _short(ir_cfg.get(k)), "source": _short(src_cfg.get(k))}
                for k in sorted(set(ir_cfg) | set(src_cfg))
                if ir_cfg.get(k) != src_cfg.get(k)]
    return out


def _meaningful(v):
    """A config without its bookkeeping keys, at every depth (sub-configs of encoder-decoders, VLMs)."""
    if isinstance(v, dict):
        return {k: _meaningful(x) for k, x in v.items() if not k.startswith("_") and k not in BENIGN_KEYS}
    if isinstance(v, list):
        return [_meaningful(x) for x in v]
    return v


def _flat(d: dict, prefix: str = "") -> dict:
    """Nested configs as dotted keys (``decoder.decoder_start_token_id``), so a diff names the leaf."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _short(v):
    text = v if isinstance(v, (int, float, bool, str)) or v is None else str(v)
    return text[:200] + "..." if isinstance(text, str) and len(text) > 200 else text


def observe_family(req, obs: dict, ir_dir: Path, hf_dir: str, family: str, call) -> None:
    """Fill ``obs`` for a family export (``call(req, target, kwargs, source=...)`` runs a child body)."""
    fam = families.FAMILIES[family]
    obs["mode"] = "family"
    obs["family"] = family
    integ, weights = sub_model_integrity(ir_dir, family)
    obs["integrity"] = integ
    obs["weights"] = weights
    if _truncated(integ):  # never hand a truncated sub-model to the runtime (the gate judges it)
        return
    diffs = config_diffs(ir_dir, hf_dir)
    if diffs is not None:
        integ["config_vs_source"] = diffs
    key = ("family", family, hf_dir)
    if req.source_cache is not None and key in req.source_cache:  # one source run per source (tests, batches)
        src = req.source_cache[key]
    else:
        src = call(req, "modelgate.openvino.families:source_side",
                   dict(family=family, src_dir=hf_dir, trust_remote_code=req.trust_remote_code), source=True)
        if req.source_cache is not None and src.ok:
            req.source_cache[key] = src
    req.timings["source_s"] = src.seconds
    inputs = src.value["inputs"] if src.ok else families.make_inputs(family, hf_dir)
    t0 = time.monotonic()
    ov = call(req, "modelgate.openvino.families:ov_side",
              dict(family=family, ir_dir=str(ir_dir), inputs=inputs, device=req.device, src_dir=hf_dir))
    req.timings["ov_s"] = ov.seconds or time.monotonic() - t0
    from modelgate.verify.observe import _load_obs
    obs["load"] = _load_obs(ov)
    obs["plan"] = plan_of(family, inputs)
    obs["config_constants"] = {k: {"judged": False, "reason": f"not read for the {family} family"}
                               for k in ("eps", "rotary")}
    obs["layerwise"] = {"judged": False, "not_judged_because": f"the {family} family is compared on its outputs "
                        "(every step / sub-model output), not block by block"}
    obs["precisions"] = {"f32": {"requested": "f32", "ran_as": {"inference_precision": "f32"}}}
    if not ov.ok:
        return
    out = ov.value["outputs"]
    obs["precisions"]["f32"]["ran_as"] = _ran_as(ov.value.get("ran_as"))
    obs["device_default_precision"] = ov.value.get("device_default")
    obs["tokenizer"] = ov.value.get("tokenizer")
    src_out = src.value["outputs"] if src.ok else None
    if not _deployment_runs(req, obs, ir_dir, family, inputs, out, src_out, call):
        return
    outputs = []
    for name, arr in families.primary_outputs(family, out).items():
        o = fidelity.nonfinite_counts(arr)
        o["name"] = name
        ref = families.primary_outputs(family, src_out).get(name) if src_out else None
        o["expected_shape"] = list(ref.shape) if ref is not None else None
        outputs.append(o)
    obs["outputs"] = outputs
    primary = out["image"] if family == "text-to-image" else next(iter(families.primary_outputs(family, out).values()))
    eq = fidelity.equal_logit_rows(primary.reshape(1, -1) if family == "text-to-image" else primary)
    deg = {"rows": eq["rows"], "equal_rows": eq["equal_rows"], "sequences": None}
    if fam.generative:
        deg.update(sequences=len(out["tokens"]),
                   ov_degenerate=sum(fidelity.sequence_degenerate([int(t) for t in s]) for s in out["tokens"]))
        obs["generated"] = [[int(t) for t in s] for s in out["tokens"]]
        obs["generative"] = True
    if src_out is not None:
        src_primary = (src_out["image"].reshape(1, -1) if family == "text-to-image" else
                       next(iter(families.primary_outputs(family, src_out).values())))
        deg["src_equal_rows"] = fidelity.equal_logit_rows(src_primary)["equal_rows"]
        if fam.generative:
            deg["src_degenerate"] = sum(fidelity.sequence_degenerate([int(t) for t in s]) for s in src_out["tokens"])
    obs["degenerate"] = deg
    if src_out is None:
        obs["fidelity"] = {"source_ran": False, "source_expected": True, "source_kind": fam.library,
                           "reason": src.detail or "the source did not run"}
        if src.failure_class in ("TIMEOUT", "RESOURCE_EXHAUSTED"):
            obs["fidelity"]["failure_class"] = src.failure_class
        return
    fid = families.compare(family, out, src_out)
    fid.update(source_ran=True, source_kind=fam.library)
    if fam.generative:
        fid["new_tokens"] = families.NEW_TOKENS
    obs["fidelity"] = fid


def _ran_as(ran) -> dict:
    """The precisions every compiled sub-model reported, one value per key when they agree, else their
    list joined by "+" (an unknown precision to the gate: judged fail-closed)."""
    out = {}
    for key in ("inference_precision", "kv_cache_precision"):
        values = (ran or {}).get(key) if isinstance(ran, dict) else None
        out[key] = (values[0] if len(values) == 1 else "+".join(values)) if values else None
    return out


def _deployment_runs(req, obs: dict, ir_dir: Path, family: str, inputs: dict, f32_out: dict, src_out: dict | None,
                     call) -> bool:
    """The family's OpenVINO class again at each deployment precision ``--inference-precision`` asks for
    (``default``: the device's choice), each in its own child, compared with the f32 run (the precision's
    own effect) and the source. False when a run could not be made (its failure is the load failure)."""
    from modelgate.openvino.precision import requested_precisions
    fam = families.FAMILIES[family]
    for prec in requested_precisions(req.inference_precision, "default"):
        if prec == "f32":
            continue
        res = call(req, "modelgate.openvino.families:ov_side",
                   dict(family=family, ir_dir=str(ir_dir), inputs=inputs, device=req.device, precision=prec))
        req.timings[f"ov_{prec}_s"] = res.seconds
        if not res.ok:
            from modelgate.verify.observe import _load_obs
            obs["load"] = _load_obs(res)
            obs["load"]["detail"] = f"the {prec} run: {obs['load'].get('detail')}"
            return False
        low = res.value["outputs"]
        counts = {name: fidelity.nonfinite_counts(arr) for name, arr in families.primary_outputs(family, low).items()}
        vs_f32 = families.compare(family, low, f32_out)
        vs_f32["nonfinite"] = sum(c["nan"] + c["inf"] for c in counts.values())
        run = {"requested": prec, "ran_as": _ran_as(res.value.get("ran_as")),
               "vs_f32": vs_f32, "nonfinite_entries": [n for n, c in counts.items() if c["nan"] or c["inf"]],
               "first_nonfinite_layer": None,
               "vs_source": families.compare(family, low, src_out) if src_out is not None else None}
        if fam.generative:
            run["greedy_vs_f32"] = fidelity.greedy_agreement([[int(t) for t in s] for s in low["tokens"]],
                                                             [[int(t) for t in s] for s in f32_out["tokens"]],
                                                             families.NEW_TOKENS)
        obs["precisions"][prec] = run
    return True


def plan_of(family: str, inputs: dict) -> dict:
    """What the family's run exercised (for the coverage object)."""
    if family == "visual-lm":
        n = len(inputs["samples"])
    elif family == "text-to-image":
        n = 1
    else:
        n = int(inputs[inputs["main"]].shape[0])
    fam = families.FAMILIES[family]
    out = {"inputs": n, "family": family}
    if fam.generative:
        out.update(new_tokens=families.NEW_TOKENS, greedy_prompts=n, greedy_horizon=families.NEW_TOKENS)
    if family == "text-to-image":
        out["denoising_steps"] = families.SD_STEPS
    return out
