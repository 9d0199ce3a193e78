"""MQS scoring for the certification skill; the pure algorithm lives in modelgate.gates.mqs."""
from __future__ import annotations

from typing import Mapping

from modelgate.contract import GateInputError
from modelgate.gates.mqs import (CATEGORY_MAX, CERTIFIED_RAW, GATEWAYS, GRADE_FLOORS, PENALTY_POINTS,  # noqa: F401
                                 PROVISIONAL_RAW, STATUSES, at_least, grade_for, normalize, score, status_for)

# the fields that identify a score and decide it; a score given alongside evidence must agree on them
IDENTITY_FIELDS = ("model", "playbook_sha256", "tier", "raw", "status", "grade")


def checked_score(evidence: Mapping, given: Mapping | None = None) -> dict:
    """Score ``evidence``; if a score was given too, refuse it unless it is this evidence's score."""
    fresh = score(evidence)
    if given is not None:
        differ = [k for k in IDENTITY_FIELDS if given.get(k) != fresh[k]]
        if differ:
            raise GateInputError("USER_CONFIG_ERROR", f"the score given does not belong to this evidence "
                                 f"({', '.join(differ)} differ); re-score the evidence")
    return fresh
