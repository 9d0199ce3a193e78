"""Release report rendering (release/report.py): escaping and per-task deltas."""
import math

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
