"""The three standalone day-0 gates as commands: observe -> decide (modelgate.gates) -> emit.

``gate_ptq.py``, ``gate_run.py`` and ``gate_compare.py`` in skills/day0-release/scripts and
``modelgate gate-ptq|gate-run|gate-compare`` all call these ``main_*`` functions.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from modelgate import childproc
from modelgate.contract import (INPUT_CLASSES, GateArgumentParser, GateFailure, GateInputError, atomic_write_json,
                                read_json, run_gate, schema_errors)
from modelgate.gates.compare import SCALE_FULL, evaluate_compare
from modelgate.gates.ptq import evaluate_ptq
from modelgate.gates.run import evaluate_run
from modelgate.release import paired as paired_mod
from modelgate.release.recipes import get_recipe, recipe_names

OBSERVE_TIMEOUT = 600.0


def _parse(parser: GateArgumentParser, argv: list[str] | None):
    return parser.parse_args(list(argv or []))


# --------------------------------------------------------------------------- gate_ptq

def ptq_parser() -> GateArgumentParser:
    p = GateArgumentParser(prog="gate_ptq.py", description=(
        "PTQ gate: read a quantized OpenVINO IR and check it against the recipe's promises (weight precisions and "
        "coverage, size-ratio band, parameter and metadata integrity). Exit 0 pass, 1 fail, 2 input not judged."))
    p.add_argument("--checkpoint", help="folder (or .xml) of the quantized OpenVINO IR")
    p.add_argument("--source", help="local source model: HF folder (safetensors), .onnx, or an OpenVINO IR")
    p.add_argument("--recipe", required=True, help="recipe name from recipes/recipes.yaml (e.g. int8_asym)")
    p.add_argument("--recipes", help="alternative recipes file (YAML/JSON, schemas/recipe.schema.json)")
    p.add_argument("--summary", help="a saved observation (from --save-observation) instead of reading the IR")
    p.add_argument("--save-observation", help="write the measured observation JSON here (for --summary)")
    p.add_argument("--timeout", type=float, default=OBSERVE_TIMEOUT, help="seconds for reading the IR (default 600)")
    p.add_argument("--output", help="write the verdict JSON here (file or folder)")
    return p


def observe_in_child(checkpoint: str, source: str, recipe: dict, timeout: float = OBSERVE_TIMEOUT) -> dict:
    """observe_ptq in a child process (OpenVINO reads the IR there); errors become GateInputError/GateFailure."""
    res = childproc.run_function("modelgate.release.ptq_observe:observe_ptq",
                                 {"checkpoint_dir": checkpoint, "source": source, "recipe": recipe},
                                 timeout=timeout, crash_class="INTEGRITY_MISMATCH", error_class="UNKNOWN")
    if res.ok:
        return res.value
    cls = res.failure_class or "UNKNOWN"
    if cls in INPUT_CLASSES:
        raise GateInputError(cls, res.detail)
    raise GateFailure(cls, res.detail)


def _ptq_body(argv: list[str] | None, out: dict) -> tuple[dict, str]:
    args = _parse(ptq_parser(), argv)
    out["output"] = args.output
    t0 = time.monotonic()
    recipe = get_recipe(args.recipe, args.recipes)
    evidence: dict[str, Any] = {"recipe_names": recipe_names(args.recipes)}
    if args.summary:
        obs = read_json(args.summary, "PTQ observation (--summary)")
        if not isinstance(obs, dict):
            raise GateInputError("USER_CONFIG_ERROR", f"--summary {args.summary} is not a JSON object")
        named = obs.get("recipe", {}).get("name") if isinstance(obs.get("recipe"), dict) else None
        if named is not None and named != recipe["name"]:
            raise GateInputError("USER_CONFIG_ERROR", f"--summary was observed for recipe {named!r}, "
                                 f"--recipe says {recipe['name']!r}")
        obs = dict(obs, recipe=recipe)
        evidence["summary"] = args.summary
    else:
        missing = [flag for flag, v in (("--checkpoint", args.checkpoint), ("--source", args.source)) if not v]
        if missing:
            raise GateInputError("USER_CONFIG_ERROR", f"{' and '.join(missing)} required (or --summary)")
        for flag, v in (("--checkpoint", args.checkpoint), ("--source", args.source)):
            if not Path(v).exists():
                raise GateInputError("USER_CONFIG_ERROR", f"{flag} not found: {v}")
        obs = observe_in_child(args.checkpoint, args.source, recipe, args.timeout)
        evidence.update(checkpoint=args.checkpoint, source=args.source, ir_xml=obs.get("ir_xml"))
    if args.save_observation:
        errors = schema_errors("ptq-observation", obs)
        if errors:  # a hand-made --summary re-saved, or a bug: never write what the schema rejects
            raise GateInputError("USER_CONFIG_ERROR", "observation violates ptq-observation schema: "
                                 + "; ".join(errors[:5]))
        atomic_write_json(args.save_observation, obs)
        evidence["observation"] = args.save_observation
    verdict = evaluate_ptq(obs)
    verdict["evidence"].update({k: (v if isinstance(v, (str, list)) or v is None else str(v))
                                for k, v in evidence.items()})
    verdict["timings"]["total_s"] = round(time.monotonic() - t0, 4)
    return verdict, "ptq-verdict"


def main_ptq(argv: list[str] | None = None) -> int:
    """gate_ptq command; returns the exit code."""
    out: dict = {}
    return run_gate("gate-ptq", lambda: _ptq_body(argv, out), lambda: out.get("output"))


# --------------------------------------------------------------------------- gate_run

def run_parser() -> GateArgumentParser:
    p = GateArgumentParser(prog="gate_run.py", description=(
        "Run gate: is an evaluation run complete and its score over the data it claims (terminal status, sample "
        "accounting, finite in-scale scores, structured scorer errors, per-sample records)? Exit 0/1/2."))
    p.add_argument("--run", required=True, help="run_summary.json (schemas/run-summary.schema.json)")
    p.add_argument("--output", help="write the verdict JSON here (file or folder)")
    return p


def _task_records(summary_path: str, task: Any) -> tuple[list, int] | None:
    if not isinstance(task, dict) or not isinstance(task.get("records_path"), str) or not task["records_path"]:
        return None
    path = paired_mod.resolve_records_path(summary_path, task["records_path"])  # outside the run folder: exit 2
    try:
        return paired_mod.read_records(path)
    except GateInputError:
        return None  # the pure gate reports missing records as a sample-accounting failure


def _run_body(argv: list[str] | None, out: dict) -> tuple[dict, str]:
    args = _parse(run_parser(), argv)
    out["output"] = args.output
    t0 = time.monotonic()
    summary = read_json(args.run, "run summary")
    records = {}
    if isinstance(summary, dict) and isinstance(summary.get("tasks"), dict):
        for name, task in summary["tasks"].items():
            rec = _task_records(args.run, task)
            records[name] = paired_mod.records_stats(*rec) if rec is not None else None
    verdict = evaluate_run(summary, records)
    verdict["evidence"]["run"] = args.run
    verdict["timings"]["total_s"] = round(time.monotonic() - t0, 4)
    return verdict, "run-verdict"


def main_run(argv: list[str] | None = None) -> int:
    """gate_run command; returns the exit code."""
    out: dict = {}
    return run_gate("gate-run", lambda: _run_body(argv, out), lambda: out.get("output"))


# --------------------------------------------------------------------------- gate_compare

def compare_parser() -> GateArgumentParser:
    p = GateArgumentParser(prog="gate_compare.py", description=(
        "Compare gate: candidate vs baseline run summaries per task -> ACCEPT / REGRESSION / INDETERMINATE "
        "(too few samples to resolve the threshold) / ANOMALOUS. Exit 0 ACCEPT, 1 otherwise, 2 input not judged."))
    p.add_argument("--baseline", required=True, help="baseline run_summary.json")
    p.add_argument("--candidate", required=True, help="candidate run_summary.json")
    p.add_argument("--threshold", type=float, default=0.01,
                   help="largest allowed drop: fraction of full scale (0.01 = 1 point), or of the baseline with "
                        "--relative (default 0.01)")
    p.add_argument("--relative", action="store_true", help="threshold is relative to the baseline score")
    p.add_argument("--implausible-gain", type=float, default=0.02,
                   help="a gain above this (same units as --threshold) is ANOMALOUS (default 0.02)")
    p.add_argument("--z", type=float, default=1.645, help="one-sided confidence z for the power check (default 1.645)")
    p.add_argument("--no-paired", action="store_true",
                   help="ignore per-sample records; use sqrt(se_b^2 + se_c^2)")
    p.add_argument("--output", help="write the verdict JSON here (file or folder)")
    return p


def paired_from_records(baseline_path: str, baseline: Any, candidate_path: str, candidate: Any) -> dict:
    """task -> paired stats for tasks whose records both runs provide (others are left to independent errors)."""
    out: dict = {}
    if not (isinstance(baseline, dict) and isinstance(candidate, dict)):
        return out
    bt, ct = baseline.get("tasks"), candidate.get("tasks")
    if not (isinstance(bt, dict) and isinstance(ct, dict)):
        return out
    for name in set(bt) & set(ct):
        b, c = bt[name], ct[name]
        rb, rc = _task_records(baseline_path, b), _task_records(candidate_path, c)
        if rb is None or rc is None:
            continue
        scale = b.get("scale") if isinstance(b, dict) else None
        span = SCALE_FULL.get(scale) if isinstance(scale, str) else None
        stats = paired_mod.paired_stats(rb[0], rc[0], span)
        if stats is not None:
            out[name] = stats
    return out


def _compare_body(argv: list[str] | None, out: dict) -> tuple[dict, str]:
    args = _parse(compare_parser(), argv)
    out["output"] = args.output
    t0 = time.monotonic()
    baseline = read_json(args.baseline, "baseline run summary")
    candidate = read_json(args.candidate, "candidate run summary")
    paired = None if args.no_paired else paired_from_records(args.baseline, baseline, args.candidate, candidate)
    verdict = evaluate_compare(baseline, candidate, threshold=args.threshold, relative=args.relative,
                               implausible_gain=args.implausible_gain, z=args.z, paired=paired or None)
    verdict["evidence"].update(baseline=args.baseline, candidate=args.candidate,
                               paired_tasks=sorted(paired) if paired else [])
    verdict["timings"]["total_s"] = round(time.monotonic() - t0, 4)
    return verdict, "compare-verdict"


def main_compare(argv: list[str] | None = None) -> int:
    """gate_compare command; returns the exit code."""
    out: dict = {}
    return run_gate("gate-compare", lambda: _compare_body(argv, out), lambda: out.get("output"))
