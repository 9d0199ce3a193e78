"""Certification reports from evidence + its MQS score: self-contained HTML, JUnit XML, Markdown.

Every string that came from the model, the playbook or the host is escaped for its context:
HTML text and attributes with html.escape (and a Content-Security-Policy that forbids loading
anything), XML through ElementTree with the characters XML 1.0 forbids replaced, Markdown with
every punctuation character escaped (``markdown.inline``) and model output in fences longer
than any backtick run inside. The score is the one from modelgate.gates.mqs; a score that does
not belong to the evidence is refused.
"""
from __future__ import annotations

import html
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from modelgate.certify.markdown import cell, fence, inline
from modelgate.contract import atomic_write_text
from modelgate.gates.mqs import CATEGORY_MAX, checked_score

REPORT_FILES = {"html": "report.html", "junit": "report.junit.xml", "markdown": "report.md"}
# outcome -> JUnit child element (None: a passing testcase)
JUNIT_ELEMENT = {"Corroborated": None, "Falsified": "failure", "Crashed": "error", "Timeout": "error",
                 "Skipped": "skipped"}
# characters XML 1.0 cannot carry, even escaped
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
METRIC_KEYS = ("duration_ms", "tokens_per_s", "ttft_ms", "peak_rss_mb")


def xml_text(value: object) -> str:
    """A string ElementTree can serialize into well-formed XML 1.0."""
    return _XML_ILLEGAL.sub("\ufffd", "" if value is None else str(value))


def _cell_id(rec: Mapping) -> str:
    c = rec["cell"]
    return f"{c['format']}/{c['device']}/{c['modality']}/{c['scenario']}"


def _metrics_text(metrics: Mapping) -> str:
    return ", ".join(f"{k}={metrics[k]:g}" for k in METRIC_KEYS if isinstance(metrics.get(k), (int, float)))


# --------------------------------------------------------------------------- HTML

# One self-contained page for triage: the verdict and failed gateways first, then every failure
# grouped by gateway -> format x device x modality, then the summary tables, then all records with
# a filter. No external resource of any kind (the CSP forbids loading one); no horizontal scroll
# from 1024 px up (fixed table layouts, long tokens wrap); a print style.
_CSS = """
:root{--ok:#176117;--bad:#a11;--skip:#6b6b6b;--line:#d5d5d5;--soft:#f6f6f6}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d1d1d;line-height:1.4;font-size:15px;
 overflow-wrap:anywhere}
main{max-width:1400px;margin:0 auto;padding:12px 20px 40px}
h1{font-size:1.45em;margin:.2em 0}h2{font-size:1.2em;margin:1.2em 0 .4em;border-bottom:2px solid var(--line)}
h3{font-size:1.05em;margin:.9em 0 .3em}h4{font-size:.95em;margin:.7em 0 .3em;color:#333}
.verdict{border-left:8px solid var(--bad);background:#fdf2f2;padding:8px 14px;margin:8px 0}
.verdict.pass{border-color:var(--ok);background:#f1f8f1}
.verdict p{margin:.25em 0}.status{font-weight:700}.pass .status{color:var(--ok)}.fail .status{color:var(--bad)}
.muted{color:#555;font-size:.92em}
nav{font-size:.9em;margin:4px 0}nav a{margin-right:1em}
.failure{border:1px solid var(--line);border-left:4px solid var(--bad);padding:6px 10px;margin:6px 0;
 background:#fff;break-inside:avoid}
.failure .head{font-weight:600}.failure p{margin:.2em 0}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:8px;margin:4px 0}
.pair>div{min-width:0}.pair h5{margin:.2em 0;font-size:.8em;text-transform:uppercase;color:#555}
pre{white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word;background:var(--soft);padding:5px 7px;
 margin:0;max-height:14em;overflow-y:auto;font-size:.85em}
del{background:#ffd7d5;text-decoration:none}ins{background:#ccf0cf;text-decoration:none}
table{border-collapse:collapse;margin:.4em 0;width:100%;table-layout:fixed}
td,th{border:1px solid var(--line);padding:3px 6px;text-align:left;vertical-align:top;
 overflow-wrap:anywhere;word-break:break-word}
th{background:#f0f0f0;overflow-wrap:normal;word-break:normal}
table.narrow{width:auto;max-width:100%;table-layout:auto}
.ok{color:var(--ok);font-weight:700}.bad{color:var(--bad);font-weight:700}.skip{color:var(--skip)}
.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:.4em 0}
.filters input{flex:1 1 260px;min-width:0;padding:4px}
#records td pre{max-height:7em}
@media print{nav,.filters{display:none}main{max-width:none;padding:0}pre,#records td pre{max-height:none;
 overflow:visible}body{font-size:11px}h2{break-after:avoid}tr{break-inside:avoid}}
"""
OUTCOME_CSS = {"Corroborated": "ok", "Falsified": "bad", "Crashed": "bad", "Timeout": "bad", "Skipped": "skip"}
FAILED = ("Falsified", "Crashed", "Timeout")
UNGATED = "none"
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
_FILTER_JS = """
(function(){var q=document.getElementById('q'),o=document.getElementById('fo'),g=document.getElementById('fg'),
n=document.getElementById('shown'),rows=[].slice.call(document.querySelectorAll('#records tbody tr'));
function apply(){var t=q.value.toLowerCase(),ov=o.value,gv=g.value,k=0;rows.forEach(function(r){
var ok=(!t||r.textContent.toLowerCase().indexOf(t)>=0)&&(!ov||(ov==='failed'?r.dataset.failed==='1':
r.dataset.outcome===ov))&&(!gv||r.dataset.gateway===gv);r.hidden=!ok;if(ok)k++;});n.textContent=k;}
[q,o,g].forEach(function(el){el.addEventListener('input',apply);el.addEventListener('change',apply);});apply();})();
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def penalty_text(penalties: Mapping) -> str:
    """Penalties as people read them: "none", or "-30 (1 crashed, 1 timeout)" (never "-0")."""
    if not penalties["total"]:
        return "none"
    return f"-{penalties['total']:g} ({penalties['crashed']} crashed, {penalties['timeout']} timeout)"


def diff_html(expected: str, actual: str) -> tuple[str, str]:
    """(expected, actual) as escaped HTML with what differs marked, word by word: <del> in the expected
    text, <ins> in the actual one."""
    import difflib

    def tokens(text: str) -> list[str]:
        return re.findall(r"\w+|\s+|[^\w\s]", text)

    a, b = tokens(expected), tokens(actual)
    left, right = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        x, y = _e("".join(a[i1:i2])), _e("".join(b[j1:j2]))
        if op == "equal":
            left.append(x)
            right.append(y)
        else:
            if x:
                left.append(f"<del>{x}</del>")
            if y:
                right.append(f"<ins>{y}</ins>")
    return "".join(left), "".join(right)


def _cell_key(rec: Mapping) -> str:
    c = rec["cell"]
    return f"{c['format']} \u00b7 {c['device']} \u00b7 {c['modality']}"


def _failure_html(rec: Mapping, anchor: str) -> str:
    c = rec["cell"]
    out = [f'<article class="failure" id="{anchor}"><p class="head">{_e(rec["check"])} \u2014 '
           f'<span class="bad">{_e(rec["outcome"])}</span>'
           + (f" ({_e(rec['failure_class'])})" if rec.get("failure_class") else "")
           + f' \u00b7 scenario {_e(c["scenario"])}</p>',
           f'<p class="muted">{_e(rec["id"])}</p>',
           f"<p><b>Hypothesis:</b> {_e(rec['hypothesis'])}</p>", f"<p><b>Reason:</b> {_e(rec['reason'])}</p>"]
    expected, output = rec.get("expected"), rec.get("output")
    if expected is not None and output is not None:
        left, right = diff_html(str(expected), str(output))
        out.append(f'<div class="pair"><div><h5>expected</h5><pre>{left}</pre></div>'
                   f"<div><h5>actual output</h5><pre>{right}</pre></div></div>")
    elif output is not None:
        out.append(f'<div class="pair"><div><h5>actual output</h5><pre>{_e(output)}</pre></div></div>')
    elif expected is not None:
        out.append(f'<div class="pair"><div><h5>expected</h5><pre>{_e(expected)}</pre></div>'
                   "<div><h5>actual output</h5><pre>(none)</pre></div></div>")
    metrics = _all_metrics_text(rec["metrics"])
    if metrics:
        out.append(f'<p class="muted"><b>Metrics:</b> {_e(metrics)}</p>')
    out.append("</article>")
    return "\n".join(out)


def _all_metrics_text(metrics: Mapping) -> str:
    parts = []
    for k, v in metrics.items():
        if isinstance(v, float):
            parts.append(f"{k}={v:.4g}")
        elif v is not None:
            parts.append(f"{k}={v}")
    return ", ".join(parts)


def _failures_html(evidence: Mapping, score: Mapping) -> list[str]:
    failed = [r for r in evidence["records"] if r["outcome"] in FAILED]
    out = [f'<section id="failures"><h2>Failures ({len(failed)})</h2>']
    groups = list(score["gateways"]) + [UNGATED]
    n = 0
    for g in groups:
        mine = [r for r in failed if (r["gateway"] or UNGATED) == g]
        gw = score["gateways"].get(g)
        if g != UNGATED and not gw["pass"] and not mine:
            out.append(f'<h3 id="gw-{g}">{g} {_e(gw["name"])}: no executed evidence</h3>'
                       f"<p>{_e(gw['reason'])}. A gateway with no executed record fails: nothing ran that could "
                       "vouch for it. Why the cells were skipped:</p><ul>"
                       + "".join(f"<li>{_e(reason)} ({k} record(s))</li>"
                                 for reason, k in _skip_reasons(evidence, g).items()) + "</ul>")
            continue
        if not mine:
            continue
        title = f"{g} {_e(gw['name'])}" if g != UNGATED else "Outside the gateways (score only)"
        out.append(f'<h3 id="gw-{g}">{title}: {len(mine)} failed record(s)</h3>')
        by_cell: dict[str, list] = {}
        for r in mine:
            by_cell.setdefault(_cell_key(r), []).append(r)
        for key, recs in by_cell.items():
            out.append(f"<h4>{_e(key)} ({len(recs)})</h4>")
            for r in recs:
                n += 1
                out.append(_failure_html(r, f"failure-{n}"))
    if not failed and score["gateways_pass"]:
        out.append("<p>No record failed: every hypothesis the run tested was corroborated.</p>")
    out.append("</section>")
    return out


def _skip_reasons(evidence: Mapping, gateway: str) -> dict[str, int]:
    reasons: dict[str, int] = {}
    for r in evidence["records"]:
        if r["gateway"] == gateway and r["outcome"] == "Skipped":
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    return reasons


def _records_html(evidence: Mapping) -> list[str]:
    order = {"Crashed": 0, "Timeout": 1, "Falsified": 2, "Corroborated": 3, "Skipped": 4}
    records = sorted(evidence["records"], key=lambda r: (order[r["outcome"]], r["gateway"] or "Z", r["id"]))
    outcomes = [o for o in order if any(r["outcome"] == o for r in records)]
    gateways = sorted({r["gateway"] or UNGATED for r in records})
    out = [f'<section id="records"><h2>All records ({len(records)})</h2>',
           '<div class="filters"><label for="q">Filter</label>'
           '<input id="q" type="search" placeholder="text in any column (id, check, reason, output)">'
           '<select id="fo" aria-label="outcome"><option value="">every outcome</option>'
           '<option value="failed">failed (Falsified, Crashed, Timeout)</option>'
           + "".join(f'<option value="{o}">{o}</option>' for o in outcomes) + "</select>"
           '<select id="fg" aria-label="gateway"><option value="">every gateway</option>'
           + "".join(f'<option value="{g}">{g}</option>' for g in gateways) + "</select>"
           f'<span class="muted"><span id="shown">{len(records)}</span> of {len(records)} shown</span></div>',
           '<table><colgroup><col style="width:9%"><col style="width:8%"><col style="width:12%">'
           '<col style="width:14%"><col style="width:25%"><col style="width:20%"><col style="width:12%"></colgroup>'
           "<thead><tr><th>outcome</th><th>gateway</th><th>check</th><th>cell</th><th>reason</th><th>output</th>"
           "<th>metrics</th></tr></thead><tbody>"]
    for r in records:
        c = r["cell"]
        output = r.get("output")
        out.append(f'<tr data-outcome="{_e(r["outcome"])}" data-gateway="{_e(r["gateway"] or UNGATED)}" '
                   f'data-failed="{int(r["outcome"] in FAILED)}" id="rec-{_e(r["id"])}">'
                   f'<td class="{OUTCOME_CSS[r["outcome"]]}">{_e(r["outcome"])}</td><td>{_e(r["gateway"] or "")}</td>'
                   f'<td>{_e(r["check"])}<br><span class="muted">{_e(r["id"].rsplit("@", 1)[-1])}</span></td>'
                   f'<td>{_e(c["format"])}<br>{_e(c["device"])} \u00b7 {_e(c["modality"])}<br>'
                   f'<span class="muted">{_e(c["scenario"])}</span></td><td>{_e(r["reason"])}</td>'
                   f"<td>{'<pre>' + _e(output) + '</pre>' if output is not None else ''}</td>"
                   f"<td>{_e(_all_metrics_text(r['metrics']))}</td></tr>")
    out.append("</tbody></table></section>")
    return out


def render_html(evidence: Mapping, score: Mapping) -> str:
    """One self-contained HTML page built for triage (inline CSS and script, no external resource)."""
    from modelgate.gates.mqs import PASSING_STATUSES, certification_coverage, format_mqs

    passed = score["status"] in PASSING_STATUSES
    cov = certification_coverage(evidence, score)
    failed_gw = [g for g, v in score["gateways"].items() if not v["pass"]]
    if failed_gw:
        gw_line = "Failed gateways: " + ", ".join(
            f'<a href="#gw-{g}">{g} {_e(score["gateways"][g]["name"])}</a> '
            f'({len(score["gateways"][g]["failed_records"]) or "no"} failed record(s)'
            + ("" if score["gateways"][g]["failed_records"] else ", no executed evidence") + ")"
            for g in failed_gw)
    else:
        gw_line = "Every gateway (G0\u2013G4) passed."
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{_e(score['status'])}: certification of {_e(evidence['model'])}</title>"
           f"<style>{_CSS}</style></head><body><main>",
           f'<header class="verdict {"pass" if passed else "fail"}" id="verdict">'
           f'<h1><span class="status">{_e(score["status"])}</span> \u2014 {_e(evidence["model"])}</h1>',
           f"<p><b>MQS {_e(format_mqs(score['raw'], score['grade']))}</b> \u00b7 tier {_e(evidence['tier'])} \u00b7 "
           f"playbook {_e(evidence['playbook'])} (lock: {_e(evidence.get('playbook_lock', 'not recorded'))})"
           + ("" if evidence["finished"] else " \u00b7 <b>incomplete run</b>") + "</p>",
           f"<p>{gw_line}</p>", f'<p class="muted">{_e(cov["summary"])}</p></header>',
           '<nav><a href="#failures">Failures</a><a href="#summary">Gateways and categories</a>'
           '<a href="#records">All records</a><a href="#run">Run</a></nav>']
    out += _failures_html(evidence, score)
    out.append('<section id="summary"><h2>Gateways</h2><table><colgroup><col style="width:8%">'
               '<col style="width:14%"><col style="width:8%"><col style="width:8%"><col style="width:32%">'
               '<col style="width:30%"></colgroup><thead><tr><th>gateway</th><th>guards</th><th>result</th>'
               "<th>executed</th><th>reason</th><th>failed records</th></tr></thead><tbody>")
    for g, v in score["gateways"].items():
        out.append(f"<tr><td>{g}</td><td>{_e(v['name'])}</td><td class=\"{'ok' if v['pass'] else 'bad'}\">"
                   f"{'pass' if v['pass'] else 'FAIL'}</td><td>{v['executed']}</td><td>{_e(v['reason'])}</td>"
                   f"<td>{_e(', '.join(v['failed_records']))}</td></tr>")
    out.append('</tbody></table><h2>Categories</h2><table class="narrow"><thead><tr><th>category</th>'
               "<th>points</th><th>corroborated / executed</th><th>skipped</th></tr></thead><tbody>")
    for c, v in score["categories"].items():
        out.append(f"<tr><td>{c}</td><td>{v['points']:.1f} / {v['max']:g}</td>"
                   f"<td>{v['corroborated']} / {v['executed']}</td><td>{v['skipped']}</td></tr>")
    out.append(f"</tbody></table><p>Penalties: {_e(penalty_text(score['penalties']))}. Points before the gateways: "
               f"{score['points_before_gateways']:.1f}/1000.</p></section>")
    out += _records_html(evidence)
    host = evidence["host"]
    out.append('<section id="run"><h2>Run</h2><table class="narrow"><tbody>')
    for k, v in (("model", evidence["model"]), ("family", evidence["model_family"]), ("tier", evidence["tier"]),
                 ("playbook", evidence["playbook"]), ("playbook sha256", evidence["playbook_sha256"]),
                 ("playbook lock", evidence.get("playbook_lock", "not recorded")),
                 ("started", evidence["started"]), ("finished", evidence["finished"] or "incomplete run"),
                 ("host", f"{host['hostname']} ({host['cpu_count']} CPUs, {host['platform']})"),
                 ("versions", ", ".join(f"{k} {v}" for k, v in evidence["versions"].items()))):
        out.append(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>")
    out.append(f"</tbody></table></section></main><script>{_FILTER_JS}</script></body></html>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- JUnit

def _suite_totals(suite: ET.Element) -> None:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    for kind, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        suite.set(attr, str(sum(1 for c in cases if c.find(kind) is not None)))
    suite.set("time", f"{sum(float(c.get('time', '0')) for c in cases):.3f}")


def render_junit(evidence: Mapping, score: Mapping) -> str:
    """JUnit XML: one testsuite per category with one testcase per evidence record, plus a 'gateways'
    suite (one testcase per gateway G0-G4 and one for the MQS status) so a BLOCKED run is red in CI."""
    model = xml_text(evidence["model"])
    root = ET.Element("testsuites", name=f"modelgate certification {model}")
    common = {"timestamp": xml_text(evidence["started"][:19]), "hostname": xml_text(evidence["host"]["hostname"])}
    for category in CATEGORY_MAX:
        records = [r for r in evidence["records"] if r["category"] == category]
        if not records:
            continue
        suite = ET.SubElement(root, "testsuite", name=category, **common)
        for rec in records:
            seconds = rec["metrics"].get("duration_ms", 0) / 1000.0
            case = ET.SubElement(suite, "testcase", name=xml_text(f"{rec['check']} [{rec['id']}]"),
                                 classname=xml_text(_cell_id(rec).replace("/", ".")), time=f"{seconds:.3f}")
            kind = JUNIT_ELEMENT[rec["outcome"]]
            if kind:
                child = ET.SubElement(case, kind, message=xml_text(rec["reason"]))
                if kind != "skipped":
                    child.set("type", xml_text(rec.get("failure_class") or rec["outcome"]))
                    child.text = xml_text(f"hypothesis: {rec['hypothesis']}\noutcome: {rec['outcome']}\n"
                                          f"reason: {rec['reason']}"
                                          + (f"\nexpected: {rec['expected']}" if rec.get("expected") is not None
                                             else ""))
            if rec.get("output") is not None:
                ET.SubElement(case, "system-out").text = xml_text(rec["output"])
        _suite_totals(suite)
    gate_suite = ET.SubElement(root, "testsuite", name="gateways", **common)
    props = ET.SubElement(gate_suite, "properties")
    for key in ("raw", "normalized", "grade", "status"):
        ET.SubElement(props, "property", name=f"mqs.{key}", value=xml_text(score[key]))
    ET.SubElement(props, "property", name="playbook_sha256", value=xml_text(evidence["playbook_sha256"]))
    for g, v in score["gateways"].items():
        case = ET.SubElement(gate_suite, "testcase", name=f"{g} {v['name']}", classname="mqs.gateways", time="0.000")
        if not v["pass"]:
            fail = ET.SubElement(case, "failure", message=xml_text(v["reason"]), type="GATEWAY_FAILED")
            fail.text = xml_text("failed records: " + (", ".join(v["failed_records"]) or "none (no evidence)"))
    case = ET.SubElement(gate_suite, "testcase", name="MQS status", classname="mqs.status", time="0.000")
    if score["status"] not in ("CERTIFIED", "PROVISIONAL"):
        ET.SubElement(case, "failure", message=f"status {score['status']}, MQS {score['raw']:g}/1000, "
                      f"{score['grade']}", type=score["status"])
    _suite_totals(gate_suite)
    suites = root.findall("testsuite")
    for attr in ("tests", "failures", "errors", "skipped"):
        root.set(attr, str(sum(int(s.get(attr)) for s in suites)))
    root.set("time", f"{sum(float(s.get('time')) for s in suites):.3f}")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# --------------------------------------------------------------------------- Markdown

def render_markdown(evidence: Mapping, score: Mapping) -> str:
    """A Markdown summary: score, gateways, categories, and every failed record with its output fenced."""
    from modelgate.gates.mqs import certification_coverage, format_mqs

    lines = [f"# Certification of {inline(evidence['model'])}", "",
             f"**{score['status']}** — MQS {format_mqs(score['raw'], score['grade'])}; tier "
             f"{inline(evidence['tier'])}, playbook {inline(evidence['playbook'])} "
             f"(sha256 `{evidence['playbook_sha256'][:12]}`, "
             f"lock: {inline(evidence.get('playbook_lock', 'not recorded'))}).",
             "", f"Coverage: {inline(certification_coverage(evidence, score)['summary'])}",
             "", "| gateway | guards | result | executed | reason |", "|---|---|---|---|---|"]
    for g, v in score["gateways"].items():
        lines.append(f"| {g} | {v['name']} | {'pass' if v['pass'] else 'FAIL'} | {v['executed']} "
                     f"| {cell(v['reason'])} |")
    lines += ["", "| category | points | max | corroborated / executed | skipped |", "|---|---|---|---|---|"]
    for c, v in score["categories"].items():
        lines.append(f"| {c} | {v['points']:.1f} | {v['max']:g} | {v['corroborated']} / {v['executed']} | "
                     f"{v['skipped']} |")
    p = score["penalties"]
    lines += ["", f"Penalties: {penalty_text(p)}. Points before gateways: {score['points_before_gateways']:.1f}/1000.",
              ""]
    failed = [r for r in evidence["records"] if r["outcome"] in ("Falsified", "Crashed", "Timeout")]
    lines.append(f"## Failed records ({len(failed)})")
    for rec in failed:
        lines += ["", f"### {inline(rec['check'])} — {rec['outcome']} ({inline(rec['id'])})", "",
                  f"- cell: {inline(_cell_id(rec))}; category {rec['category']}; gateway {rec['gateway'] or 'none'}",
                  f"- metrics: {inline(_metrics_text(rec['metrics'])) or 'none'}",
                  f"- hypothesis: {inline(rec['hypothesis'])}", f"- reason: {inline(rec['reason'])}"]
        if rec.get("expected") is not None:
            lines += ["", "Expected:", "", fence(rec["expected"])]
        if rec.get("output") is not None:
            lines += (["", "Output:"] if rec.get("expected") is not None else []) + ["", fence(rec["output"])]
    return "\n".join(lines) + "\n"


def write_reports(evidence: Mapping, score: Mapping | None, out_dir: str | os.PathLike) -> dict[str, str]:
    """Write report.html, report.junit.xml and report.md into ``out_dir``; returns {"html","junit","markdown"} paths."""
    score = checked_score(evidence, score)
    out = Path(out_dir)
    rendered = {"html": render_html(evidence, score), "junit": render_junit(evidence, score),
                "markdown": render_markdown(evidence, score)}
    ET.fromstring(rendered["junit"].split("?>", 1)[1])  # never write XML that does not parse
    return {kind: str(atomic_write_text(out / REPORT_FILES[kind], text)) for kind, text in rendered.items()}
