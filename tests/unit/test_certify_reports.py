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
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def test_html_is_self_contained(doc):
    page = render_html(doc, score(doc))
    assert not re.search(r"<(script|link|iframe|img)\b", page, re.I)
    assert not re.search(r"<[a-z]+[^>]*\b(src|href)\s*=", page, re.I)
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
    assert f"MQS {s['raw']:.1f} / 1000" in md and s["status"] in md
    props = {p.get("name"): p.get("value") for p in ET.parse(written["junit"]).getroot().iter("property")}
    assert props["mqs.status"] == s["status"] and float(props["mqs.raw"]) == s["raw"]


def test_reports_of_an_unfinished_run_say_it_is_incomplete(tmp_path):
    doc = full_marks(finished=None)
    paths = write_reports(doc, None, tmp_path)
    assert "incomplete run" in Path(paths["html"]).read_text()
    ET.parse(paths["junit"])
