"""Deploy canary: load the candidate the way it will be served and run a short real request.

LLMs go through ``openvino_genai.LLMPipeline`` (what serving uses); everything else through
the OpenVINO runtime. Metrics follow llm_bench: the first request is a warm-up and is
excluded; load time, time to first token (TTFT), time per output token (TPOT) and
throughput come from genai's ``PerfMetrics`` of the measured request.

``observe_canary`` runs the body in a child process and returns a plain dict; the pure
``modelgate.gates.canary.canary_verdict`` decides pass / DEPLOYMENT_HEALTH_FAILED from it.
"""
from __future__ import annotations

import time
from pathlib import Path

from modelgate import childproc

CANARY_PROMPT = "the color of sky is"
CANARY_NEW_TOKENS = 8
CANARY_RUNS = 5


def llm_canary_body(ir_dir: str, device: str, prompt: str, new_tokens: int) -> dict:
    """Child body: LLMPipeline load, one warm-up request, one measured request with a fixed token count."""
    import openvino_genai as ov_genai

    t0 = time.perf_counter()
    pipe = ov_genai.LLMPipeline(ir_dir, device)  # the device's defaults: what a default deployment serves
    load_ms = (time.perf_counter() - t0) * 1000.0
    tok = pipe.get_tokenizer()
    cfg = ov_genai.GenerationConfig()
    cfg.max_new_tokens = new_tokens
    cfg.min_new_tokens = new_tokens  # a fixed count makes TPOT and throughput comparable across runs
    cfg.do_sample = False
    inputs = tok.encode(prompt, add_special_tokens=False)
    pipe.generate(inputs, cfg)  # warm-up, excluded (llm_bench)
    res = pipe.generate(inputs, cfg)
    pm = res.perf_metrics
    text = tok.decode(res.tokens[0])
    return {"kind": "llm", "device": device, "load_ms": load_ms, "genai_load_ms": float(pm.get_load_time()),
            "ttft_ms": float(pm.get_ttft().mean), "tpot_ms": float(pm.get_tpot().mean),
            "throughput_tok_s": float(pm.get_throughput().mean),
            "generated_tokens": int(pm.get_num_generated_tokens()), "requested_tokens": new_tokens,
            "output_text": text, "output_finite": True, "inference_precision": _default_precision(device)}


def _default_precision(device: str) -> str | None:
    """The device's default inference precision (bf16 on CPUs that support it): what the canary ran at."""
    import openvino as ov

    try:
        value = ov.Core().get_property(device, "INFERENCE_PRECISION_HINT")
    except RuntimeError:
        return None
    return value.get_type_name() if hasattr(value, "get_type_name") else str(value)


def runtime_canary_body(ir_xml: str, device: str, inputs: dict, runs: int) -> dict:
    """Child body: compile with the OpenVINO runtime, one warm-up inference, then ``runs`` timed ones."""
    import numpy as np
    import openvino as ov

    t0 = time.perf_counter()
    compiled = ov.Core().compile_model(ir_xml, device)
    load_ms = (time.perf_counter() - t0) * 1000.0
    req = compiled.create_infer_request()
    feed = {k: np.asarray(v) for k, v in inputs.items()}
    req.infer(feed)  # warm-up, excluded
    lat = []
    for _ in range(runs):
        t = time.perf_counter()
        req.infer(feed)
        lat.append((time.perf_counter() - t) * 1000.0)
    out = req.get_output_tensor(0).data
    lat.sort()
    return {"kind": "runtime", "device": device, "load_ms": load_ms, "latency_ms": lat[len(lat) // 2],
            "latencies_ms": lat, "throughput_inf_s": 1000.0 / (sum(lat) / len(lat)),
            "output_shape": list(out.shape), "output_finite": bool(np.isfinite(out).all()),
            "inference_precision": _default_precision(device)}


def observe_canary(ir_dir: str | Path, *, llm: bool, device: str = "CPU", sample_inputs: dict | None = None,
                   timeout: float = 300.0) -> dict:
    """Run the canary in a child process; returns the observation (``ok`` False with a reason on crash)."""
    ir_dir = Path(ir_dir)
    if llm:
        res = childproc.run_function("modelgate.openvino.canary:llm_canary_body",
                                     dict(ir_dir=str(ir_dir), device=device, prompt=CANARY_PROMPT,
                                          new_tokens=CANARY_NEW_TOKENS), timeout=timeout,
                                     error_class="DEPLOYMENT_HEALTH_FAILED")
    else:
        res = childproc.run_function("modelgate.openvino.canary:runtime_canary_body",
                                     dict(ir_xml=str(ir_dir / "openvino_model.xml"), device=device,
                                          inputs=sample_inputs or {}, runs=CANARY_RUNS), timeout=timeout,
                                     error_class="DEPLOYMENT_HEALTH_FAILED")
    if not res.ok:
        return {"ok": False, "kind": "llm" if llm else "runtime", "device": device,
                "error_class": res.failure_class, "error": res.detail, "seconds": res.seconds}
    return dict(res.value, ok=True, seconds=res.seconds)
