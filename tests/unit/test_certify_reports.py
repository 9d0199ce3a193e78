"""Reports: escaped self-contained HTML, JUnit XML that JUnit parsers accept, Markdown with safe fences."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cert_builders import full_marks, record
from junitparser import Error, Failure, JUnitXml, Skipped

from modelgate.certify.reports import render_html, render_junit, render_markdown, write_reports
from modelgate.contract import GateInputError
from modelgate.gates.mqs import score

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)> ```` \x00\x1b[31m'


@pytest.fixture()
def doc():
    d = full_marks()
    d["records"] += [
        record("EDGE", "Falsified", output=EVIL, failure_class="DEGENERATE_OUTPUT", check="F-EDGE-EMPTY-001"),
        record("STAB", "Crashed", output=None, reason="child process died (signal 11)"),
        record("PERF", "Timeout", reason="exceeded 60000 ms"),
        record("COMP", "Skipped", reason="GPU not present", output=None),
    ]
    return d


@pytest.fixture()
def written(doc, tmp_path):
    return write_reports(doc, score(doc), tmp_path / "reports")


def test_reports_are_written_to_the_three_paths(written):
    assert set(written) == {"html", "junit", "markdown"}
    assert all(p.endswith(("report.html", "report.junit.xml", "report.md")) for p in written.values())


def test_html_escapes_model_output(doc):
    page = render_html(doc, score(doc))
    assert "<script>alert" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def test_html_is_self_contained(doc):
    page = render_html(doc, score(doc))
    assert not re.search(r"<(link|iframe|img|object|embed)\b", page, re.I)
    assert not re.search(r"<[a-z]+[^>]*\bsrc\s*=", page, re.I)
    assert all(h.startswith("#") for h in re.findall(r'href="([^"]*)"', page))  # in-page anchors only
    assert page.count("<script>") == 1  # the filter, inline
    assert "default-src 'none'" in page  # the page may not load anything, even if an escape were missed
    assert "<style>" in page and page.lstrip().startswith("<!DOCTYPE html>")


def test_junit_parses_with_elementtree_and_has_one_testcase_per_record(doc, written):
    root = ET.parse(written["junit"]).getroot()
    assert root.tag == "testsuites"
    record_cases = [c for s in root.findall("testsuite") if s.get("name") != "gateways" for c in s.findall("testcase")]
    assert len(record_cases) == len(doc["records"])
    by_name = {c.get("name"): c for c in record_cases}
    edge = by_name[f"F-EDGE-EMPTY-001 [{doc['records'][-4]['id']}]"]
    assert edge.find("failure").get("type") == "DEGENERATE_OUTPUT"
    assert "<script>" in edge.find("system-out").text  # the text survives, escaped by the XML serializer
    assert "\x00" not in edge.find("system-out").text


def test_junit_is_accepted_by_a_junit_parser_with_matching_totals(doc, written):
    xml = JUnitXml.fromfile(written["junit"])
    kinds = {"failure": 0, "error": 0, "skipped": 0, "passed": 0}
    n = 0
    for suite in xml:
        for case in suite:
            n += 1
            res = case.result
            if not res:
                kinds["passed"] += 1
            elif isinstance(res[0], Failure):
                kinds["failure"] += 1
            elif isinstance(res[0], Error):
                kinds["error"] += 1
            elif isinstance(res[0], Skipped):
                kinds["skipped"] += 1
    gateway_cases = 6  # G0-G4 + MQS status
    assert n == len(doc["records"]) + gateway_cases
    assert kinds["failure"] == 1 and kinds["error"] == 2 and kinds["skipped"] == 1
    assert xml.tests == n and xml.failures == 1 and xml.errors == 2 and xml.skipped == 1


def test_junit_marks_a_blocked_run_red_even_without_failed_records():
    doc = full_marks()
    doc["records"] = [r for r in doc["records"] if r["gateway"] != "G2"]  # G2 has no evidence
    root = ET.fromstring(render_junit(doc, score(doc)).split("?>", 1)[1])
    gates = root.find("testsuite[@name='gateways']")
    failed = [c.get("name") for c in gates.findall("testcase") if c.find("failure") is not None]
    assert failed == ["G2 inference", "MQS status"]


def test_markdown_fences_model_output_with_a_longer_fence(doc):
    md = render_markdown(doc, score(doc))
    fence = re.search(r"^(`{5,})text$", md, re.M)
    assert fence, "output with a 4-backtick run needs a fence of at least 5"
    body = md.split(fence.group(0) + "\n", 1)[1].split("\n" + fence.group(1), 1)[0]
    assert body == EVIL


def test_reports_refuse_a_score_of_other_evidence(doc, tmp_path):
    other = score(full_marks())
    with pytest.raises(GateInputError):
        write_reports(doc, other, tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_reports_show_the_same_numbers_as_the_score(doc, written):
    s = score(doc)
    md = Path(written["markdown"]).read_text()
    assert f"MQS {round(s['raw'], 1):g}/1000, {s['grade']}" in md and s["status"] in md
    assert "normalized" not in md and f"{s['normalized']:.1f}" not in md  # one scale for people
    props = {p.get("name"): p.get("value") for p in ET.parse(written["junit"]).getroot().iter("property")}
    assert props["mqs.status"] == s["status"] and float(props["mqs.raw"]) == s["raw"]


def test_reports_of_an_unfinished_run_say_it_is_incomplete(tmp_path):
    doc = full_marks(finished=None)
    paths = write_reports(doc, None, tmp_path)
    assert "incomplete run" in Path(paths["html"]).read_text()
    ET.parse(paths["junit"])


# --- issue 14: escaping by context, and a report built for triage

HOSTILE = ('[x](http://evil.example) | `tick` <b>bold</b> <script>alert(1)</script>\n# heading\n'
           '![img](http://evil.example/i.png) www.evil.example & "quotes" \'single\' ]]> \x1b')


@pytest.fixture()
def hostile():
    d = full_marks(model=HOSTILE, model_family=HOSTILE, playbook_lock="verified")
    d["host"]["hostname"] = HOSTILE
    d["records"].append(record("QUAL", "Falsified", gateway="G4", output=HOSTILE, expected=HOSTILE + " blue",
                               reason=HOSTILE, hypothesis=HOSTILE, failure_class="DEGENERATE_OUTPUT"))
    return d


def test_hostile_strings_are_inert_in_the_html_report(hostile):
    import html as H
    page = render_html(hostile, score(hostile))
    for tag in ("<b>bold", "<script>alert", "<img", "<a href=\"http"):
        assert tag not in page
    assert H.escape("<script>alert(1)</script>") in page


def test_hostile_strings_are_inert_in_the_markdown_report(hostile):
    from markdown_it import MarkdownIt
    md = render_markdown(hostile, score(hostile))
    rendered = MarkdownIt("commonmark").enable("table").render(md)
    assert "<a " not in rendered and "<img" not in rendered and "<script" not in rendered
    assert "<strong>bold" not in rendered and "<b>" not in rendered
    assert rendered.count("<h1>") == 1  # the injected "# heading" stays text
    assert "http:" not in md.split("```")[0]  # no bare URL for an autolinker outside the fences


def test_hostile_strings_round_trip_through_junit_xml(hostile):
    text = render_junit(hostile, score(hostile))
    root = ET.fromstring(text.split("?>", 1)[1])
    assert HOSTILE.replace("\x1b", "\ufffd") in root.get("name")
    failure = next(c for c in root.iter("failure") if c.get("type") == "DEGENERATE_OUTPUT")
    assert failure.get("message") == HOSTILE.replace("\x1b", "\ufffd")
    JUnitXml.fromstring(text.encode())


def test_html_puts_the_verdict_and_failed_gateways_first_then_failures_grouped(hostile):
    hostile["records"].append(record("REGR", "Falsified", gateway="G4", cell={
        "format": "openvino-int4", "device": "GPU", "modality": "chat", "scenario": "color-facts"}))
    hostile["records"].append(record("PERF", "Falsified", reason="0.5 tokens/s"))
    page = render_html(hostile, score(hostile))
    order = [page.index(x) for x in ('id="verdict"', "Failed gateways", 'id="failures"', 'id="gw-G4"',
                                     "openvino-fp32 \u00b7 CPU \u00b7 run", "openvino-int4 \u00b7 GPU \u00b7 chat",
                                     'id="gw-none"', 'id="summary"', 'id="records"')]
    assert order == sorted(order)
    first = page[page.index('id="failure-1"'):]
    assert "Hypothesis:" in first and "Reason:" in first and "<del>" in first or "<ins>" in first
    assert "Metrics:" in first


def test_expected_and_actual_output_are_diff_highlighted():
    from modelgate.certify.reports import diff_html
    left, right = diff_html("the sky is blue", "the sky is <green>")
    assert "<del>" in left and "<ins>" in right and "&lt;green&gt;" in right and "the sky is " in right


def test_no_minus_zero_penalty_anywhere(doc):
    clean = full_marks()
    s = score(clean)
    for text in (render_html(clean, s), render_markdown(clean, s)):
        assert not re.search(r"(?<![\w-])-0(?![\d.])", text)
        assert "Penalties: none" in text


def test_a_gateway_without_evidence_says_why_its_cells_were_skipped():
    doc = full_marks()
    doc["records"] = [r for r in doc["records"] if r["gateway"] != "G2"]
    doc["records"].append(record("QUAL", "Skipped", gateway="G2", reason="device GPU not present on this host"))
    page = render_html(doc, score(doc))
    section = page[page.index('id="gw-G2"'):page.index('id="summary"')]
    assert "no executed evidence" in section and "device GPU not present on this host" in section
