"""Per-sample records of an evaluation run: reading them (thin I/O) and paired statistics (pure math).

Records are JSONL, one ``{"id", "score", "prediction", "reference"}`` per scored sample, with
``score`` in the task's scale so that their mean is the task score. Paired differences
(candidate - baseline on the same ids) have a far smaller standard error than two
independent scores when the models agree, which is what lets a few hundred samples
resolve a 1 % threshold.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

from modelgate.contract import GateInputError
from modelgate.gates.values import is_number

# One-sided 95 % "rule of three": with no discordant pair among n, the discordance rate is
# still only bounded by 3/n. The standard error never goes below span * 3 / (Z_FLOOR * n), so
# perfect agreement on a tiny sample cannot claim more certainty than the sample holds.
RULE_OF_THREE = 3.0
Z_FLOOR = 1.645
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
                try:
                    rec = json.loads(line, parse_constant=lambda name: float("nan"))
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


def records_stats(pairs: Iterable[tuple[Any, float]], invalid: int = 0) -> dict:
    """{"count", "duplicate_ids", "invalid", "mean"} of one task's records (what gate_run checks)."""
    pairs = list(pairs)
    ids = [i for i, _ in pairs]
    mean = math.fsum(s for _, s in pairs) / len(pairs) if pairs else None
    return {"count": len(pairs) + invalid, "duplicate_ids": len(ids) - len(set(ids)), "invalid": invalid,
            "mean": mean}


def paired_stats(baseline: Iterable[tuple[Any, float]], candidate: Iterable[tuple[Any, float]],
                 span: float | None) -> dict | None:
    """{"n", "mean_diff", "stderr_diff"} of candidate - baseline over the ids both have.

    ``span`` is the largest possible per-sample difference (1 for unit scores, 100 for
    percent, None for unbounded: no rule-of-three floor). None when fewer than 2 pairs.
    """
    b = dict(baseline)
    c = dict(candidate)
    common = sorted(set(b) & set(c), key=lambda k: (str(type(k)), k))
    n = len(common)
    if n < 2:
        return None
    diffs = [c[k] - b[k] for k in common]
    mean = math.fsum(diffs) / n
    var = math.fsum((d - mean) ** 2 for d in diffs) / (n - 1)
    se = math.sqrt(var / n)
    if span is not None:
        se = max(se, span * RULE_OF_THREE / (Z_FLOOR * n))
    return {"n": n, "mean_diff": mean, "stderr_diff": se}
