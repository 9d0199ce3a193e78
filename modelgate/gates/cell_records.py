"""Evidence records of a finished certification cell: pure, the cell and its observation in,
records out.

The child process of a cell (``modelgate.certify.cells``) only observes; this module judges its
observation through the pure oracles and invariants and the playbook's gates, one record per
falsification attempt. The check catalog is a table: check key -> (id, category, gateway,
hypothesis).
"""
from __future__ import annotations

from modelgate.gates import invariants as inv
from modelgate.gates import oracles
from modelgate.gates.values import ge_tol, is_number, le_tol

# check key -> (check id, category, gateway, hypothesis). One table for the whole runner.
CHECKS = {
    "integrity": ("F-INTEG-ST-001", "COMP", "G0",
                  "The safetensors hold exactly the tensors the config's architecture expects."),
    "conversion": ("F-CONV-001", "COMP", "G1", "The source converts to an OpenVINO IR in this format."),
    "load": ("F-LOAD-001", "COMP", "G1", "The model loads on the device."),
    "infer": ("F-INFER-001", "QUAL", "G2", "Every prompt yields at least one generated token."),
    "cell": ("F-STAB-CELL-001", "STAB", "G3", "The cell's process completes without crashing or hanging."),
    "determinism": ("F-STAB-DETERM-001", "STAB", "G3", "Greedy output of one prompt is identical across repeats."),
    "tps": ("F-PERF-TPS-001", "PERF", None, "Generation reaches the playbook's minimum tokens per second."),
    "ttft": ("F-PERF-TTFT-001", "PERF", None, "Time to first token stays under the playbook's maximum."),
    "degenerate": ("F-QUAL-DEGEN-001", "QUAL", "G4", "The output is not degenerate (empty, control characters, "
                                                     "runs or loops)."),
    "arithmetic": ("F-QUAL-ARITH-001", "QUAL", None, "The model answers the arithmetic question correctly."),
    "exact": ("F-QUAL-EXACT-001", "QUAL", "G4", "The model gives the known exact answer."),
    "reference": ("F-REGR-REF-001", "REGR", "G4", "Greedy tokens agree with the safetensors ground truth within "
                                                  "the format's tolerance."),
    "edge": ("F-EDGE-001", "EDGE", "G2", "Edge-case input still yields generated tokens without failure."),
    "serve": ("F-SERVE-001", "COMP", "G2", "The serving endpoint answers a chat completion."),
    "i1": ("F-CONTRACT-I1-001", "REGR", "G4", "I-1: the IR's logits and greedy output match the source."),
    "i2": ("F-CONTRACT-I2-001", "COMP", "G0",
           "I-2: every source weight maps to an IR constant; no unexplained extras."),
    "i3": ("F-CONTRACT-I3-001", "COMP", "G0", "I-3: the IR's weight precisions are what the format promises."),
    "i4": ("F-CONTRACT-I4-001", "REGR", "G0", "I-4: dequantized IR weight statistics match the source."),
    "i5": ("F-CONTRACT-I5-001", "COMP", "G1", "I-5: HF and openvino-tokenizers agree on ids and text."),
}

CONTRACT_PROMPTS = ("the color of sky is", "one two three", "hello world this is")


def record(rid: str, cell: dict, key: str, outcome: str, reason: str, output=None, metrics=None,
           expected=None) -> dict:
    """An evidence record for check ``key`` of the catalog (``expected``: what the check wanted instead of
    ``output``, when there is such a thing)."""
    check_id, category, gateway, hypothesis = CHECKS[key]
    rec = {"id": rid, "cell": {k: cell[k] for k in ("format", "device", "modality", "scenario")},
           "category": category, "gateway": gateway, "check": check_id, "hypothesis": hypothesis,
           "outcome": outcome, "reason": reason or outcome, "output": output, "metrics": metrics or {}}
    if expected is not None:
        rec["expected"] = str(expected)
    return rec


def prompt_of(item) -> str:
    """The prompt of a scenario item (a prompt, or a {"prompt", "answer"} pair)."""
    return item["prompt"] if isinstance(item, dict) else item


def outcome(passed: bool) -> str:
    """The record outcome of a check that ran: Corroborated (not refuted) or Falsified."""
    return "Corroborated" if passed else "Falsified"


LOADING_PROBLEMS = ("missing_keys", "unexpected_keys", "mismatched_keys")


def integrity_record(cell: dict, loading_info: dict | None, failure: str | None = None,
                     timed_out: bool = False) -> dict:
    """G0 record of the safetensors ground truth: its load reported no missing, unexpected or
    mismatched tensors. ``loading_info`` None: the ground truth failed (``failure`` says how)."""
    rid = f"{cell['id']}@integrity"
    if loading_info is None:
        return record(rid, cell, "integrity", "Timeout" if timed_out else "Crashed",
                      f"ground truth failed: {failure}")
    bad = {k: v for k, v in loading_info.items() if v and k in LOADING_PROBLEMS}
    return record(rid, cell, "integrity", outcome(not bad),
                  f"safetensors vs architecture: {bad}" if bad else "every expected tensor present, none unexpected")


def _m(obs: dict, extra: dict | None = None) -> dict:
    out = {"peak_rss_mb": obs.get("peak_rss_mb"), "inference_precision": obs.get("inference_precision")}
    out.update(extra or {})
    return {k: v for k, v in out.items() if v is not None}


def cell_records(cell: dict, obs: dict, ref: dict, doc: dict, duration_ms: float) -> list[dict]:
    """Evidence records of a finished cell, judged by the pure oracles and invariants."""
    cid = cell["id"]
    recs: list[dict] = []
    if cell["modality"] == "contract":
        return _contract_records(cell, obs, ref, doc, duration_ms)
    recs.append(record(f"{cid}@cell", cell, "cell", "Corroborated", f"completed in {duration_ms:.0f} ms",
                       metrics=_m(obs, {"duration_ms": duration_ms})))
    if not obs.get("load_ok"):
        recs.append(record(f"{cid}@load", cell, "load", "Falsified", f"load failed: {obs.get('load_error')}"))
        return recs
    if cell["modality"] != "serve":  # a served model is loaded by the server, not by this cell
        recs.append(record(f"{cid}@load", cell, "load", "Corroborated", f"loaded in {obs.get('load_ms', 0):.0f} ms",
                           metrics=_m(obs, {"load_ms": obs.get("load_ms")})))
    outs = obs["outputs"]
    kind = cell["kind"]
    oc = doc.get("oracles", {})
    gates = doc.get("gates", {})
    if cell["modality"] == "serve":
        answered = [o for o in outs if isinstance(o.get("text"), str)]
        recs.append(record(f"{cid}@serve", cell, "serve", outcome(bool(outs) and len(answered) == len(outs)),
                           f"{len(answered)}/{len(outs)} chat completions answered",
                           metrics=_m(obs, {"duration_ms": sum(o.get("duration_ms", 0.0) for o in outs)})))
    else:
        empty = [i for i, o in enumerate(outs) if not o.get("tokens") and not o.get("text")]
        if kind != "edge":
            recs.append(record(f"{cid}@infer", cell, "infer", outcome(not empty and bool(outs)),
                               f"{len(outs) - len(empty)}/{len(outs)} prompts produced tokens"
                               + (f"; empty or failed: {empty}" if empty else "")))
    # PERF (run modality: genai/transformers timings)
    if cell["modality"] == "run":
        toks = sum(len(o.get("tokens") or []) for o in outs)
        dur = sum(o.get("duration_ms", 0.0) for o in outs)
        tps = toks / (dur / 1000.0) if dur > 0 else 0.0
        if "min_tokens_per_s" in gates:
            ok = toks > 0 and ge_tol(tps, gates["min_tokens_per_s"])
            recs.append(record(f"{cid}@tps", cell, "tps", outcome(ok),
                               f"{tps:.1f} tokens/s ({toks} tokens) vs minimum {gates['min_tokens_per_s']}",
                               metrics=_m(obs, {"tokens_per_s": tps, "duration_ms": dur})))
        ttfts = [o["ttft_ms"] for o in outs if isinstance(o.get("ttft_ms"), (int, float))]
        ttft = max(ttfts) if ttfts else obs.get("ttft_ms")
        if "max_ttft_ms" in gates:
            ok = is_number(ttft) and le_tol(ttft, gates["max_ttft_ms"])
            recs.append(record(f"{cid}@ttft", cell, "ttft", outcome(ok),
                               f"time to first token {ttft if ttft is None else round(ttft, 1)} ms vs maximum "
                               f"{gates['max_ttft_ms']}", metrics=_m(obs, {"ttft_ms": ttft})))
    items = cell["items"]
    per_output = list(enumerate(outs))
    item_of = _items_of_outputs(items, outs)
    deg_cfg = {k: v for k, v in oc.get("degenerate", {}).items() if k != "enabled"}
    if kind in ("prompts", "arithmetic", "exact") and oc.get("degenerate", {}).get("enabled", True):
        for i, o in per_output:
            r = oracles.degenerate_output(o.get("text"), deg_cfg, expected_kind(kind, item_of[i]))
            recs.append(record(f"{cid}@degenerate-{i}", cell, "degenerate", outcome(r["pass"]), r["reason"],
                               output=o.get("text")))
    if kind == "arithmetic" and oc.get("arithmetic", {}).get("enabled", True):
        for i, o in per_output:
            if item_of[i] is None:
                recs.append(record(f"{cid}@arithmetic-{i}", cell, "arithmetic", "Falsified",
                                   "an output that answers no question of the scenario", output=o.get("text")))
                continue
            q = prompt_of(item_of[i])
            r = oracles.arithmetic_answer(q, o.get("text") or "")
            recs.append(record(f"{cid}@arithmetic-{i}", cell, "arithmetic", outcome(r["pass"]),
                               f"{q!r}: {r['reason']}", output=o.get("text"),
                               expected=f"{r['threshold']['expected']:g}"))
    if kind == "exact" and oc.get("exact", {}).get("enabled", True):
        for i, o in per_output:
            pair = item_of[i]
            if pair is None:
                recs.append(record(f"{cid}@exact-{i}", cell, "exact", "Falsified",
                                   "an output that answers no pair of the scenario", output=o.get("text")))
                continue
            r = oracles.exact_answer(o.get("text"), pair["answer"])
            recs.append(record(f"{cid}@exact-{i}", cell, "exact", outcome(r["pass"]),
                               f"{pair['prompt']!r}: {r['reason']}", output=o.get("text"), expected=pair["answer"]))
    if kind == "edge":
        for i, o in per_output:
            ok = bool(o.get("tokens") or o.get("text")) and not o.get("error")
            recs.append(record(f"{cid}@edge-{i}", cell, "edge", outcome(ok),
                               f"{o.get('prompt')!r}: " + (o.get("error") or f"{len(o.get('tokens') or [])} tokens"),
                               output=o.get("text")))
    if kind == "determinism":
        by_prompt: dict[str, list] = {}
        for o in outs:
            by_prompt.setdefault(o.get("prompt"), []).append(o.get("tokens"))
        for i, (p, runs) in enumerate(by_prompt.items()):
            ok = len(runs) >= 2 and all(r == runs[0] for r in runs) and bool(runs[0])
            recs.append(record(f"{cid}@determinism-{i}", cell, "determinism", outcome(ok),
                               f"{p!r}: {len(runs)} runs {'identical' if ok else 'differ or are empty'}"))
    if kind in ("prompts", "arithmetic", "exact") and oc.get("reference", {}).get("enabled", True) \
            and cell["modality"] in ("run", "chat"):
        recs.append(_reference_record(cell, outs, ref, doc))
    return recs


def expected_kind(scenario_kind: str, item) -> str:
    """What a scenario's question expects as its answer, for the degenerate oracle: a number for
    arithmetic, the kind of the known answer for exact pairs, text otherwise."""
    if scenario_kind == "arithmetic":
        return "number"
    if scenario_kind == "exact" and isinstance(item, dict):
        return oracles.answer_kind(item["answer"])
    return "text"


def _items_of_outputs(items: list, outs: list) -> list:
    """The scenario item each output answers: the item of the prompt a run output names, else the
    item at the same position (chat and serve turns); None when there is none."""
    by_prompt = {prompt_of(i): i for i in items}
    found = []
    for n, o in enumerate(outs):
        p = o.get("prompt") if isinstance(o, dict) else None
        found.append(by_prompt[p] if p in by_prompt else (items[n] if n < len(items) else None))
    return found


def _reference_record(cell: dict, outs: list, ref: dict, doc: dict) -> dict:
    cid = cell["id"]
    thr = doc.get("gates", {}).get("reference_agreement", {}).get(cell["format"],
                                                                   oracles.REFERENCE_TOLERANCE[cell["format"]])
    if cell["modality"] == "chat":
        key = cell["scenario"]
        refs = ref.get("retokenized", {}).get(key, [])
        ref_texts = [t.get("text") for t in ref.get("chat", {}).get(key, [])]
        mine = [o.get("retokens", []) for o in outs]
    else:  # each output against the ground truth of its own prompt (a prompt may run more than once)
        item_of = _items_of_outputs(cell["items"], outs)
        truth = [ref.get("run", {}).get(prompt_of(item_of[i]) if item_of[i] is not None else None, {})
                 for i in range(len(outs))]
        refs = [t.get("tokens", []) for t in truth]
        ref_texts = [t.get("text") for t in truth]
        mine = [o.get("tokens") or [] for o in outs]
    pairs = [{"tokens": a, "reference": b} for a, b in zip(mine, refs)]
    if len(refs) != len(mine):
        pairs = []
    r = oracles.reference_agreement(pairs, thr)
    # show the prompt that agrees least: its output against the ground truth's text
    scores = [oracles.prefix_agreement(p["tokens"], p["reference"]) for p in pairs if p["reference"]]
    worst = scores.index(min(scores)) if scores and len(scores) == len(pairs) else None
    return record(f"{cid}@reference", cell, "reference", outcome(r["pass"]), r["reason"],
                  output=outs[worst].get("text") if worst is not None else None,
                  expected=ref_texts[worst] if worst is not None and worst < len(ref_texts) else None,
                  metrics={"agreement": r["measured"]} if r["measured"] is not None else {})


def _contract_records(cell: dict, obs: dict, ref: dict, doc: dict, duration_ms: float) -> list[dict]:
    cid, fmt = cell["id"], cell["format"]
    t = obs["tensors"]
    prompts = [{"src_logits": ref["contract"][p]["first_logits"], "ir_logits": obs["ir"][p]["first_logits"],
                "src_tokens": ref["contract"][p]["tokens"], "ir_tokens": obs["ir"][p]["tokens"]}
               for p in CONTRACT_PROMPTS if p in obs["ir"] and p in ref.get("contract", {})]
    results = {"i1": inv.i1_roundtrip(prompts, fmt), "i2": inv.i2_bijection(t["source"], t["ir"]),
               "i3": inv.i3_no_silent_fallback(fmt, t["precision_counts"]),
               "i4": inv.i4_statistics(t["stat_pairs"], fmt), "i5": inv.i5_tokenizer_roundtrip(obs["tokenizer"])}
    recs = [record(f"{cid}@cell", cell, "cell", "Corroborated", f"completed in {duration_ms:.0f} ms",
                   metrics=_m(obs, {"duration_ms": duration_ms}))]
    for key, r in results.items():
        metrics = r["measured"] if key == "i1" and isinstance(r["measured"], dict) else {}
        shown = {}
        if key == "i1":  # the first prompt whose greedy tokens differ: IR tokens against the source's
            off = next((p for p in CONTRACT_PROMPTS if p in obs["ir"] and p in ref.get("contract", {})
                        and obs["ir"][p]["tokens"] != ref["contract"][p]["tokens"]), None)
            if off is not None:
                shown = {"output": f"{off!r} -> tokens {obs['ir'][off]['tokens']}",
                         "expected": f"{off!r} -> tokens {ref['contract'][off]['tokens']}"}
        recs.append(record(f"{cid}@{key}", cell, key, outcome(r["pass"]), r["reason"], metrics=metrics, **shown))
    return recs
