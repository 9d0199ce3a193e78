"""Release report rendering: escaping and per-task deltas; canary verdict (pure)."""
import math

from modelgate.gates.canary import canary_verdict
from modelgate.release.report import render_markdown, task_rows


def _report(detail):
    return {"decision": "ACCEPT", "detail": detail, "request": {"model": "<b>m</b>", "threshold": 0.01},
            "workspace": "ws", "next_action": "none",
            "recipes": [{"recipe": "int8<script>", "decision": "ACCEPT", "size": {}, "latency": {},
                         "artifacts": {"candidate_ir": "c/ir", "candidate_sha256": "ab"},
                         "tasks": {"t": {"metric": "top1", "baseline": 0.9, "candidate": 0.8, "delta": -0.1,
                                         "drop_upper_bound": 0.12, "decision": "REGRESSION"}},
                         "stages": [{"gate": "gate-run", "pass": False, "failure_class": "X",
                                     "detail": "model said <img src=x onerror=alert(1)> | pipe"}]}]}


def test_model_and_user_text_is_html_escaped_in_the_markdown_report():
    md = render_markdown(_report("<script>alert(1)</script>"))
    assert "<script>" not in md and "<img" not in md and "<b>" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md and "&lt;img src=x" in md


def test_a_pipe_in_a_stage_detail_cannot_break_the_markdown_table():
    md = render_markdown(_report("d"))
    row = [ln for ln in md.splitlines() if ln.startswith("| gate-run")][0]
    assert row.count("|") == 5


def test_task_rows_report_candidate_minus_baseline_and_the_drop_interval():
    rows = task_rows({"tasks": {"t": {"baseline": 0.9, "candidate": 0.85, "drop": 0.05, "upper_bound": 0.07,
                                      "decision": "REGRESSION", "metric": "top1"}}})
    assert math.isclose(rows["t"]["delta"], -0.05) and rows["t"]["drop_upper_bound"] == 0.07


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
