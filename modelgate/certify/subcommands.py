"""The certification tools as subcommands: score, report, export-csv, sync-readme, tickets,
lock-playbooks, check-lock. Each takes argv, prints one JSON verdict
(schemas/certify-verdict.schema.json) and returns the exit code (0 pass, 1 fail, 2 input not judged).

``COMMANDS`` maps name -> callable(argv); ``modelgate certify <name> ...`` dispatches here, and
``python -m modelgate.certify.subcommands <name> ...`` runs one directly.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from modelgate.certify.evidence import read_evidence
from modelgate.certify.lock import lock_playbooks, lock_state
from modelgate.certify.mqs import score as mqs_score
from modelgate.certify.readme_table import sync_readme
from modelgate.certify.registry import evidence_row, update_registry
from modelgate.certify.reports import write_reports
from modelgate.certify.tickets import write_tickets
from modelgate.contract import GateArgumentParser, GateInputError, check, make_verdict, run_gate
from modelgate.gates.mqs import PASSING_STATUSES, failure_class_for

SCHEMA = "certify-verdict"


def _parser(name: str, description: str) -> GateArgumentParser:
    return GateArgumentParser(prog=f"modelgate certify {name}", description=description)


def score_checks(result: dict) -> list[dict]:
    """One check per gateway and per category, and the status check, from an MQS score."""
    out = [check(f"gateway_{g}", v["pass"], {"executed": v["executed"], "failed_records": v["failed_records"]},
                 "executed evidence and no Falsified/Crashed/Timeout record",
                 None if v["pass"] else "GATEWAY_FAILED", v["reason"]) for g, v in result["gateways"].items()]
    out += [check(f"category_{c}", None if not v["executed"] else v["corroborated"] == v["executed"],
                  {"points": v["points"], "corroborated": v["corroborated"], "executed": v["executed"]},
                  {"max": v["max"]}, detail="no executed evidence: 0 points" if not v["executed"] else None)
            for c, v in result["categories"].items()]
    status_ok = result["status"] in PASSING_STATUSES
    out.append(check("status", status_ok, {"raw": result["raw"], "status": result["status"]},
                     "raw >= 700 with every gateway passing", failure_class_for(result)))
    return out


def _score_verdict(gate: str, result: dict, detail_prefix: str = "", **extra) -> dict:
    cls = failure_class_for(result)
    detail = (f"{detail_prefix}{result['model']}: {result['status']}, MQS {result['raw']:.1f}/1000 "
              f"(normalized {result['normalized']:.2f}, grade {result['grade']})")
    if result["failed_gateways"]:
        detail += f"; failed gateways {', '.join(result['failed_gateways'])}"
    return make_verdict(gate, passed=cls is None, failure_class=cls, detail=detail, decision=result["status"],
                        checks=score_checks(result), metrics={"raw": result["raw"], "normalized": result["normalized"]},
                        score=result, **extra)


# --------------------------------------------------------------------------- commands

def cmd_score(argv: list[str]) -> int:
    """score EVIDENCE [--output FILE]: the MQS score; exit 0 CERTIFIED/PROVISIONAL, 1 BLOCKED, 2 PENDING/bad input."""
    state: dict = {}

    def body():
        p = _parser("score", "Score certification evidence (MQS 0-1000, gateways G0-G4). Exit 0 when CERTIFIED or "
                             "PROVISIONAL, 1 when BLOCKED, 2 when nothing was executed or the evidence is invalid.")
        p.add_argument("evidence", help="evidence JSON (schemas/evidence.schema.json)")
        p.add_argument("--output", help="also write the verdict here (file or folder)")
        args = p.parse_args(argv)
        state["output"] = args.output
        result = mqs_score(read_evidence(args.evidence))
        return _score_verdict("certify-score", result, evidence={"evidence": args.evidence}), SCHEMA

    return run_gate("certify-score", body, lambda: state.get("output"))


def cmd_report(argv: list[str]) -> int:
    """report EVIDENCE --output DIR: HTML, JUnit XML and Markdown reports (exit 0 when written)."""

    def body():
        p = _parser("report", "Write report.html (self-contained), report.junit.xml and report.md for evidence.")
        p.add_argument("evidence")
        p.add_argument("--output", required=True, help="folder for the reports")
        args = p.parse_args(argv)
        evidence = read_evidence(args.evidence)
        result = mqs_score(evidence)
        paths = write_reports(evidence, result, args.output)
        return make_verdict("certify-report", passed=True, detail=f"reports written to {args.output} "
                            f"({result['status']}, MQS {result['raw']:.1f})", decision=result["status"],
                            evidence={"evidence": args.evidence, **paths}, outputs=paths, score=result), SCHEMA

    return run_gate("certify-report", body)


def cmd_export_csv(argv: list[str]) -> int:
    """export-csv --evidence E... --csv models.csv: add/update one registry row per evidence (exit 0 when written)."""

    def body():
        p = _parser("export-csv", "Add or update models.csv rows from evidence files (lossless, locked, atomic).")
        p.add_argument("--evidence", nargs="+", required=True, help="evidence JSON files")
        p.add_argument("--csv", required=True, help="registry CSV (created if missing), e.g. certifications/models.csv")
        args = p.parse_args(argv)
        docs = [(path, read_evidence(path)) for path in args.evidence]  # all valid before any row is written
        checks, last = [], None
        for path, doc in docs:
            row = evidence_row(doc)
            last = update_registry(args.csv, row)
            checks.append(check(f"row_{row['model_id']}", True, {"action": last["action"], "status": row["status"],
                                                                  "mqs_score": row["mqs_score"]}, None))
        return make_verdict("certify-export-csv", passed=True, detail=f"{len(docs)} row(s) written to {args.csv} "
                            f"({last['rows']} rows in total)", checks=checks, evidence={"csv": args.csv},
                            outputs={"csv": args.csv}), SCHEMA

    return run_gate("certify-export-csv", body)


def cmd_sync_readme(argv: list[str]) -> int:
    """sync-readme --csv models.csv --readme README.md: regenerate the table between the markers."""

    def body():
        p = _parser("sync-readme", "Regenerate the README certification table between <!-- CERTIFICATION_TABLE_START "
                                   "--> and <!-- CERTIFICATION_TABLE_END --> (exit 2 if the markers are not there "
                                   "exactly once).")
        p.add_argument("--csv", required=True)
        p.add_argument("--readme", required=True)
        args = p.parse_args(argv)
        res = sync_readme(args.readme, args.csv)
        return make_verdict("certify-sync-readme", passed=True, detail=f"{args.readme}: {res['rows']} model(s), "
                            f"{'updated' if res['changed'] else 'already up to date'}",
                            metrics={"rows": res["rows"], "changed": res["changed"]},
                            evidence={"csv": args.csv, "readme": args.readme}, outputs={"readme": args.readme}), SCHEMA

    return run_gate("certify-sync-readme", body)


def cmd_tickets(argv: list[str]) -> int:
    """tickets EVIDENCE --output DIR: Markdown issue bodies grouped by failing gateway (files, never commands)."""

    def body():
        p = _parser("tickets", "Write one Markdown issue body per failing gateway (ticket-G<n>.md) and one for "
                               "failed checks outside any gateway (ticket-other.md).")
        p.add_argument("evidence")
        p.add_argument("--output", required=True, help="folder for the ticket files")
        args = p.parse_args(argv)
        evidence = read_evidence(args.evidence)
        paths = write_tickets(evidence, None, args.output)
        detail = f"{len(paths)} ticket(s) written to {args.output}" if paths else "nothing failed; no tickets"
        return make_verdict("certify-tickets", passed=True, detail=detail, metrics={"tickets": len(paths)},
                            evidence={"evidence": args.evidence}, outputs=paths), SCHEMA

    return run_gate("certify-tickets", body)


def cmd_lock_playbooks(argv: list[str]) -> int:
    """lock-playbooks DIR [--lock FILE]: record the SHA-256 of every playbook's content."""

    def body():
        p = _parser("lock-playbooks", "Write playbooks.lock.json: the SHA-256 of each playbook file's content.")
        p.add_argument("directory")
        p.add_argument("--lock", help="lock file (default DIR/playbooks.lock.json)")
        args = p.parse_args(argv)
        path = lock_playbooks(args.directory, args.lock)
        return make_verdict("certify-lock-playbooks", passed=True, detail=f"lock written: {path}",
                            evidence={"lock": str(path)}, outputs={"lock": str(path)}), SCHEMA

    return run_gate("certify-lock-playbooks", body)


def cmd_check_lock(argv: list[str]) -> int:
    """check-lock PLAYBOOK [--lock FILE]: exit 0 when the playbook matches its lock, 1 (INTEGRITY_MISMATCH) if not."""

    def body():
        p = _parser("check-lock", "Compare a playbook's content hash with its lock entry.")
        p.add_argument("playbook")
        p.add_argument("--lock", help="lock file (default: nearest playbooks.lock.json above the playbook)")
        args = p.parse_args(argv)
        if not Path(args.playbook).is_file():
            raise GateInputError("USER_CONFIG_ERROR", f"playbook not found: {args.playbook}")
        state, detail = lock_state(args.playbook, args.lock)
        ok = state == "verified"
        return make_verdict("certify-check-lock", passed=ok, failure_class=None if ok else "INTEGRITY_MISMATCH",
                            detail=detail, checks=[check("playbook_lock", ok, state, "verified",
                                                         None if ok else "INTEGRITY_MISMATCH", detail)],
                            evidence={"playbook": args.playbook, "lock": args.lock}), SCHEMA

    return run_gate("certify-check-lock", body)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "score": cmd_score,
    "report": cmd_report,
    "export-csv": cmd_export_csv,
    "sync-readme": cmd_sync_readme,
    "tickets": cmd_tickets,
    "lock-playbooks": cmd_lock_playbooks,
    "check-lock": cmd_check_lock,
}


def usage() -> str:
    """One line per subcommand."""
    width = max(map(len, COMMANDS))
    lines = ["usage: python -m modelgate.certify.subcommands <command> [args...]", "", "commands:"]
    lines += [f"  {n.ljust(width)}  {(f.__doc__ or '').strip().splitlines()[0]}" for n, f in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``<command> args...`` to COMMANDS."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] not in COMMANDS:
        print(f"unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
