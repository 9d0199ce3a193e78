"""What a verify-conversion verdict vouches for, and what to do next: pure, from the observation and checks.

``verify_coverage`` fills the envelope's ``coverage``: one sentence an agent can repeat to a user
("VERIFIED at f32 and bf16 on 17 prompts up to position 2,047 ..."), what was exercised, and what
was not (every check that was not judged, with its reason, the positions the sweep did not reach,
the precisions and devices not run). ``next_action`` turns the first failure into a step that can
be carried out, naming the layer, the flag or the fix.
"""
from __future__ import annotations

from modelgate.contract import coverage


def _n(x) -> str:
    return f"{x:,}" if isinstance(x, int) and not isinstance(x, bool) else str(x)


def verify_coverage(obs: dict, verdict: dict, checks: list[dict]) -> dict:
    """The coverage object of a verify verdict (see the module doc)."""
    plan = obs.get("plan") if isinstance(obs.get("plan"), dict) else {}
    precisions = verdict.get("precisions") or []
    table = verdict.get("layerwise") or []
    blocks = sum(1 for r in table if isinstance(r.get("layer"), int))
    mode = obs.get("mode")
    exercised = {"mode": mode, "weight_format": obs.get("weight_format"), "device": obs.get("device") or "CPU",
                 "precisions": {p["name"]: p["ran_as"] for p in precisions},
                 "modalities": ["text"] if mode in ("causal-lm", "forward") else
                 FAMILY_MODALITIES.get(obs.get("family"), ["tensors"]) if mode == "family" else ["tensors"],
                 "layerwise_blocks": blocks}
    for key in ("family", "denoising_steps", "prompts", "inputs", "greedy_prompts", "new_tokens", "greedy_horizon",
                "compared_tokens", "longest_position", "max_positions", "kv_cache_steps", "kv_cache_chunk_tokens"):
        if plan.get(key) is not None:
            exercised[key] = plan[key]
    not_exercised = [f"{c['name']}: {c.get('not_judged_because')}" for c in checks if c["pass"] is None]
    longest, limit = plan.get("longest_position"), plan.get("max_positions")
    if isinstance(longest, int) and isinstance(limit, int) and longest + 1 < limit:
        not_exercised.append(f"positions {_n(longest + 1)}..{_n(limit - 1)} of the model's {_n(limit)} "
                             f"(the sweep stops at {_n(longest + 1)}; --positions {limit} reaches them)")
    ran = {p["ran_as"] for p in precisions}
    default = obs.get("device_default_precision")
    if default and default not in ran and verdict.get("pass") is not None:
        not_exercised.append(f"the device's default precision {default} (run with --inference-precision default)")
    for low in ("bf16", "f16"):
        if low not in ran and low != default:
            not_exercised.append(f"{low} inference (run with --inference-precision {low} or all)")
    not_exercised.append(f"devices other than {exercised['device']}")
    if mode == "causal-lm":
        not_exercised += ["sampled (non-greedy) decoding", "batches of more than one sequence"]
    exercised["precisions_text"] = " and ".join(sorted(ran, key=["f32", "bf16", "f16"].index)
                                                if ran <= {"f32", "bf16", "f16"} else ran) or "f32"
    return coverage(_summary(obs, verdict, exercised, blocks), exercised, not_exercised)


def _summary(obs: dict, verdict: dict, ex: dict, blocks: int) -> str:
    decision = verdict.get("decision")
    at = ex.pop("precisions_text")
    if not verdict.get("pass"):
        where = ""
        d = verdict.get("first_divergent_layer")
        if d:
            where = f" (first divergent layer: {d['layer']})"
        return (f"{decision}{where}: {verdict.get('detail')}"[:400] + "; nothing is vouched for")
    what = (f"{_n(ex['prompts'])} prompts up to position {_n(ex.get('longest_position'))}" if "prompts" in ex else
            f"{_n(ex['inputs'])} inputs" + (f" up to position {_n(ex['longest_position'])}"
                                             if ex.get("longest_position") is not None else "")
            + (f" of the {ex['family']} family" if ex.get("family") else "") if "inputs" in ex else
            "seeded inputs")
    layer = (f"{blocks} blocks compared layer by layer" if blocks else
             "outputs compared (layer-wise not judged)")
    if decision == "SANE_ONLY":
        return f"SANE_ONLY at {at} on {what}: runs and is numerically sane, not compared with an independent source"
    return f"{decision} at {at} on {what} ({obs.get('weight_format')} weights; {layer})"


LAYER_ACTIONS = {
    "embedding": "Compare the IR's embedding tables (token, position, token-type) and the embedding norm with the "
                 "source's: the output before the first block already differs. Re-export.",
    "head": "Compare the IR's final norm and output head with the source's: every block matches, the head does not. "
            "Re-export.",
}


def next_action(obs: dict, verdict: dict, first: dict | None) -> str:
    """One step that can be carried out, from the first failing check (``none`` on a pass)."""
    if first is None:
        return "none"
    cls = verdict.get("failure_class")
    name = first["name"]
    fmt = obs.get("weight_format")
    d = verdict.get("first_divergent_layer")
    if cls == "FIDELITY_REGRESSION" and name.startswith("layerwise_") and d:
        if d["layer"] in LAYER_ACTIONS:
            return LAYER_ACTIONS[d["layer"]]
        stack = d.get("stack") or "the block stack"
        if d.get("all_blocks_over"):
            return (f"Every block of {stack} diverges on its own, from block 0: check what all blocks share (rotary "
                    "frequencies, attention mask, position ids; the KV cache if only continuation positions diverge). "
                    "Re-export and rerun.")
        if d.get("metric") == "position_rel_err":
            return (f"Block {d['layer']} of {stack} diverges only at positions {d.get('position_bucket')}: check its "
                    "rotary frequencies, position table and KV-cache handling. Re-export and rerun.")
        ratio = f"{d['ratio']:.1f}x" if isinstance(d.get("ratio"), (int, float)) else "beyond"
        return (f"Inspect {stack}.{d['layer']} in the IR: it is the first block whose own output differs from the "
                f"source's ({ratio} its {fmt} limit). Compare that block's weights, quantization scales and zero "
                "points with the source's, then re-export.")
    if cls == "FIDELITY_REGRESSION" and name.startswith("fidelity_") and obs.get("mode") == "family":
        worst = worst_component(obs)
        return (f"The {obs.get('family')} export differs from its source ({name}"
                + (f", worst at {worst}" if worst else "") + "): re-export every sub-model from the same source "
                "folder in one optimum-cli run (a sub-model from another export or a corrupted .bin shows here), "
                "then verify again; if only a low-bit format fails, verify fp16 or int8 instead.")
    if cls == "FIDELITY_REGRESSION" and name.startswith("fidelity_"):
        layer_ok = [c for c in verdict.get("checks", []) if c["name"] in ("layerwise_blocks",
                                                                          "layerwise_hidden_states")]
        if layer_ok and all(c["pass"] is True for c in layer_ok):
            return (f"The IR reproduces the {fmt} format block by block, but {fmt} itself changes this model's outputs "
                    f"({name}): verify a less lossy weight format (fp16 or int8) or a data-aware int4 recipe "
                    "(AWQ, scale estimation), or accept it explicitly with a recorded tolerance override.")
        return ("Compare the outputs per layer: rerun on a Hugging Face source folder to get the layer-wise "
                "comparison, and suspect the output head, a layout or a scale.")
    if cls == "PRECISION_OVERFLOW":
        run = name[len("precision_"):].rsplit("_", 1)[0]
        layer = (first.get("measured") or {}).get("first_nonfinite_layer") if isinstance(first.get("measured"),
                                                                                        dict) else None
        where = (f"block {layer}" if isinstance(layer, int) else str(layer)) if layer is not None else \
            "the affected layers"
        return (f"The f32 run is faithful; the {run} run is not. Deploy this model at f32 (ov_config="
                "{'INFERENCE_PRECISION_HINT': 'f32'} or EXECUTION_MODE_HINT=ACCURACY), or keep "
                f"{where} in f32 (DisablePrecisionConversion in its rt_info, or a KEEP_FP32-style ignored "
                "scope), or rescale its activations; then verify again with --inference-precision "
                f"{run if run in ('bf16', 'f16') else 'default'}.")
    if cls == "PLUGIN_CRASH" and obs.get("usable_cpus") == 1:
        return ("The OpenVINO CPU plugin died while this process could use one CPU only: the runtime is known to "
                "crash (SIGFPE) when compiling for a single-CPU affinity at bf16/f16 (openvinotoolkit/openvino "
                "issue 33300). Rerun with at least 2 CPUs (taskset, the container's cpuset) to verify; a deployment "
                "restricted to one CPU must use INFERENCE_PRECISION_HINT=f32 (--inference-precision f32).")
    if name == "config_constants_match":
        return ("Re-export from the source: constants in the IR (" + (first.get("detail") or "")[:160] +
                ") disagree with config.json. Never hand-edit the IR.")
    return ""


FAMILY_MODALITIES = {"seq2seq-lm": ["text"], "speech-seq2seq": ["audio", "text"], "vision2seq": ["image", "text"],
                     "visual-lm": ["image", "text"], "audio-classification": ["audio"], "ctc": ["audio"],
                     "image-classification": ["image"], "question-answering": ["text"],
                     "text-to-image": ["text", "image"]}
FAMILY_RUNS = {  # family -> what its OpenVINO run is, in a user's words
    "seq2seq-lm": "greedy generate() through OVModelForSeq2SeqLM (encoder IR, then the decoder IR with its KV cache)",
    "speech-seq2seq": "greedy decoding of seeded audio through OVModelForSpeechSeq2Seq (its encoder once, its "
                      "decoder one token per call through the KV cache)",
    "vision2seq": "greedy generate() on seeded images through OVModelForVision2Seq (image encoder, text decoder)",
    "visual-lm": "greedy generate() on a seeded image and a chat prompt through OVModelForVisualCausalLM "
                 "(vision embeddings, text embeddings, language model)",
    "audio-classification": "seeded audio through OVModelForAudioClassification",
    "ctc": "seeded audio through OVModelForCTC",
    "image-classification": "seeded images through OVModelForImageClassification",
    "question-answering": "question/context pairs through OVModelForQuestionAnswering",
    "text-to-image": "the OVStableDiffusionPipeline (text encoder, every UNet step, VAE decoder) on fixed latents",
}


def family_detail(obs: dict, at: str) -> str:
    """The e2e_detail of a task-family verification: what ran and what was compared."""
    family = obs.get("family")
    plan = obs.get("plan") if isinstance(obs.get("plan"), dict) else {}
    fid = obs.get("fidelity") if isinstance(obs.get("fidelity"), dict) else {}
    compared = sorted(fid.get("components") or {}) if fid.get("source_ran") else []
    return (f"ran {plan.get('inputs')} input(s): {FAMILY_RUNS.get(family, family)}, at {at}" +
            (f"; compared {', '.join(compared)} with the source on identical inputs" if compared else "") +
            (" and the greedy tokens" if obs.get("generative") and compared else ""))


def worst_component(obs: dict) -> str | None:
    """The family component (sub-model output or step) farthest from its source twin, by rel_err."""
    comps = ((obs.get("fidelity") or {}).get("components") or {}) if isinstance(obs.get("fidelity"), dict) else {}
    scored = [(c.get("rel_err"), name) for name, c in comps.items() if isinstance(c, dict)
              and isinstance(c.get("rel_err"), (int, float))]
    return max(scored)[1] if scored else None
