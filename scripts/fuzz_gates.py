#!/usr/bin/env python3
"""Fuzz the gates' input handling with hypothesis-generated documents and arguments, and count what matters.

Targets: the day-0 gates ``gate-run``, ``gate-compare``, ``gate-ptq`` (a saved observation) and the release
conductor's argument and file handling (``release``); then the certification CLI's input handling
(``certify-playbook``: playbooks with ``--dry-run``; ``certify-evidence``: evidence files with ``score``) and
verify-conversion's (``verify``: pipeline state files and arguments).

Every input is built by a generator that knows what it built: valid-shaped documents from a ground truth
(per-sample scores, quantized parameter counts), boundary values (one sample, scores at 0 and full scale,
thresholds at 0 and just under 1, counts at 2**53) and hostile ones (wrong types, NaN and 1e400 literals,
400-digit integers, duplicate keys, truncated or non-UTF-8 files, records that disagree with their summary,
sample ids that do not pair, paths that leave their folder, bad ``--output`` paths). Each input runs the
command in process, as a user's invocation runs it (argument parsing, file reading, the gate, the schema
check, the spine); a sample also runs through the skill scripts as subprocesses, so tracebacks and exit
codes are real. The release conductor and verify-conversion stop at a sentinel where their first stage (or
observation) would start: reaching it means the request was accepted.

Counted per target:
  inputs       inputs tried (in process) + subprocess sample
  tracebacks   an exception out of the command, a traceback on stderr, an UNKNOWN verdict (an unexpected
               exception the spine caught), an exit code that is not 0/1/2 or not the verdict's
  invalid      stdout that is not exactly one JSON verdict valid against the schema its command names
               (including a verdict the spine had to replace because it broke that schema)
  unjustified  an ACCEPT / pass / accepted request that the generator knows is not justified

    python scripts/fuzz_gates.py                       # 10,000 inputs per target, 100 subprocesses each
    python scripts/fuzz_gates.py --inputs 500 --subprocess 10 --targets gate-run,gate-compare
    python scripts/fuzz_gates.py --json docs/fuzzing.json

Exit 0 when tracebacks, invalid outputs and unjustified accepts are all 0, else 1.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's engine, before an installed one
os.environ["MODELGATE_STRICT_VERDICTS"] = "1"  # a verdict that breaks its schema raises: counted as invalid
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from modelgate import contract  # noqa: E402
from modelgate.cli.spine import Command, run_command  # noqa: E402

SENTINEL = "FUZZ-SENTINEL: the request was accepted and the first stage would start here"
RAW = "@@RAW@@"
SPAN = {"unit": 1.0, "percent": 100.0, "unbounded": None}
MAX_COUNT = 2**53
Z = 1.645


# =========================================================================== cases and tallies

@dataclass
class Case:
    """One generated input: files to write into a fresh folder, the argv ("{d}" = that folder), and what
    the generator knows: whether it applied anything hostile, and whether an accept would be justified."""
    argv: list[str]
    files: dict[str, bytes] = field(default_factory=dict)
    hostile: list[str] = field(default_factory=list)
    accept_ok: bool = False
    label: str = "valid"
    subprocess_ok: bool = True  # may run as a subprocess (nothing real would start)


@dataclass
class Tally:
    inputs: int = 0
    subprocess_inputs: int = 0
    tracebacks: int = 0
    invalid: int = 0
    unjustified: int = 0
    accepted: int = 0
    justified_inputs: int = 0
    justified_accepted: int = 0
    labels: dict = field(default_factory=dict)
    examples: dict = field(default_factory=lambda: {"tracebacks": [], "invalid": [], "unjustified": []})
    seconds: float = 0.0

    def add_example(self, kind: str, case: Case, why: str) -> None:
        if len(self.examples[kind]) < 5:
            self.examples[kind].append({"label": case.label, "hostile": case.hostile[:4], "argv": case.argv[:12],
                                        "why": why[:600]})


def text_of(obj: Any, dup: tuple | None = None) -> str:
    """JSON text of ``obj``; RAW-marked strings are written verbatim (NaN, 1e400, 5000-digit numbers);
    ``dup=(path, key, value)`` writes ``key`` a second time in the object at ``path``."""
    def ser(o: Any, path: tuple) -> str:
        if isinstance(o, dict):
            items = [f"{json.dumps(str(k))}: {ser(v, (*path, k))}" for k, v in o.items()]
            if dup is not None and tuple(dup[0]) == path:
                items.append(f"{json.dumps(dup[1])}: {ser(dup[2], (*path, dup[1]))}")
            return "{" + ", ".join(items) + "}"
        if isinstance(o, list):
            return "[" + ", ".join(ser(v, (*path, i)) for i, v in enumerate(o)) + "]"
        if isinstance(o, str) and o.startswith(RAW):
            return o[len(RAW):]
        return json.dumps(o)
    return ser(obj, ())


def raw(text: str) -> str:
    return RAW + text


# values that are never a valid number, count, name or flag anywhere (a few are valid JSON only as text)
POISON = [raw("NaN"), raw("Infinity"), raw("-Infinity"), raw("1e400"), raw("-1e400"), 10**400, -(10**400),
          True, False, None, "", "x", "0.9", [], {}, [1], {"v": 1}, -1, -0.5, 2**53 + 1]
json_scalars = (st.none() | st.booleans() | st.integers(min_value=-(10**6), max_value=10**6)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10)
                | st.sampled_from(POISON))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)

FILE_ATTACKS = ("truncated", "empty", "not_utf8", "array", "scalar", "deep", "huge_int_text", "bom")


def attacked_file(text: str, attack: str) -> bytes:
    """A file a hostile user could hand over instead of ``text``."""
    return {"truncated": text[: max(1, len(text) // 2)].encode(), "empty": b"",
            "not_utf8": b"\xff\xfe" + text.encode("utf-16-le"), "array": b"[" + text.encode() + b"]",
            "scalar": b"42", "deep": b"[" * 50000 + b"]" * 50000, "huge_int_text": b'{"a": ' + b"9" * 5000 + b"}",
            "bom": b"\xef\xbb\xbf" + text.encode()}[attack]


def strict_loads(text: str) -> Any:
    """The pack's reading rules restated for the oracles: no NaN/Infinity, no overflow, no duplicate keys."""
    def pairs(items):
        out = {}
        for k, v in items:
            if k in out:
                raise ValueError("duplicate")
            out[k] = v
        return out

    def flt(s):
        v = float(s)
        if not math.isfinite(v):
            raise ValueError("overflow")
        return v

    def const(name):
        raise ValueError(name)
    return json.loads(text, object_pairs_hook=pairs, parse_float=flt, parse_constant=const)


def finite(x: Any) -> bool:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return False
    try:
        return math.isfinite(float(x))
    except OverflowError:
        return False


def count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= MAX_COUNT


def config_sha(cfg: Any) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                                     allow_nan=False).encode()).hexdigest()


# =========================================================================== run summaries (gate-run, gate-compare)

@dataclass
class TaskTruth:
    scale: str
    scores: list[float]           # the per-sample scores the generator drew (the ground truth)
    ids: list[Any]
    with_records: bool
    stderr_mode: str              # honest | zero | lie | absent | big
    metric: str = "exact_match"
    hib: bool = True


def mean(xs: list[float]) -> float:
    return math.fsum(xs) / len(xs)


def sample_var(xs: list[float]) -> float:
    m = mean(xs)
    return math.fsum((x - m) * (x - m) for x in xs) / (len(xs) - 1) if len(xs) > 1 else math.nan


def summary_doc(variant: str, tasks: dict[str, TaskTruth], config: dict | None = None) -> dict:
    cfg = config or {"tasks": sorted(tasks), "seed": 0, "limit": None}
    out = {}
    for name, t in tasks.items():
        n = len(t.scores)
        sd = math.sqrt(sample_var(t.scores) / n) if n > 1 else 0.0
        stderr = {"honest": sd, "zero": 0.0, "lie": sd / 10, "absent": None,
                  "big": (SPAN[t.scale] or 1e6)}[t.stderr_mode]
        entry = {"status": "COMPLETED", "metric": t.metric, "scale": t.scale, "higher_is_better": t.hib,
                 "expected_samples": n, "scored_samples": n, "score": mean(t.scores)}
        if stderr is not None:
            entry["stderr"] = stderr
        if t.with_records:
            entry["records_path"] = f"records/{name}.jsonl"
        out[name] = entry
    return {"schema_version": "1.0", "run_id": f"{variant}-1", "variant": variant, "model": "ir/model.xml",
            "artifact_sha256": ("a" if variant == "baseline" else "c") * 64, "eval_config": cfg,
            "eval_config_sha256": config_sha(cfg), "status": "COMPLETED", "tasks": out, "timings": {"seconds": 1.5}}


def records_text(t: TaskTruth) -> str:
    return "".join(json.dumps({"id": i, "score": s, "prediction": "p", "reference": "r"}) + "\n"
                   for i, s in zip(t.ids, t.scores))


def scores_st(scale: str, n: int, binary: bool):
    span = SPAN[scale]
    if scale == "unbounded":
        return st.lists(st.floats(min_value=1.0, max_value=1e3, allow_nan=False), min_size=n, max_size=n)
    if binary:
        return st.lists(st.sampled_from([0.0, span]), min_size=n, max_size=n)
    return st.lists(st.floats(min_value=0.0, max_value=span, allow_nan=False), min_size=n, max_size=n)


@st.composite
def task_truth(draw, n: int | None = None, scale: str | None = None):
    scale = scale or draw(st.sampled_from(["unit", "unit", "percent", "unbounded"]))
    n = n or draw(st.sampled_from([1, 2, 3, 10, 30, 100, 300, 450]) | st.integers(1, 600))
    binary = draw(st.booleans()) if scale != "unbounded" else False
    scores = draw(scores_st(scale, n, binary))
    id_kind = draw(st.sampled_from(["int", "str", "mixed"]))
    ids = [i if id_kind == "int" or (id_kind == "mixed" and i % 2) else f"{i}" if id_kind == "mixed" else f"s{i}"
           for i in range(n)]
    return TaskTruth(scale, scores, ids, draw(st.booleans()) or n > 200,
                     draw(st.sampled_from(["honest", "honest", "zero", "lie", "absent", "big"])),
                     metric="perplexity" if scale == "unbounded" else "exact_match", hib=scale != "unbounded")


def write_summary(files: dict, folder: str, doc: dict, tasks: dict[str, TaskTruth], dup=None) -> None:
    files[f"{folder}/run_summary.json"] = text_of(doc, dup).encode()
    for name, t in tasks.items():
        if t.with_records:
            files[f"{folder}/records/{name}.jsonl"] = records_text(t).encode()


def run_oracle(files: dict, folder: str) -> bool:
    """May the summary in ``folder`` pass gate_run? gates.md's rules, restated without the engine."""
    try:
        doc = strict_loads(files[f"{folder}/run_summary.json"].decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    if not isinstance(doc, dict) or contract.schema_errors("run-summary", doc):
        return False
    if doc["status"] != "COMPLETED" or not doc["model"] or not doc["run_id"]:
        return False
    try:
        if config_sha(doc["eval_config"]) != doc["eval_config_sha256"]:
            return False
    except (ValueError, RecursionError):
        return False
    if not all(finite(v) and v >= 0 for v in doc["timings"].values()):
        return False
    for t in doc["tasks"].values():
        span = SPAN[t["scale"]]
        if t["status"] != "COMPLETED" or t.get("errors"):
            return False
        if not (count(t["expected_samples"]) and count(t["scored_samples"]) and t["expected_samples"] >= 1
                and t["scored_samples"] == t["expected_samples"]):
            return False
        if not finite(t["score"]) or (span is not None and not 0 <= t["score"] <= span):
            return False
        se = t.get("stderr")
        if se is not None and (not finite(se) or se < 0 or (span is not None and se > span)):
            return False
        rp = t.get("records_path")
        if rp is None:
            continue
        if not isinstance(rp, str) or not rp or rp.startswith("/") or ".." in rp or "\x00" in rp:
            return False
        data = files.get(f"{folder}/{rp}")
        if data is None:
            return False
        seen, scores = set(), []
        try:
            lines = [ln for ln in data.decode("utf-8").splitlines() if ln.strip()]
        except UnicodeDecodeError:
            return False
        for line in lines:
            try:
                rec = strict_loads(line)
            except (ValueError, RecursionError):
                return False
            if not isinstance(rec, dict):
                return False
            rid, s = rec.get("id"), rec.get("score")
            if isinstance(rid, bool) or not isinstance(rid, (int, str)) or not finite(s):
                return False
            if str(rid) in seen or (span is not None and not 0 <= s <= span):
                return False
            seen.add(str(rid))
            scores.append(float(s))
        if len(scores) != t["scored_samples"] or abs(mean(scores) - t["score"]) > 1e-6 * max(1.0, abs(t["score"])):
            return False
    return True


# hostile changes to one run (each leaves the run invalid by construction; the oracle double-checks)
RUN_ATTACKS = ("poison_field", "poison_task_field", "delete_field", "delete_task_field", "unknown_field",
               "duplicate_key", "file", "counts", "status", "task_status", "scorer_error", "config_hash",
               "record_extra", "record_missing", "record_dup_id", "record_int_str_dup", "record_out_of_scale",
               "record_mean", "record_garbage_line", "records_missing_file", "records_path_escape", "timings")
RUN_FIELDS = ("schema_version", "run_id", "variant", "model", "artifact_sha256", "eval_config", "eval_config_sha256",
              "status", "tasks", "timings")
TASK_FIELDS = ("status", "metric", "scale", "higher_is_better", "expected_samples", "scored_samples", "score")


@st.composite
def attack_run(draw, files: dict, folder: str, doc: dict, tasks: dict[str, TaskTruth]) -> str:
    """Apply one hostile change to the run in ``folder`` (``files`` is rewritten); returns its name."""
    attack = draw(st.sampled_from(RUN_ATTACKS))
    name = draw(st.sampled_from(sorted(tasks)))
    t = tasks[name]
    # after an earlier attack the task entry may be gone: a detached entry keeps this one harmless
    entry = doc["tasks"][name] if isinstance(doc.get("tasks"), dict) and isinstance(
        doc["tasks"].get(name), dict) else {}
    span = SPAN[t.scale]
    dup = None
    if attack == "poison_field":
        key = draw(st.sampled_from(RUN_FIELDS))
        doc[key] = draw(st.sampled_from(POISON) | json_values)
    elif attack == "poison_task_field":
        key = draw(st.sampled_from(TASK_FIELDS + ("stderr",)))
        bad = [v for v in POISON if v is not None] + ([span * 1.5, -span] if span else [])
        entry[key] = draw(st.sampled_from(bad) | json_values)
    elif attack == "delete_field":
        doc.pop(draw(st.sampled_from(RUN_FIELDS)), None)
    elif attack == "delete_task_field":
        entry.pop(draw(st.sampled_from(TASK_FIELDS)), None)
    elif attack == "unknown_field":
        (doc if draw(st.booleans()) else entry)[draw(st.sampled_from(["scores", "note", "Status", "task"]))] = 1
    elif attack == "duplicate_key":
        where = draw(st.sampled_from([((), "tasks"), ((), "status"), (("tasks", name), "score"),
                                      (("tasks",), name)]))
        dup = (where[0], where[1], draw(json_values))
    elif attack == "counts":
        n = entry.get("expected_samples")
        n = n if isinstance(n, int) and not isinstance(n, bool) and 0 < n < 10**6 else 10
        entry["scored_samples"], entry["expected_samples"] = draw(st.sampled_from(
            [(n - 1, n), (n + 1, n), (0, 0), (float(n), n), (n, float(n)), (10**400, 10**400), (MAX_COUNT + 1,) * 2]))
    elif attack == "status":
        doc["status"] = draw(st.sampled_from(["RUNNING", "QUEUED", "INTERRUPTED", "RESUMABLE", "FAILED", "DONE"]))
    elif attack == "task_status":
        entry["status"] = draw(st.sampled_from(["RUNNING", "FAILED", "SKIPPED", "completed"]))
    elif attack == "scorer_error":
        entry["errors"] = [{"code": draw(st.sampled_from(["SCORER_EXCEPTION", "TIMEOUT", "INFRA", "MISSING_REFERENCE",
                                                           "WHATEVER"])), "message": "judge said fine"}]
    elif attack == "config_hash":
        doc["eval_config"] = {"tasks": ["changed"], "seed": 1}
    elif attack == "timings":
        doc["timings"] = {"seconds": draw(st.sampled_from([-1.0, 10**400, "1", None, raw("NaN")]))}
    elif attack.startswith("record") or attack == "records_path_escape":
        if not t.with_records:
            t.with_records = True
            entry["records_path"] = f"records/{name}.jsonl"
        if attack == "record_extra":
            t.ids, t.scores = [*t.ids, "extra"], [*t.scores, t.scores[0]]
        elif attack == "record_missing" and len(t.scores) > 1:
            t.ids, t.scores = t.ids[:-1], t.scores[:-1]
            entry["score"] = mean(t.scores)  # the mean agrees: only the count tells
        elif attack == "record_missing":
            t.ids, t.scores = [], []
        elif attack == "record_dup_id" and len(t.ids) > 1:
            t.ids = [t.ids[1], *t.ids[1:]]
        elif attack in ("record_dup_id", "record_int_str_dup"):
            t.ids, t.scores = [7, "7"], [t.scores[0], t.scores[0]]
            entry.update(expected_samples=2, scored_samples=2, score=t.scores[0])
        elif attack == "record_out_of_scale":
            if span is None:  # no scale to leave: make a non-finite score instead
                t.scores = [1e308, *t.scores[1:]]
            else:
                t.scores = [span * 1.5, *t.scores[1:]]
                if len(t.scores) > 1:
                    t.scores[1] = -span * 0.5
            entry["score"] = min(max(mean(t.scores), 0.0), span) if span is not None else entry.get("score")
        elif attack == "record_mean":  # the summary's score moves away from its records' mean (stays in scale)
            m = mean(t.scores) if t.scores else 0.0
            entry["score"] = m + (0.05 * span if span else 1.0) * (1 if span is None or m < span / 2 else -1)
        elif attack == "records_missing_file":
            entry["records_path"] = f"records/{name}-nope.jsonl"
        elif attack == "records_path_escape":
            entry["records_path"] = draw(st.sampled_from(["../outside.jsonl", "/etc/passwd", "a\x00b", "",
                                                           "records/../../x.jsonl"]))
        if attack == "record_garbage_line":
            write_summary(files, folder, doc, tasks)
            files[f"{folder}/records/{name}.jsonl"] += draw(st.sampled_from(
                [b"{broken\n", b'{"id": "z", "score": NaN}\n', b'{"id": true, "score": 1}\n',
                 b'{"id": 1.5, "score": 1}\n', b'{"id": "z", "score": 1, "score": 0}\n', b"\xff\xfe\n",
                 b'{"id": "z", "score": ' + b"9" * 400 + b"}\n"]))
            return attack
    if attack == "file":
        write_summary(files, folder, doc, tasks)
        path = f"{folder}/run_summary.json"
        files[path] = attacked_file(files[path].decode(), draw(st.sampled_from(FILE_ATTACKS)))
        return attack
    write_summary(files, folder, doc, tasks, dup)
    return attack


OUTPUT_ATTACKS = {"existing_text_file": "{d}/notes.txt", "nul": "{d}/a\x00b.json",
                  "file_as_folder": "{d}/notes.txt/v.json"}


@st.composite
def maybe_bad_output(draw, case: Case) -> None:
    """Now and then an --output a verdict cannot be written to (the gate must refuse before judging)."""
    kind = draw(st.sampled_from([None] * 12 + ["folder", "new_json", *OUTPUT_ATTACKS]))
    if kind is None:
        return
    case.files["notes.txt"] = b"my notes"
    if kind == "folder":
        case.files["out/.keep"] = b""
        case.argv += ["--output", "{d}/out"]
    elif kind == "new_json":
        case.argv += ["--output", "{d}/v/verdict.json"]
    else:
        case.argv += ["--output", OUTPUT_ATTACKS[kind]]
        case.hostile.append(f"output:{kind}")
        case.accept_ok = False


@st.composite
def gate_run_cases(draw) -> Case:
    tasks = {f"t{i}": draw(task_truth()) for i in range(draw(st.integers(1, 3)))}
    doc = summary_doc("baseline", tasks)
    case = Case(argv=["--run", "{d}/run/run_summary.json"])
    if draw(st.integers(0, 9)) < 6:
        for _ in range(draw(st.integers(1, 2))):
            case.hostile.append(draw(attack_run(case.files, "run", doc, tasks)))
    else:
        write_summary(case.files, "run", doc, tasks)
    case.label = "hostile:" + case.hostile[0] if case.hostile else "valid"
    # an attack may leave the run valid (a metric renamed to another name, a flag set to the value it had):
    # the oracle, which restates the rules without the engine, decides what may pass
    case.accept_ok = run_oracle(case.files, "run")
    if not case.hostile and not case.accept_ok:
        case.label = "boundary"
    draw(maybe_bad_output(case))
    return case


# --------------------------------------------------------------------------- gate-compare

def compare_oracle(b: TaskTruth, c: TaskTruth, paired: bool, threshold: float, relative: bool, z: float,
                   gain: float) -> bool:
    """Is an ACCEPT of this task justified by the data the generator drew? (gates.md, restated.)"""
    span, n = SPAN[b.scale], len(b.scores)
    norm = span or 1.0
    bm, cm = mean(b.scores) / norm, mean(c.scores) / norm
    drop = bm - cm if b.hib else cm - bm
    se_true = None
    if paired:
        diffs = [y - x for x, y in zip(b.scores, c.scores)]
        se_true = math.sqrt(sample_var(diffs) / n) / norm if n > 1 else math.nan
    elif span is not None and n > 1:
        se_true = math.sqrt(sample_var(b.scores) / n + sample_var(c.scores) / n) / norm
    if relative:
        if bm == 0:
            return False
        drop /= abs(bm)
        se_true = se_true / abs(bm) if se_true is not None else None
    tol = 1e-9 * max(1.0, abs(threshold)) + 1e-12
    if drop > threshold + tol or -drop > gain + tol:
        return False
    if se_true is None or not math.isfinite(se_true) or n < 2:
        return False  # unbounded and unpaired, or one sample: nothing bounds the difference
    if span is None and se_true == 0:
        return False  # no spread seen on an unbounded scale: the samples that could differ are unseen
    resolution = z * 3.0 / (1.645 * n) / (abs(bm) if relative else 1.0) if span is not None else 0.0
    return drop + max(z * se_true, resolution) <= threshold + 1e-6


@st.composite
def gate_compare_cases(draw) -> Case:
    n_tasks = draw(st.integers(1, 2))
    base, cand = {}, {}
    for i in range(n_tasks):
        b = draw(task_truth())
        n = len(b.scores)
        # the candidate: the same samples with some scores changed (a few, many, or none)
        changes = draw(st.sampled_from([0, 0, 1, 2, max(1, n // 50), max(1, n // 10), n // 2]))
        cs = list(b.scores)
        span = SPAN[b.scale]
        for j in draw(st.lists(st.integers(0, n - 1), min_size=changes, max_size=changes)):
            cs[j] = (span - cs[j]) if span is not None and draw(st.booleans()) else (
                cs[j] * draw(st.floats(0.9, 1.1)) if span is None else draw(st.floats(0.0, span)))
        c = TaskTruth(b.scale, cs, list(b.ids), draw(st.booleans()) or n > 200,
                      draw(st.sampled_from(["honest", "honest", "zero", "lie", "absent"])), b.metric, b.hib)
        if draw(st.booleans()):  # the same samples, ids written in the other type
            c.ids = [str(x) if isinstance(x, int) else (int(x) if x.isdigit() else x) for x in b.ids]
        base[f"t{i}"], cand[f"t{i}"] = b, c
    threshold = draw(st.sampled_from([0.0, 0.001, 0.01, 0.05, 0.1, 0.3, 0.999999]) | st.floats(0, 0.999))
    relative = draw(st.booleans())
    z = draw(st.sampled_from([1.645, 1.645, 1.0, 2.33, 0.1, 10.0]))
    gain = 0.02
    bdoc, cdoc = summary_doc("baseline", base), summary_doc("candidate", cand)
    case = Case(argv=["--baseline", "{d}/b/run_summary.json", "--candidate", "{d}/c/run_summary.json",
                      "--threshold", repr(threshold), "--z", repr(z)] + (["--relative"] if relative else []))
    no_paired = draw(st.integers(0, 9)) == 0
    if no_paired:
        case.argv.append("--no-paired")
    roll = draw(st.integers(0, 9))
    if roll < 5:
        attack = draw(st.sampled_from(["run", "run", "swap", "config", "task_sets", "ids_partial", "ids_disjoint",
                                       "scale", "expected", "threshold", "z", "gain"]))
        side_doc, side_tasks, folder = (bdoc, base, "b") if draw(st.booleans()) else (cdoc, cand, "c")
        if attack == "run":
            case.hostile.append(draw(attack_run(case.files, folder, side_doc, side_tasks)))
        else:
            case.hostile.append(attack)
            name = draw(st.sampled_from(sorted(base)))
            if attack == "swap":
                bdoc["variant"], cdoc["variant"] = "candidate", "baseline"
            elif attack == "config":
                cdoc["eval_config"] = dict(cdoc["eval_config"], seed=1)
                cdoc["eval_config_sha256"] = config_sha(cdoc["eval_config"])
            elif attack == "task_sets":
                extra = draw(task_truth(n=3))
                cand["extra"] = extra
                cdoc = summary_doc("candidate", cand)
            elif attack in ("ids_partial", "ids_disjoint"):
                t = cand[name]
                shift = len(t.ids) if attack == "ids_disjoint" else max(1, len(t.ids) // 2)
                t.ids = [f"other{i + shift}" for i in range(len(t.ids))]
                if attack == "ids_partial":
                    t.ids = [*base[name].ids[: len(t.ids) - shift], *t.ids[len(t.ids) - shift:]]
                base[name].with_records = t.with_records = True
                bdoc, cdoc = summary_doc("baseline", base), summary_doc("candidate", cand)
                if no_paired:
                    case.argv.remove("--no-paired")
            elif attack == "scale":
                cdoc["tasks"][name]["metric"] = "other_metric"
            elif attack == "expected":
                t = cand[name]
                t.scores, t.ids = t.scores + t.scores[:1], [*t.ids, "more"]
                cdoc = summary_doc("candidate", cand)
            elif attack == "threshold":
                case.argv[case.argv.index("--threshold") + 1] = draw(st.sampled_from(
                    ["nan", "inf", "-inf", "1", "1.5", "-0.01", "1e400", "100"]))
            elif attack == "z":
                case.argv[case.argv.index("--z") + 1] = draw(st.sampled_from(["0", "-1", "nan", "inf", "1e308", "11"]))
            elif attack == "gain":
                case.argv += ["--implausible-gain", draw(st.sampled_from(["0", "-0.1", "nan", "1.5", "inf"]))]
    for folder, doc, tasks in (("b", bdoc, base), ("c", cdoc, cand)):
        if f"{folder}/run_summary.json" not in case.files:
            write_summary(case.files, folder, doc, tasks)
    if not case.hostile:
        ok = run_oracle(case.files, "b") and run_oracle(case.files, "c")
        for name in base:
            b, c = base[name], cand[name]
            paired = b.with_records and c.with_records and not no_paired
            ok = ok and compare_oracle(b, c, paired, threshold, relative, z, gain)
        case.accept_ok = ok
        case.label = "valid"
    else:
        case.label = "hostile:" + case.hostile[0]
    draw(maybe_bad_output(case))
    return case


# --------------------------------------------------------------------------- gate-ptq (a saved observation)

ELEMENT_BYTES = {"u8": 1.0, "i8": 1.0, "u4": 0.5, "i4": 0.5, "f16": 2.0, "f32": 4.0}
BENIGN = {("config.json", "transformers_version"), ("config.json", "_name_or_path"),
          ("config.json", "quantization_config"), ("tokenizer_config.json", "is_local"),
          ("tokenizer_config.json", "name_or_path")}


def recipes() -> dict:
    from modelgate.release.recipes import load_recipes
    return {name: dict(r, name=name) for name, r in load_recipes()["recipes"].items()}


def ptq_oracle(obs: dict, recipe: dict) -> bool:
    """Does the observation keep the recipe's promises? (gates.md's gate_ptq table, restated.)"""
    p = recipe["promises"]
    lpc = obs["layer_precision_counts"]
    eligible = sum(s["params"] for s in lpc.values())
    if obs["model_kind"] != recipe["applies_to"] or eligible == 0:
        return False
    if any((d["file"], d["key"]) not in BENIGN for d in obs["metadata_diffs"]):
        return False
    if abs(eligible - obs["source_weight_params"]) > 0.01 * obs["source_weight_params"] * (1 + 1e-9):
        return False
    cov = sum(s["params"] for t, s in lpc.items() if t in p["weight_precisions"]) / eligible
    prim = sum(s["params"] for t, s in lpc.items() if t in p["primary_precisions"]) / eligible
    ratio = obs["output_weight_bytes"] / obs["source_weight_bytes"]
    lo, hi = p["size_ratio"]
    return (cov >= p["min_coverage"] - 1e-9 and prim >= p["min_primary_fraction"] - 1e-9
            and lo - 1e-9 <= ratio <= hi + 1e-9 and obs["output_bytes"] < obs["source_bytes"])


PTQ_REQUIRED = ("model_type", "model_kind", "source_weight_params", "source_weight_bytes", "source_bytes",
                "output_weight_bytes", "output_bytes", "layer_precision_counts", "metadata_diffs")


@st.composite
def gate_ptq_cases(draw) -> Case:
    all_recipes = recipes()
    name = draw(st.sampled_from(sorted(all_recipes)))
    recipe = all_recipes[name]
    p = recipe["promises"]
    eligible = draw(st.sampled_from([1, 64, 4096]) | st.integers(1, 10**9))
    primary = p["primary_precisions"][0]
    other = [t for t in p["weight_precisions"] if t != primary]
    faithful = draw(st.booleans())  # built to keep the recipe's promises (a pass is expected), or drawn freely
    if faithful:
        frac_primary = draw(st.floats(p["min_primary_fraction"], 1.0))
        frac_other = (1.0 - frac_primary) * draw(st.floats(0.0, 1.0)) if other else 0.0
    else:
        frac_primary = draw(st.sampled_from([1.0, p["min_primary_fraction"], 0.5, 0.0]) | st.floats(0, 1))
        frac_other = draw(st.floats(0, 1 - frac_primary)) if other else 0.0
    n_primary = int(eligible * frac_primary)
    n_other = int(eligible * frac_other) if other else 0
    n_float = eligible - n_primary - n_other
    lpc = {}
    for t, k in ((primary, n_primary), (other[0] if other else None, n_other),
                 (draw(st.sampled_from(["f32", "f16"])), n_float)):
        if t and k:
            lpc[t] = {"count": max(1, k // 4096), "bytes": math.ceil(k * ELEMENT_BYTES[t]), "params": k}
    if not lpc:
        lpc = {"f32": {"count": 1, "bytes": 4, "params": 1}}
    weight_bytes = sum(s["bytes"] for s in lpc.values())
    if faithful:
        src_params = eligible
        # scales and zero points up to the top of the band (never below what the weights take)
        room = max(0, int(p["size_ratio"][1] * 4 * src_params) - weight_bytes)
        qparams = draw(st.integers(0, room))
        src_bytes = src_params * draw(st.sampled_from([2, 4]))
        out_bytes = draw(st.integers(weight_bytes + qparams, max(weight_bytes + qparams, src_bytes - 1)))
    else:
        src_params = draw(st.sampled_from([eligible, eligible + eligible // 200, eligible * 2]))
        qparams = draw(st.integers(0, max(1, eligible // 10)))
        src_bytes = draw(st.sampled_from([src_params * 4, src_params * 2, weight_bytes + qparams]))
        out_bytes = draw(st.sampled_from([weight_bytes + qparams + 1000, src_bytes, src_bytes + 1]))
    out_w = weight_bytes + qparams
    diffs = draw(st.lists(st.sampled_from(sorted(BENIGN) + ([] if faithful else [("config.json", "hidden_size"),
                                                                               ("tokenizer.json", "")])),
                          max_size=2))
    obs = {"recipe": {"name": name, "version": recipe["version"], "promises": p},
           "model_type": draw(st.sampled_from(["llama", None])),
           "model_kind": recipe["applies_to"] if faithful else draw(st.sampled_from(["llm", "non-llm"])),
           "source_weight_params": src_params, "source_weight_bytes": src_params * 4, "source_bytes": src_bytes,
           "output_weight_bytes": out_w, "output_bytes": out_bytes, "layer_precision_counts": lpc,
           "metadata_diffs": [{"file": f, "key": k, "change": "changed", "source": 1, "output": 2} for f, k in diffs],
           "metadata_files_compared": ["config.json"]}
    case = Case(argv=["--recipe", name, "--summary", "{d}/obs.json"])
    dup = None
    if draw(st.integers(0, 9)) < 6:
        attack = draw(st.sampled_from(["delete", "poison", "poison_lpc", "duplicate_key", "file", "recipe_name",
                                       "unknown_recipe", "no_weights", "weights_undercounted", "recipe_file"]))
        case.hostile.append(attack)
        if attack == "delete":
            obs.pop(draw(st.sampled_from(PTQ_REQUIRED)))
        elif attack == "poison":
            key = draw(st.sampled_from(PTQ_REQUIRED))
            obs[key] = draw(st.sampled_from([v for v in POISON if not (key == "model_type" and v in ("", "x", "0.9"))
                                             and not (key == "metadata_diffs" and v == [])]))
        elif attack == "poison_lpc":
            t = draw(st.sampled_from(sorted(lpc)))
            lpc[t][draw(st.sampled_from(["count", "bytes", "params"]))] = draw(st.sampled_from(
                [-1, 1.5, "1", None, 10**400, raw("NaN"), True]))
        elif attack == "duplicate_key":
            dup = draw(st.sampled_from([((), "model_kind", "llm"), ((), "output_bytes", 1),
                                        (("layer_precision_counts",), sorted(lpc)[0], {"count": 1, "bytes": 1,
                                                                                         "params": 1})]))
        elif attack == "recipe_name":
            obs["recipe"]["name"] = draw(st.sampled_from(sorted(set(all_recipes) - {name})))
        elif attack == "unknown_recipe":
            case.argv[1] = draw(st.sampled_from(["int3_magic", "", "../x", "INT8_ASYM"]))
        elif attack == "no_weights":
            obs["source_weight_params"] = obs["source_weight_bytes"] = 0
        elif attack == "weights_undercounted":
            obs["output_weight_bytes"] = max(0, sum(s["bytes"] for s in lpc.values()) - 1)
        elif attack == "recipe_file":
            case.files["recipes.yaml"] = draw(st.sampled_from(
                [b"recipes: [unclosed", b"schema_version: '1.0'\nrecipes: {}\n", b"- a\n", b"\xff\xfe",
                 b"schema_version: '1.0'\nrecipes:\n  int8_asym: {version: 0}\n"]))
            case.argv += ["--recipes", "{d}/recipes.yaml"]
    text = text_of(obs, dup)
    case.files["obs.json"] = text.encode()
    if "file" in case.hostile:
        case.files["obs.json"] = attacked_file(text, draw(st.sampled_from(FILE_ATTACKS)))
    case.label = "hostile:" + case.hostile[0] if case.hostile else "valid"
    case.accept_ok = not case.hostile and ptq_oracle(obs, recipe)
    draw(maybe_bad_output(case))
    return case


# --------------------------------------------------------------------------- release: arguments and files

# the release tasks' own default thresholds (modelgate.openvino.evaluate.TASKS), used without --threshold
RELEASE_TASK_DEFAULTS = {"answer-similarity": 0.05, "fixture:color-facts": 0.1, "fixture:grammar-ppl": 0.1,
                         "fixture:digits": 0.01}


@st.composite
def release_cases(draw) -> Case:
    """The conductor's argv and the files it reads before any stage (model, recipes file, workspace, output).
    A valid request reaches the (patched) chain: accepted. The generator knows which requests are valid."""
    case = Case(argv=[])
    bad: list[str] = []
    model_kind = draw(st.sampled_from(["onnx", "onnx", "hf_llm", "missing", "json_file", "dir_no_config",
                                       "config_garbage", "config_dup", "hf_unsupported", "nul"]))
    if model_kind == "onnx":
        case.files["m/model.onnx"] = b"not really onnx: resolving the source only looks at the name"
        case.files["m/calibration.npy"] = b"static_int8's calibration set beside the model (hashed, not read yet)"
        model = "{d}/m/model.onnx"
    elif model_kind == "hf_llm":
        case.files["llm/config.json"] = json.dumps({"architectures": ["LlamaForCausalLM"],
                                                    "model_type": "llama"}).encode()
        model = "{d}/llm"
    elif model_kind == "hf_unsupported":
        case.files["enc/config.json"] = json.dumps({"architectures": ["WhisperForConditionalGeneration"],
                                                    "model_type": "whisper"}).encode()
        model, _ = "{d}/enc", bad.append("model:unsupported")
    else:
        bad.append(f"model:{model_kind}")
        if model_kind == "json_file":
            case.files["m.json"] = b"{}"
            model = "{d}/m.json"
        elif model_kind == "dir_no_config":
            case.files["d/readme.txt"] = b"x"
            model = "{d}/d"
        elif model_kind == "config_garbage":
            case.files["g/config.json"] = draw(st.sampled_from([b"{not json", b"[]", b"\xff", b'{"architectures": 5}']))
            model = "{d}/g"
        elif model_kind == "config_dup":
            case.files["g/config.json"] = b'{"architectures": ["LlamaForCausalLM"], "architectures": ["X"]}'
            model = "{d}/g"
        elif model_kind == "nul":
            model = "{d}/a\x00b"
        else:
            model = "{d}/nope"
    kind = "classifier" if model_kind == "onnx" else "llm"
    valid_recipes = ["static_int8"] if kind == "classifier" else ["int8_asym", "int8_sym", "int4_asym_g32"]
    recipe_mode = draw(st.sampled_from(["one", "one", "many", "unknown", "dup", "empty", "other_kind"]))
    if recipe_mode == "one":
        case.argv += ["--recipe", draw(st.sampled_from(valid_recipes))]
    elif recipe_mode == "many":
        names = draw(st.lists(st.sampled_from(valid_recipes), min_size=1, max_size=3, unique=True))
        case.argv += ["--recipes", ",".join(names)]
    else:
        bad.append(f"recipes:{recipe_mode}")
        case.argv += {"unknown": ["--recipe", "int3_magic"], "dup": ["--recipes", "int8_asym,int8_asym"],
                      "empty": ["--recipes", draw(st.sampled_from([",", "", " , "]))],
                      "other_kind": ["--recipe", "int8_asym" if kind == "classifier" else "static_int8"]}[recipe_mode]
        if recipe_mode == "other_kind":
            bad.pop()  # a recipe for the other model kind is INFEASIBLE, judged by the chain: a valid request
    tasks_mode = draw(st.sampled_from([None, None, "ok", "unknown", "dup", "other_kind", "empty", "renamed",
                                       "lm_eval_malformed"]))
    own = {"classifier": ["fixture:digits"], "llm": ["answer-similarity", "fixture:color-facts",
                                                     "fixture:grammar-ppl"]}[kind]
    chosen = own[:1] if tasks_mode is None else []
    if tasks_mode == "ok":
        chosen = draw(st.lists(st.sampled_from(own), min_size=1, unique=True))
        case.argv += ["--tasks", ",".join(chosen)]
    elif tasks_mode is None:
        if kind == "classifier":
            bad.append("tasks:classifier-without-eval-data")  # no built-in evaluation fits any classifier
    else:
        bad.append(f"tasks:{tasks_mode}")
        case.argv += ["--tasks", {"unknown": "mmlu_magic", "dup": f"{own[0]},{own[0]}", "empty": ",",
                                  "other_kind": "embedding-similarity",
                                  "renamed": {"classifier": "digits_top1", "llm": "lm_exact_match"}[kind],
                                  "lm_eval_malformed": draw(st.sampled_from(["lm-eval:", "lm-eval:a b",
                                                                             "lm-eval:../x", "lm-eval:x@"]))
                                  }[tasks_mode]]
    threshold = draw(st.sampled_from([None, "0", "0.01", "0.1", "0.999", "1", "1.0", "-0.01", "nan", "inf", "1e400",
                                      "x", "100"]) | st.floats(-1, 2).map(repr))
    if threshold is not None:
        case.argv += ["--threshold", threshold]
        try:
            ok = 0 <= float(threshold) < 1
        except ValueError:
            ok = False
        if not ok:
            bad.append("threshold")
    elif len({RELEASE_TASK_DEFAULTS[t] for t in chosen}) > 1:
        bad.append("threshold:tasks-disagree")  # without --threshold the tasks' defaults must agree (ask the user)
    for flag, values, good in (("--timeout", ["900", "0.5", "0", "-1", "nan", "inf", "x"], {"900", "0.5"}),
                               ("--limit", ["2", "50", "1", "0", "-3", "1.5", "x"], {"2", "50"}),
                               ("--run-id", ["run-a", "r_1.b", "../up", "/abs", "", ".", "..", "a b", "é"],
                                {"run-a", "r_1.b"}),
                               ("--device", ["CPU", "", " "], {"CPU"})):
        v = draw(st.sampled_from([None, *values]))
        if v is not None:
            case.argv += [flag, v]
            if v not in good:
                bad.append(flag)
    ws = draw(st.sampled_from(["ws", "ws", "file", "nul"]))
    if ws == "file":
        case.files["wsfile"] = b"x"
        case.argv += ["--workspace", "{d}/wsfile"]
        bad.append("workspace:file")
    elif ws == "nul":
        case.argv += ["--workspace", "{d}/w\x00s"]
        bad.append("workspace:nul")
    else:
        case.argv += ["--workspace", "{d}/ws"]
    out = draw(st.sampled_from([None, None, "new", "folder", "under_file"]))
    if out is not None:
        case.files["notes.txt"] = b"x"
        case.files["outdir/.keep"] = b""
        case.argv += ["--output", {"new": "{d}/report.json", "folder": "{d}/outdir",
                                   "under_file": "{d}/notes.txt/r.json"}[out]]
        if out != "new":
            bad.append(f"output:{out}")
    rfile = draw(st.sampled_from([None, None, "garbage", "empty", "not_mapping", "dup"]))
    if rfile is not None:
        case.files["recipes.yaml"] = {"garbage": b"recipes: [", "empty": b"", "not_mapping": b"- 1\n",
                                      "dup": b"schema_version: '1.0'\nrecipes: {}\nrecipes: {}\n"}[rfile]
        case.argv += ["--recipes-file", "{d}/recipes.yaml"]
        bad.append(f"recipes-file:{rfile}")
    case.argv = ["--model", model, *case.argv]
    case.hostile = bad
    case.accept_ok = not bad
    case.label = "hostile:" + bad[0] if bad else "valid"
    case.subprocess_ok = bool(bad)  # a valid request would start a real chain outside the patched process
    return case


# --------------------------------------------------------------------------- certification input handling

PLAYBOOK = {"name": "fuzz", "model": {"fixture": "trained-llama"}, "model_family": "llama", "tier": "smoke",
            "scenarios": [{"name": "prompts", "kind": "prompts", "prompts": ["the color of sky is"], "samples": 1}]}


def yaml_text(doc: Any) -> str:
    return json.dumps(doc)  # JSON is YAML: what a playbook parser must refuse is in the values


NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)
PROMPTS = st.lists(st.text(min_size=1, max_size=30).filter(str.strip), min_size=1, max_size=3)


@st.composite
def certify_playbook_cases(draw) -> Case:
    doc = copy.deepcopy(PLAYBOOK)
    doc["name"] = draw(NAMES)
    doc["scenarios"][0].update(name=draw(NAMES), prompts=draw(PROMPTS), samples=draw(st.integers(1, 3)))
    case = Case(argv=["--playbook", "{d}/p.yaml", "--dry-run", "--output", "{d}/cert"])
    text = None
    if draw(st.integers(0, 9)) < 7:
        attack = draw(st.sampled_from(["unknown_field", "poison", "delete", "scenario_poison", "tier", "workers",
                                       "timeout", "duplicate_key", "file", "yaml_garbage", "scenario_dup"]))
        case.hostile.append(attack)
        if attack == "unknown_field":
            doc[draw(st.sampled_from(["modle", "extra", "Tier"]))] = 1
        elif attack == "poison":  # ([] scenarios add nothing to the template's: valid, so not drawn)
            key = draw(st.sampled_from(["model", "model_family", "tier", "scenarios", "matrix"]))
            doc[key] = draw(st.sampled_from([5, True, "", {"x": 1}, -1.5, [1, 2]]
                                            + ([] if key == "scenarios" else [[]])))
        elif attack == "delete":  # (scenarios may come from the tier template; a model may not)
            doc.pop("model")
        elif attack == "scenario_poison":
            key = draw(st.sampled_from(["kind", "prompts", "samples"]))
            doc["scenarios"][0][key] = draw(st.sampled_from({"kind": [5, "nope", [], {"a": 1}],
                                                             "prompts": [5, "x", [], [1], {"a": 1}],
                                                             "samples": [0, -1, "x", 1.5, [], 10**400]}[key]))
        elif attack == "tier":
            case.argv += ["--tier", draw(st.sampled_from(["gold", "", "SMOKE"]))]
        elif attack == "workers":
            case.argv += ["--workers", draw(st.sampled_from(["0", "-1", "x", "1.5", "9" * 400]))]
        elif attack == "timeout":
            case.argv += ["--timeout-ms", draw(st.sampled_from(["0", "-5", "x", "nan"]))]
        elif attack == "duplicate_key":
            text = text_of(doc, ((), "tier", "deep"))
        elif attack == "file":  # (a UTF-8 byte-order mark is valid YAML)
            text = None
            case.files["p.yaml"] = attacked_file(yaml_text(doc), draw(st.sampled_from(
                [a for a in FILE_ATTACKS if a != "bom"])))
        elif attack == "yaml_garbage":
            case.files["p.yaml"] = draw(st.sampled_from([b"name: [x", b"- a\n- b\n", b"!!python/object:os.system x",
                                                         b"a: &x [*x]", b"\t- bad"]))
        elif attack == "scenario_dup":
            doc["scenarios"].append(copy.deepcopy(doc["scenarios"][0]))
    if "p.yaml" not in case.files:
        case.files["p.yaml"] = (text or yaml_text(doc)).encode()
    case.label = "hostile:" + case.hostile[0] if case.hostile else "valid"
    case.accept_ok = not case.hostile
    return case


def evidence_doc() -> dict:
    cat = {"G0": "COMP", "G1": "QUAL", "G2": "QUAL", "G3": "STAB", "G4": "QUAL"}
    recs = []
    for i, (gw, category) in enumerate([*cat.items(), *((None, c) for c in ("PERF", "STAB", "COMP", "EDGE", "REGR"))]):
        recs.append({"id": f"r{i}", "cell": {"format": "openvino-fp32", "device": "CPU", "modality": "run",
                                             "scenario": "basic"},
                     "category": category, "gateway": gw, "check": f"F-{category}-001",
                     "hypothesis": "the model answers", "outcome": "Corroborated", "reason": "answer matched",
                     "output": "The sky is blue.", "metrics": {"duration_ms": 12.5}})
    return {"schema_version": "1.0", "playbook": "fuzz", "playbook_sha256": "ab" * 32, "model": "fixture:x",
            "model_family": "llama", "tier": "smoke", "started": "2026-11-23T09:00:00+00:00",
            "finished": "2026-11-23T09:02:00+00:00", "host": {"hostname": "ci", "cpu_count": 2, "platform": "L"},
            "versions": {"openvino": "2026.4.1"},
            "matrix": {"formats": ["openvino-fp32"], "devices": ["CPU"], "modalities": ["run"],
                       "scenarios": ["basic"]}, "records": recs}


@st.composite
def certify_evidence_cases(draw) -> Case:
    doc = evidence_doc()
    doc["model"] = "fixture:" + draw(NAMES)
    for rec in doc["records"]:
        rec.update(output=draw(st.text(max_size=40)), reason=draw(st.text(min_size=1, max_size=40)),
                   metrics={"duration_ms": draw(st.floats(0, 1e6))})
    case = Case(argv=["score", "{d}/e.json"])
    dup = None
    if draw(st.integers(0, 9)) < 7:
        attack = draw(st.sampled_from(["poison_header", "poison_record", "delete", "duplicate_key", "file",
                                       "outcome", "cell_axis", "record_dup_id", "nan_metric"]))
        case.hostile.append(attack)
        rec = doc["records"][draw(st.integers(0, len(doc["records"]) - 1))]
        if attack == "poison_header":
            doc[draw(st.sampled_from(["schema_version", "model", "tier", "matrix", "records", "started"]))] = \
                draw(st.sampled_from([5, None, "", [], {"x": 1}, raw("NaN"), 10**400]))
        elif attack == "poison_record":  # values the evidence schema refuses for that field
            key = draw(st.sampled_from(["category", "outcome", "gateway", "cell", "metrics", "id"]))
            rec[key] = draw(st.sampled_from({"category": [5, "", "G9", []], "outcome": [5, "", "G9", None],
                                             "gateway": [5, "", "G9", []], "cell": [5, "", [], {"x": 1}],
                                             "metrics": [5, "", [], raw("Infinity")],
                                             "id": [5, "", [], None, 10**400]}[key]))
        elif attack == "delete":
            doc.pop(draw(st.sampled_from(["records", "matrix", "model", "tier"])))
        elif attack == "duplicate_key":
            dup = draw(st.sampled_from([((), "tier", "deep"), ((), "records", []), (("records", 0), "outcome",
                                                                                     "Falsified")]))
        elif attack == "outcome":
            rec["outcome"] = draw(st.sampled_from(["corroborated", "PASS", "Maybe"]))
        elif attack == "cell_axis":
            rec["cell"]["device"] = "NPU-not-in-matrix"
        elif attack == "record_dup_id":
            doc["records"][1]["id"] = doc["records"][0]["id"]
        elif attack == "nan_metric":
            rec["metrics"]["duration_ms"] = draw(st.sampled_from([raw("NaN"), raw("1e400"), -1.0, 10**400]))
    text = text_of(doc, dup)
    case.files["e.json"] = text.encode()
    if "file" in case.hostile:
        case.files["e.json"] = attacked_file(text, draw(st.sampled_from(FILE_ATTACKS)))
    case.label = "hostile:" + case.hostile[0] if case.hostile else "valid"
    case.accept_ok = not case.hostile
    return case


# --------------------------------------------------------------------------- verify-conversion input handling

@st.composite
def verify_cases(draw) -> Case:
    src = draw(NAMES)
    state = {"model_id": src, "task": draw(st.sampled_from([None, "text-generation-with-past"])),
             "weight_format": draw(st.sampled_from([None, "fp16", "int8"]))}
    agent = draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,30}", fullmatch=True))
    case = Case(argv=["--pipeline-state", "{d}/agent-results/pipeline_state.json", "--agent", agent])
    case.files[f"{src}/config.json"] = b'{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}'
    for flag, lo, hi in (("--timeout", 1.0, 3600.0), ("--cosine-min", -1.0, 1.0), ("--top1-min", 0.0, 1.0)):
        if draw(st.integers(0, 3)) == 0:
            case.argv += [flag, repr(draw(st.floats(lo, hi)))]
    dup = None
    bad: list[str] = []
    if draw(st.integers(0, 9)) < 7:
        attack = draw(st.sampled_from(["state_poison", "state_delete", "state_duplicate_key", "state_file",
                                       "agent", "timeout", "new_tokens", "tolerance", "weight_format_flag",
                                       "output", "no_model"]))
        bad.append(attack)
        if attack == "state_poison":  # values the state's schema refuses (a string names a model or a task)
            key = draw(st.sampled_from(["model_id", "weight_format", "task", "converted", "optimum_supported"]))
            state[key] = draw(st.sampled_from({"model_id": [5, "", [], {"a": 1}, True, None, raw("NaN")],
                                               "weight_format": [5, "fp8", "", [], True, raw("NaN")],
                                               "task": [5, [], {"a": 1}, True, raw("NaN")],
                                               "converted": [5, [], {"a": 1}, True, raw("NaN")],
                                               "optimum_supported": [5, "yes", None, [], raw("NaN")]}[key]))
        elif attack == "state_delete":
            state.pop("model_id")
        elif attack == "state_duplicate_key":
            dup = ((), "model_id", "other")
        elif attack == "agent":
            case.argv[case.argv.index("--agent") + 1] = draw(st.sampled_from(["../x", "", "a/b", ".hidden", "a" * 80]))
        elif attack == "timeout":
            case.argv += ["--timeout", draw(st.sampled_from(["0", "-1", "nan", "inf", "x", "1e400"]))]
        elif attack == "new_tokens":
            case.argv += ["--new-tokens", draw(st.sampled_from(["0", "-1", "1.5", "x", "9" * 5000]))]
        elif attack == "tolerance":
            flag = draw(st.sampled_from(["--cosine-min", "--top1-min", "--greedy-match-min", "--rel-err-max",
                                         "--scale-band"]))
            case.argv += [flag, draw(st.sampled_from(["nan", "inf", "-2", "11", "x", "1e400"]))]  # outside every bound
        elif attack == "weight_format_flag":
            case.argv += ["--weight-format", draw(st.sampled_from(["fp8", "", "INT8"]))]
        elif attack == "output":
            case.files["notes.txt"] = b"x"
            case.argv += ["--output", "{d}/notes.txt"]
        elif attack == "no_model":
            state["model_id"] = "does-not-exist-here/really"
            bad.pop()  # a hub id: a valid request, judged (SOURCE_UNAVAILABLE) by the observation
    text = text_of(state, dup)
    case.files["agent-results/pipeline_state.json"] = text.encode()
    if "state_file" in bad:
        case.files["agent-results/pipeline_state.json"] = attacked_file(text, draw(st.sampled_from(FILE_ATTACKS)))
    case.hostile = bad
    case.accept_ok = not bad
    case.label = "hostile:" + bad[0] if bad else "valid"
    case.subprocess_ok = bool(bad)
    return case


# =========================================================================== running

def _commands() -> dict[str, Command]:
    """gate -> a command whose verdicts carry that gate (commands sharing a gate share its schema)."""
    from modelgate.cli.main import ROOT as MAIN

    out = {}

    def walk(cmd):
        out.setdefault(cmd.verdict_gate, cmd)
        for child in cmd.children:
            walk(child)
    walk(MAIN)
    return out


def _command(name: str) -> Command:
    from modelgate.cli.main import COMMANDS
    return next(cmd for cmd in COMMANDS if cmd.name == name)


@dataclass
class Target:
    name: str
    command: str                      # the modelgate subcommand it runs
    strategy: Any
    script: tuple[str, str] | None    # (skill, script) for the subprocess sample
    sentinel: str | None = None       # "module:attribute" replaced by a function that raises the sentinel
    argv_prefix: tuple[str, ...] = ()


def _accepted(verdict: dict, target: Target) -> bool:
    if target.sentinel:
        return SENTINEL in str(verdict.get("detail"))
    return verdict.get("pass") is True


@contextlib.contextmanager
def _patched(target: Target):
    """Replace the first stage of a command (``module:attribute`` or ``module:Class.method``) by a function
    that stops with the sentinel, so an accepted request is seen without starting any real work."""
    if not target.sentinel:
        yield
        return

    def stop(*args, **kwargs):
        raise contract.GateInputError("USER_CONFIG_ERROR", SENTINEL)
    module, attribute = target.sentinel.split(":")
    with mock.patch(f"{module}.{attribute}", stop):
        yield


def materialize(case: Case, folder: str) -> list[str]:
    for rel, data in case.files.items():
        p = Path(folder, rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return [a.replace("{d}", folder) for a in case.argv]


def judge(target: Target, case: Case, tally: Tally, stdout: str, stderr: str, code: Any, raised: str | None) -> None:
    """Count one run: traceback, invalid output, unjustified accept."""
    by_gate = _commands()
    if raised or "Traceback (most recent call last)" in stderr:
        tally.tracebacks += 1
        tally.add_example("tracebacks", case, raised or stderr[-600:])
        return
    try:
        verdict = json.loads(stdout)
    except ValueError:
        tally.invalid += 1
        tally.add_example("invalid", case, f"stdout is not one JSON document: {stdout[:300]!r}")
        return
    cmd = by_gate.get(verdict.get("gate")) if isinstance(verdict, dict) else None
    if cmd is None:
        tally.invalid += 1
        tally.add_example("invalid", case, f"verdict of an unknown gate: {str(verdict)[:300]}")
        return
    errors = contract.schema_errors(cmd.schema, verdict)
    if errors or str(verdict.get("detail", "")).startswith("internal error"):
        tally.invalid += 1
        tally.add_example("invalid", case, "; ".join(errors[:3]) or verdict["detail"])
        return
    if verdict.get("failure_class") == "UNKNOWN" or code not in (0, 1, 2) or code != verdict.get("exit_code"):
        tally.tracebacks += 1
        tally.add_example("tracebacks", case, f"exit {code}, verdict {verdict.get('failure_class')}: "
                                              f"{verdict.get('detail')}")
        return
    accepted = _accepted(verdict, target)
    tally.accepted += accepted
    if case.accept_ok:
        tally.justified_inputs += 1
        tally.justified_accepted += accepted
    if accepted and not case.accept_ok:
        tally.unjustified += 1
        tally.add_example("unjustified", case, f"{verdict.get('decision') or verdict.get('pass')}: "
                                               f"{verdict.get('detail')}")


def run_in_process(target: Target, case: Case, tally: Tally) -> None:
    cmd = _command(target.command)
    with tempfile.TemporaryDirectory(prefix="fuzz-") as d:
        argv = [*target.argv_prefix, *materialize(case, d)]
        out, err = io.StringIO(), io.StringIO()
        raised, code = None, None
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = run_command(cmd, argv, prog=target.command, tty=False)
        except contract.VerdictSchemaError as exc:
            tally.invalid += 1
            tally.add_example("invalid", case, f"VerdictSchemaError: {exc}")
            return
        except BaseException as exc:  # noqa: BLE001 - counting exactly this is the point
            raised = f"{type(exc).__name__}: {exc}"
        judge(target, case, tally, out.getvalue(), err.getvalue(), code, raised)
    tally.inputs += 1
    tally.labels[case.label] = tally.labels.get(case.label, 0) + 1


def run_subprocess(target: Target, case: Case, tally: Tally) -> None:
    skill, script = target.script
    path = ROOT / "skills" / skill / "scripts" / script
    with tempfile.TemporaryDirectory(prefix="fuzz-") as d:
        argv = [*target.argv_prefix, *materialize(case, d)]
        if any("\x00" in a for a in argv):
            return  # a NUL cannot be passed through exec(); it is covered in process
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        p = subprocess.run([sys.executable, str(path), *argv], capture_output=True, text=True, env=env,
                           timeout=600, cwd=d)
        judge(target, case, tally, p.stdout, p.stderr, p.returncode, None)
    tally.subprocess_inputs += 1


TARGETS = {
    "gate-run": Target("gate-run", "gate-run", gate_run_cases(), ("day0-release", "gate_run.py")),
    "gate-compare": Target("gate-compare", "gate-compare", gate_compare_cases(), ("day0-release", "gate_compare.py")),
    "gate-ptq": Target("gate-ptq", "gate-ptq", gate_ptq_cases(), ("day0-release", "gate_ptq.py")),
    "release": Target("release", "release", release_cases(), ("day0-release", "day0_release.py"),
                      sentinel="modelgate.release.conductor:Conductor.run_chain"),
    "certify-playbook": Target("certify-playbook", "certify", certify_playbook_cases(),
                               ("model-certification", "certify.py")),
    "certify-evidence": Target("certify-evidence", "certify", certify_evidence_cases(),
                               ("model-certification", "certify.py")),
    "verify": Target("verify", "verify", verify_cases(), ("verify-conversion", "verify_conversion.py"),
                     sentinel="modelgate.verify.observe:observe"),
}


def fuzz(target: Target, inputs: int, subprocesses: int, seed: int = 0) -> Tally:
    """Run ``inputs`` generated inputs in process and ``subprocesses`` of them through the skill script."""
    tally = Tally()
    sample: list[Case] = []
    t0 = time.monotonic()
    every = max(1, inputs // max(1, subprocesses * 3)) if subprocesses else 0

    @settings(max_examples=inputs, database=None, deadline=None, phases=[Phase.generate], derandomize=False,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @hypothesis_seed(seed)
    @given(target.strategy)
    def one(case: Case) -> None:
        run_in_process(target, case, tally)
        if every and tally.inputs % every == 0 and case.subprocess_ok and len(sample) < subprocesses:
            sample.append(copy.deepcopy(case))

    with _patched(target):
        one()
    for case in sample:
        run_subprocess(target, case, tally)
    tally.seconds = time.monotonic() - t0
    return tally


def report(results: dict[str, Tally]) -> str:
    lines = [f"{'target':<18}{'inputs':>9}{'subproc':>9}{'tracebacks':>12}{'invalid':>9}{'unjustified':>13}"
             f"{'accepted':>10}{'justified ok':>14}{'seconds':>9}"]
    for name, t in results.items():
        lines.append(f"{name:<18}{t.inputs:>9}{t.subprocess_inputs:>9}{t.tracebacks:>12}{t.invalid:>9}"
                     f"{t.unjustified:>13}{t.accepted:>10}{f'{t.justified_accepted}/{t.justified_inputs}':>14}"
                     f"{t.seconds:>9.0f}")
    for name, t in results.items():
        for kind, items in t.examples.items():
            for ex in items:
                lines.append(f"  {name} {kind}: {json.dumps(ex)[:900]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="fuzz_gates.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--inputs", type=int, default=10_000, help="generated inputs per target, in process (default 10000)")
    p.add_argument("--subprocess", type=int, default=100, help="of them, run through the skill script (default 100)")
    p.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated, of: {', '.join(TARGETS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        p.error(f"unknown targets {unknown}")
    results = {}
    for name in names:
        results[name] = fuzz(TARGETS[name], args.inputs, args.subprocess, args.seed)
        print(f"{name}: done in {results[name].seconds:.0f} s", file=sys.stderr, flush=True)
    print(report(results))
    if args.json:
        Path(args.json).write_text(json.dumps({n: vars(t) for n, t in results.items()}, indent=2) + "\n")
    bad = sum(t.tracebacks + t.invalid + t.unjustified for t in results.values())
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
