"""Run one certification playbook: the dry-run plan, and a run on the local executor (or one given).

The work itself is ``modelgate.certify.campaign``'s: a ground-truth unit and the conversions, then
every cell of the matrix, each in its own child process with the cell's timeout, ``workers`` at a
time (``modelgate.executor``). A child that dies becomes a Crashed record, one that exceeds its
timeout is killed and becomes a Timeout record. Records go through the evidence writer (validated,
written atomically after each one) as cells finish. The failure policy decides whether to keep
scheduling after a failure; cells not run are recorded as Skipped, which never counts as a pass.
"""
from __future__ import annotations

from pathlib import Path

from modelgate.certify.campaign import policy_stops
from modelgate.certify.playbook import expand
from modelgate.contract import GateInputError

__all__ = ["check_input", "plan", "policy_stops", "run_playbook"]


def plan(doc: dict, timeout_ms: int | None = None) -> dict:
    """The dry-run plan: every cell with its prompts and timeout, nothing executed."""
    cells = expand(doc, timeout_ms)
    return {"playbook": doc["name"], "description": doc["description"], "tier": doc["tier"], "seed": doc["seed"],
            "workers": doc["workers"], "failure_policy": doc["failure_policy"], "cells": [c.to_dict() for c in cells],
            "count": len(cells), "matrix": doc["matrix"], "scenarios": [s["name"] for s in doc["scenarios"]]}


def run_playbook(doc: dict, out_dir: str | Path, *, workers: int | None = None, timeout_ms: int | None = None,
                 failure_policy: str | None = None, allow_unlocked: bool = False, progress: bool | None = None,
                 registry: str | Path | None = None, readme: str | Path | None = None, executor=None,
                 artifact_dir: str | Path | None = None, lock_path: str | Path | None = None) -> dict:
    """Run the whole certification into ``out_dir``; return a summary (paths, score, counts, and the
    evidence ``document``).

    ``executor``: where units run (default: a local pool of ``workers``, else the playbook's
    ``workers``, closed on return). ``lock_path``: the lock to check (default: ``<out_dir>``'s, else
    the nearest above the playbook). Bad input -> GateInputError; a playbook or input that differs
    from its lock -> GateFailure INTEGRITY_MISMATCH (unless allowed), before anything runs.
    """
    from modelgate.certify.campaign import run_campaign
    from modelgate.executor import LocalExecutor

    owned = executor is None
    if owned:
        executor = LocalExecutor(workers or doc["workers"])
    try:
        result = run_campaign([doc], out_dir, executor, campaign=False, timeout_ms=timeout_ms,
                              failure_policy=failure_policy, allow_unlocked=allow_unlocked, progress=progress,
                              registry=registry, readme=readme, artifact_dir=artifact_dir,
                              lock_path=lock_path)
    finally:
        if owned:
            executor.close()
    summary = dict(result["models"][0])
    summary["workers"] = getattr(executor, "workers", None) or getattr(executor, "window", None)
    summary["executor"] = result["executor"]
    return summary


# a CLI override above this is not a worker count or a timeout anyone means (a 400-digit --timeout-ms
# would overflow the first float division)
MAX_OVERRIDE = 10**9


def check_input(value, name: str) -> None:
    """Reject non-positive (or absurdly large) CLI overrides before they reach the pool."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                              or not 1 <= value <= MAX_OVERRIDE):
        raise GateInputError("USER_CONFIG_ERROR", f"{name} must be a positive integer up to {MAX_OVERRIDE}, "
                             f"got {str(value)[:40]!r}")
