"""What one certification cell does: the child-process bodies that observe. Nothing here decides.

``cell_body``, ``reference_body`` and ``convert_body`` run in child processes (``modelgate.executor``)
so that a crash or a hang of one cell becomes Crashed / Timeout evidence instead of killing the
run. They return plain observations; ``modelgate.gates.cell_records.cell_records`` judges them
into evidence records.
"""
from __future__ import annotations

import os
import resource
import time
from pathlib import Path

from modelgate.gates.cell_records import CONTRACT_PROMPTS, prompt_of
from modelgate.openvino import infer

# OpenVINO runtime properties per format: fp32 must run in f32 to be a round-trip identity check
FORMAT_RUNTIME_CONFIG = {"openvino-fp32": {"INFERENCE_PRECISION_HINT": "f32"}}
IR_FORMATS = ("openvino-fp32", "openvino-fp16", "openvino-int8", "openvino-int4")


PRECISION_HINT = "INFERENCE_PRECISION_HINT"
# openvino element type names -> the short names the verdicts use
PRECISION_NAMES = {"f32": "f32", "float32": "f32", "f16": "f16", "float16": "f16", "bf16": "bf16",
                   "bfloat16": "bf16"}


def _precision_name(value) -> str:
    text = str(getattr(value, "get_type_name", lambda: value)()).lower()
    text = text.replace("<type: '", "").replace("'>", "")
    return PRECISION_NAMES.get(text, text)


def inference_precision(ir_dir: str, device: str, props: dict) -> str:
    """The inference precision a pipeline compiled with ``props`` runs at: the explicit hint, else the
    IR's own runtime option, else the device's default (which is what the compiled model reports).
    openvino-genai does not expose its compiled model, so this reads the same three sources it uses."""
    import openvino as ov

    if props.get(PRECISION_HINT):
        return _precision_name(props[PRECISION_HINT])
    core = ov.Core()
    rt = core.read_model(str(_ir_xml(ir_dir))).get_rt_info()
    if "runtime_options" in rt and PRECISION_HINT in rt["runtime_options"]:
        return _precision_name(rt["runtime_options"][PRECISION_HINT].astype(str))
    return _precision_name(core.get_property(device, PRECISION_HINT))


def _ir_xml(ir_dir: str):
    from modelgate.openvino.convert import find_ir_xml

    return find_ir_xml(ir_dir)


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
        self.precision = inference_precision(ir_dir, device, props)

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

class NodeInputError(RuntimeError):
    """What a unit needs is not on, and cannot be made on, the node that was given the unit."""

    def __init__(self, failure_class: str, message: str):
        super().__init__(message)
        self.failure_class = failure_class


def convert_body(source_dir: str, weight_format: str, timeout_s: float, cache_dir: str | None = None) -> dict:
    """Export one OpenVINO format of the source (optimum-intel, cached by recipe hash on this node or in
    ``cache_dir``). A failed export is evidence (F-CONV-001), returned, not raised."""
    from modelgate.openvino.convert import export_cached

    t0 = time.monotonic()
    try:
        ir = export_cached(source_dir, weight_format, timeout=timeout_s, cache_dir=cache_dir)
    except Exception as exc:  # a failed export is G1 evidence for this format
        return {"ir_dir": None, "detail": f"export failed: {type(exc).__name__}: {exc}"[:1500]}
    return {"ir_dir": str(ir), "detail": f"exported ({weight_format}, cached) in {time.monotonic() - t0:.1f} s"}


def prepare_inputs(source_dir: str, ir: dict | None = None) -> dict:
    """Worker side, before a unit's child starts: its inputs on this node (``executor.Unit.prepare``).

    ``ir`` (cells of an OpenVINO format): ``{"ir_dir", "weight_format", "cache_dir", "timeout_s"}``. The
    IR the conversion unit built is found at its path (same node, or a shared ``cache_dir``); on
    another node it is built here from the same recipe, into that node's conversion cache.
    ``weight_format`` None: an IR the playbook supplied, which must be there. Returns
    ``{"ir_dir": ...}`` for cells, ``{}`` otherwise.
    """
    if not Path(source_dir).is_dir():
        raise NodeInputError("SOURCE_UNAVAILABLE", f"source folder {source_dir} is not on this node (a cluster "
                             "needs sources on storage every node sees at the same path)")
    if ir is None:
        return {}
    if ir["ir_dir"] and (Path(ir["ir_dir"]) / "openvino_model.xml").is_file():
        return {"ir_dir": ir["ir_dir"]}
    if ir.get("weight_format") is None:
        raise NodeInputError("SOURCE_UNAVAILABLE", f"IR folder {ir['ir_dir']} (supplied by the playbook) is not "
                             "on this node")
    from modelgate.openvino.convert import export_cached

    try:
        built = export_cached(source_dir, ir["weight_format"], timeout=ir["timeout_s"], cache_dir=ir.get("cache_dir"))
    except RuntimeError as exc:
        raise NodeInputError("CONVERSION_FAILED", f"the {ir['weight_format']} IR could not be built on this "
                             f"node: {exc}") from exc
    return {"ir_dir": str(built)}


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
            obs["inference_precision"] = "f32"  # the ground truth runs torch in float32
        else:
            engine = OVEngine(ir_dir, device, threads, fmt)
            obs["inference_precision"] = engine.precision
        obs["load_ok"] = True
    except Exception as exc:  # a load failure is evidence (G1), not a crash
        obs["load_error"] = f"{type(exc).__name__}: {exc}"[:1000]
        return obs
    obs["load_ms"] = (time.perf_counter() - t0) * 1000.0
    prompts = [prompt_of(i) for i in cell["items"]]
    if modality == "chat":
        obs["outputs"] = engine.chat(prompts, max_new_tokens)
    elif modality == "serve":
        obs["outputs"] = _serve_chat(serve["endpoint"], serve["model"], prompts, max_new_tokens,
                                     cell["timeout_ms"] / 1000.0)
    else:
        # only a determinism cell runs a prompt more than once (the playbook refuses repeats elsewhere)
        repeats = max(1, cell.get("repeats", 1)) if cell.get("kind") == "determinism" else 1
        for p in prompts:
            for _ in range(repeats):
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
    from modelgate.certify import invariants_observe as observe
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
    precision = inference_precision(ir_dir, device, infer.EXACT_CONFIG if exact else {})
    return {"load_ok": True, "tensors": tensors, "ir": ir, "tokenizer": samples, "peak_rss_mb": _peak_rss_mb(),
            "inference_precision": precision}


