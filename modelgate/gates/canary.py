"""The deploy canary's decision: pure, observation (``modelgate.openvino.canary.observe_canary``) in,
verdict out. The served model must have loaded, answered with the requested number of tokens, and
measured finite, positive latencies and throughput."""
from __future__ import annotations

from modelgate.contract import check, coverage, make_verdict
from modelgate.gates.values import is_number

GATE = "deploy-canary"


def canary_verdict(obs: dict) -> dict:
    """Pure: pass when the served model loaded, answered, and every latency is finite and positive."""
    checks = [check("loaded_and_answered", bool(obs.get("ok")), obs.get("error") or "ok", "no error",
                    None if obs.get("ok") else "DEPLOYMENT_HEALTH_FAILED")]
    if obs.get("ok"):
        keys = (("load_ms", "ttft_ms", "tpot_ms", "throughput_tok_s") if obs.get("kind") == "llm"
                else ("load_ms", "latency_ms", "throughput_inf_s"))
        for k in keys:
            ok = is_number(obs.get(k)) and obs.get(k) > 0
            checks.append(check(k, ok, obs.get(k), "> 0 and finite", None if ok else "DEPLOYMENT_HEALTH_FAILED"))
        checks.append(check("output_finite", obs.get("output_finite") is True, obs.get("output_finite"), True,
                            None if obs.get("output_finite") is True else "DEPLOYMENT_HEALTH_FAILED"))
        if obs.get("kind") == "llm":
            got, want = obs.get("generated_tokens"), obs.get("requested_tokens")
            ok = isinstance(got, int) and got == want and bool(str(obs.get("output_text", "")).strip())
            checks.append(check("tokens_generated", ok, got, want, None if ok else "DEPLOYMENT_HEALTH_FAILED"))
    failed = [c for c in checks if c["pass"] is False]
    passed = not failed
    metrics = {k: v for k, v in obs.items() if k in ("load_ms", "ttft_ms", "tpot_ms", "throughput_tok_s",
                                                    "latency_ms", "throughput_inf_s", "generated_tokens")}
    via = "openvino-genai LLMPipeline" if obs.get("kind") == "llm" else "OpenVINO runtime"
    precision = obs.get("inference_precision")
    metrics["inference_precision"] = precision
    detail = (f"served on {obs.get('device')} via {via}"
              if passed else "deploy canary failed: " + "; ".join(f"{c['name']}={c['measured']}" for c in failed))
    cover = None
    if passed:
        what = (f"{obs.get('generated_tokens')} greedy tokens for one short prompt" if obs.get("kind") == "llm"
                else "one input")
        cover = coverage(f"loads and answers {what} on {obs.get('device')} via {via} at the device's default "
                         f"precision ({precision or 'unknown'})",
                         {"device": obs.get("device"), "inference_precision": precision, "requests": 1,
                          "runtime": via},
                         ["accuracy (the evaluations judge it)", "long prompts and long generations",
                          "batching and concurrent requests", "other devices and precisions"])
    return make_verdict(GATE, passed=passed, failure_class=None if passed else "DEPLOYMENT_HEALTH_FAILED",
                        detail=detail[:1500], checks=checks, metrics=metrics, coverage=cover,
                        next_action="none" if passed else "Load the candidate by hand on the target device; "
                        "check the plugin log and the IR's runtime info.")
