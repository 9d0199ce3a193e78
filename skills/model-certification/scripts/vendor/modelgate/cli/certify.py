"""``modelgate certify`` / the model-certification skill's ``certify.py``: run a playbook, or one of the
scoring tools (score, report, export-csv, sync-readme, tickets, lock-playbooks, check-lock).

Every form prints one JSON verdict (``schemas/certify-verdict.schema.json``): a run exits 0 when the
model is CERTIFIED or PROVISIONAL, 1 when BLOCKED, 2 when the input could not be judged. ``score``
needs only the standard library and jsonschema (it is vendored into the skill folder); a run and
the other tools need the full engine.
"""
from __future__ import annotations

import argparse
import shlex
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
    p.add_argument("--allow-unlocked", action="store_true",
                   help="run a playbook (or template, data file) that differs from its lock; the run is then not "
                        "provenance-verified")
    p.add_argument("--lock", help="lock file (default: <output>/playbooks.lock.json, else the nearest "
                                  "playbooks.lock.json above the playbook; the pack ships one for its playbooks)")
    p.add_argument("--registry", help="models.csv to update (default: <output>/certifications/models.csv)")
    p.add_argument("--readme", help="README whose certification table to sync (default: <output>/README.md)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--artifact-dir", help="conversion cache shared by every node (default: each node's own cache)")
    add_executor_args(p, "cell")


def _prog(args: argparse.Namespace) -> str:
    """How the user runs this command: the skill script (it passes its folder as --skill-dir) or modelgate."""
    skill = getattr(args, "skill_dir", None)
    if skill and (Path(skill) / "scripts" / "certify.py").is_file():
        return f"python {shlex.quote(str(Path(skill) / 'scripts' / 'certify.py'))}"
    return "modelgate certify"


def lock_command(args: argparse.Namespace, playbook: str | Path | None = None) -> str:
    """The command that locks the playbook's folder into the run's output (what a lock refusal tells to do).
    ``playbook``: the one refused (default: the first the run names)."""
    if playbook is None:
        playbook = args.playbook[0] if isinstance(args.playbook, list) else args.playbook
    folder = Path(playbook).resolve().parent
    target = f"--lock {shlex.quote(args.lock)}" if args.lock else f"--output {shlex.quote(str(args.output))}"
    return f"{_prog(args)} lock-playbooks {shlex.quote(str(folder))} {target}"


def _lock_next_action(state: str | None, args: argparse.Namespace, playbook: str | Path | None = None) -> str:
    """The next step of a lock refusal: the lock command (reviewing the change first when something changed)."""
    first = ("nothing was run: no lock covers this playbook and what it reads. Lock it with"
             if state != "mismatch" else
             "nothing was run: a locked file changed (the detail names it). Review the change; if it is intended, "
             "lock again with")
    return (f"{first} `{lock_command(args, playbook)}`, then run the same command again (or pass --allow-unlocked: "
            "the run is then not provenance-verified)")


def lock_refusal(args: argparse.Namespace, exc) -> Outcome:
    """The verdict of a run refused by the lock (GateFailure INTEGRITY_MISMATCH, nothing run): its next
    step is the lock command itself (into the output, never the skill pack). In a campaign the
    exception names the playbook refused."""
    playbook = exc.evidence.get("playbook") or (args.playbook or [None])[0]
    evidence = {"lock": args.lock, **exc.evidence, "playbook": str(playbook)}
    return Outcome(make_verdict(
        GATE, passed=False, failure_class="INTEGRITY_MISMATCH", detail=exc.detail, evidence=evidence,
        next_action=_lock_next_action(exc.evidence.get("lock_state"), args, playbook)), SCHEMA)


def plan_coverage(p: dict) -> dict:
    from modelgate.contract import coverage
    from modelgate.gates.mqs import AXES

    axes = {axis: [v for v in universe if v in p["matrix"][axis]] for axis, universe in AXES.items()}
    missing = [f"{v}: not in this run's matrix (tier {p['tier']})" for axis, universe in AXES.items() for v in universe
               if v not in axes[axis]]
    return coverage(f"dry run of tier {p['tier']}: {p['count']} cells planned over {', '.join(axes['formats'])} on "
                    f"{', '.join(axes['devices'])}, modalities {', '.join(axes['modalities'])}; nothing executed, "
                    "nothing certified" + (f"; the tier does not cover {', '.join(m.split(':')[0] for m in missing)}"
                                           if missing else ""),
                    {"planned": dict(axes, cells=p["count"], scenarios=p["scenarios"])}, missing)


def _run(args: argparse.Namespace) -> Outcome:
    from modelgate.certify.playbook import load_playbook
    from modelgate.certify.runner import check_input, plan, run_playbook
    from modelgate.cli.cluster import certify_campaign, check_executor_args, is_campaign, open_executor, playbook_paths
    from modelgate.contract import GateFailure
    from modelgate.gates.campaign import model_failure_class, model_next_action
    from modelgate.gates.mqs import (
        PASSING_STATUSES,
        certification_coverage,
        certification_next_action,
        format_mqs,
        score_checks,
    )

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
                                    metrics={"cells": p["count"]}, plan=p, coverage=plan_coverage(p)), SCHEMA)
    try:
        with open_executor(args, args.workers or doc["workers"]) as executor:
            s = run_playbook(doc, args.output, workers=args.workers, timeout_ms=args.timeout_ms,
                             failure_policy=args.failure_policy, allow_unlocked=args.allow_unlocked,
                             progress=False if args.no_progress else None, registry=args.registry,
                             readme=args.readme, executor=executor, artifact_dir=args.artifact_dir,
                             lock_path=args.lock)
    except GateFailure as exc:
        if exc.failure_class != "INTEGRITY_MISMATCH":
            raise
        return lock_refusal(args, exc)
    sc = s["score"]
    ok = sc["status"] in PASSING_STATUSES
    cls = model_failure_class(sc, s["infrastructure_losses"])
    failed_gw = [g for g, v in sc["gateways"].items() if not v["pass"]]
    detail = (f"{doc['name']} ({doc['tier']}): {sc['status']}, MQS {format_mqs(sc['raw'], sc['grade'])}"
              + (f"; gateways failed: {', '.join(failed_gw)}" if failed_gw else ""))
    outputs = {"evidence": s["evidence"], "score": str(Path(s["evidence"]).with_name("score.json")),
               "registry": s["registry"], "readme": s["readme"], **s["reports"]}
    cov = certification_coverage(s["document"], sc)
    # one scoring vocabulary: the same checks and class the `score` subcommand reports
    return Outcome(make_verdict(
        GATE, passed=ok, decision=sc["status"], detail=detail, failure_class=cls,
        checks=score_checks(sc), score=sc, outputs=outputs, coverage=cov,
        metrics={"wall_s": s["wall_s"], "cells": s["cells"], "records": s["records"], "workers": s["workers"],
                 "outcomes": s["outcomes"]},
        evidence={"output": str(Path(args.output).resolve()), "stopped_by": s["stopped_by"],
                  "failure_policy": s["failure_policy"], "playbook_lock": s["playbook_lock"], "model": sc["model"],
                  "executor": s["executor"]["name"]},
        next_action=model_next_action(cls, s["infrastructure_losses"],
                                      certification_next_action(s["document"], sc, cov))), SCHEMA)


# --------------------------------------------------------------------------- scoring tools

def _score_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("evidence", help="evidence JSON (schemas/evidence.schema.json)")
    p.add_argument("--output", help="also write the verdict here (file or folder)")


def _score(args: argparse.Namespace) -> Outcome:
    from modelgate.certify.evidence import read_evidence
    from modelgate.gates.mqs import score, score_verdict

    evidence = read_evidence(args.evidence)
    result = score(evidence)
    return Outcome(score_verdict("certify-score", result, evidence_doc=evidence, evidence={"evidence": args.evidence}),
                   SCHEMA, args.output)


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("evidence")
    p.add_argument("--output", required=True, help="folder for the reports")


def _report(args: argparse.Namespace) -> Outcome:
    from modelgate.certify.evidence import read_evidence
    from modelgate.certify.reports import write_reports
    from modelgate.gates.mqs import certification_coverage, format_mqs, score

    evidence = read_evidence(args.evidence)
    result = score(evidence)
    paths = write_reports(evidence, result, args.output)
    return Outcome(make_verdict("certify-report", passed=True, detail=f"reports written to {args.output} "
                                f"({result['status']}, MQS {format_mqs(result['raw'], result['grade'])})",
                                decision=result["status"], evidence={"evidence": args.evidence, **paths},
                                outputs=paths, score=result, coverage=certification_coverage(evidence, result)),
                   SCHEMA)


def _export_csv_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--evidence", nargs="+", required=True, help="evidence JSON files")
    p.add_argument("--csv", required=True, help="registry CSV (created if missing), e.g. certifications/models.csv")


def _export_csv(args: argparse.Namespace) -> Outcome:
    from modelgate.certify.evidence import read_evidence
    from modelgate.certify.registry import evidence_row, legacy_key, update_registry

    docs = [(path, read_evidence(path)) for path in args.evidence]  # all valid before any row is written
    checks, last = [], None
    for _path, doc in docs:
        row = evidence_row(doc)
        last = update_registry(args.csv, row, legacy_key(doc))
        checks.append(check(f"row_{row['model_id']}", True, {"action": last["action"], "status": row["status"],
                                                              "mqs_score": row["mqs_score"],
                                                              "legacy_rows_kept": last["legacy_rows"]}, None))
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


def _skill_dir_arg(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: a skill script's default (its own folder, set on the parent parser) must survive
    p.add_argument("--skill-dir", default=argparse.SUPPRESS,
                   help="model-certification skill folder whose tier templates and playbook schema to hash")


def _lock_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", help="folder of playbooks to lock (every *.yaml / *.yml below it)")
    p.add_argument("--output", default="certification",
                   help="folder to write playbooks.lock.json into (default: certification, the run's default output, "
                        "where a run looks first); never the skill pack's own folder")
    p.add_argument("--lock", help="write the lock to this file instead (pass the same --lock to the run)")
    _skill_dir_arg(p)


def _lock(args: argparse.Namespace) -> Outcome:
    from modelgate.certify.lock import LOCK_NAME, build_lock
    from modelgate.certify.playbook import skill_folder
    from modelgate.contract import atomic_write_json

    skill_dir = getattr(args, "skill_dir", None)
    path = Path(args.lock) if args.lock else Path(args.output) / LOCK_NAME
    skill = skill_folder(skill_dir).resolve()
    if path.resolve() == skill or skill in path.resolve().parents:
        # the pack's own lock is part of the release; a user's lock goes with their run
        raise GateInputError("USER_CONFIG_ERROR", f"refusing to write a lock inside the skill pack ({skill}): "
                             "pass --output <your run's output folder> or --lock <file>")
    doc = build_lock(args.directory, skill_dir)
    atomic_write_json(path, doc)
    run_hint = "" if args.lock is None else f" --lock {shlex.quote(str(path))}"
    return Outcome(make_verdict(
        "certify-lock-playbooks", passed=True,
        detail=f"lock written: {path} ({len(doc['playbooks'])} playbook(s), {len(doc['inputs'])} input(s))",
        evidence={"lock": str(path.resolve())}, outputs={"lock": str(path.resolve())},
        next_action=(f"run with --output {shlex.quote(str(args.output))}{run_hint}" if not args.lock else
                     f"run with{run_hint}")), SCHEMA)


def _check_lock_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("playbook")
    p.add_argument("--lock", help="lock file (default: <output>/playbooks.lock.json, else the nearest "
                                  "playbooks.lock.json above the playbook)")
    p.add_argument("--output", default="certification",
                   help="the run's output folder (its playbooks.lock.json is looked at first; default: certification, "
                        "the run's default)")
    p.add_argument("--tier", choices=TIERS, help="the tier the run would use (default: the playbook's)")
    _skill_dir_arg(p)


def _check_lock(args: argparse.Namespace) -> Outcome:
    from modelgate.certify.lock import lock_state
    from modelgate.certify.playbook import declared_inputs

    if not Path(args.playbook).is_file():
        raise GateInputError("USER_CONFIG_ERROR", f"playbook not found: {args.playbook}")
    inputs = declared_inputs(args.playbook, args.tier, getattr(args, "skill_dir", None))
    state, detail = lock_state(args.playbook, args.lock, inputs=inputs, output=args.output)
    ok = state == "verified"
    cls = None if ok else "INTEGRITY_MISMATCH"
    return Outcome(make_verdict("certify-check-lock", passed=ok, failure_class=cls, detail=detail,
                                checks=[check("playbook_lock", ok, {"state": state, "inputs": inputs}, "verified",
                                              cls, detail)],
                                evidence={"playbook": args.playbook, "lock": args.lock, "inputs": sorted(inputs)}),
                   SCHEMA)


def _tool(name: str, help_: str, configure, run, description: str) -> Command:
    return Command(name, help_, configure, run, gate=f"certify-{name}", description=description,
                   error_output=lambda args: None, schema=SCHEMA)


TOOLS = (
    Command("score", "the MQS score of evidence; exit 0 CERTIFIED/PROVISIONAL, 1 BLOCKED, 2 PENDING or bad input",
            _score_args, _score, gate="certify-score", schema=SCHEMA,
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
    _tool("lock-playbooks", "record the SHA-256 of every playbook and of the templates and data runs read",
          _lock_args, _lock, "Write playbooks.lock.json into --output (or --lock): the SHA-256 of each playbook "
          "under DIRECTORY and of every tier template, the playbook schema and the data files a run reads."),
    _tool("check-lock", "exit 0 when a playbook and what its run reads match the lock, 1 (INTEGRITY_MISMATCH) if not",
          _check_lock_args, _check_lock, "Compare the content hashes of a playbook, its tier template, the playbook "
          "schema and its data files with the lock; the detail names the file that changed."),
)

CERTIFY = Command(
    "certify", "run a certification playbook (MQS, G0-G4, registry, reports)", _run_args, _run, gate=GATE,
    error_output=lambda args: None, children=TOOLS, schema=SCHEMA,
    description="Run a model-certification playbook: formats x devices x modalities x scenarios, each cell in its own "
                "process with a timeout; evidence, MQS score, registry row, README table and reports. Or run one of "
                "the scoring tools below (each has --help).")
