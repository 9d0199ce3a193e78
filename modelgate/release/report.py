"""The release report: JSON (schemas/release-report.schema.json) and Markdown.

The JSON is the decision verdict (from ``decide_release`` / ``decide_search``) plus the
evidence a reader needs: size ratio, per-task deltas with intervals, canary latencies,
artifact paths and hashes. The Markdown is rendered from that JSON only, and every string
that can come from a model or a user is HTML-escaped.
"""
from __future__ import annotations

import html
from typing import Any


def _fmt(x: Any, digits: int = 4) -> str:
    if isinstance(x, bool) or x is None:
        return "—" if x is None else str(x)
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return html.escape(str(x))


def task_rows(compare: dict | None) -> dict:
    """Per-task deltas and one-sided intervals from a compare verdict."""
    rows = {}
    for name, t in ((compare or {}).get("tasks") or {}).items():
        b, c = t.get("baseline"), t.get("candidate")
        delta = c - b if isinstance(b, (int, float)) and isinstance(c, (int, float)) else None
        rows[name] = {"metric": t.get("metric"), "baseline": b, "candidate": c, "delta": delta,
                      "drop": t.get("drop"), "drop_upper_bound": t.get("upper_bound"),
                      "stderr_diff": t.get("stderr_diff"), "stderr_source": t.get("stderr_source"),
                      "n": t.get("n"), "decision": t.get("decision"), "samples_needed": t.get("samples_needed")}
    return rows


def chain_section(chain, ws) -> dict:
    """The evidence of one recipe's chain (a ``conductor.ChainResult``)."""
    obs = chain.ptq_obs or {}
    src_b, out_b = obs.get("source_weight_bytes"), obs.get("output_weight_bytes")
    canary = chain.canary or {}
    latency = {k: canary.get(k) for k in ("load_ms", "ttft_ms", "tpot_ms", "throughput_tok_s", "latency_ms",
                                          "throughput_inf_s", "generated_tokens", "device") if k in canary}
    return {
        "recipe": chain.recipe,
        "decision": chain.verdict.get("decision"),
        "size": {"source_weight_bytes": src_b, "output_weight_bytes": out_b,
                 "size_ratio": (out_b / src_b) if isinstance(src_b, int) and src_b and isinstance(out_b, int) else None,
                 "source_bytes": obs.get("source_bytes"), "output_bytes": obs.get("output_bytes")},
        "tasks": task_rows(chain.compare),
        "latency": latency,
        "artifacts": {"workspace": str(ws.dir), "candidate_ir": chain.candidate_ir,
                      "candidate_sha256": chain.candidate_sha256,
                      "baseline_summary": "baseline/eval/run_summary.json" if chain.summaries else None,
                      "candidate_summary": f"candidate-{chain.recipe}/eval/run_summary.json" if chain.summaries
                      else None},
        "stages": [{"gate": s.get("gate"), "pass": s.get("pass"), "failure_class": s.get("failure_class"),
                    "decision": s.get("decision"), "detail": str(s.get("detail", ""))[:300]} for s in chain.stages],
    }


def render_markdown(report: dict) -> str:
    """Markdown view of a release report (escaped)."""
    e = html.escape
    lines = [f"# day-0 release: {e(str(report.get('decision')))}", "",
             f"{e(str(report.get('detail', '')))}", "",
             f"- model: `{e(str(report.get('request', {}).get('model')))}`",
             f"- threshold: {_fmt(report.get('request', {}).get('threshold'))}"
             f" ({'relative' if report.get('request', {}).get('relative') else 'absolute'})",
             f"- workspace: `{e(str(report.get('workspace')))}`", ""]
    search = report.get("search_table")
    if search:
        metric = html.escape(str(report.get("primary_task", "score")))
        lines += ["## Recipe search", "", f"| recipe | decision | weight bytes | size ratio | {metric} | Pareto |",
                  "|---|---|---|---|---|---|"]
        for r in search:
            lines.append(f"| {e(r['recipe'])} | {e(str(r['decision']))} | {_fmt(r.get('size'))} | "
                         f"{_fmt(r.get('size_ratio'))} | {_fmt(r.get('score'), 6)} | "
                         f"{'yes' if r.get('pareto') else ''} |")
        if report.get("plots"):
            lines += ["", "Plot: " + ", ".join(f"`{e(p)}`" for p in report["plots"])]
        lines.append("")
    for sec in report.get("recipes", []):
        lines += [f"## Recipe `{e(sec['recipe'])}`: {e(str(sec['decision']))}", ""]
        s = sec["size"]
        lines.append(f"- size ratio (weights): {_fmt(s.get('size_ratio'))} "
                     f"({_fmt(s.get('output_weight_bytes'))} / {_fmt(s.get('source_weight_bytes'))} bytes)")
        if sec["latency"]:
            lines.append("- canary: " + ", ".join(f"{e(k)}={_fmt(v)}" for k, v in sec["latency"].items()))
        art = sec["artifacts"]
        lines.append(f"- candidate IR: `{e(str(art.get('candidate_ir')))}` "
                     f"sha256 `{e(str(art.get('candidate_sha256')))}`")
        if sec["tasks"]:
            lines += ["", "| task | metric | baseline | candidate | delta | drop upper bound | decision |",
                      "|---|---|---|---|---|---|---|"]
            for name, t in sec["tasks"].items():
                lines.append(f"| {e(name)} | {e(str(t['metric']))} | {_fmt(t['baseline'], 6)} | "
                             f"{_fmt(t['candidate'], 6)} | {_fmt(t['delta'])} | {_fmt(t['drop_upper_bound'])} | "
                             f"{e(str(t['decision']))} |")
        lines += ["", "| stage | pass | failure class | detail |", "|---|---|---|---|"]
        for st in sec["stages"]:
            lines.append(f"| {e(str(st['gate']))} | {st['pass']} | {e(str(st['failure_class']))} | "
                         f"{e(st['detail']).replace('|', '&#124;')} |")
        lines.append("")
    lines += [f"Next action: {e(str(report.get('next_action', '')))}", ""]
    return "\n".join(lines)
