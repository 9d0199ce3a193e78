"""What one certification cell does: the child-process bodies (observe) and the records built
from their observations (decide, through the pure oracles and invariants).

``cell_body`` and ``reference_body`` run in spawned child processes (``childproc.run_function``)
so that a crash or a hang of one cell becomes Crashed / Timeout evidence instead of killing the
run. ``cell_records`` turns an observation into evidence records; the check catalog is a table.
"""
from __future__ import annotations

import os
import resource
import time

from modelgate.gates import invariants as inv
from modelgate.gates import oracles
from modelgate.openvino import infer

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
    "i2": ("F-CONTRACT-I2-001", "COMP", "G0", "I-2: every source weight maps to an IR constant; no unexplained extras."),
    "i3": ("F-CONTRACT-I3-001", "COMP", "G0", "I-3: the IR's weight precisions are what the format promises."),
    "i4": ("F-CONTRACT-I4-001", "REGR", "G0", "I-4: dequantized IR weight statistics match the source."),
    "i5": ("F-CONTRACT-I5-001", "COMP", "G1", "I-5: HF and openvino-tokenizers agree on ids and text."),
}

# OpenVINO runtime properties per format: fp32 must run in f32 to be a round-trip identity check
FORMAT_RUNTIME_CONFIG = {"openvino-fp32": {"INFERENCE_PRECISION_HINT": "f32"}}
IR_FORMATS = ("openvino-fp32", "openvino-fp16", "openvino-int8", "openvino-int4")
CONTRACT_PROMPTS = ("the color of sky is", "one two three", "hello world this is")


def record(rid: str, cell: dict, key: str, outcome: str, reason: str, output=None, metrics=None) -> dict:
    """An evidence record for check ``key`` of the catalog."""
    check_id, category, gateway, hypothesis = CHECKS[key]
    return {"id": rid, "cell": {k: cell[k] for k in ("format", "device", "modality", "scenario")},
            "category": category, "gateway": gateway, "check": check_id, "hypothesis": hypothesis,
            "outcome": outcome, "reason": reason or outcome, "output": output, "metrics": metrics or {}}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --------------------------------------------------------------------------- engines (child side)

class HFEngine:
    """The safetensors ground truth: transformers on CPU, greedy."""

    def __init__(self, source_dir: str, threads: int):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # stderr belongs to the runner's progress bar
        torch.set_num_threads(max(1, threads))
        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(source_dir)
        self.model, info = AutoModelForCausalLM.from_pretrained(source_dir, output_loading_info=True,
                                                                 dtype=torch.float32)
        self.model.eval()
        self.loading_info = {k: sorted(map(str, v)) for k, v in info.items() if isinstance(v, (list, set))}

    def encode(self, text: str) -> list[int]:
        return [int(i) for i in self.tok(text, add_special_tokens=False)["input_ids"]]

    def generate_ids(self, ids: list[int], max_new_tokens: int) -> dict:
        t = self.torch
        inp = t.tensor([ids or [self.tok.bos_token_id]])
        t0 = time.perf_counter()
        with t.no_grad():
            out = self.model.generate(inp, attention_mask=t.ones_like(inp), max_new_tokens=max_new_tokens,
                                      do_sample=False, pad_token_id=self.tok.pad_token_id)
        dur = (time.perf_counter() - t0) * 1000.0
        new = [int(i) for i in out[0, inp.shape[1]:].tolist()]
        return {"tokens": new, "text": self.tok.decode(new, skip_special_tokens=True), "duration_ms": dur}

    def generate(self, prompt: str, max_new_tokens: int) -> dict:
        return self.generate_ids(self.encode(prompt), max_new_tokens)

    def ttft_ms(self, prompt: str) -> float:
        return self.generate(prompt, 1)["duration_ms"]

    def chat(self, turns: list[str], max_new_tokens: int) -> list[dict]:
        messages, out = [], []
        for turn in turns:
            messages.append({"role": "user", "content": turn})
            text = self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            r = self.generate_ids(self.encode(text), max_new_tokens)
            r["retokens"] = self.encode(r["text"])  # chat replies are compared as re-tokenized text
            messages.append({"role": "assistant", "content": r["text"]})
            out.append(r)
        return out


class OVEngine:
    """An OpenVINO IR through openvino-genai's LLMPipeline (what serving uses), greedy."""

    def __init__(self, ir_dir: str, device: str, threads: int, fmt: str):
        import openvino_genai as ov_genai

        props = dict(FORMAT_RUNTIME_CONFIG.get(fmt, {}))
        # OpenVINO 2026.4 CPU dies with SIGFPE on an fp16 IR with INFERENCE_NUM_THREADS=1, so a
        # single-thread budget leaves the plugin's default instead of pinning one thread
        if device == "CPU" and threads > 1:
            props["INFERENCE_NUM_THREADS"] = threads
        self.g = ov_genai
        self.pipe = ov_genai.LLMPipeline(ir_dir, device, **props)
        self.tok = self.pipe.get_tokenizer()

    def _config(self, max_new_tokens: int):
        cfg = self.g.GenerationConfig()
        cfg.max_new_tokens = max_new_tokens
        cfg.do_sample = False
        return cfg

    def generate(self, prompt: str, max_new_tokens: int) -> dict:
        enc = self.tok.encode(prompt, add_special_tokens=False)
        t0 = time.perf_counter()
        res = self.pipe.generate(enc, self._config(max_new_tokens))
        dur = (time.perf_counter() - t0) * 1000.0
        toks = [int(t) for t in res.tokens[0]]
        pm = res.perf_metrics
        return {"tokens": toks, "text": self.tok.decode(toks, skip_special_tokens=True), "duration_ms": dur,
                "ttft_ms": float(pm.get_ttft().mean)}

    def chat(self, turns: list[str], max_new_tokens: int) -> list[dict]:
        out = []
        self.pipe.start_chat()
        try:
            for turn in turns:
                t0 = time.perf_counter()
                text = str(self.pipe.generate(turn, self._config(max_new_tokens)))
                retok = [int(i) for i in self.tok.encode(text, add_special_tokens=False).input_ids.data[0]] \
                    if text else []
                out.append({"text": text, "retokens": retok, "tokens": retok,
                            "duration_ms": (time.perf_counter() - t0) * 1000.0})
        finally:
            self.pipe.finish_chat()
        return out


def _serve_chat(endpoint: str, model: str, turns: list[str], max_new_tokens: int, timeout_s: float) -> list[dict]:
    """Chat turns against an OpenAI-compatible endpoint (``/chat/completions``), greedy."""
    import json
    import urllib.request

    messages, out = [], []
    for turn in turns:
        messages.append({"role": "user", "content": turn})
        body = json.dumps({"model": model, "messages": messages, "max_tokens": max_new_tokens,
                           "temperature": 0}).encode()
        req = urllib.request.Request(endpoint.rstrip("/") + "/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"}, method="POST")
        t0 = time.perf_counter()
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - endpoint from the playbook
            doc = json.loads(resp.read().decode("utf-8"))
        text = doc["choices"][0]["message"]["content"]
        messages.append({"role": "assistant", "content": text})
        out.append({"text": text, "duration_ms": (time.perf_counter() - t0) * 1000.0})
    return out


# --------------------------------------------------------------------------- child bodies

def reference_body(source_dir: str, run_prompts: list[str], chats: dict, max_new_tokens: int,
                   threads: int = 1) -> dict:
    """Ground truth from the safetensors: greedy run outputs, chat outputs, first-step logits."""
    eng = HFEngine(source_dir, threads)
    run = {p: eng.generate(p, max_new_tokens) for p in run_prompts}
    chat = {key: eng.chat(turns, max_new_tokens) for key, turns in chats.items()}
    contract_ids = [eng.encode(p) for p in CONTRACT_PROMPTS]
    src = infer.source_causal_lm(source_dir, contract_ids, max_new_tokens)["runs"]
    contract = {p: {"tokens": r["generated"], "first_logits": r["logits"][len(ids) - 1].astype(float).tolist()}
                for p, ids, r in zip(CONTRACT_PROMPTS, contract_ids, src)}
    return {"run": run, "chat": chat, "contract": contract, "contract_ids": contract_ids,
            "loading_info": eng.loading_info,
            "retokenized": {key: [r["retokens"] for r in rs] for key, rs in chat.items()}}


def _prompt_of(item) -> str:
    return item["prompt"] if isinstance(item, dict) else item


def cell_body(cell: dict, source_dir: str, ir_dir: str | None, max_new_tokens: int, threads: int = 1,
              serve: dict | None = None, contract_ids: list | None = None) -> dict:
    """Run one cell; return observations (never a verdict). ``cell`` is a ``CellSpec`` dict."""
    if cell.get("fault") == "crash":
        os.abort()  # harness self-test: the child dies by a signal
    if cell.get("fault") == "hang":
        time.sleep(10 ** 6)  # harness self-test: the cell never returns
    obs: dict = {"load_ok": False, "load_error": None, "outputs": []}
    fmt, device, modality = cell["format"], cell["device"], cell["modality"]
    if modality == "contract":
        return _contract_body(source_dir, ir_dir, fmt, device, max_new_tokens, contract_ids or [])
    t0 = time.perf_counter()
    try:
        if modality == "serve":
            engine = None
        elif fmt == "safetensors":
            engine = HFEngine(source_dir, threads)
        else:
            engine = OVEngine(ir_dir, device, threads, fmt)
        obs["load_ok"] = True
    except Exception as exc:  # a load failure is evidence (G1), not a crash
        obs["load_error"] = f"{type(exc).__name__}: {exc}"[:1000]
        return obs
    obs["load_ms"] = (time.perf_counter() - t0) * 1000.0
    prompts = [_prompt_of(i) for i in cell["items"]]
    if modality == "chat":
        obs["outputs"] = engine.chat(prompts, max_new_tokens)
    elif modality == "serve":
        obs["outputs"] = _serve_chat(serve["endpoint"], serve["model"], prompts, max_new_tokens,
                                     cell["timeout_ms"] / 1000.0)
    else:
        for p in prompts:
            for _ in range(max(1, cell.get("repeats", 1))):
                try:
                    obs["outputs"].append(dict(engine.generate(p, max_new_tokens), prompt=p))
                except Exception as exc:  # recorded against the prompt (G2 evidence)
                    obs["outputs"].append({"prompt": p, "tokens": [], "text": None,
                                           "error": f"{type(exc).__name__}: {exc}"[:500]})
        if fmt == "safetensors" and prompts:
            obs["ttft_ms"] = engine.ttft_ms(prompts[0])
    obs["peak_rss_mb"] = _peak_rss_mb()
    return obs


def _contract_body(source_dir: str, ir_dir: str, fmt: str, device: str, max_new_tokens: int,
                   contract_ids: list) -> dict:
    """I-1..I-5 observations: tensors (I-2..I-4), KV-cache greedy run with logits (I-1), tokenizers (I-5)."""
    from modelgate.certify import invariants as observe
    from modelgate.openvino.convert import find_ir_xml
    from modelgate.openvino.tokenizer_parity import tokenizer_parity

    tensors = observe.observe_tensors(source_dir, ir_dir)
    # fp32 is checked as an identity in f32; other formats at the plugin's default precision
    exact = fmt == "openvino-fp32"
    runs = infer.ov_causal_lm(str(find_ir_xml(ir_dir)), contract_ids, max_new_tokens, device, exact)["runs"]
    ir = {p: {"tokens": r["generated"], "first_logits": r["logits"][len(ids) - 1].astype(float).tolist()}
          for p, ids, r in zip(CONTRACT_PROMPTS, contract_ids, runs)}
    parity = tokenizer_parity(source_dir, ir_dir, observe.TOKENIZER_TEXTS, device="CPU")
    samples = [{"text": t["text"], "hf_ids": t["hf_ids"], "ov_ids": t["ov_ids"], "hf_text": t["hf_decoded"],
                "ov_text": t["ov_detokenized"]} for t in parity["texts"]]
    return {"load_ok": True, "tensors": tensors, "ir": ir, "tokenizer": samples, "peak_rss_mb": _peak_rss_mb()}


# --------------------------------------------------------------------------- records (parent side, pure)

def _outcome(passed: bool) -> str:
    return "Corroborated" if passed else "Falsified"


def _m(obs: dict, extra: dict | None = None) -> dict:
    out = {"peak_rss_mb": obs.get("peak_rss_mb")}
    out.update(extra or {})
    return {k: v for k, v in out.items() if v is not None}


def cell_records(cell: dict, obs: dict, ref: dict, doc: dict, duration_ms: float) -> list[dict]:
    """Evidence records of a finished cell, judged by the pure oracles and invariants."""
    cid = cell["id"]
    recs: list[dict] = []
    if cell["modality"] == "contract":
        return _contract_records(cell, obs, ref, doc, duration_ms)
    recs.append(record(f"{cid}@cell", cell, "cell", "Corroborated", f"completed in {duration_ms:.0f} ms",
                       metrics={"duration_ms": duration_ms}))
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
        recs.append(record(f"{cid}@serve", cell, "serve", _outcome(bool(outs) and len(answered) == len(outs)),
                           f"{len(answered)}/{len(outs)} chat completions answered",
                           metrics=_m(obs, {"duration_ms": sum(o.get("duration_ms", 0.0) for o in outs)})))
    else:
        empty = [i for i, o in enumerate(outs) if not o.get("tokens") and not o.get("text")]
        if kind != "edge":
            recs.append(record(f"{cid}@infer", cell, "infer", _outcome(not empty and bool(outs)),
                               f"{len(outs) - len(empty)}/{len(outs)} prompts produced tokens"
                               + (f"; empty or failed: {empty}" if empty else "")))
    # PERF (run modality: genai/transformers timings)
    if cell["modality"] == "run":
        toks = sum(len(o.get("tokens") or []) for o in outs)
        dur = sum(o.get("duration_ms", 0.0) for o in outs)
        tps = toks / (dur / 1000.0) if dur > 0 else 0.0
        if "min_tokens_per_s" in gates:
            ok = toks > 0 and tps >= gates["min_tokens_per_s"]
            recs.append(record(f"{cid}@tps", cell, "tps", _outcome(ok),
                               f"{tps:.1f} tokens/s ({toks} tokens) vs minimum {gates['min_tokens_per_s']}",
                               metrics=_m(obs, {"tokens_per_s": tps, "duration_ms": dur})))
        ttfts = [o["ttft_ms"] for o in outs if isinstance(o.get("ttft_ms"), (int, float))]
        ttft = max(ttfts) if ttfts else obs.get("ttft_ms")
        if "max_ttft_ms" in gates:
            ok = isinstance(ttft, (int, float)) and ttft <= gates["max_ttft_ms"]
            recs.append(record(f"{cid}@ttft", cell, "ttft", _outcome(ok),
                               f"time to first token {ttft if ttft is None else round(ttft, 1)} ms vs maximum "
                               f"{gates['max_ttft_ms']}", metrics=_m(obs, {"ttft_ms": ttft})))
    items = cell["items"]
    per_output = [(i, o) for i, o in enumerate(outs)]
    deg_cfg = {k: v for k, v in oc.get("degenerate", {}).items() if k != "enabled"}
    if kind in ("prompts", "arithmetic", "exact") and oc.get("degenerate", {}).get("enabled", True):
        for i, o in per_output:
            r = oracles.degenerate_output(o.get("text"), deg_cfg)
            recs.append(record(f"{cid}@degenerate-{i}", cell, "degenerate", _outcome(r["pass"]), r["reason"],
                               output=o.get("text")))
    if kind == "arithmetic" and oc.get("arithmetic", {}).get("enabled", True):
        for i, (q, o) in enumerate(zip(items, outs)):
            r = oracles.arithmetic_answer(q, o.get("text") or "")
            recs.append(record(f"{cid}@arithmetic-{i}", cell, "arithmetic", _outcome(r["pass"]),
                               f"{q!r}: {r['reason']}", output=o.get("text")))
    if kind == "exact" and oc.get("exact", {}).get("enabled", True):
        for i, (pair, o) in enumerate(zip(items, outs)):
            r = oracles.exact_answer(o.get("text"), pair["answer"])
            recs.append(record(f"{cid}@exact-{i}", cell, "exact", _outcome(r["pass"]),
                               f"{pair['prompt']!r}: {r['reason']}", output=o.get("text")))
    if kind == "edge":
        for i, o in per_output:
            ok = bool(o.get("tokens") or o.get("text")) and not o.get("error")
            recs.append(record(f"{cid}@edge-{i}", cell, "edge", _outcome(ok),
                               f"{o.get('prompt')!r}: " + (o.get("error") or f"{len(o.get('tokens') or [])} tokens"),
                               output=o.get("text")))
    if kind == "determinism":
        by_prompt: dict[str, list] = {}
        for o in outs:
            by_prompt.setdefault(o.get("prompt"), []).append(o.get("tokens"))
        for i, (p, runs) in enumerate(by_prompt.items()):
            ok = len(runs) >= 2 and all(r == runs[0] for r in runs) and bool(runs[0])
            recs.append(record(f"{cid}@determinism-{i}", cell, "determinism", _outcome(ok),
                               f"{p!r}: {len(runs)} runs {'identical' if ok else 'differ or are empty'}"))
    if kind in ("prompts", "arithmetic", "exact") and oc.get("reference", {}).get("enabled", True) \
            and cell["modality"] in ("run", "chat"):
        recs.append(_reference_record(cell, outs, ref, doc))
    return recs


def _reference_record(cell: dict, outs: list, ref: dict, doc: dict) -> dict:
    cid = cell["id"]
    thr = doc.get("gates", {}).get("reference_agreement", {}).get(cell["format"],
                                                                   oracles.REFERENCE_TOLERANCE[cell["format"]])
    if cell["modality"] == "chat":
        key = cell["scenario"]
        refs = ref.get("retokenized", {}).get(key, [])
        mine = [o.get("retokens", []) for o in outs]
    else:
        refs = [ref.get("run", {}).get(_prompt_of(i), {}).get("tokens", []) for i in cell["items"]]
        mine = [o.get("tokens") or [] for o in outs]
    pairs = [{"tokens": a, "reference": b} for a, b in zip(mine, refs)]
    if len(refs) != len(mine):
        pairs = []
    r = oracles.reference_agreement(pairs, thr)
    return record(f"{cid}@reference", cell, "reference", _outcome(r["pass"]), r["reason"],
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
                   metrics={"duration_ms": duration_ms, "peak_rss_mb": obs.get("peak_rss_mb")})]
    for key, r in results.items():
        metrics = r["measured"] if key == "i1" and isinstance(r["measured"], dict) else {}
        recs.append(record(f"{cid}@{key}", cell, key, _outcome(r["pass"]), r["reason"], metrics=metrics))
    return recs
