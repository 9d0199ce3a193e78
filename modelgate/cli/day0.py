"""The three standalone day-0 gates as commands: ``modelgate gate-ptq|gate-run|gate-compare`` and the
day0-release skill's ``gate_ptq.py``, ``gate_run.py`` and ``gate_compare.py``.

Each body is observe -> decide (``modelgate.gates``) -> an ``Outcome``. gate-run and gate-compare
need only the standard library and jsonschema (they are vendored into the skill folder);
gate-ptq reads an OpenVINO IR and needs the full engine.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from modelgate.cli.spine import Command, Outcome
from modelgate.contract import GateInputError, atomic_write_json, read_json, schema_errors

OBSERVE_TIMEOUT = 600.0


def _output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", help="write the verdict JSON here: a .json file, or a folder (then "
                                    "<folder>/<gate>_result.json)")


# The gate-specific fields of each gate's error verdicts (bad arguments, unreadable files, a crash):
# exactly what its schema requires, as the nulls and empties the schema allows.

def ptq_error_fields(args: argparse.Namespace | None, failure_class: str, detail: str) -> dict:
    """gate-ptq: the recipe asked for (its version is unknown until the recipes file is read)."""
    name = getattr(args, "recipe", None)
    return {"decision": None, "recipe": {"name": name if isinstance(name, str) else None, "version": None}}


def run_error_fields(args: argparse.Namespace | None, failure_class: str, detail: str) -> dict:
    """gate-run: no task was judged."""
    return {"decision": None, "tasks": {}}


def compare_error_fields(args: argparse.Namespace | None, failure_class: str, detail: str) -> dict:
    """gate-compare: no task was judged; the parameters as given (numbers or null)."""
    from modelgate.gates.compare import threshold_info

    return {"decision": None, "tasks": {},
            "threshold": threshold_info(*(getattr(args, k, None) for k in ("threshold", "relative",
                                                                             "implausible_gain", "z")))}


def _finish(verdict: dict, evidence: dict, t0: float) -> dict:
    """The gate's verdict with the command's evidence (paths as strings) and its wall time."""
    verdict["evidence"].update({k: (v if isinstance(v, (str, list)) or v is None else str(v))
                                for k, v in evidence.items()})
    verdict["timings"]["total_s"] = round(time.monotonic() - t0, 4)
    return verdict


# --------------------------------------------------------------------------- gate-ptq

def _ptq_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help="folder (or .xml) of the quantized OpenVINO IR")
    p.add_argument("--source", help="local source model: HF folder (safetensors), .onnx, or an OpenVINO IR")
    p.add_argument("--recipe", required=True, help="recipe name from recipes/recipes.yaml (e.g. int8_asym)")
    p.add_argument("--recipes", help="alternative recipes file (YAML/JSON, schemas/recipe.schema.json)")
    p.add_argument("--skill-dir", help="day0-release skill folder whose recipes/recipes.yaml to use (default: the "
                                       "folder this script runs from, or the repository's)")
    p.add_argument("--summary", help="a saved observation (from --save-observation) instead of reading the IR")
    p.add_argument("--save-observation", help="write the measured observation JSON here (for --summary)")
    p.add_argument("--timeout", type=float, default=OBSERVE_TIMEOUT, help="seconds for reading the IR (default 600)")
    _output(p)


def _ptq(args: argparse.Namespace) -> Outcome:
    from modelgate.gates.ptq import evaluate_ptq
    from modelgate.release.ptq_observe import observe_ptq_in_child
    from modelgate.release.recipes import get_recipe, recipe_names, recipes_path

    t0 = time.monotonic()
    recipes = recipes_path(args.recipes, args.skill_dir)
    recipe = get_recipe(args.recipe, recipes)
    evidence: dict[str, Any] = {"recipe_names": recipe_names(recipes)}
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
        obs = observe_ptq_in_child(args.checkpoint, args.source, recipe, args.timeout)
        evidence.update(checkpoint=args.checkpoint, source=args.source, ir_xml=obs.get("ir_xml"))
    if args.save_observation:
        errors = schema_errors("ptq-observation", obs)
        if errors:  # a hand-made --summary re-saved, or a bug: never write what the schema rejects
            raise GateInputError("USER_CONFIG_ERROR", "observation violates ptq-observation schema: "
                                 + "; ".join(errors[:5]))
        atomic_write_json(args.save_observation, obs)
        evidence["observation"] = args.save_observation
    return Outcome(_finish(evaluate_ptq(obs), evidence, t0), output=args.output)


GATE_PTQ = Command(
    "gate-ptq", "PTQ gate on a quantized IR", _ptq_args, _ptq, gate="gate-ptq", schema="ptq-verdict",
    error_fields=ptq_error_fields,
    description="PTQ gate: read a quantized OpenVINO IR and check it against the recipe's promises (weight "
                "precisions and coverage, size-ratio band, parameter and metadata integrity). Exit 0 pass, 1 fail, "
                "2 input not judged.")


# --------------------------------------------------------------------------- gate-run

def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run_summary.json (schemas/run-summary.schema.json)")
    _output(p)


def _run(args: argparse.Namespace) -> Outcome:
    from modelgate.gates.run import evaluate_run
    from modelgate.release.records import summary_records_stats

    t0 = time.monotonic()
    summary = read_json(args.run, "run summary")
    verdict = evaluate_run(summary, summary_records_stats(args.run, summary))
    return Outcome(_finish(verdict, {"run": args.run}, t0), output=args.output)


GATE_RUN = Command(
    "gate-run", "completeness gate on an eval run summary", _run_args, _run, gate="gate-run", schema="run-verdict",
    error_fields=run_error_fields,
    description="Run gate: is an evaluation run complete and its score over the data it claims (terminal status, "
                "sample accounting, finite in-scale scores, structured scorer errors, per-sample records)? "
                "Exit 0/1/2.")


# --------------------------------------------------------------------------- gate-compare

def _compare_args(p: argparse.ArgumentParser) -> None:
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
    _output(p)


def _compare(args: argparse.Namespace) -> Outcome:
    from modelgate.gates.compare import evaluate_compare
    from modelgate.release.records import paired_of, stats_of, summary_records

    t0 = time.monotonic()
    baseline = read_json(args.baseline, "baseline run summary")
    candidate = read_json(args.candidate, "candidate run summary")
    # each side's records are read once: gate_run judges them on both sides, then they are paired
    loaded_b, loaded_c = summary_records(args.baseline, baseline), summary_records(args.candidate, candidate)
    paired = None if args.no_paired else paired_of(baseline, loaded_b, loaded_c)
    verdict = evaluate_compare(baseline, candidate, threshold=args.threshold, relative=args.relative,
                               implausible_gain=args.implausible_gain, z=args.z, paired=paired or None,
                               baseline_records=stats_of(loaded_b), candidate_records=stats_of(loaded_c))
    evidence = {"baseline": args.baseline, "candidate": args.candidate,
                "paired_tasks": sorted(paired) if paired else []}
    return Outcome(_finish(verdict, evidence, t0), output=args.output)


GATE_COMPARE = Command(
    "gate-compare", "baseline vs candidate comparison gate", _compare_args, _compare, gate="gate-compare",
    schema="compare-verdict", error_fields=compare_error_fields,
    description="Compare gate: candidate vs baseline run summaries per task -> ACCEPT / REGRESSION / INDETERMINATE "
                "(too few samples to resolve the threshold) / ANOMALOUS. Exit 0 ACCEPT, 1 otherwise, 2 input not "
                "judged.")
