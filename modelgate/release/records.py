"""Per-sample records of an evaluation run: finding and reading them (thin I/O over stdlib).

Records are JSONL, one ``{"id", "score", "prediction", "reference"}`` per scored sample, with
``score`` in the task's scale so that their mean is the task score. The statistics over them are
pure decisions in ``modelgate.gates.paired``; this module reads the files a run summary names
and hands those functions plain (id, score) pairs. Used by gate_run, gate_compare and the
release conductor alike.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from modelgate.contract import GateInputError, loads_strict
from modelgate.gates.compare import SCALE_FULL
from modelgate.gates.paired import paired_stats, records_stats
from modelgate.gates.values import is_number

MAX_RECORD_BYTES = 10 * 1024 * 1024


def resolve_records_path(summary_path: str | os.PathLike, records_path: str) -> Path:
    """The records file of a task, relative to its summary, never outside the summary's folder."""
    base = Path(summary_path).resolve().parent
    try:
        p = (base / records_path).resolve()
    except (OSError, ValueError) as exc:  # embedded NUL, too long, symlink loop
        raise GateInputError("USER_CONFIG_ERROR", f"records_path {records_path!r} is not a usable path: {exc}") from exc
    if not p.is_relative_to(base):
        raise GateInputError("USER_CONFIG_ERROR", f"records_path {records_path!r} points outside the run folder {base}")
    return p


def read_records(path: str | os.PathLike) -> tuple[list[tuple[Any, float]], int]:
    """(valid (id, score) pairs, number of invalid lines) of a JSONL records file; GateInputError if unreadable."""
    p = Path(path)
    if not p.is_file():
        raise GateInputError("USER_CONFIG_ERROR", f"records file not found: {p}")
    pairs, invalid = [], 0
    try:
        with open(p, encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                if len(line) > MAX_RECORD_BYTES:
                    invalid += 1
                    continue
                try:  # a NaN literal, an overflowing number or a duplicate key makes the line invalid
                    rec = loads_strict(line)
                except ValueError:
                    invalid += 1
                    continue
                rid = rec.get("id") if isinstance(rec, dict) else None
                score = rec.get("score") if isinstance(rec, dict) else None
                if isinstance(rid, (str, int)) and not isinstance(rid, bool) and is_number(score):
                    pairs.append((rid, float(score)))
                else:
                    invalid += 1
    except (OSError, UnicodeDecodeError) as exc:
        raise GateInputError("USER_CONFIG_ERROR", f"records file unreadable: {p}: {exc}") from exc
    return pairs, invalid


def task_records(summary_path: str | os.PathLike, task: Any) -> tuple[list, int] | None:
    """(pairs, invalid) of one task of a run summary, or None when it names no readable records.

    A records path outside the run folder is refused (GateInputError, exit 2); a missing or
    unreadable file is None, which the run gate reports as a sample-accounting failure.
    """
    if not isinstance(task, dict) or not isinstance(task.get("records_path"), str) or not task["records_path"]:
        return None
    path = resolve_records_path(summary_path, task["records_path"])
    try:
        return read_records(path)
    except GateInputError:
        return None


def summary_records(summary_path: str | os.PathLike, summary: Any) -> dict:
    """task -> (pairs, invalid) of its records, read once (None where it names none or they are
    unreadable: gate_run reports the latter)."""
    out: dict = {}
    if isinstance(summary, dict) and isinstance(summary.get("tasks"), dict):
        for name, task in summary["tasks"].items():
            out[name] = task_records(summary_path, task)
    return out


def stats_of(loaded: dict) -> dict:
    """task -> ``records_stats`` of records read by ``summary_records`` (None where there are none)."""
    return {name: records_stats(*rec) if rec is not None else None for name, rec in loaded.items()}


def summary_records_stats(summary_path: str | os.PathLike, summary: Any) -> dict:
    """task -> ``records_stats`` of its records (None where it has none): what gate_run judges."""
    return stats_of(summary_records(summary_path, summary))


def paired_of(baseline: Any, baseline_records: dict, candidate_records: dict) -> dict:
    """task -> ``paired_stats`` for the tasks whose records both runs provide (read by
    ``summary_records``); tasks without records on either side are left to independent errors."""
    out: dict = {}
    tasks = baseline.get("tasks") if isinstance(baseline, dict) else None
    if not isinstance(tasks, dict):
        return out
    for name in set(baseline_records) & set(candidate_records):
        rb, rc = baseline_records[name], candidate_records[name]
        if rb is None or rc is None:
            continue
        b = tasks.get(name)
        scale = b.get("scale") if isinstance(b, dict) else None
        span = SCALE_FULL.get(scale) if isinstance(scale, str) else None
        out[name] = paired_stats(rb[0], rc[0], span)
    return out


def paired_from_records(baseline_path: str | os.PathLike, baseline: Any, candidate_path: str | os.PathLike,
                        candidate: Any) -> dict:
    """task -> paired stats for tasks whose records both runs provide (others are left to independent errors)."""
    if not (isinstance(baseline, dict) and isinstance(candidate, dict)):
        return {}
    return paired_of(baseline, summary_records(baseline_path, baseline), summary_records(candidate_path, candidate))
