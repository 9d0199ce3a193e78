"""The release report: JSON (schemas/release-report.schema.json) and Markdown.

The JSON is the decision verdict (from ``decide_release`` / ``decide_search``) plus the
evidence a reader needs: size ratio, per-task deltas with intervals, canary latencies,
artifact paths and hashes. The Markdown is rendered from that JSON only, and every string
that can come from a model or a user is HTML-escaped.
"""
from __future__ import annotations

import html
import json
import math
from typing import Any

# tasks whose fixed data cannot grow: more samples must come from elsewhere
FIXED_SIZE = ("fixture:",)
SIMILARITY_PROMPTS = 240


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
                      "baseline_summary": str(ws.path("baseline", "eval", "run_summary.json"))
                      if chain.summaries else None,
                      "candidate_summary": str(ws.path(f"candidate-{chain.recipe}", "eval", "run_summary.json"))
                      if chain.summaries else None},
        "examples": lowest_pairs(chain, ws),
        "stages": [{"gate": s.get("gate"), "pass": s.get("pass"), "failure_class": s.get("failure_class"),
                    "decision": s.get("decision"), "detail": str(s.get("detail", ""))[:300]} for s in chain.stages],
    }


def lowest_pairs(chain, ws, k: int = 3) -> dict:
    """The ``k`` least similar answer pairs per answer-similarity task (what changed, for a person to read)."""
    out: dict = {}
    cand = (chain.summaries or {}).get("candidate") or {}
    for name, t in (cand.get("tasks") or {}).items():
        if t.get("metric") != "answer_similarity" or not t.get("records_path"):
            continue
        try:
            with open(ws.path(f"candidate-{chain.recipe}", "eval", t["records_path"]), encoding="utf-8") as fh:
                recs = [json.loads(line) for line in fh if line.strip()]
        except (OSError, ValueError):
            continue
        recs.sort(key=lambda r: (r.get("score", 1.0), str(r.get("id"))))
        out[name] = [{"id": r.get("id"), "similarity": r.get("score"), "baseline": str(r.get("reference"))[:300],
                      "candidate": str(r.get("prediction"))[:300]} for r in recs[:k]]
    return out


def chosen_chain(verdict: dict, chains: list):
    """The chain a verdict speaks for: the accepted recipe of a search, else the last one that was judged."""
    chosen = (verdict.get("search") or {}).get("chosen")
    for c in chains:
        if c.recipe == chosen:
            return c
    judged = [c for c in chains if c.summaries]
    return (judged or chains)[-1]


def _precision_words(eval_config: dict, info: dict) -> str:
    runtime = {}
    for v in (info.get("candidate") or info.get("baseline") or {}).get("runtime", {}).values():
        runtime.update({k: x for k, x in (v or {}).items() if x is not None and k != "properties"})
    prec = runtime.get("INFERENCE_PRECISION_HINT")
    if eval_config.get("precision") == "f32":
        return "f32 (f32 arithmetic and KV cache, no dynamic activation quantization)"
    return f"the device's default precision ({prec or 'as served'})"


def release_coverage(verdict: dict, chain, eval_config: dict, request: dict) -> dict:
    """What the release verdict vouches for: the recipe, tasks and sample counts, the precision the evals
    and the canary ran at, the threshold; and what was not exercised."""
    from modelgate.contract import coverage

    specs = eval_config.get("task_specs") or {}
    tasks = {n: {"samples": s.get("samples"), "metric": s.get("pack_metric") or s.get("metric"),
                 "engine": s.get("engine")} for n, s in specs.items()}
    canary = chain.canary or {}
    canary_prec = canary.get("inference_precision")
    eval_prec = eval_config.get("precision")
    exercised = {"recipe": chain.recipe, "tasks": tasks, "device": eval_config.get("device"),
                 "eval_precision": eval_prec, "eval_properties": eval_config.get("properties"),
                 "canary_precision": canary_prec, "limit": eval_config.get("limit"),
                 "threshold": {"value": request.get("threshold"), "relative": request.get("relative"),
                               "source": request.get("threshold_source")}}
    if chain.quantize and chain.quantize.get("calibration_source"):
        exercised["calibration"] = {"source": chain.quantize["calibration_source"],
                                    "samples": chain.quantize.get("calibration_samples")}
    not_exercised = []
    if eval_prec == "f32" and canary_prec and canary_prec != "f32":
        not_exercised.append(f"accuracy at {canary_prec}, the device's default precision the canary served at "
                             "(re-run with --eval-precision served to evaluate it)")
    if eval_prec == "served":
        not_exercised.append("accuracy at f32 (the evaluations ran at the device's default precision)")
    if any(s.get("engine") == "answer-similarity" for s in specs.values()):
        g = next(s["generation"] for s in specs.values() if s.get("engine") == "answer-similarity")
        not_exercised.append(f"answers longer than {g['max_new_tokens']} tokens, sampled (non-greedy) decoding"
                             + ("" if g.get("chat_template") else ", the chat template"))
    if eval_config.get("lm_eval"):
        not_exercised.append(f"lm-eval requests longer than {eval_config['lm_eval']['max_length']} tokens")
    if eval_config.get("limit"):
        not_exercised.append(f"samples beyond the first {eval_config['limit']} of each task (--limit)")
    fixture = [n for n in specs if n.startswith(FIXED_SIZE)]
    if fixture:
        not_exercised.append(f"any data but the pack's fixtures ({', '.join(fixture)} fit only the fixture models)")
    not_exercised += [f"devices other than {eval_config.get('device')}", "batching and concurrent requests",
                      "tasks and domains not listed in exercised.tasks"]
    what = ", ".join(f"{n} ({t['samples']} samples)" for n, t in tasks.items())
    thr = request.get("threshold")
    thr_words = f"threshold {thr:g} {'relative to the baseline' if request.get('relative') else 'absolute'}" \
        if isinstance(thr, (int, float)) else "no threshold"
    decision = verdict.get("decision")
    prec_words = _precision_words(eval_config, chain.eval_info or {})
    if decision == "ACCEPT":
        summary = (f"ACCEPT for {chain.recipe} at {prec_words} on {eval_config.get('device')}: {what}; {thr_words}"
                   + (f"; not evaluated at the served precision {canary_prec}" if eval_prec == "f32" and canary_prec
                      and canary_prec != "f32" else ""))
    else:
        summary = (f"{decision}: nothing is vouched for; {chain.recipe} was judged on {what} at {prec_words}; "
                   f"{thr_words}" if chain.summaries else
                   f"{decision}: nothing is vouched for; {chain.recipe} stopped before the evaluations")
    return coverage(summary[:1000], exercised, not_exercised)


def next_action(verdict: dict, chains: list, eval_config: dict, request: dict) -> str:
    """What to do next, in terms an agent can carry out (flags, data, a question for the user)."""
    decision = verdict.get("decision")
    chain = chosen_chain(verdict, chains)
    if decision == "ACCEPT":
        return (f"Publish {chain.candidate_ir} (sha256 {chain.candidate_sha256}) with report.md; tell the user what "
                "it was checked on (coverage.summary) and what it was not (coverage.not_exercised).")
    compare = chain.compare or {}
    if decision == "INDETERMINATE" and compare.get("decision") == "INDETERMINATE":
        return _more_samples(compare, eval_config, request)
    if decision == "REGRESSION":
        worst = [f"{n} (drop {t.get('drop'):.3g} > {request.get('threshold'):g})"
                 for n, t in (compare.get("tasks") or {}).items()
                 if t.get("decision") == "REGRESSION" and isinstance(t.get("drop"), (int, float))]
        return ("Do not publish: " + (", ".join(worst) or verdict.get("detail", "")[:200]) + ". Try a less "
                "aggressive recipe (--recipes most to least aggressive, e.g. int4_asym_g128,int8_asym) or report "
                "the rejection to the user; the lowest-similarity answers are in recipes[].examples.")
    return verdict.get("next_action") or ""


# model kind -> how a user adds evaluation samples of their own
MORE_DATA = {
    "llm": ("--eval-data FILE with at least {n} lines: {{\"prompt\": ...}} (answer similarity on your prompts) or "
            "{{\"prompt\": ..., \"answer\": ...}} (answers checked)", "--tasks lm-eval:<task> with at least {n} "
            "documents (an lm-evaluation-harness task or group)"),
    "encoder": ("--eval-data FILE with at least {n} sentence pairs ({{\"text_a\", \"text_b\", \"score\"}})",),
    "classifier": ("--eval-data DIR with at least {n} labelled images (<label>/<image>)",),
}


def _model_kind(name: str, spec: dict) -> str:
    from modelgate.openvino.evaluate import TASKS
    from modelgate.release.eval_data import KIND_MODEL

    if name in TASKS:
        return TASKS[name]["model_kind"]
    if spec.get("kind") in KIND_MODEL:
        return KIND_MODEL[spec["kind"]]
    return "llm"


def _round_up(x: float, digits: int = 3) -> float:
    """``x`` rounded up to ``digits`` significant digits (a suggested threshold must not fall below the bound)."""
    if x <= 0:
        return 0.0
    scale = 10 ** (digits - 1 - math.floor(math.log10(x)))
    return math.ceil(x * scale) / scale


def _more_samples(compare: dict, eval_config: dict, request: dict) -> str:
    specs = eval_config.get("task_specs") or {}
    limit = eval_config.get("limit")
    steps, bounds = [], []
    for name, t in (compare.get("tasks") or {}).items():
        if t.get("decision") != "INDETERMINATE":
            continue
        n, needed = t.get("n"), t.get("samples_needed")
        if isinstance(t.get("upper_bound"), (int, float)):
            bounds.append(t["upper_bound"])
        if needed is None:
            steps.append(f"{name}: the observed drop sits on the threshold, more samples cannot resolve it")
            continue
        spec = specs.get(name) or {}
        ways = [f"drop --limit {limit} (the task has more samples)"] if limit else []
        if name == "answer-similarity" and not limit:
            ways.append(f"the built-in prompt set is all used ({SIMILARITY_PROMPTS} prompts)")
        ways += [w.format(n=needed) for w in MORE_DATA[_model_kind(name, spec)]]
        steps.append(f"{name} scored {n} samples, about {needed} would resolve it: " + "; or ".join(ways))
    ub = _round_up(max(bounds)) if bounds else None
    ask = (f"Or ask the user whether a threshold of {ub:g} is acceptable (the smallest this evidence resolves) and "
           "re-run the same command with --threshold: every cached stage is reused, only the comparison and the "
           "decision run again." if ub is not None else "Or ask the user for a wider --threshold.")
    thr = request.get("threshold")
    return (f"Not resolved at threshold {thr:g}: " if isinstance(thr, (int, float)) else "Not resolved: ") \
        + " | ".join(steps) + ". " + ask


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
        for task, pairs in (sec.get("examples") or {}).items():
            lines += ["", f"Least similar answers ({e(task)}):", "", "| id | similarity | baseline | candidate |",
                      "|---|---|---|---|"]
            for pr in pairs:
                lines.append(f"| {e(str(pr['id']))} | {_fmt(pr['similarity'])} | "
                             f"{e(pr['baseline']).replace('|', '&#124;')} | "
                             f"{e(pr['candidate']).replace('|', '&#124;')} |")
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
    cov = report.get("coverage") or {}
    lines += [f"Coverage: {e(str(cov.get('summary', '')))}", ""]
    lines += [f"- not exercised: {e(str(x))}" for x in cov.get("not_exercised") or []]
    lines += ["", f"Next action: {e(str(report.get('next_action', '')))}", ""]
    return "\n".join(lines)
