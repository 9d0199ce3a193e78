"""Turn what the source child and the OpenVINO child returned into the observation the gate reads.

Plain data in, plain data out: no decision here (the gate decides), only which numbers go where.
"""
from __future__ import annotations

from modelgate.openvino import fidelity


def hf_observation(obs: dict, ov: dict, src: dict | None, src_error: str | None, plan: dict,
                   src_class: str | None = None) -> None:
    """Fill ``obs`` (in place) for a Hugging Face source from the two children's results."""
    f32 = ov["runs"]["f32"]
    decoder = plan["kind"] == "decoder"
    obs["_ir_shapes"] = ov.get("ir_shapes")
    obs["tokenizer"] = ov.get("tokenizer")
    obs["config_constants"] = ov.get("config_constants")
    obs["device_default_precision"] = ov.get("device_default")
    greedy = f32.get("greedy") or []
    vocab = (src or {}).get("vocab")
    outputs = list(f32.get("outputs") or [])
    for k, run in enumerate(greedy):
        o = fidelity.nonfinite_counts(run["logits"])
        o["name"] = f"logits[greedy {k}]"
        o["expected_shape"] = [len(run["prompt_ids"]) + plan["new_tokens"] - 1, vocab] if vocab else None
        o["expected_dtype_kind"] = "float"
        outputs.append(o)
    obs["outputs"] = outputs
    src_greedy = (src or {}).get("greedy") or []
    deg = {"rows": f32["equal_logit_rows"]["rows"], "equal_rows": f32["equal_logit_rows"]["equal_rows"],
           "sequences": len(greedy) if decoder else None,
           "ov_degenerate": sum(fidelity.sequence_degenerate(r["generated"]) for r in greedy)}
    if src is not None:
        deg["src_equal_rows"] = src.get("equal_logit_rows", 0)
        deg["src_degenerate"] = sum(fidelity.sequence_degenerate(r["generated"]) for r in src_greedy)
    obs["degenerate"] = deg
    obs["generated"] = [r["generated"] for r in greedy] if decoder else None
    obs["fidelity"] = _fidelity(f32, src, src_error, plan)
    if src is None and src_class:
        obs["fidelity"]["failure_class"] = src_class
    obs["layerwise"] = _layerwise(ov, f32, src, src_error)
    obs["precisions"] = _precisions(ov, src, plan)


def _fidelity(f32: dict, src: dict | None, src_error: str | None, plan: dict) -> dict:
    if src is None:
        return {"source_ran": False, "source_expected": True, "source_kind": "transformers",
                "reason": src_error or "the source did not run"}
    fid = dict(f32.get("logits") or {})
    fid.update(source_ran=True, source_kind="transformers")
    expected = src.get("expected") or {}
    fid["expected"] = {k: (expected.get("logits") or {}).get(k) for k in ("rel_err", "rel_fro", "cosine_mean",
                                                                            "top1_agreement", "scale_ratio")}
    fid["long"] = f32.get("logits_long")
    if plan["kind"] == "decoder":
        greedy = fidelity.greedy_agreement([r["generated"] for r in f32.get("greedy") or []],
                                           [r["generated"] for r in src.get("greedy") or []], plan["greedy_horizon"])
        fid.update(greedy)
        fid["new_tokens"] = plan["new_tokens"]
    return fid


def _layerwise(ov: dict, f32: dict, src: dict | None, src_error: str | None) -> dict:
    out = {"stack": ov.get("stack"), "ir_stacks": sorted(ov.get("stacks") or {}),
           "source_stack": (src or {}).get("stack"), "accumulated": f32.get("accumulated") or {},
           "decoupled": f32.get("decoupled") or {}, "decoupled_inputs": f32.get("decoupled_inputs") or []}
    if src is None:
        out.update(judged=False, not_judged_because=f"the source did not run: {src_error}")
        return out
    if not src.get("stack"):
        out.update(judged=False, not_judged_because="the source model has no block stack (a ModuleList of blocks)")
        return out
    if ov.get("stack") is None:
        out.update(judged=False, not_judged_because=f"no block outputs of {src['stack']} found in the IR (its node "
                                                     "names carry no module path)")
        return out
    expected = src.get("expected")
    out.update(judged=True, blocks=ov["stack"]["blocks"], format=src.get("format"),
               expected={"accumulated": expected["accumulated"], "decoupled": expected["decoupled"],
                         "simulated": expected.get("simulated")} if expected else None)
    return out


def _precisions(ov: dict, src: dict | None, plan: dict) -> dict:
    out = {}
    f32 = ov["runs"]["f32"]
    f32_greedy = [r["generated"] for r in f32.get("greedy") or []]
    for name, run in ov["runs"].items():
        item = {"requested": name, "ran_as": run.get("ran_as")}
        if name != "f32":
            item.update(vs_f32=run.get("vs_f32"), vs_source=run.get("vs_source"),
                        nonfinite_entries=run.get("nonfinite_entries") or [],
                        first_nonfinite_layer=run.get("first_nonfinite_layer"))
            if plan["kind"] == "decoder":
                gens = [r["generated"] for r in run.get("greedy") or []]
                item["greedy_vs_f32"] = fidelity.greedy_agreement(gens, f32_greedy, plan["greedy_horizon"])
        out[name] = item
    return out
