"""Certification evidence: the one writer and reader of schemas/evidence.schema.json.

A run opens an ``EvidenceWriter`` with its header and adds one record per falsification
attempt. Every record is validated before it is accepted and the whole document is
rewritten atomically after each one, so a run that dies half-way still leaves a valid
evidence file (with ``finished: null``) that scores what was actually executed.
"""
from __future__ import annotations

import copy
import datetime as _dt
import os
import platform
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelgate.contract import GateInputError, atomic_write_json, json_safe, read_json, schema_errors, versions

SCHEMA = "evidence"
OUTPUT_LIMIT = 2000
# the matrix axis each cell field must be declared in
CELL_AXES = {"format": "formats", "device": "devices", "modality": "modalities", "scenario": "scenarios"}


class EvidenceError(ValueError):
    """A record or document that does not satisfy the evidence schema (a bug in the producer)."""

    def __init__(self, message: str, errors: list[str]):
        super().__init__(f"{message}: " + "; ".join(errors[:5]))
        self.errors = errors


def now_iso() -> str:
    """The current UTC time as ISO-8601 with an explicit offset."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def host_info() -> dict:
    """The host block of an evidence header."""
    return {"hostname": socket.gethostname() or "unknown", "cpu_count": os.cpu_count() or 1,
            "platform": platform.platform() or "unknown"}


def truncate_output(text: str | None) -> str | None:
    """Model text as stored in a record: at most OUTPUT_LIMIT characters."""
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= OUTPUT_LIMIT else text[:OUTPUT_LIMIT]


def make_header(*, playbook: str, playbook_sha256: str, model: str, model_family: str, tier: str,
                matrix: Mapping, started: str | None = None, **extra: Any) -> dict:
    """An evidence header with host, versions and start time filled in.

    ``extra``: the optional header fields (playbook_lock, model_parameters); a None value means
    "not known" and is left out rather than written as null.
    """
    header = {"schema_version": "1.0", "playbook": playbook, "playbook_sha256": playbook_sha256, "model": model,
              "model_family": model_family, "tier": tier, "started": started or now_iso(), "finished": None,
              "host": host_info(), "versions": versions(), "matrix": json_safe(dict(matrix))}
    header.update({k: v for k, v in extra.items() if v is not None})
    return header


def semantic_errors(doc: Mapping) -> list[str]:
    """What the schema cannot say: record ids are unique, every cell lies in the declared matrix, and
    a Corroborated record carries no failure class."""
    errors: list[str] = []
    seen: set[str] = set()
    matrix = doc.get("matrix") or {}
    for i, rec in enumerate(doc.get("records") or []):
        if not isinstance(rec, Mapping):
            continue
        rid = rec.get("id")
        if rid in seen:
            errors.append(f"records/{i}/id: duplicate record id {rid!r}")
        seen.add(rid)
        if rec.get("outcome") == "Corroborated" and rec.get("failure_class"):
            errors.append(f"records/{i}/failure_class: a Corroborated record cannot carry failure class "
                          f"{rec['failure_class']}")
        cell = rec.get("cell") if isinstance(rec.get("cell"), Mapping) else {}
        for field, axis in CELL_AXES.items():
            if field in cell and cell[field] not in (matrix.get(axis) or []):
                errors.append(f"records/{i}/cell/{field}: {cell[field]!r} is not in matrix.{axis}")
    return errors


def evidence_errors(doc: Any) -> list[str]:
    """Every reason ``doc`` is not valid evidence (empty list when it is)."""
    errors = schema_errors(SCHEMA, doc)
    if not errors and isinstance(doc, Mapping):
        errors = semantic_errors(doc)
    return errors


def record_errors(record: Any, header: Mapping | None = None) -> list[str]:
    """Every reason ``record`` is not a valid evidence record (within ``header``'s matrix, if given)."""
    probe = dict(header) if header else _probe_header(record)
    probe["records"] = [record]
    return [e.replace("records/0/", "", 1).replace("records/0", "<record>", 1) for e in evidence_errors(probe)]


def _probe_header(record: Any) -> dict:
    # a header that accepts any cell, to validate a record on its own
    cell = record.get("cell") if isinstance(record, Mapping) and isinstance(record.get("cell"), Mapping) else {}
    matrix = {"formats": ["safetensors"], "devices": ["CPU"], "modalities": ["run"], "scenarios": ["probe"]}
    for field, axis in CELL_AXES.items():
        if isinstance(cell.get(field), str):
            matrix[axis] = [cell[field]]
    return {"schema_version": "1.0", "playbook": "probe", "playbook_sha256": "0" * 64, "model": "probe",
            "model_family": "probe", "tier": "smoke", "started": "2000-01-01T00:00:00Z", "finished": None,
            "host": {"hostname": "probe", "cpu_count": 1, "platform": "probe"}, "versions": {}, "matrix": matrix}


def write_evidence(path: str | os.PathLike, doc: Mapping) -> Path:
    """Validate a whole evidence document and write it atomically; raise EvidenceError if invalid."""
    doc = json_safe(dict(doc))
    errors = evidence_errors(doc)
    if errors:
        raise EvidenceError("evidence document is invalid", errors)
    return atomic_write_json(path, doc)


def read_evidence(path: str | os.PathLike) -> dict:
    """Read and validate an evidence file; anything unreadable or invalid raises GateInputError (exit 2)."""
    doc = read_json(path, "evidence")
    errors = evidence_errors(doc)
    if errors:
        raise GateInputError("USER_CONFIG_ERROR", f"evidence {path} is invalid: " + "; ".join(errors[:5])
                             + (f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""), evidence=str(path))
    return doc


class EvidenceWriter:
    """Append-only evidence for one run: ``add`` validates each record and rewrites the file atomically."""

    def __init__(self, path: str | os.PathLike, header: Mapping):
        self.path = Path(path)
        header = json_safe({k: v for k, v in dict(header).items() if k != "records"})
        header.setdefault("finished", None)
        self._doc = dict(header, records=[])
        errors = evidence_errors(self._doc)
        if errors:
            raise EvidenceError("evidence header is invalid", errors)
        self._ids: set[str] = set()
        atomic_write_json(self.path, self._doc)

    @property
    def document(self) -> dict:
        """A copy of the evidence written so far."""
        return copy.deepcopy(self._doc)

    def add(self, record: Mapping) -> dict:
        """Validate one record (schema, unique id, cell inside the matrix), append it and persist."""
        record = json_safe(dict(record))
        for key in ("output", "expected"):
            if isinstance(record.get(key), str):
                record[key] = truncate_output(record[key])
        errors = record_errors(record, self._doc)
        if not errors and record["id"] in self._ids:
            errors = [f"id: duplicate record id {record['id']!r}"]
        if errors:
            raise EvidenceError(f"evidence record {record.get('id')!r} is invalid", errors)
        self._ids.add(record["id"])
        self._doc["records"].append(record)
        atomic_write_json(self.path, self._doc)
        return record

    def close(self, finished: str | None = None) -> dict:
        """Stamp the finish time, validate the whole document and write it; returns the document."""
        self._doc["finished"] = finished or now_iso()
        write_evidence(self.path, self._doc)
        return self.document

    def __enter__(self) -> EvidenceWriter:
        return self

    def __exit__(self, *exc) -> None:
        if self._doc.get("finished") is None:
            self.close()
