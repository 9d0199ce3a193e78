"""Tickets: Markdown bodies grouped by failing gateway; model output fenced; never a shell command."""
from __future__ import annotations

import re
from pathlib import Path

from cert_builders import full_marks, record
from hypothesis import given, settings
from hypothesis import strategies as st

from modelgate.certify.markdown import fence
from modelgate.certify.tickets import render_tickets, write_tickets
from modelgate.gates.mqs import score

SHELLISH = "$(rm -rf ~) `reboot` \n```\n## injected heading\n```bash\ngh issue create --title pwned\n```"


def _doc():
    d = full_marks()
    d["records"] += [
        record("QUAL", "Falsified", gateway="G4", output=SHELLISH, failure_class="DEGENERATE_OUTPUT"),
        record("QUAL", "Crashed", gateway="G4", output=None),
        record("STAB", "Timeout", gateway="G3", output=None),
        record("EDGE", "Falsified", output="meh"),
    ]
    d["records"] = [r for r in d["records"] if r["gateway"] != "G1"]  # G1: no evidence
    return d


def test_one_ticket_per_failing_gateway_plus_one_for_ungated_failures():
    tickets = render_tickets(_doc())
    assert sorted(tickets) == ["G1", "G3", "G4", "other"]


def test_a_passing_run_has_no_tickets(tmp_path):
    assert write_tickets(full_marks(), None, tmp_path) == {}
    assert list(tmp_path.iterdir()) == []


def test_gateway_ticket_lists_exactly_its_failed_records():
    doc = _doc()
    s = score(doc)
    body = render_tickets(doc, s)["G4"]
    for rid in s["gateways"]["G4"]["failed_records"]:
        assert f"({rid})" in body
    assert body.startswith("# G4 output quality gateway failed for fixture\\:trained\\-llama (smoke)")
    assert "DEGENERATE_OUTPUT" in body


def test_no_evidence_gateway_ticket_says_so():
    assert "No executed record carries this gateway" in render_tickets(_doc())["G1"]


def test_model_output_stays_inside_a_fence_longer_than_any_backtick_run():
    body = render_tickets(_doc())["G4"]
    fence = re.search(r"^(`{4,})text$", body, re.M).group(1)
    inner = body.split(fence + "text\n", 1)[1].split("\n" + fence + "\n", 1)[0]
    assert inner == SHELLISH
    outside = body.replace(inner, "")
    assert "## injected heading" not in outside and "gh issue" not in outside


def test_tickets_are_files_and_contain_no_shell_command(tmp_path):
    paths = write_tickets(_doc(), None, tmp_path)
    assert sorted(p.rsplit("/", 1)[-1] for p in paths.values()) == [
        "ticket-G1.md", "ticket-G3.md", "ticket-G4.md", "ticket-other.md"]
    for path in paths.values():
        text = Path(path).read_text()
        outside_fences = re.sub(r"^(`{3,})text\n.*?\n\1$", "", text, flags=re.M | re.S)
        assert "gh " not in outside_fences and "$(" not in outside_fences and "```bash" not in outside_fences


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("`~ab\n#$()|")), max_size=60))
def test_any_output_comes_back_verbatim_from_its_fence_and_never_closes_it(text):
    block = fence(text)
    marker = block.split("text\n", 1)[0]
    assert set(marker) == {"`"} and len(marker) >= 3
    assert block == f"{marker}text\n{text}\n{marker}"
    # no line inside can close the fence: a closing fence needs at least len(marker) backticks
    assert all(not line.lstrip(" ").startswith(marker) for line in text.split("\n"))
