"""``modelgate release`` / the day0-release skill's ``day0_release.py``: run the day-0 chain and emit the
release report.

One recipe: the chain's decision (``decide_release``). Several recipes (most to least
aggressive): the chain per recipe, stopping at the first ACCEPT unless ``--pareto``; the
search decision (``decide_search``) with a size-vs-score table and a Pareto plot.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from modelgate.cli.cluster import add_executor_args, check_executor_args
from modelgate.cli.spine import Command, Outcome, stdout_to_stderr
from modelgate.contract import (
    GateInputError,
    atomic_write_json,
    atomic_write_text,
    file_problem,
    schema_errors,
    stamp,
)

GATE = "release-decision"


def configure(p: argparse.ArgumentParser) -> None:
    """The release command's arguments."""
    p.add_argument("--model", required=True,
                   help="local source: HF folder (LLM or encoder), or an .onnx/.pt classifier")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--recipe", help="one recipe name (skills/day0-release/recipes/recipes.yaml)")
    g.add_argument("--recipes", help="comma-separated recipes, most to least aggressive: a recipe search")
    p.add_argument("--pareto", action="store_true", help="search: try every recipe (do not stop at the first ACCEPT)")
    p.add_argument("--tasks", help="comma-separated eval tasks (default by model kind): digits_top1, lm_exact_match, "
                                   "lm_perplexity, embedding_similarity")
    p.add_argument("--threshold", type=float, default=0.01,
                   help="allowed drop: fraction of full scale (absolute) or of the baseline (--relative); default 0.01")
    p.add_argument("--relative", action="store_true", help="threshold relative to the baseline score")
    p.add_argument("--workspace", required=True, help="workspace root; the run lives in <workspace>/<run-id>/")
    p.add_argument("--run-id", help="run folder name (default: derived from the request, so a re-run resumes)")
    p.add_argument("--limit", type=int, help="evaluate only the first N samples per task (smoke runs)")
    p.add_argument("--device", default="CPU", help="OpenVINO device for the canary and the evaluations")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per child stage (default 900)")
    p.add_argument("--recipes-file", help="alternative recipes file (schemas/recipe.schema.json)")
    p.add_argument("--skill-dir", help="day0-release skill folder whose recipes/recipes.yaml to use (default: the "
                                       "folder this script runs from, or the repository's)")
    add_executor_args(p, "recipe chain")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--output", help="also write the report JSON here")


def _progress(quiet: bool):
    if quiet:
        return lambda msg: None
    from rich.console import Console

    console = Console(stderr=True)
    t0 = time.monotonic()
    return lambda msg: console.log(f"[{time.monotonic() - t0:6.1f}s] {msg}")


def validate_arguments(args: argparse.Namespace) -> None:
    """Every argument of the conductor, checked before any import of the heavy engine and before any
    stage runs: a request the chain would refuse later (``--threshold 1``, an unknown task, a run id
    with a path separator, an --output that is a folder) is an exit-2 verdict now, not after an
    export and two evaluations. Raises GateInputError naming every problem found."""
    from modelgate.gates.compare import param_problems
    from modelgate.openvino.evaluate import TASKS
    from modelgate.release.workspace import RUN_ID_PATTERN

    problems = [f"--{p}" for p in param_problems(args.threshold, args.relative)]
    if not isinstance(args.timeout, float) or not math.isfinite(args.timeout) or args.timeout <= 0:
        problems.append(f"--timeout must be a finite number of seconds > 0, got {args.timeout!r}")
    if args.limit is not None and args.limit < 2:
        problems.append(f"--limit must be an integer >= 2, got {args.limit!r}")
    names = [args.recipe] if args.recipe is not None else [n.strip() for n in (args.recipes or "").split(",")]
    if not names or not all(names) or len(set(names)) != len(names):
        problems.append(f"recipes must be distinct, non-empty names: {names}")
    if args.tasks is not None:
        tasks = [t.strip() for t in args.tasks.split(",")]
        unknown = [t for t in tasks if t not in TASKS]
        if not all(tasks) or unknown or len(set(tasks)) != len(tasks):
            problems.append(f"--tasks must be distinct known tasks ({', '.join(sorted(TASKS))}), got {args.tasks!r}")
    if args.run_id is not None and (not RUN_ID_PATTERN.match(args.run_id) or args.run_id in (".", "..")):
        problems.append(f"run id {args.run_id!r} (--run-id) must match {RUN_ID_PATTERN.pattern} (no path "
                        "separators)")
    if not args.device or not args.device.strip():
        problems.append("--device must name an OpenVINO device")
    for flag, value in (("--model", args.model), ("--workspace", args.workspace)):
        if not value or "\x00" in value:
            problems.append(f"{flag} must be a path, got {value!r}")
    if not problems and Path(args.workspace).exists() and not Path(args.workspace).is_dir():
        problems.append(f"--workspace {args.workspace} exists and is not a folder")
    problem = file_problem(args.output) if args.output is not None else None
    if problem:
        problems.append(f"--output {args.output!r} must be a file the report can be written to: {problem}")
    if problems:
        raise GateInputError("USER_CONFIG_ERROR", "; ".join(problems))


def run(args: argparse.Namespace) -> Outcome:
    """Run the chain(s) with stdout pointed at stderr (NNCF/OpenVINO chatter, also from child processes),
    write report.json/report.md; the report is the verdict (it writes its own files: no output path)."""
    with stdout_to_stderr():
        return Outcome(_release(args), "release-report", None)


def _release(args: argparse.Namespace) -> dict:
    validate_arguments(args)
    from modelgate.openvino import evaluate as ev
    from modelgate.release import report as rep
    from modelgate.release.conductor import Conductor, resolve_source
    from modelgate.release.recipes import get_recipe, recipes_path
    from modelgate.release.workspace import Workspace, default_run_id

    check_executor_args(args)
    names = [args.recipe] if args.recipe else [n.strip() for n in args.recipes.split(",") if n.strip()]
    if not names or len(set(names)) != len(names):
        raise GateInputError("USER_CONFIG_ERROR", f"recipes must be distinct, non-empty names: {names}")
    recipes_file = recipes_path(args.recipes_file, args.skill_dir)
    recipes = [get_recipe(n, recipes_file) for n in names]  # unknown name -> exit 2 before any work
    source = resolve_source(args.model)
    tasks = ev.resolve_tasks([t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None,
                             source.kind)
    request = {"model": str(source.path), "recipes": names, "tasks": tasks, "threshold": args.threshold,
               "relative": args.relative, "limit": args.limit, "device": args.device, "pareto": args.pareto}
    ws = Workspace(args.workspace, args.run_id or default_run_id(request))
    atomic_write_json(ws.path("run.json"), request)
    progress = _progress(args.quiet)
    cond = Conductor(ws, source, tasks, limit=args.limit, device=args.device, threshold=args.threshold,
                     relative=args.relative, timeout=args.timeout, progress=progress)
    t0 = time.monotonic()
    chains, placements = [], {}
    if args.executor == "local":
        for recipe in recipes:
            progress(f"recipe {recipe['name']} (v{recipe['version']})")
            chain = cond.run_chain(recipe)
            chains.append(chain)
            progress(f"recipe {recipe['name']}: {chain.verdict['decision']}")
            if chain.verdict["decision"] == "ACCEPT" and not args.pareto:
                break
    else:
        from modelgate.executor import make_executor
        from modelgate.release.recipe_units import run_recipes

        executor = make_executor(args.executor, address=args.ray_address, retries=args.retries,
                                 cpus_per_unit=args.cpus_per_unit)
        try:
            chains, placements = run_recipes(executor, ws, source, tasks, recipes, limit=args.limit,
                                             device=args.device, threshold=args.threshold, relative=args.relative,
                                             timeout=args.timeout, pareto=args.pareto, progress=progress)
        finally:
            executor.close()
    sections = [rep.chain_section(c, ws) for c in chains]
    extra = {"request": request, "workspace": str(ws.dir), "recipes": sections,
             "resume": {"ran": ws.ran, "skipped": ws.skipped},
             "executor": {"name": args.executor, "recipes": placements}}
    if len(recipes) == 1:
        verdict = dict(chains[0].verdict)
    else:
        verdict = _search_verdict(chains, sections, tasks, ws, extra)
    verdict.update(extra)
    verdict["timings"] = dict({f"stage:{k}": round(v, 4) for k, v in ws.seconds.items()},
                              total_s=round(time.monotonic() - t0, 4))
    verdict["evidence"] = dict(verdict.get("evidence") or {}, report_json=str(ws.path("report.json")),
                               report_md=str(ws.path("report.md")), workspace=str(ws.dir))
    stamp(verdict)  # the report on disk carries the versions and next action the printed verdict carries
    errors = schema_errors("release-report", verdict)
    if errors:
        raise RuntimeError("release report violates its schema: " + "; ".join(errors[:5]))
    atomic_write_json(ws.path("report.json"), verdict)
    atomic_write_text(ws.path("report.md"), rep.render_markdown(verdict))
    if args.output:
        atomic_write_json(args.output, verdict)
    return verdict


def _search_verdict(chains, sections, tasks, ws, extra) -> dict:
    from modelgate.gates.pareto import pareto_front
    from modelgate.gates.release_decision import decide_search
    from modelgate.openvino.evaluate import TASKS
    from modelgate.release.search import plot_pareto

    primary = tasks[0]
    hib = TASKS[primary]["higher_is_better"]
    rows, baseline = [], None
    for chain, sec in zip(chains, sections):
        t = sec["tasks"].get(primary, {})
        baseline = t.get("baseline", baseline)
        rows.append({"recipe": chain.recipe, "decision": chain.verdict["decision"],
                     "size": sec["size"]["output_weight_bytes"], "size_ratio": sec["size"]["size_ratio"],
                     "score": t.get("candidate"), "metric": TASKS[primary]["metric"]})
    front = pareto_front(rows, higher_is_better=hib)
    for r in rows:
        r["pareto"] = r["recipe"] in front
    plots = plot_pareto(rows, front, ws.path("pareto"), metric=f"{primary} ({TASKS[primary]['metric']})",
                        baseline=baseline, higher_is_better=hib)
    verdict = decide_search([{"recipe": r["recipe"], "decision": r["decision"], "output_weight_bytes": r["size"]}
                             for r in rows])
    extra.update(search_table=rows, pareto_front=front, plots=[ws.rel(p) for p in plots], primary_task=primary)
    return verdict


def release_error_fields(args: argparse.Namespace | None, failure_class: str, detail: str) -> dict:
    """The release report's fields of an error verdict: no decision, no stage ran."""
    return {"decision": None, "stages": [], "deciding_stage": None}


RELEASE = Command(
    "release", "day-0 release conductor: PTQ -> canary -> eval -> compare", configure, run, gate=GATE,
    error_output=lambda args: None, schema="release-report", error_fields=release_error_fields,
    description="Day-0 release conductor: fp32 baseline -> NNCF PTQ (recipe) -> gate_ptq -> deploy canary -> baseline "
                "and candidate evaluation -> gate_run -> gate_compare -> publish decision (ACCEPT / REGRESSION / "
                "ANOMALOUS / INDETERMINATE / INFEASIBLE). Exit 0 accept, 1 rejected, 2 input could not be judged.")
