"""``modelgate certify`` / ``skills/model-certification/scripts/certify.py``: run a playbook.

The primary form runs a playbook; a first word naming one of the scoring tools (score, report,
export-csv, sync-readme, tickets, lock-playbooks, check-lock) is dispatched to
``modelgate.certify.subcommands.COMMANDS``. Prints one JSON verdict; exit 0 when the model is
CERTIFIED or PROVISIONAL, 1 when BLOCKED, 2 when the input could not be judged.
"""
from __future__ import annotations

import sys

from modelgate.contract import GateArgumentParser, make_verdict, run_gate

GATE = "certify-run"
SCHEMA = "certify-verdict"
PASSING_STATUSES = ("CERTIFIED", "PROVISIONAL")


def build_parser() -> GateArgumentParser:
    p = GateArgumentParser(prog="certify", description=(
        "Run a model-certification playbook: formats x devices x modalities x scenarios, each cell in its own "
        "process with a timeout; evidence, MQS score, registry row, README table and reports. Subcommands: "
        "score, report, export-csv, sync-readme, tickets, lock-playbooks, check-lock (each has --help)."))
    p.add_argument("--playbook", required=True, help="playbook YAML (playbooks/models/*.yaml)")
    p.add_argument("--tier", choices=["smoke", "mvp", "quick", "standard", "deep"], help="override the playbook's tier")
    p.add_argument("--output", default="certification", help="output folder (evidence.json, score.json, reports)")
    p.add_argument("--workers", type=int, help="cells run in parallel (default: the playbook's)")
    p.add_argument("--timeout-ms", type=int, help="per-cell timeout (default: the playbook's)")
    p.add_argument("--failure-policy", choices=["stop-on-first", "stop-on-p0", "collect-all", "fail-fast"])
    p.add_argument("--dry-run", action="store_true", help="print the cell plan, run nothing")
    p.add_argument("--allow-unlocked", action="store_true", help="run a playbook that differs from its lock")
    p.add_argument("--registry", help="models.csv to update (default: <output>/certifications/models.csv)")
    p.add_argument("--readme", help="README whose certification table to sync (default: <output>/README.md)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return p


def _body(argv: list[str]):
    from modelgate.certify.playbook import load_playbook
    from modelgate.certify.runner import check_input, plan, run_playbook
    from modelgate.certify.subcommands import score_checks
    from modelgate.gates.mqs import failure_class_for

    args = build_parser().parse_args(argv)
    check_input(args.workers, "--workers")
    check_input(args.timeout_ms, "--timeout-ms")
    doc = load_playbook(args.playbook, args.tier)
    if args.dry_run:
        p = plan(doc, args.timeout_ms)
        return make_verdict(GATE, passed=True, detail=f"dry run: {p['count']} cells planned, nothing executed",
                            metrics={"cells": p["count"]}, plan=p), SCHEMA
    s = run_playbook(doc, args.output, workers=args.workers, timeout_ms=args.timeout_ms,
                     failure_policy=args.failure_policy, allow_unlocked=args.allow_unlocked,
                     progress=False if args.no_progress else None, registry=args.registry, readme=args.readme)
    sc = s["score"]
    ok = sc["status"] in PASSING_STATUSES
    failed_gw = [g for g, v in sc["gateways"].items() if not v["pass"]]
    # one scoring vocabulary: the same checks and class the `score` subcommand reports
    checks = score_checks(sc)
    detail = (f"{doc['name']} ({doc['tier']}): {sc['status']}, MQS {sc['raw']:.1f} raw / {sc['normalized']:.1f} "
              f"grade {sc['grade']}" + (f"; gateways failed: {failed_gw}" if failed_gw else ""))
    outputs = {"evidence": s["evidence"], "score": str(s["evidence"]).replace("evidence.json", "score.json"),
               "registry": s["registry"], "readme": s["readme"], **s["reports"]}
    return make_verdict(GATE, passed=ok, decision=sc["status"], detail=detail,
                        failure_class=None if ok else failure_class_for(sc),
                        checks=checks, score=sc, outputs=outputs,
                        metrics={"wall_s": s["wall_s"], "cells": s["cells"], "records": s["records"],
                                 "workers": s["workers"], "outcomes": s["outcomes"]},
                        evidence={"output": args.output, "stopped_by": s["stopped_by"],
                                  "failure_policy": s["failure_policy"], "playbook_lock": s["playbook_lock"]},
                        next_action="none" if ok else "read report.md; see references/gateway-diagnostics.md"), SCHEMA


def main(argv: list[str] | None = None) -> int:
    """Run a playbook, or dispatch a scoring subcommand."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        from modelgate.certify.subcommands import COMMANDS
    except ImportError:  # the scoring tools are optional for a run
        COMMANDS = {}
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    return run_gate(GATE, lambda: _body(argv))


if __name__ == "__main__":
    sys.exit(main())
