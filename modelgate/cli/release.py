"""``modelgate release`` / the day0-release skill's ``day0_release.py``: run the day-0 chain and emit the
release report.

One recipe: the chain's decision (``decide_release``). Several recipes (most to least
aggressive): the chain per recipe, stopping at the first ACCEPT unless ``--pareto``; the
search decision (``decide_search``) with a size-vs-score table and a Pareto plot.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
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

# evaluation precisions (modelgate.openvino.evaluate.PRECISIONS; named here so --help stays light)
PRECISIONS = ("f32", "served")

GATE = "release-decision"


def configure(p: argparse.ArgumentParser) -> None:
    """The release command's arguments."""
    p.add_argument("--model", required=True,
                   help="local source: HF folder (LLM or encoder), or an .onnx/.pt classifier")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--recipe", help="one recipe name (skills/day0-release/recipes/recipes.yaml)")
    g.add_argument("--recipes", help="comma-separated recipes, most to least aggressive: a recipe search")
    p.add_argument("--pareto", action="store_true", help="search: try every recipe (do not stop at the first ACCEPT)")
    p.add_argument("--tasks", help="comma-separated eval tasks; default by model kind: answer-similarity (LLM: "
                                   "the pack's 240 prompts), embedding-similarity (encoder); classifiers need "
                                   "--eval-data. Also lm-eval:<task>[@<metric>] (lm-evaluation-harness tasks and "
                                   "groups, LLMs) and fixture:color-facts, fixture:grammar-ppl, fixture:digits (the "
                                   "pack's fixtures only)")
    p.add_argument("--eval-data", help="your own evaluation data: a JSONL file (prompts with answers, multiple "
                                       "choice, plain text, prompts, sentence pairs, images) or a folder "
                                       "<label>/<image> (formats: references/workflow.md)")
    p.add_argument("--lm-eval-include", help="folder of lm-eval task YAMLs (looked up before the harness's own)")
    p.add_argument("--num-fewshot", type=int, help="few-shot examples for lm-eval tasks (default: each task's own)")
    p.add_argument("--lm-eval-max-length", type=int, help="token cap of an lm-eval request (default 2048; bounds "
                                                          "logits memory)")
    p.add_argument("--allow-download", action="store_true",
                   help="let lm-eval fetch datasets that are not cached (default: offline; an uncached dataset is "
                        "SOURCE_UNAVAILABLE)")
    p.add_argument("--eval-precision", choices=sorted(PRECISIONS), default="f32",
                   help="precision of the evaluations: f32 (default: exact arithmetic, so the comparison sees only "
                        "what the recipe did to the weights) or served (the device's defaults, e.g. bf16)")
    p.add_argument("--calibration-data", help="calibration set of data-aware recipes (AWQ, static_int8): a text "
                                              "JSONL ({\"text\": ...} lines), or an image folder / image JSONL "
                                              "(default: the pack's general text; image models: calibration.npy "
                                              "beside the model)")
    p.add_argument("--threshold", type=float, default=None,
                   help="allowed drop: fraction of full scale (absolute) or of the baseline (--relative); default: "
                        "the tasks' own (answer-similarity 0.05, lm-eval and --eval-data 0.01)")
    p.add_argument("--relative", action="store_true", help="threshold relative to the baseline score")
    p.add_argument("--workspace", required=True, help="workspace root; the run lives in <workspace>/<run-id>/")
    p.add_argument("--run-id", help="run folder name (default: derived from the request without the threshold, so "
                                    "a re-run resumes and a new threshold re-decides from cached stages)")
    p.add_argument("--limit", type=int, help="evaluate only the first N samples per task (smoke runs)")
    p.add_argument("--device", default="CPU", help="OpenVINO device for the canary and the evaluations")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per child stage (default 900)")
    p.add_argument("--recipes-file", help="alternative recipes file (schemas/recipe.schema.json)")
    p.add_argument("--skill-dir", help="day0-release skill folder whose recipes/recipes.yaml to use (default: the "
                                       "folder this script runs from, or the repository's)")
    add_executor_args(p, "recipe chain")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--output", help="also write the report JSON here")


PROGRESS_PREFIX = "day0-release ["  # every progress line starts so (a passing run prints nothing else on stderr)


def _progress(quiet: bool, stream):
    """One plain line per step on ``stream``: ``day0-release [  12.3s] <what>``."""
    if quiet:
        return lambda msg: None
    t0 = time.monotonic()

    def say(msg: str) -> None:
        stream.write(f"{PROGRESS_PREFIX}{time.monotonic() - t0:7.1f}s] {' '.join(str(msg).split())}\n")
        stream.flush()
    return say


def validate_arguments(args: argparse.Namespace) -> None:
    """Every argument of the conductor, checked before any import of the heavy engine and before any
    stage runs: a request the chain would refuse later (``--threshold 1``, an unknown task, a run id
    with a path separator, an --output that is a folder) is an exit-2 verdict now, not after an
    export and two evaluations. Raises GateInputError naming every problem found. (The --eval-data
    and --calibration-data files are read line by line next, also before any stage.)"""
    from modelgate.gates.compare import param_problems
    from modelgate.openvino.evaluate import LMEVAL_SPEC, RENAMED, TASKS
    from modelgate.release.workspace import RUN_ID_PATTERN

    # without --threshold the tasks' own default applies (chosen once the tasks are known)
    problems = [f"--{p}" for p in param_problems(0.0 if args.threshold is None else args.threshold, args.relative)]
    if not isinstance(args.timeout, float) or not math.isfinite(args.timeout) or args.timeout <= 0:
        problems.append(f"--timeout must be a finite number of seconds > 0, got {args.timeout!r}")
    if args.limit is not None and args.limit < 2:
        problems.append(f"--limit must be an integer >= 2, got {args.limit!r}")
    names = [args.recipe] if args.recipe is not None else [n.strip() for n in (args.recipes or "").split(",")]
    if not names or not all(names) or len(set(names)) != len(names):
        problems.append(f"recipes must be distinct, non-empty names: {names}")
    if args.tasks is not None:
        tasks = [t.strip() for t in args.tasks.split(",")]
        # renamed and lm-eval names pass here: resolving the tasks says what a renamed one became and
        # checks an lm-eval name's form and the model kind
        unknown = [t for t in tasks if t not in TASKS and t not in RENAMED and not t.startswith("lm-eval:")]
        if not all(tasks) or unknown or len(set(tasks)) != len(tasks):
            problems.append(f"--tasks must be distinct known tasks ({', '.join(sorted(TASKS))}) or "
                            f"lm-eval:<task>[@<metric>] ({LMEVAL_SPEC.pattern}), got {args.tasks!r}")
    for flag, value, low in (("--num-fewshot", args.num_fewshot, 0), ("--lm-eval-max-length", args.lm_eval_max_length,
                                                                      16)):
        if value is not None and value < low:
            problems.append(f"{flag} must be an integer >= {low}, got {value}")
    if args.lm_eval_include is not None and not Path(args.lm_eval_include).is_dir():
        problems.append(f"--lm-eval-include {args.lm_eval_include}: not a folder of task YAMLs")
    if args.run_id is not None and (not RUN_ID_PATTERN.match(args.run_id) or args.run_id in (".", "..")):
        problems.append(f"run id {args.run_id!r} (--run-id) must match {RUN_ID_PATTERN.pattern} (no path "
                        "separators)")
    if not args.device or not args.device.strip():
        problems.append("--device must name an OpenVINO device")
    for flag, value, required in (("--model", args.model, True), ("--workspace", args.workspace, True),
                                  ("--eval-data", args.eval_data, False),
                                  ("--calibration-data", args.calibration_data, False)):
        if (value is not None or required) and (not value or "\x00" in value):
            problems.append(f"{flag} must be a path, got {value!r}")
    if not problems and Path(args.workspace).exists() and not Path(args.workspace).is_dir():
        problems.append(f"--workspace {args.workspace} exists and is not a folder")
    problem = file_problem(args.output) if args.output is not None else None
    if problem:
        problems.append(f"--output {args.output!r} must be a file the report can be written to: {problem}")
    if problems:
        raise GateInputError("USER_CONFIG_ERROR", "; ".join(problems))


def run(args: argparse.Namespace) -> Outcome:
    """Run the chain(s) with third-party output (exporters, NNCF, lm-eval, child processes) sent to the run's
    log file, write report.json/report.md; the report is the verdict (it writes its own files)."""
    with stdout_to_stderr():  # until the run's log takes over (and for an early refusal)
        return Outcome(_release(args), "release-report", None)


@contextlib.contextmanager
def _third_party_output_to(log_path: Path):
    """Point file descriptors 1 and 2 at ``log_path`` for the duration (children inherit them); yield a
    stream on the original stderr for the progress lines. A passing run prints nothing else."""
    sys.stdout.flush()
    sys.stderr.flush()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    saved_out, saved_err = os.dup(1), os.dup(2)
    progress = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(log, 1)
        os.dup2(log, 2)
        yield progress
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        for fd in (saved_out, saved_err, log):
            os.close(fd)
        progress.close()


def _release(args: argparse.Namespace) -> dict:
    validate_arguments(args)
    from modelgate.openvino import evaluate as ev
    from modelgate.release import report as rep
    from modelgate.release.conductor import Conductor, EvalOptions, resolve_source
    from modelgate.release.eval_data import load_eval_data, rows_sha256
    from modelgate.release.recipes import get_recipe, recipes_path
    from modelgate.release.workspace import Workspace, default_run_id

    check_executor_args(args)
    names = [args.recipe] if args.recipe else [n.strip() for n in args.recipes.split(",") if n.strip()]
    if not names or len(set(names)) != len(names):
        raise GateInputError("USER_CONFIG_ERROR", f"recipes must be distinct, non-empty names: {names}")
    recipes_file = recipes_path(args.recipes_file, args.skill_dir)
    recipes = [get_recipe(n, recipes_file) for n in names]  # unknown name -> exit 2 before any work
    source = resolve_source(args.model)
    eval_data = load_eval_data(args.eval_data) if args.eval_data else None  # a bad line -> exit 2 now
    tasks = ev.resolve_tasks(args.tasks.split(",") if args.tasks else None, source.kind,
                             eval_data[0] if eval_data else None)
    threshold, threshold_source = _threshold(args, tasks)
    # what decides the stages' outputs; the threshold (and --relative, --pareto) only decide, so they are
    # not part of the run id: deciding again with another threshold reuses every cached stage
    identity = {"model": str(source.path), "recipes": names, "tasks": tasks, "limit": args.limit,
                "device": args.device, "eval_precision": args.eval_precision,
                "eval_data_sha256": rows_sha256(*eval_data) if eval_data else None,
                "lm_eval_include": str(Path(args.lm_eval_include).resolve()) if args.lm_eval_include else None,
                "num_fewshot": args.num_fewshot, "lm_eval_max_length": args.lm_eval_max_length,
                "calibration_data": str(Path(args.calibration_data).resolve()) if args.calibration_data else None}
    request = dict(identity, threshold=threshold, threshold_source=threshold_source, relative=args.relative,
                   pareto=args.pareto, eval_data=str(Path(args.eval_data).resolve()) if args.eval_data else None)
    ws = Workspace(args.workspace, args.run_id or default_run_id(identity))
    atomic_write_json(ws.path("run.json"), request)
    log_path = ws.path("logs", "release.log")
    t0 = time.monotonic()
    with _third_party_output_to(log_path) as console:
        progress = _progress(args.quiet, console)
        cond = Conductor(ws, source, EvalOptions(tasks=tasks, limit=args.limit, precision=args.eval_precision,
                                                 eval_data=args.eval_data, include_path=args.lm_eval_include,
                                                 num_fewshot=args.num_fewshot, allow_download=args.allow_download,
                                                 lm_max_length=args.lm_eval_max_length),
                         device=args.device, threshold=threshold, relative=args.relative, timeout=args.timeout,
                         recipes=recipes, calibration_data=args.calibration_data, eval_data=eval_data,
                         progress=progress)
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
                chains, placements = run_recipes(executor, ws, source, cond.evals, recipes, limit=args.limit,
                                                 device=args.device, threshold=threshold, relative=args.relative,
                                                 timeout=args.timeout, pareto=args.pareto, progress=progress,
                                                 calibration_data=args.calibration_data)
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
    chosen = rep.chosen_chain(verdict, chains)
    verdict["coverage"] = rep.release_coverage(verdict, chosen, cond.eval_config, request)
    verdict["next_action"] = rep.next_action(verdict, chains, cond.eval_config, request)
    verdict["timings"] = dict({f"stage:{k}": round(v, 4) for k, v in ws.seconds.items()},
                              total_s=round(time.monotonic() - t0, 4))
    verdict["evidence"] = dict(verdict.get("evidence") or {}, report_json=str(ws.path("report.json")),
                               report_md=str(ws.path("report.md")), workspace=str(ws.dir), log=str(log_path))
    stamp(verdict)  # the report on disk carries the versions and next action the printed verdict carries
    errors = schema_errors("release-report", verdict)
    if errors:
        raise RuntimeError("release report violates its schema: " + "; ".join(errors[:5]))
    atomic_write_json(ws.path("report.json"), verdict)
    atomic_write_text(ws.path("report.md"), rep.render_markdown(verdict))
    if args.output:
        atomic_write_json(args.output, verdict)
    return verdict


def _threshold(args, tasks: list[str]) -> tuple[float, str]:
    """The threshold and where it came from: --threshold, or the tasks' one default (they must agree)."""
    from modelgate.openvino import evaluate as ev

    if args.threshold is not None:
        return args.threshold, "--threshold"
    value, per = ev.default_threshold(tasks)
    if value is None:
        raise GateInputError("USER_CONFIG_ERROR", "no --threshold and the tasks' default thresholds differ ("
                             + ", ".join(f"{t} {v:g}" for t, v in per.items()) + "): ask the user which drop is "
                             "acceptable and pass --threshold")
    if args.relative:
        raise GateInputError("USER_CONFIG_ERROR", "--relative needs an explicit --threshold (the tasks' defaults "
                             "are absolute)")
    return value, "default of " + ", ".join(tasks)


def _search_verdict(chains, sections, tasks, ws, extra) -> dict:
    from modelgate.gates.pareto import pareto_front
    from modelgate.gates.release_decision import decide_search
    from modelgate.release.search import plot_pareto

    primary = tasks[0]
    evaluated = next((c.summaries["baseline"] for c in chains if c.summaries.get("baseline")), {})
    base_task = (evaluated.get("tasks") or {}).get(primary) or {}
    hib = bool(base_task.get("higher_is_better", True))
    rows, baseline = [], None
    for chain, sec in zip(chains, sections):
        t = sec["tasks"].get(primary, {})
        baseline = t.get("baseline", baseline)
        rows.append({"recipe": chain.recipe, "decision": chain.verdict["decision"],
                     "size": sec["size"]["output_weight_bytes"], "size_ratio": sec["size"]["size_ratio"],
                     "score": t.get("candidate"), "metric": t.get("metric") or base_task.get("metric")})
    front = pareto_front(rows, higher_is_better=hib)
    for r in rows:
        r["pareto"] = r["recipe"] in front
    plots = plot_pareto(rows, front, ws.path("pareto"), metric=f"{primary} ({base_task.get('metric')})",
                        baseline=baseline, higher_is_better=hib)
    verdict = decide_search([{"recipe": r["recipe"], "decision": r["decision"], "output_weight_bytes": r["size"]}
                             for r in rows])
    extra.update(search_table=rows, pareto_front=front, plots=[str(p) for p in plots], primary_task=primary)
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
