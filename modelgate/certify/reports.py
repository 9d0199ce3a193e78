"""Certification reports from evidence + its MQS score: self-contained HTML, JUnit XML, Markdown.

Every string that came from the model or the playbook is escaped for its format (html.escape,
XML via ElementTree with characters XML 1.0 forbids replaced, fenced Markdown). The score is
the one from modelgate.gates.mqs; a score that does not belong to the evidence is refused.
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

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}
.pass{color:#176117;font-weight:bold}.fail{color:#a11;font-weight:bold}.skip{color:#777}
pre{white-space:pre-wrap;background:#f7f7f7;padding:6px;max-width:80em}"""
OUTCOME_CSS = {"Corroborated": "pass", "Falsified": "fail", "Crashed": "fail", "Timeout": "fail", "Skipped": "skip"}


def render_html(evidence: Mapping, score: Mapping) -> str:
    """One self-contained HTML page (inline CSS, no scripts, no external resources)."""
    e = lambda v: html.escape("" if v is None else str(v), quote=True)  # noqa: E731
    status_css = "pass" if score["status"] in ("CERTIFIED", "PROVISIONAL") else "fail"
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>Certification: {e(evidence['model'])}</title><style>{_CSS}</style></head><body>",
           f"<h1>Certification of {e(evidence['model'])}</h1>",
           "<table>",
           *(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in (
               ("family", evidence["model_family"]), ("tier", evidence["tier"]), ("playbook", evidence["playbook"]),
               ("playbook sha256", evidence["playbook_sha256"]),
               ("playbook lock", evidence.get("playbook_lock", "not recorded")),
               ("started", evidence["started"]), ("finished", evidence["finished"] or "incomplete run"),
               ("host", f"{evidence['host']['hostname']} ({evidence['host']['cpu_count']} CPUs, "
                        f"{evidence['host']['platform']})"),
               ("versions", ", ".join(f"{k} {v}" for k, v in evidence["versions"].items())))),
           "</table>",
           f"<h2>MQS <span class=\"{status_css}\">{e(score['status'])}</span></h2>",
           "<table><tr><th>raw</th><th>normalized</th><th>grade</th><th>before gateways</th><th>penalties</th></tr>",
           f"<tr><td>{score['raw']:.1f} / 1000</td><td>{score['normalized']:.2f}</td><td>{e(score['grade'])}</td>"
           f"<td>{score['points_before_gateways']:.1f}</td><td>-{score['penalties']['total']:g} "
           f"({score['penalties']['crashed']} crashed, {score['penalties']['timeout']} timeout)</td></tr></table>",
           "<h2>Gateways</h2><table><tr><th>gateway</th><th>guards</th><th>result</th><th>executed</th>"
           "<th>reason</th><th>failed records</th></tr>"]
    for g, v in score["gateways"].items():
        css = "pass" if v["pass"] else "fail"
        out.append(f"<tr><td>{g}</td><td>{e(v['name'])}</td><td class=\"{css}\">{'pass' if v['pass'] else 'FAIL'}"
                   f"</td><td>{v['executed']}</td><td>{e(v['reason'])}</td>"
                   f"<td>{e(', '.join(v['failed_records']))}</td></tr>")
    out.append("</table><h2>Categories</h2><table><tr><th>category</th><th>points</th><th>max</th>"
               "<th>corroborated / executed</th><th>skipped</th></tr>")
    for c, v in score["categories"].items():
        out.append(f"<tr><td>{c}</td><td>{v['points']:.1f}</td><td>{v['max']:g}</td>"
                   f"<td>{v['corroborated']} / {v['executed']}</td><td>{v['skipped']}</td></tr>")
    out.append("</table><h2>Records</h2><table><tr><th>id</th><th>cell</th><th>category</th><th>gateway</th>"
               "<th>check</th><th>outcome</th><th>hypothesis / reason</th><th>metrics</th><th>output</th></tr>")
    for rec in evidence["records"]:
        output = rec.get("output")
        out.append(f"<tr><td>{e(rec['id'])}</td><td>{e(_cell_id(rec))}</td><td>{e(rec['category'])}</td>"
                   f"<td>{e(rec['gateway'] or '')}</td><td>{e(rec['check'])}</td>"
                   f"<td class=\"{OUTCOME_CSS[rec['outcome']]}\">{e(rec['outcome'])}"
                   f"{'<br>' + e(rec['failure_class']) if rec.get('failure_class') else ''}</td>"
                   f"<td>{e(rec['hypothesis'])}<br><i>{e(rec['reason'])}</i></td>"
                   f"<td>{e(_metrics_text(rec['metrics']))}</td>"
                   f"<td>{'<pre>' + e(output) + '</pre>' if output is not None else ''}</td></tr>")
    out.append("</table></body></html>")
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
                                          f"reason: {rec['reason']}")
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
        ET.SubElement(case, "failure", message=f"status {score['status']}, raw {score['raw']:.1f}",
                      type=score["status"])
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
    lines = [f"# Certification of {inline(evidence['model'])}", "",
             f"**{score['status']}** — MQS {score['raw']:.1f} / 1000 (normalized {score['normalized']:.2f}, "
             f"grade {score['grade']}); tier {inline(evidence['tier'])}, playbook {inline(evidence['playbook'])} "
             f"(sha256 `{evidence['playbook_sha256'][:12]}`, "
             f"lock: {inline(evidence.get('playbook_lock', 'not recorded'))}).",
             "", "| gateway | guards | result | executed | reason |", "|---|---|---|---|---|"]
    for g, v in score["gateways"].items():
        lines.append(f"| {g} | {v['name']} | {'pass' if v['pass'] else 'FAIL'} | {v['executed']} "
                     f"| {cell(v['reason'])} |")
    lines += ["", "| category | points | max | corroborated / executed | skipped |", "|---|---|---|---|---|"]
    for c, v in score["categories"].items():
        lines.append(f"| {c} | {v['points']:.1f} | {v['max']:g} | {v['corroborated']} / {v['executed']} | "
                     f"{v['skipped']} |")
    p = score["penalties"]
    lines += ["", f"Penalties: -{p['total']:g} ({p['crashed']} crashed, {p['timeout']} timeout). "
              f"Points before gateways: {score['points_before_gateways']:.1f}.", ""]
    failed = [r for r in evidence["records"] if r["outcome"] in ("Falsified", "Crashed", "Timeout")]
    lines.append(f"## Failed records ({len(failed)})")
    for rec in failed:
        lines += ["", f"### {inline(rec['check'])} — {rec['outcome']} ({inline(rec['id'])})", "",
                  f"- cell: {inline(_cell_id(rec))}; category {rec['category']}; gateway {rec['gateway'] or 'none'}",
                  f"- hypothesis: {inline(rec['hypothesis'])}", f"- reason: {inline(rec['reason'])}"]
        if rec.get("output") is not None:
            lines += ["", fence(rec["output"])]
    return "\n".join(lines) + "\n"


def write_reports(evidence: Mapping, score: Mapping | None, out_dir: str | os.PathLike) -> dict[str, str]:
    """Write report.html, report.junit.xml and report.md into ``out_dir``; returns {"html","junit","markdown"} paths."""
    score = checked_score(evidence, score)
    out = Path(out_dir)
    rendered = {"html": render_html(evidence, score), "junit": render_junit(evidence, score),
                "markdown": render_markdown(evidence, score)}
    ET.fromstring(rendered["junit"].split("?>", 1)[1])  # never write XML that does not parse
    return {kind: str(atomic_write_text(out / REPORT_FILES[kind], text)) for kind, text in rendered.items()}
