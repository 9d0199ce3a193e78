"""How infrastructure losses and a campaign of many models are reported. Pure.

A cell whose Ray worker or node was lost on every attempt is recorded as Crashed with failure
class INFRA_TRANSIENT (the issue's rule: a lost cell is never a pass, and MQS scores it as any
Crashed record: -20 points, G3 fails). What this module adds is the *reading* of such a run: when
every failed record that blocks a model is an infrastructure loss, the model's failure class is
INFRA_TRANSIENT, not GATEWAY_FAILED, and the next action is to rerun those cells, because the
infrastructure, not the model, was refuted. A gateway that fails for lack of evidence is never
blamed on infrastructure.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from modelgate.gates.mqs import failure_class_for

LOST_CLASS = "INFRA_TRANSIENT"
# a campaign's decision is its worst model's status
STATUS_ORDER = ("BLOCKED", "PENDING", "PROVISIONAL", "CERTIFIED")
# a campaign's failure class: the first that any failing model has
CLASS_ORDER = ("GATEWAY_FAILED", "MQS_BELOW_THRESHOLD", LOST_CLASS, "USER_CONFIG_ERROR")
LISTED_IDS = 5


def infrastructure_losses(records: Iterable[Mapping]) -> list[str]:
    """Ids of the Crashed records whose worker or node was lost (failure class INFRA_TRANSIENT)."""
    return [r["id"] for r in records if r.get("outcome") == "Crashed" and r.get("failure_class") == LOST_CLASS]


def model_failure_class(score: Mapping, losses: Iterable[str]) -> str | None:
    """The failure class of one model's run: ``failure_class_for(score)``, except INFRA_TRANSIENT when
    the model is blocked only by infrastructure losses (every failed gateway has failed records and
    each of them is one of ``losses``)."""
    cls = failure_class_for(score)
    if cls != "GATEWAY_FAILED":
        return cls
    lost = set(losses)
    failed_gateways = [g for g in score["gateways"].values() if not g["pass"]]
    if lost and all(g["failed_records"] and set(g["failed_records"]) <= lost for g in failed_gateways):
        return LOST_CLASS
    return cls


def rerun_action(losses: list[str]) -> str:
    """The next action for cells lost with their worker or node."""
    shown = ", ".join(losses[:LISTED_IDS]) + (f" (+{len(losses) - LISTED_IDS} more)" if len(losses) > LISTED_IDS
                                              else "")
    return (f"rerun: {len(losses)} record(s) were lost with their Ray worker or node ({shown}); the infrastructure "
            "failed, not the model, but they count as Crashed until a rerun on a healthy cluster replaces the evidence")


def model_next_action(failure_class: str | None, losses: list[str], action: str | None = None) -> str:
    """What to do after one model's run. ``action``: what the certification itself says to do
    (``mqs.certification_next_action``: the first failing record to open, the coverage to add);
    infrastructure losses add the rerun, and a model blocked only by them is told to rerun."""
    if failure_class == LOST_CLASS:
        return rerun_action(losses)
    if failure_class is None:
        return action or "none"
    action = action or "read report.md; see references/gateway-diagnostics.md"
    return f"{action}; also {rerun_action(losses)}" if losses else action


def campaign_outcome(models: list[Mapping]) -> dict:
    """The campaign's pass, decision and failure class from its models' ``status`` and ``failure_class``:
    it passes when every model passes; the decision is the worst status; the failure class is the
    first of CLASS_ORDER any model has (INFRA_TRANSIENT only when infrastructure is all that failed)."""
    if not models:
        return {"pass": False, "decision": None, "failure_class": "USER_CONFIG_ERROR"}
    statuses = [m["status"] for m in models]
    decision = next(s for s in STATUS_ORDER if s in statuses)
    classes = {m["failure_class"] for m in models if m["failure_class"]}
    cls = next((c for c in CLASS_ORDER if c in classes), sorted(classes)[0] if classes else None)
    return {"pass": cls is None, "decision": decision, "failure_class": cls}
