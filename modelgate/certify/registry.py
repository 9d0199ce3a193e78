"""The certification registry, models.csv: read, merge one row, write back — losslessly.

Lossless means: rows of other models, columns this version does not know and status values
it does not know are all written back unchanged. Every update holds an exclusive lock on
``<csv>.lock`` (beside the CSV) for its whole read-modify-write and replaces the CSV
atomically, so two runs updating the registry at once cannot lose each other's rows and a
reader never sees a half-written file. Columns and statuses: references/registry.md.
"""
from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import math
import os
import statistics
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from modelgate.contract import GateInputError, atomic_write_text
from modelgate.gates.mqs import GATEWAYS, checked_score

# evidence cell format / device -> the code used in tps_<format>_<device> column names
FORMAT_CODES = {"safetensors": "st", "openvino-fp32": "ov_fp32", "openvino-fp16": "ov_fp16",
                "openvino-int8": "ov_int8", "openvino-int4": "ov_int4"}
DEVICE_CODES = {"CPU": "cpu", "GPU": "gpu", "NPU": "npu"}
TPS_COLUMNS = tuple(f"tps_{f}_{d}" for f in FORMAT_CODES.values() for d in DEVICE_CODES.values())
GATEWAY_COLUMNS = tuple(g.lower() for g in GATEWAYS)  # g0..g4, in gateway order
# the pinned column order (a unit test holds it); unknown columns follow in their file order
COLUMNS = ("model_id", "family", "parameters", "size_category", "status", "mqs_score", "grade", "certified_tier",
           "last_certified", *GATEWAY_COLUMNS, *TPS_COLUMNS, "provenance_verified")
# columns that describe one certification run: a new run replaces them all (an empty value means
# "not measured this time", never "keep the old measurement")
RUN_COLUMNS = frozenset(COLUMNS) - {"model_id", "family", "parameters", "size_category"}
KNOWN_STATUSES = ("CERTIFIED", "PROVISIONAL", "BLOCKED", "PENDING", "PARTIAL", "FAIL")
# parameter count upper bound (exclusive) -> size category
SIZE_BANDS = ((1_000_000_000, "tiny"), (4_000_000_000, "small"), (10_000_000_000, "medium"),
              (35_000_000_000, "large"), (80_000_000_000, "xlarge"))
LARGEST_SIZE = "huge"
# outcomes whose tokens/s is a real measurement (the cell ran to completion)
MEASURED_OUTCOMES = frozenset({"Corroborated", "Falsified"})
CERTIFYING_STATUSES = frozenset({"CERTIFIED", "PROVISIONAL"})


def size_category(parameters: int | None) -> str:
    """tiny < 1B <= small < 4B <= medium < 10B <= large < 35B <= xlarge < 80B <= huge; '' when unknown."""
    if parameters is None:
        return ""
    for bound, name in SIZE_BANDS:
        if parameters < bound:
            return name
    return LARGEST_SIZE


def _flag(value: bool) -> str:
    return "true" if value else "false"


def tokens_per_s(evidence: Mapping) -> dict[str, str]:
    """tps_<format>_<device> -> median tokens/s over the completed records of that cell ('' if none)."""
    samples: dict[str, list[float]] = {c: [] for c in TPS_COLUMNS}
    for rec in evidence.get("records", []):
        tps = rec.get("metrics", {}).get("tokens_per_s")
        if rec.get("outcome") not in MEASURED_OUTCOMES or not isinstance(tps, (int, float)) or isinstance(tps, bool):
            continue
        if not math.isfinite(tps) or tps < 0:
            continue
        cell = rec["cell"]
        samples[f"tps_{FORMAT_CODES[cell['format']]}_{DEVICE_CODES[cell['device']]}"].append(float(tps))
    return {c: (f"{statistics.median(v):.2f}" if v else "") for c, v in samples.items()}


def evidence_row(evidence: Mapping, score: Mapping | None = None) -> dict[str, str]:
    """The registry row of one evidence document, from its MQS score (a given score must be that score)."""
    score = checked_score(evidence, score)
    gateways = score["gateways"]
    params = evidence.get("model_parameters")
    when = evidence.get("finished") or evidence["started"]
    row = {
        "model_id": evidence["model"],
        "family": evidence["model_family"],
        "parameters": str(params) if params is not None else "",
        "size_category": size_category(params),
        "status": score["status"],
        "mqs_score": f"{score['raw']:.1f}",
        "grade": score["grade"],
        "certified_tier": evidence["tier"] if score["status"] in CERTIFYING_STATUSES else "none",
        "last_certified": when[:10],
        **{g.lower(): _flag(gateways[g]["pass"]) for g in GATEWAYS},
        **tokens_per_s(evidence),
        "provenance_verified": _flag(evidence.get("playbook_lock") == "verified" and gateways["G0"]["pass"]),
    }
    return row


# --------------------------------------------------------------------------- file access

@contextlib.contextmanager
def registry_lock(csv_path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``<csv>.lock`` beside the CSV (blocks until it is free)."""
    lock_path = Path(f"{csv_path}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def read_registry(csv_path: str | os.PathLike) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of a registry CSV; ([], []) when it does not exist yet.

    Refuses (GateInputError) a file it could not write back without loss: no model_id column,
    duplicate column names, or a row with more values than the header has columns.
    """
    path = Path(csv_path)
    if not path.exists():
        return [], []
    try:
        # newline="" keeps \r\n inside quoted values byte-exact (universal newlines would rewrite them)
        with open(path, encoding="utf-8-sig", newline="") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise GateInputError("USER_CONFIG_ERROR", f"registry unreadable: {path}: {exc}") from exc
    if not text.strip():
        return [], []
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader)
        body = list(reader)
    except csv.Error as exc:
        raise GateInputError("USER_CONFIG_ERROR", f"registry is not valid CSV: {path}: {exc}") from exc
    if "model_id" not in header:
        raise GateInputError("USER_CONFIG_ERROR", f"registry {path} has no model_id column: {header[:5]}")
    if len(set(header)) != len(header):
        raise GateInputError("USER_CONFIG_ERROR", f"registry {path} has duplicate column names")
    rows = []
    for n, values in enumerate(body, start=2):
        if not values:
            continue
        if len(values) > len(header):
            raise GateInputError("USER_CONFIG_ERROR", f"registry {path} line {n} has {len(values)} values for "
                                 f"{len(header)} columns; refusing to rewrite it")
        rows.append(dict(zip(header, values + [""] * (len(header) - len(values)))))
    return header, rows


def column_order(header: list[str]) -> list[str]:
    """The pinned columns, then any columns this version does not know, in their file order."""
    return list(COLUMNS) + [c for c in header if c not in COLUMNS]


def render_registry(header: list[str], rows: list[dict[str, str]]) -> str:
    """CSV text of the registry in the pinned column order."""
    columns = column_order(header + [c for r in rows for c in r if c not in header])
    buf = io.StringIO(newline="")
    # "\r\n" (RFC 4180) also makes the writer quote values holding a bare "\r"
    writer = csv.DictWriter(buf, fieldnames=columns, restval="", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _clean_row(row: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in row.items():
        if not isinstance(key, str) or not key:
            raise GateInputError("USER_CONFIG_ERROR", f"registry column names must be non-empty strings: {key!r}")
        if value is None:
            value = ""
        elif isinstance(value, bool):
            value = _flag(value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise GateInputError("USER_CONFIG_ERROR", f"registry value {key}={value!r} is not finite")
        elif not isinstance(value, (str, int, float)):
            raise GateInputError("USER_CONFIG_ERROR", f"registry value {key} has type {type(value).__name__}")
        out[key] = str(value)
    if not out.get("model_id", "").strip():
        raise GateInputError("USER_CONFIG_ERROR", "a registry row needs a non-empty model_id")
    return out


def merge_row(existing: Mapping[str, str], new: Mapping[str, str]) -> dict[str, str]:
    """One model's row after a new run: run columns replaced, identity and unknown columns kept unless given."""
    merged = dict(existing)
    for key, value in new.items():
        if key in RUN_COLUMNS or value != "":
            merged[key] = value
    return merged


def legacy_key(evidence: Mapping) -> str | None:
    """The row key older versions gave this model (a ``path:`` model's path as written), if it differs from
    its stable id: such a row may mix several models, so it is never updated, only reported."""
    src = evidence.get("model_source") or {}
    return src["ref"] if src.get("kind") == "path" and src.get("ref") != evidence["model"] else None


def update_registry(csv_path: str | os.PathLike, row: Mapping[str, Any], legacy: str | None = None) -> dict:
    """Insert or update ``row`` (keyed by model_id) in the registry under the file lock; atomic replace.
    A row keyed by ``legacy`` (see ``legacy_key``) is kept untouched and reported.

    Returns {"action": "added"|"updated", "rows": count, "path": str, "legacy_rows": [ids]}.
    """
    new = _clean_row(row)
    path = Path(csv_path)
    with registry_lock(path):
        header, rows = read_registry(path)
        stale = [r["model_id"] for r in rows if legacy and r.get("model_id") == legacy]
        for i, existing in enumerate(rows):
            if existing.get("model_id") == new["model_id"]:
                rows[i] = merge_row(existing, new)
                action = "updated"
                break
        else:
            rows.append(new)
            action = "added"
        atomic_write_text(path, render_registry(header, rows))
    return {"action": action, "rows": len(rows), "path": str(path), "legacy_rows": stale}
