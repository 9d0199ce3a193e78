"""Builders of certification evidence for the certification unit tests (valid by construction)."""
from __future__ import annotations

import copy
import itertools

GATEWAY_CATEGORY = {"G0": "COMP", "G1": "QUAL", "G2": "QUAL", "G3": "STAB", "G4": "QUAL"}
_ids = itertools.count()


def header(**over) -> dict:
    doc = {"schema_version": "1.0", "playbook": "tiny-llama-smoke", "playbook_sha256": "ab" * 32,
           "model": "fixture:trained-llama", "model_family": "llama", "tier": "smoke",
           "started": "2026-11-23T09:00:00+00:00", "finished": "2026-11-23T09:02:00+00:00",
           "host": {"hostname": "ci", "cpu_count": 2, "platform": "Linux-x86_64"},
           "versions": {"openvino": "2026.4.1", "nncf": None},
           "matrix": {"formats": ["safetensors", "openvino-fp32", "openvino-int4"], "devices": ["CPU", "GPU"],
                      "modalities": ["run", "chat", "contract"], "scenarios": ["basic", "color-facts"]},
           "records": []}
    doc.update(over)
    return doc


def record(category="QUAL", outcome="Corroborated", gateway=None, **over) -> dict:
    rec = {"id": f"r{next(_ids)}", "cell": {"format": "openvino-fp32", "device": "CPU", "modality": "run",
                                            "scenario": "basic"},
           "category": category, "gateway": gateway, "check": f"F-{category}-001",
           "hypothesis": "the model answers the color fact", "outcome": outcome,
           "reason": "answer matched" if outcome == "Corroborated" else f"{outcome.lower()} on purpose",
           "output": "The sky is blue.", "metrics": {"duration_ms": 12.5, "tokens_per_s": 40.0, "ttft_ms": 3.0,
                                                   "peak_rss_mb": 300.0}}
    rec.update(over)
    return rec


def gateway_records(outcome="Corroborated") -> list[dict]:
    """One record per gateway G0-G4."""
    return [record(GATEWAY_CATEGORY[g], outcome, gateway=g) for g in GATEWAY_CATEGORY]


def evidence(records=None, with_gateways=True, **over) -> dict:
    """Evidence with the given records, plus one corroborated record per gateway unless told otherwise."""
    recs = (gateway_records() if with_gateways else []) + list(records or [])
    return header(records=copy.deepcopy(recs), **over)


def full_marks(**over) -> dict:
    """Every category and gateway executed and corroborated: 1000."""
    return evidence([record(c) for c in ("PERF", "STAB", "COMP", "EDGE", "REGR")], **over)
