"""Release report rendering (release/report.py): escaping and per-task deltas."""
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelgate.release.report import _round_up, next_action, render_markdown, task_rows


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


def test_model_answers_in_the_examples_table_are_escaped():
    rep = _report("d")
    rep["recipes"][0]["examples"] = {"answer-similarity": [{"id": "p1", "similarity": 0.1,
                                                            "baseline": "<script>x</script>", "candidate": "a | b"}]}
    md = render_markdown(rep)
    row = [ln for ln in md.splitlines() if ln.startswith("| p1")][0]
    assert "<script>" not in row and row.count("|") == 5


class _Chain:
    def __init__(self, compare, recipe="int8_asym"):
        self.recipe, self.compare, self.candidate_ir, self.candidate_sha256 = recipe, compare, "/w/c/ir", "ab" * 32
        self.summaries, self.canary, self.eval_info, self.quantize = {"baseline": {}}, {}, {}, None


def _indeterminate(name, n, needed, ub):
    return {"decision": "INDETERMINATE", "tasks": {name: {"decision": "INDETERMINATE", "n": n,
                                                          "samples_needed": needed, "upper_bound": ub}}}


@pytest.mark.parametrize("task,spec,limit,needle", [
    ("answer-similarity", {"engine": "answer-similarity"}, None, "--eval-data FILE with at least 900 lines"),
    ("answer-similarity", {"engine": "answer-similarity"}, 20, "drop --limit 20"),
    ("lm-eval:arc_easy", {"engine": "lm-eval"}, None, "--tasks lm-eval:<task> with at least 900 documents"),
    ("eval-data:image", {"engine": "eval-data", "kind": "image"}, None, "--eval-data DIR with at least 900 labelled"),
    ("embedding-similarity", {"engine": "builtin"}, None, "at least 900 sentence pairs"),
])
def test_an_unresolved_comparison_names_the_flag_and_count_that_add_samples(task, spec, limit, needle):
    chain = _Chain(_indeterminate(task, 40, 900, 0.0812345))
    text = next_action({"decision": "INDETERMINATE"}, [chain], {"task_specs": {task: spec}, "limit": limit},
                       {"threshold": 0.05})
    assert needle in text and "40" in text
    assert "a threshold of 0.0813 is acceptable" in text and "ask the user" in text


def test_a_drop_on_the_threshold_is_not_sent_for_more_samples():
    chain = _Chain(_indeterminate("answer-similarity", 240, None, 0.06))
    text = next_action({"decision": "INDETERMINATE"}, [chain], {"task_specs": {}, "limit": None},
                       {"threshold": 0.05})
    assert "more samples cannot resolve it" in text


@given(st.floats(min_value=1e-9, max_value=1e3, allow_nan=False))
def test_a_suggested_threshold_never_falls_below_the_bound_it_rounds(x):
    r = _round_up(x)
    assert r >= x and float(f"{r:.3g}") == r
