"""Failure tickets: one Markdown issue body per failing gateway (plus one for failed records outside
any gateway). Files only — never a shell command: model output goes into a fenced block whose
fence is longer than any backtick run inside it, so it cannot escape into the ticket or a shell.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from modelgate.certify.markdown import fence, inline
from modelgate.contract import atomic_write_text, failure_classes
from modelgate.gates.mqs import FAILED_OUTCOMES, GATEWAYS, checked_score

UNGATED = "other"


def _record_block(rec: Mapping) -> list[str]:
    c = rec["cell"]
    lines = [f"### {inline(rec['check'])}: {rec['outcome']} ({inline(rec['id'])})", "",
             f"- cell: {inline(c['format'])} / {c['device']} / {c['modality']} / {inline(c['scenario'])}",
             f"- category: {rec['category']}",
             f"- hypothesis: {inline(rec['hypothesis'])}",
             f"- reason: {inline(rec['reason'])}"]
    if rec.get("failure_class"):
        lines.append(f"- failure class: {rec['failure_class']} — {inline(failure_classes()[rec['failure_class']])}")
    if rec.get("output") is not None:
        lines += ["", "Model output:", "", fence(rec["output"])]
    return lines + [""]


def _header(evidence: Mapping, title: str) -> list[str]:
    versions = ", ".join(f"{k} {v}" for k, v in evidence["versions"].items() if v)
    return [f"# {title}", "",
            f"- model: {inline(evidence['model'])} (family {inline(evidence['model_family'])})",
            f"- tier: {evidence['tier']}; playbook {inline(evidence['playbook'])} "
            f"(sha256 {evidence['playbook_sha256']})",
            f"- run: {evidence['started']} to {evidence['finished'] or 'incomplete'} on "
            f"{inline(evidence['host']['platform'])}",
            f"- versions: {inline(versions)}", ""]


def render_tickets(evidence: Mapping, score: Mapping | None = None) -> dict[str, str]:
    """{ticket name -> Markdown body}: one per failing gateway, one ('other') for failed ungated records."""
    score = checked_score(evidence, score)
    by_id = {r["id"]: r for r in evidence["records"]}
    tickets: dict[str, str] = {}
    for g, verdict in score["gateways"].items():
        if verdict["pass"]:
            continue
        title = f"{g} {GATEWAYS[g]} gateway failed for {inline(evidence['model'])} ({evidence['tier']})"
        lines = _header(evidence, title)
        lines += [f"Gateway {g} guards {GATEWAYS[g]}; its failure zeroes the MQS score (GATEWAY_FAILED). "
                  f"{inline(verdict['reason'])}.", ""]
        if not verdict["failed_records"]:
            lines += ["No executed record carries this gateway: the playbook must emit evidence for it.", ""]
        for rid in verdict["failed_records"]:
            lines += _record_block(by_id[rid])
        tickets[g] = "\n".join(lines)
    ungated = [r for r in evidence["records"] if r["gateway"] is None and r["outcome"] in FAILED_OUTCOMES]
    if ungated:
        lines = _header(evidence, f"{len(ungated)} failed check(s) outside the gateways for "
                                  f"{inline(evidence['model'])} ({evidence['tier']})")
        for rec in ungated:
            lines += _record_block(rec)
        tickets[UNGATED] = "\n".join(lines)
    return tickets


def write_tickets(evidence: Mapping, score: Mapping | None, out_dir: str | os.PathLike) -> dict[str, str]:
    """Write ``ticket-<G>.md`` files into ``out_dir``; returns {ticket name -> path} (empty when nothing failed)."""
    out = Path(out_dir)
    return {name: str(atomic_write_text(out / f"ticket-{name}.md", body))
            for name, body in render_tickets(evidence, score).items()}
