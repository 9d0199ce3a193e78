"""The deploy canary's decision (gates/canary.py): pure, observation in, verdict out."""

from modelgate.gates.canary import canary_verdict


def _llm_obs(**kw):
    obs = {"ok": True, "kind": "llm", "device": "CPU", "load_ms": 100.0, "ttft_ms": 1.0, "tpot_ms": 0.2,
           "throughput_tok_s": 4000.0, "generated_tokens": 8, "requested_tokens": 8, "output_text": " blue .",
           "output_finite": True}
    obs.update(kw)
    return obs


def test_healthy_llm_canary_passes_with_its_latencies_as_metrics():
    v = canary_verdict(_llm_obs())
    assert v["pass"] and v["metrics"]["ttft_ms"] == 1.0


def test_nan_first_token_latency_fails_the_canary_even_when_text_was_generated():
    v = canary_verdict(_llm_obs(ttft_ms=float("nan")))
    assert not v["pass"] and v["failure_class"] == "DEPLOYMENT_HEALTH_FAILED"


def test_fewer_tokens_than_requested_or_empty_text_fails_the_canary():
    assert not canary_verdict(_llm_obs(generated_tokens=3))["pass"]
    assert not canary_verdict(_llm_obs(output_text="   "))["pass"]


def test_a_canary_that_could_not_load_fails_with_deployment_health_failed():
    v = canary_verdict({"ok": False, "kind": "runtime", "device": "CPU", "error": "child process died"})
    assert not v["pass"] and v["failure_class"] == "DEPLOYMENT_HEALTH_FAILED" and v["exit_code"] == 1
