"""``modelgate certify`` / the model-certification skill's ``certify.py``: run a playbook, or one of the
scoring tools (score, report, export-csv, sync-readme, tickets, lock-playbooks, check-lock).

Every form prints one JSON verdict (``schemas/certify-verdict.schema.json``): a run exits 0 when the
model is CERTIFIED or PROVISIONAL, 1 when BLOCKED, 2 when the input could not be judged. ``score``
needs only the standard library and jsonschema (it is vendored into the skill folder); a run and
the other tools need the full engine.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from modelgate.certify.playbook import POLICIES, TIERS
from modelgate.cli.cluster import add_executor_args
from modelgate.cli.spine import Command, Outcome
from modelgate.contract import GateInputError, check, make_verdict

GATE = "certify-run"
SCHEMA = "certify-verdict"


# --------------------------------------------------------------------------- run a playbook

def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--playbook", action="append", help="playbook YAML (playbooks/models/*.yaml); required to run; "
                                                       "repeat it to certify several models in one campaign")
    p.add_argument("--playbooks", action="append", help="a folder of playbooks (*.yaml): certify them all in one "
                                                        "campaign (outputs in <output>/<playbook name>/, one registry)")
    p.add_argument("--tier", choices=TIERS, help="override the playbook's tier")
    p.add_argument("--skill-dir", help="model-certification skill folder whose playbooks/templates/<tier>.yaml and "
                                       "playbook schema to use (default: the folder this script runs from, or the "
                                       "repository's)")
    p.add_argument("--output", default="certification", help="output folder (evidence.json, score.json, reports)")
    p.add_argument("--workers", type=int, help="cells run in parallel (default: the playbook's)")
    p.add_argument("--timeout-ms", type=int, help="per-cell timeout (default: the playbook's)")
    p.add_argument("--failure-policy", choices=POLICIES)
    p.add_argument("--dry-run", action="store_true", help="print the cell plan, run nothing")
    p.add_argument("--allow-unlocked", action="store_true", help="run a playbook that differs from its lock")
    p.add_argument("--registry", help="models.csv to update (default: <output>/certifications/models.csv)")
    p.add_argument("--readme", help="README whose certification table to sync (default: <output>/README.md)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--artifact-dir", help="conversion cache shared by every node (default: each node's own cache)")
    add_executor_args(p, "cell")


def _run(args: argparse.Namespace) -> Outcome:
    from modelgate.certify.playbook import load_playbook
    from modelgate.certify.runner import check_input, plan, run_playbook
    from modelgate.cli.cluster import certify_campaign, check_executor_args, is_campaign, open_executor, playbook_paths
    from modelgate.gates.campaign import model_failure_class, model_next_action
    from modelgate.gates.mqs import PASSING_STATUSES, score_checks

    if not args.playbook and not args.playbooks:
        raise GateInputError("USER_CONFIG_ERROR", "--playbook is required to run a certification "
                             "(or name a subcommand: score, report, ...)")
    check_input(args.workers, "--workers")
    check_input(args.timeout_ms, "--timeout-ms")
    check_executor_args(args)
    docs = [load_playbook(path, args.tier, skill_dir=args.skill_dir) for path in playbook_paths(args)]
    if is_campaign(args):
        return certify_campaign(args, docs)
    doc = docs[0]
    if args.dry_run:
        p = plan(doc, args.timeout_ms)
        return Outcome(make_verdict(GATE, passed=True, detail=f"dry run: {p['count']} cells planned, nothing executed",
                                    metrics={"cells": p["count"]}, plan=p), SCHEMA)
    with open_executor(args, args.workers or doc["workers"]) as executor:
        s = run_playbook(doc, args.output, workers=args.workers, timeout_ms=args.timeout_ms,
                         failure_policy=args.failure_policy, allow_unlocked=args.allow_unlocked,
                         progress=False if args.no_progress else None, registry=args.registry, readme=args.readme,
                         executor=executor, artifact_dir=args.artifact_dir)
    sc = s["score"]
    ok = sc["status"] in PASSING_STATUSES
    cls = model_failure_class(sc, s["infrastructure_losses"])
    failed_gw = [g for g, v in sc["gateways"].items() if not v["pass"]]
    detail = (f"{doc['name']} ({doc['tier']}): {sc['status']}, MQS {sc['raw']:.1f} raw / {sc['normalized']:.1f} "
              f"grade {sc['grade']}" + (f"; gateways failed: {failed_gw}" if failed_gw else ""))
    outputs = {"evidence": s["evidence"], "score": str(s["evidence"]).replace("evidence.json", "score.json"),
               "registry": s["registry"], "readme": s["readme"], **s["reports"]}
    # one scoring vocabulary: the same checks and class the `score` subcommand reports
    return Outcome(make_verdict(
        GATE, passed=ok, decision=sc["status"], detail=detail, failure_class=cls,
        checks=score_checks(sc), score=sc, outputs=outputs,
        metrics={"wall_s": s["wall_s"], "cells": s["cells"], "records": s["records"], "workers": s["workers"],
                 "outcomes": s["outcomes"]},
        evidence={"output": args.output, "stopped_by": s["stopped_by"], "failure_policy": s["failure_policy"],
                  "playbook_lock": s["playbook_lock"], "executor": s["executor"]["name"]},
        next_action=model_next_action(cls, s["infrastructure_losses"])), SCHEMA)


# --------------------------------------------------------------------------- scoring tools

def _score_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("evidence", help="evidence JSON (schemas/evidence.schema.json)")
    p.add_argument("--output", help="also write the verdict here (file or folder)")


def _score(args: argparse.Namespace) -> Outcome:
    from modelgate.certify.evidence import read_evidence
    from modelgate.gates.mqs import score, score_verdict

    result = score(read_evidence(args.evidence))
    return Outcome(score_verdict("certify-score", result, evidence={"evidence": args.evidence}), SCHEMA, args.output)


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("evidence")
    p.add_argument("--output", required=True, help="folder for the reports")


def _report(args: argparse.Namespace) -> Outcome:
    from modelgate.certify.evidence import read_evidence
    from modelgate.certify.reports import write_reports
    from modelgate.gates.mqs import score

    evidence = read_evidence(args.evidence)
    result = score(evidence)
    paths = write_reports(evidence, result, args.output)
    return Outcome(make_verdict("certify-report", passed=True, detail=f"reports written to {args.output} "
                                f"({result['status']}, MQS {result['raw']:.1f})", decision=result["status"],
                                evidence={"evidence": args.evidence, **paths}, outputs=paths, score=result), SCHEMA)


def _export_csv_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--evidence", nargs="+", required=True, help="evidence JSON files")
    p.add_argument("--csv", required=True, help="registry CSV (created if missing), e.g. certifications/models.csv")


def _export_csv(args: argparse.Namespace) -> Outcome:
    from modelgate.certify.evidence import read_evidence
    from modelgate.certify.registry import evidence_row, update_registry

    docs = [(path, read_evidence(path)) for path in args.evidence]  # all valid before any row is written
    checks, last = [], None
    for _path, doc in docs:
        row = evidence_row(doc)
        last = update_registry(args.csv, row)
        checks.append(check(f"row_{row['model_id']}", True, {"action": last["action"], "status": row["status"],
                                                              "mqs_score": row["mqs_score"]}, None))
    return Outcome(make_verdict("certify-export-csv", passed=True, detail=f"{len(docs)} row(s) written to {args.csv} "
                                f"({last['rows']} rows in total)", checks=checks, evidence={"csv": args.csv},
                                outputs={"csv": args.csv}), SCHEMA)


def _sync_readme_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--csv", required=True)
    p.add_argument("--readme", required=True)


def _sync_readme(args: argparse.Namespace) -> Outcome:
    from modelgate.certify.readme_table import sync_readme

    res = sync_readme(args.readme, args.csv)
    return Outcome(make_verdict("certify-sync-readme", passed=True, detail=f"{args.readme}: {res['rows']} model(s), "
                                f"{'updated' if res['changed'] else 'already up to date'}",
                                metrics={"rows": res["rows"], "changed": res["changed"]},
                                evidence={"csv": args.csv, "readme": args.readme}, outputs={"readme": args.readme}),
                   SCHEMA)


def _tickets_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("evidence")
    p.add_argument("--output", required=True, help="folder for the ticket files")


def _tickets(args: argparse.Namespace) -> Outcome:
    from modelgate.certify.evidence import read_evidence
    from modelgate.certify.tickets import write_tickets

    paths = write_tickets(read_evidence(args.evidence), None, args.output)
    detail = f"{len(paths)} ticket(s) written to {args.output}" if paths else "nothing failed; no tickets"
    return Outcome(make_verdict("certify-tickets", passed=True, detail=detail, metrics={"tickets": len(paths)},
                                evidence={"evidence": args.evidence}, outputs=paths), SCHEMA)


def _lock_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory")
    p.add_argument("--lock", help="lock file (default DIR/playbooks.lock.json)")


def _lock(args: argparse.Namespace) -> Outcome:
    from modelgate.certify.lock import lock_playbooks

    path = lock_playbooks(args.directory, args.lock)
    return Outcome(make_verdict("certify-lock-playbooks", passed=True, detail=f"lock written: {path}",
                                evidence={"lock": str(path)}, outputs={"lock": str(path)}), SCHEMA)


def _check_lock_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("playbook")
    p.add_argument("--lock", help="lock file (default: nearest playbooks.lock.json above the playbook)")


def _check_lock(args: argparse.Namespace) -> Outcome:
    from modelgate.certify.lock import lock_state

    if not Path(args.playbook).is_file():
        raise GateInputError("USER_CONFIG_ERROR", f"playbook not found: {args.playbook}")
    state, detail = lock_state(args.playbook, args.lock)
    ok = state == "verified"
    cls = None if ok else "INTEGRITY_MISMATCH"
    return Outcome(make_verdict("certify-check-lock", passed=ok, failure_class=cls, detail=detail,
                                checks=[check("playbook_lock", ok, state, "verified", cls, detail)],
                                evidence={"playbook": args.playbook, "lock": args.lock}), SCHEMA)


def _tool(name: str, help_: str, configure, run, description: str) -> Command:
    return Command(name, help_, configure, run, gate=f"certify-{name}", description=description,
                   error_output=lambda args: None)


TOOLS = (
    Command("score", "the MQS score of evidence; exit 0 CERTIFIED/PROVISIONAL, 1 BLOCKED, 2 PENDING or bad input",
            _score_args, _score, gate="certify-score",
            description="Score certification evidence (MQS 0-1000, gateways G0-G4). Exit 0 when CERTIFIED or "
                        "PROVISIONAL, 1 when BLOCKED, 2 when nothing was executed or the evidence is invalid."),
    _tool("report", "HTML, JUnit XML and Markdown reports of evidence", _report_args, _report,
          "Write report.html (self-contained), report.junit.xml and report.md for evidence."),
    _tool("export-csv", "add/update one registry row per evidence file", _export_csv_args, _export_csv,
          "Add or update models.csv rows from evidence files (lossless, locked, atomic)."),
    _tool("sync-readme", "regenerate the README certification table", _sync_readme_args, _sync_readme,
          "Regenerate the README certification table between <!-- CERTIFICATION_TABLE_START --> and "
          "<!-- CERTIFICATION_TABLE_END --> (exit 2 if the markers are not there exactly once)."),
    _tool("tickets", "Markdown issue bodies grouped by failing gateway", _tickets_args, _tickets,
          "Write one Markdown issue body per failing gateway (ticket-G<n>.md) and one for failed checks outside "
          "any gateway (ticket-other.md)."),
    _tool("lock-playbooks", "record the SHA-256 of every playbook's content", _lock_args, _lock,
          "Write playbooks.lock.json: the SHA-256 of each playbook file's content."),
    _tool("check-lock", "exit 0 when a playbook matches its lock, 1 (INTEGRITY_MISMATCH) if not",
          _check_lock_args, _check_lock, "Compare a playbook's content hash with its lock entry."),
)

CERTIFY = Command(
    "certify", "run a certification playbook (MQS, G0-G4, registry, reports)", _run_args, _run, gate=GATE,
    error_output=lambda args: None, children=TOOLS,
    description="Run a model-certification playbook: formats x devices x modalities x scenarios, each cell in its own "
                "process with a timeout; evidence, MQS score, registry row, README table and reports. Or run one of "
                "the scoring tools below (each has --help).")
