"""Executors on the command line: ``--executor local|ray`` for ``certify`` and ``release``, certification
campaigns (``certify --playbooks DIR`` or several ``--playbook``), and ``modelgate node-resources``
(what a Ray node advertises: ``ray start --resources "$(modelgate node-resources)"``).
"""
from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

from modelgate.cli.spine import Command, Outcome, stdout_to_stderr
from modelgate.contract import GateInputError, check, make_verdict

CERTIFY_GATE = "certify-run"
# the largest count an argument may give (as certify's --workers / --timeout-ms)
MAX_OVERRIDE = 10**9
CERTIFY_SCHEMA = "certify-verdict"


# --------------------------------------------------------------------------- arguments

def add_executor_args(p: argparse.ArgumentParser, unit: str) -> None:
    """``--executor``, ``--ray-address``, ``--retries``, ``--cpus-per-unit`` (``unit``: what a unit is, for help)."""
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help=f"where each {unit} runs: local child processes (default) or a Ray task per {unit} "
                        "(needs `pip install 'modelgate[cluster]'`)")
    p.add_argument("--ray-address", help="Ray cluster to join (default with --executor ray: start a local instance)")
    p.add_argument("--retries", type=int, default=2,
                   help=f"Ray: how many times a {unit} whose worker or node was lost is resubmitted (default 2); "
                        "then it is recorded as Crashed, INFRA_TRANSIENT")
    p.add_argument("--cpus-per-unit", type=int, default=1,
                   help=f"Ray: CPU slots each {unit} asks for, and its inference threads (default 1)")


def _count_ok(value, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_OVERRIDE


def check_executor_args(args: argparse.Namespace) -> None:
    """Executor arguments that are wrong are a USER_CONFIG_ERROR before any work starts."""
    if args.executor != "ray" and args.ray_address:
        raise GateInputError("USER_CONFIG_ERROR", "--ray-address needs --executor ray")
    # booleans are not counts; a count beyond MAX_OVERRIDE is nobody's intent (and overflows Ray's requests)
    if not _count_ok(args.retries, 0):
        raise GateInputError("USER_CONFIG_ERROR", f"--retries must be an integer from 0 to {MAX_OVERRIDE}, got "
                             f"{str(args.retries)[:40]!r}")
    if not _count_ok(args.cpus_per_unit, 1):
        raise GateInputError("USER_CONFIG_ERROR", f"--cpus-per-unit must be a positive integer up to {MAX_OVERRIDE}, "
                             f"got {str(args.cpus_per_unit)[:40]!r}")
    if args.executor == "ray":  # before any work: Ray is an optional extra
        from modelgate.executor import import_ray

        import_ray()


@contextlib.contextmanager
def open_executor(args: argparse.Namespace, workers: int) -> Iterator:
    """The executor the arguments ask for, closed (a local Ray instance shut down) on exit. While Ray
    runs, file descriptor 1 points at stderr: Ray's driver prints worker and raylet notices, and
    stdout carries only the verdict."""
    from modelgate.executor import make_executor

    check_executor_args(args)
    with stdout_to_stderr():
        ex = make_executor(args.executor, workers=workers, address=args.ray_address, retries=args.retries,
                           cpus_per_unit=args.cpus_per_unit)
        try:
            yield ex
        finally:
            ex.close()


def playbook_paths(args: argparse.Namespace) -> list[Path]:
    """Every playbook the run names: each ``--playbook`` and the ``*.yaml`` of each ``--playbooks`` folder."""
    paths = [Path(p) for p in args.playbook or []]
    for folder in args.playbooks or []:
        d = Path(folder)
        if not d.is_dir():
            raise GateInputError("USER_CONFIG_ERROR", f"--playbooks {folder} is not a folder")
        found = sorted(p for p in d.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not found:
            raise GateInputError("USER_CONFIG_ERROR", f"--playbooks {folder} holds no *.yaml playbook")
        paths.extend(found)
    resolved = [p.resolve() for p in paths]
    if len(set(resolved)) != len(resolved):
        raise GateInputError("USER_CONFIG_ERROR", "a playbook is named twice")
    return paths


def is_campaign(args: argparse.Namespace) -> bool:
    return bool(args.playbooks) or len(args.playbook or []) > 1


# --------------------------------------------------------------------------- a campaign's verdict

def certify_campaign(args: argparse.Namespace, docs: list[dict]) -> Outcome:
    """Run a campaign of playbooks on the executor the arguments ask for; one verdict for all models."""
    from modelgate.certify.campaign import run_campaign
    from modelgate.certify.runner import plan
    from modelgate.cli.certify import lock_refusal, plan_coverage
    from modelgate.contract import GateFailure, coverage
    from modelgate.gates.campaign import campaign_outcome, model_failure_class, model_next_action, rerun_action
    from modelgate.gates.mqs import certification_coverage, certification_next_action, format_mqs

    if args.dry_run:
        plans = [plan(d, args.timeout_ms) for d in docs]
        n = sum(p["count"] for p in plans)
        covs = {p["playbook"]: plan_coverage(p) for p in plans}
        return Outcome(make_verdict(CERTIFY_GATE, passed=True, detail=f"dry run: {len(plans)} playbooks, {n} cells "
                                    "planned, nothing executed", metrics={"cells": n, "playbooks": len(plans)},
                                    plans=plans, coverage=_campaign_coverage(covs, coverage)), CERTIFY_SCHEMA)
    workers = args.workers or max(d["workers"] for d in docs)
    try:
        with open_executor(args, workers) as ex:
            result = run_campaign(docs, args.output, ex, campaign=True, timeout_ms=args.timeout_ms,
                                  failure_policy=args.failure_policy, allow_unlocked=args.allow_unlocked,
                                  progress=False if args.no_progress else None, registry=args.registry,
                                  readme=args.readme, artifact_dir=args.artifact_dir, lock_path=args.lock)
    except GateFailure as exc:
        if exc.failure_class != "INTEGRITY_MISMATCH":
            raise
        return lock_refusal(args, exc)  # nothing of the campaign ran
    models, checks, outputs, losses, covs = [], [], {}, [], {}
    for s in result["models"]:
        sc = s["score"]
        cls = model_failure_class(sc, s["infrastructure_losses"])
        cov = covs[s["playbook"]] = certification_coverage(s["document"], sc)
        models.append({"playbook": s["playbook"], "model": s["model"], "status": sc["status"], "raw": sc["raw"],
                       "grade": sc["grade"], "failure_class": cls, "failed_gateways": sc["failed_gateways"],
                       "infrastructure_losses": s["infrastructure_losses"], "evidence": s["evidence"],
                       "next_action": model_next_action(cls, s["infrastructure_losses"],
                                                        certification_next_action(s["document"], sc, cov))})
        checks.append(check(f"model_{s['playbook']}", cls is None, {"status": sc["status"], "raw": sc["raw"]},
                            "CERTIFIED or PROVISIONAL", cls,
                            f"{s['model']}: {sc['status']}, MQS {format_mqs(sc['raw'], sc['grade'])}"))
        outputs[s["playbook"]] = s["evidence"]
        losses += [f"{s['playbook']}:{i}" for i in s["infrastructure_losses"]]
        outputs["registry"], outputs["readme"] = s["registry"], s["readme"]
    out = campaign_outcome(models)
    counts: dict[str, int] = {}
    for m in models:
        counts[m["status"]] = counts.get(m["status"], 0) + 1
    detail = f"campaign of {len(models)} playbooks on {result['executor']['name']}: " + ", ".join(
        f"{n} {status}" for status, n in sorted(counts.items()))
    if out["failure_class"] is None:
        action = "none"
    elif out["failure_class"] == "INFRA_TRANSIENT":
        action = rerun_action(losses)
    else:
        action = "read each failing model's report.md (see campaign[].next_action); " \
                 "references/gateway-diagnostics.md" + (f"; also {rerun_action(losses)}" if losses else "")
    outcomes: dict[str, int] = {}
    for s in result["models"]:
        for k, v in s["outcomes"].items():
            outcomes[k] = outcomes.get(k, 0) + v
    verdict = make_verdict(
        CERTIFY_GATE, passed=out["pass"], decision=out["decision"], failure_class=out["failure_class"], detail=detail,
        checks=checks, outputs=outputs, campaign=models, next_action=action,
        coverage=_campaign_coverage(covs, coverage),
        metrics={"wall_s": result["wall_s"], "models": len(models), "cells": sum(s["cells"] for s in result["models"]),
                 "records": sum(s["records"] for s in result["models"]), "outcomes": outcomes},
        evidence={"output": str(Path(args.output).resolve()), "executor": result["executor"]["name"],
                  "playbook_lock": [f"{s['playbook']}: {s['playbook_lock']}" for s in result["models"]]})
    return Outcome(verdict, CERTIFY_SCHEMA)


def _campaign_coverage(per_model: dict[str, dict], coverage) -> dict:
    """A campaign's coverage: each model's own (a certificate covers only what that model's run
    exercised), by playbook; what one model did not exercise is named with its playbook."""
    summary = " | ".join(f"{name}: {cov['summary']}" for name, cov in per_model.items())
    return coverage(f"{len(per_model)} models, each certified only for what its own run exercised. {summary}",
                    {name: cov["exercised"] for name, cov in per_model.items()},
                    [f"{name}: {x}" for name, cov in per_model.items() for x in cov["not_exercised"]])


# --------------------------------------------------------------------------- node-resources

def _node_resources_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--num-cpus", type=int, help="CPU slots this node gives Ray (default: its CPU count); also the "
                                                "value of openvino_CPU")
    p.add_argument("--devices", help="comma-separated OpenVINO devices instead of asking OpenVINO, e.g. CPU,GPU.0")


def _node_resources(args: argparse.Namespace) -> int:
    import os

    from modelgate.openvino.devices import node_devices, openvino_resources

    num_cpus = args.num_cpus if args.num_cpus is not None else (os.cpu_count() or 1)
    if not _count_ok(num_cpus, 1):
        raise GateInputError("USER_CONFIG_ERROR", f"--num-cpus must be a positive integer up to {MAX_OVERRIDE}, "
                             f"got {str(num_cpus)[:40]!r}")
    devices = [d.strip() for d in args.devices.split(",") if d.strip()] if args.devices else node_devices()
    print(json.dumps(openvino_resources(num_cpus, devices), sort_keys=True))
    return 0


NODE_RESOURCES = Command(
    "node-resources", "print this node's OpenVINO devices as Ray resources (for `ray start --resources`)",
    _node_resources_args, _node_resources, gate="node-resources", error_output=lambda args: None,
    schema="envelope",  # prints Ray's resource JSON itself; only its error verdicts are envelopes
    description="Print the Ray custom resources this node advertises, as the JSON `ray start --resources` takes: "
                "openvino_CPU (the CPU slots) and one openvino_<DEVICE> per GPU or NPU OpenVINO enumerates. "
                "Certification cells ask for the resource of their device, so a GPU cell only lands on a node "
                "with a GPU.")
