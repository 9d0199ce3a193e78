"""``modelgate verify`` / the verify-conversion skill's ``verify_conversion.py``, and ``modelgate demo``:
observe -> decide -> emit.

Pipeline mode (``--pipeline-state agent-results/pipeline_state.json --agent NAME``) reads the model
from the orchestrator's state file and always writes ``agent-results/<agent>/verify_result.json``,
even when the input is bad or the run crashes: the gate never aborts the pipeline.
"""
from __future__ import annotations

import argparse
import math
import re
import shutil
import time
from pathlib import Path

from modelgate import contract
from modelgate.cli.spine import Command, Outcome, stdout_to_stderr
from modelgate.contract import GateInputError
from modelgate.gates.verify import (
    GATE,
    TOLERANCE_KEYS,
    TOLERANCES,
    WEIGHT_FORMATS,
    evaluate_verify,
    tolerance_problems,
    tolerances_for,
)
from modelgate.openvino.precision import PRECISION_CHOICES
from modelgate.verify.plan import MIN_NEW_TOKENS, MIN_POSITIONS

SCHEMA = "verify-result"
RESULT_NAME = "verify_result.json"
AGENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# flag -> tolerance key (overrides of the per-format table)
TOLERANCE_FLAGS = {"--rel-err-max": "rel_err_max", "--cosine-min": "cosine_min", "--top1-min": "top1_min",
                   "--greedy-match-min": "greedy_match_min", "--scale-band": "scale_band",
                   "--layer-margin": "layer_margin", "--layer-floor": "layer_floor"}
assert set(TOLERANCE_FLAGS.values()) == set(TOLERANCE_KEYS)


def configure(p: argparse.ArgumentParser) -> None:
    """The verify command's arguments."""
    p.add_argument("--model", help="Hugging Face id or folder, .onnx, .pt/.pth, TF SavedModel, or an IR")
    p.add_argument("--converted", help="existing OpenVINO IR (folder or .xml) to verify instead of converting")
    p.add_argument("--task", help="optimum task (default: from config.json architectures)")
    p.add_argument("--weight-format", choices=WEIGHT_FORMATS,
                   help="export weight format (default fp16) and tolerance row (default: detected from the IR)")
    p.add_argument("--device", default="CPU", help="OpenVINO device (default CPU)")
    p.add_argument("--output", help="folder for the converted IR and verify_result.json")
    p.add_argument("--timeout", default="900", help="seconds per stage (export, OpenVINO run, source run)")
    p.add_argument("--new-tokens", default="8",
                   help=f"greedy tokens generated per prompt (default 8, at least {MIN_NEW_TOKENS}); greedy agreement "
                        "is judged on the first 8 of them, so a longer run does not change its meaning")
    p.add_argument("--inference-precision", default="default", choices=PRECISION_CHOICES,
                   help="precisions to run besides f32 (faithfulness): default = the device's own (bf16 on AMX "
                        "CPUs), bf16, f16, all (bf16 and f16), or f32 alone")
    p.add_argument("--positions", default=None,
                   help=f"length of the position sweep prompt (default min(2048, the model's maximum); at least "
                        f"{MIN_POSITIONS})")
    p.add_argument("--trust-remote-code", action="store_true", help="allow model code from the model folder")
    p.add_argument("--pipeline-state", help="orchestrator state file (agent-results/pipeline_state.json)")
    p.add_argument("--agent", help="agent name: the verdict goes to agent-results/<agent>/verify_result.json")
    for flag, key in TOLERANCE_FLAGS.items():
        p.add_argument(flag, dest=key, help=f"override the {key} tolerance of the weight format")


def _positive(name: str, text: str, integer: bool = False) -> float:
    try:
        v = int(text) if integer else float(text)
    except (TypeError, ValueError):
        raise GateInputError("USER_CONFIG_ERROR",
                             f"{name} must be a {'whole' if integer else ''} number, got {text!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise GateInputError("USER_CONFIG_ERROR", f"{name} must be finite and > 0, got {text!r}")
    return v


def _overrides(args) -> dict:
    out = {}
    for flag, key in TOLERANCE_FLAGS.items():
        raw = getattr(args, key)
        if raw is None:
            continue
        try:
            out[key] = float(raw)
        except ValueError:
            raise GateInputError("USER_CONFIG_ERROR", f"{flag} must be a number, got {raw!r}") from None
    return out


def result_path(args: argparse.Namespace) -> Path | None:
    """Where the verdict goes: ``agent-results/<agent>/verify_result.json`` in pipeline mode (also when
    the run fails), else ``<--output>/verify_result.json``, else nowhere."""
    if args.pipeline_state:
        if not args.agent or not AGENT_NAME.match(args.agent):
            raise GateInputError("USER_CONFIG_ERROR",
                                 f"--agent must be a plain name ([A-Za-z0-9_.-]), got {args.agent!r}")
        return Path(args.pipeline_state).resolve().parent / args.agent / RESULT_NAME
    return Path(args.output) / RESULT_NAME if args.output else None


def _apply_pipeline_state(args) -> None:
    """Fill --model (and optional task/format/converted) from pipeline_state.json (validated)."""
    state = contract.read_json(args.pipeline_state, "pipeline state")
    errors = contract.schema_errors("pipeline-state", state)
    if errors:
        raise GateInputError("USER_CONFIG_ERROR", "pipeline state invalid: " + "; ".join(errors[:3]))
    base = Path(args.pipeline_state).resolve().parent.parent  # agent-results/.. = the workspace
    args.model = args.model or state["model_id"]
    if not Path(args.model).is_absolute() and (base / args.model).exists():
        args.model = str(base / args.model)
    args.task = args.task or state.get("task")
    args.weight_format = args.weight_format or state.get("weight_format")
    if state.get("converted") and not args.converted:
        conv = Path(state["converted"])
        args.converted = str(conv if conv.is_absolute() else base / conv)


def run(args: argparse.Namespace) -> Outcome:
    """Observe (in child processes, stdout pointed at stderr), decide, and return the verify-result verdict."""
    t0 = time.monotonic()
    output = result_path(args)
    if args.pipeline_state:
        _apply_pipeline_state(args)
    if not args.model:
        raise GateInputError("USER_CONFIG_ERROR", "--model is required (or --pipeline-state with model_id)")
    problem = contract.file_problem(Path(args.output) / "ir") if args.output else None
    if problem:  # the IR goes under --output: a file there would fail the export after the source is loaded
        raise GateInputError("USER_CONFIG_ERROR", f"--output must be a folder: {problem}")
    timeout = _positive("--timeout", args.timeout)
    new_tokens = int(_positive("--new-tokens", args.new_tokens, integer=True))
    if new_tokens < MIN_NEW_TOKENS:
        raise GateInputError("USER_CONFIG_ERROR", f"--new-tokens {new_tokens} is too short to judge generation: a "
                             f"degenerate run needs {MIN_NEW_TOKENS} tokens to show; use --new-tokens "
                             f"{MIN_NEW_TOKENS} or more (default 8)")
    positions = int(_positive("--positions", args.positions, integer=True)) if args.positions is not None else None
    if positions is not None and positions < MIN_POSITIONS:
        raise GateInputError("USER_CONFIG_ERROR", f"--positions {positions} cannot reach past the first position "
                             f"bucket; use --positions {MIN_POSITIONS} or more (default: the model's maximum, "
                             "at most 2048)")
    overrides = _overrides(args)
    problems = tolerance_problems(dict(TOLERANCES["fp32"], **overrides))
    if problems:  # before any model is run
        raise GateInputError("USER_CONFIG_ERROR", "; ".join(problems))
    from modelgate.verify.observe import Request, observe
    req = Request(model=args.model, converted=args.converted, task=args.task, weight_format=args.weight_format,
                  device=args.device, output=Path(args.output) if args.output else None, timeout=timeout,
                  trust_remote_code=args.trust_remote_code, new_tokens=new_tokens,
                  inference_precision=args.inference_precision, positions=positions)
    with stdout_to_stderr():
        obs = observe(req)
    obs["device"] = args.device
    tol = tolerances_for(obs["weight_format"], overrides)
    fields = evaluate_verify(obs, tol)
    req.timings["total_s"] = time.monotonic() - t0
    return Outcome(make_result(fields, obs, req.evidence, req.timings), SCHEMA, output)


def make_result(fields: dict, obs: dict, evidence: dict, timings: dict) -> dict:
    """The verdict in the envelope with the pipeline's result fields, from the gate's decision fields."""
    fields = dict(fields)
    core = {k: fields.pop(k) for k in ("pass", "failure_class", "decision", "detail", "checks", "metrics",
                                       "coverage", "next_action")}
    ev = {k: (str(Path(v).resolve()) if isinstance(v, str) and v else v) for k, v in evidence.items()
          if v is None or isinstance(v, str)}
    gen = obs.get("generated")
    return contract.make_verdict(
        GATE, passed=core["pass"], failure_class=core["failure_class"], decision=core["decision"],
        detail=core["detail"], checks=core["checks"], metrics=core["metrics"], evidence=ev, timings=timings,
        coverage=core["coverage"], next_action=core["next_action"], weight_format=obs.get("weight_format"),
        source_kind=obs.get("source_kind"), mode=obs.get("mode"), generated_ids=gen, source=obs.get("source"),
        family=obs.get("family"), **fields)



def error_fields(args: argparse.Namespace | None, failure_class: str, detail: str) -> dict:
    """The verify-result fields of an error verdict (the pipeline reads them even when nothing ran)."""
    wf, task = getattr(args, "weight_format", None), getattr(args, "task", None)
    return {"decision": "NOT_JUDGED" if failure_class in contract.INPUT_CLASSES else "REJECTED",
            "verify_passed": False, "e2e_passed": False, "conversion_path": None,
            "task": task if isinstance(task, str) else None, "e2e_detail": "nothing was run to completion",
            "error": detail, "tolerances": {}, "weight_format": wf if wf in WEIGHT_FORMATS else None}


VERIFY = Command(
    "verify", "convert (optionally) and verify a model on OpenVINO", configure, run, gate=GATE,
    error_output=result_path, schema=SCHEMA, error_fields=error_fields,
    description="Convert a model to OpenVINO IR (or take an existing IR), run real inference on the OpenVINO runtime "
                "and verify it against the source model. Prints one JSON verdict; exit 0 pass, 1 the gate failed, "
                "2 the input could not be judged.")


# --------------------------------------------------------------------------- demo

def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", default="demo-output", help="folder for the IR and the verdict (default ./demo-output)")


def demo(args: argparse.Namespace) -> Outcome:
    """Build the tiny llama offline, convert it (fp16) and verify it: the verify command on a built-in model."""
    from modelgate import fixtures

    out = Path(args.output)
    # the demo owns its output folder: a previous run's IR would make the converter refuse
    if (out / "ir").exists():
        shutil.rmtree(out / "ir")
    model = fixtures.hf_model("llama")
    verify_args = build_args(["--model", str(model), "--weight-format", "fp16", "--output", str(out)])
    return run(verify_args)


def build_args(argv: list[str]) -> argparse.Namespace:
    """Parsed verify arguments (what the demo hands to ``run``)."""
    from modelgate.cli.spine import build_parser
    return build_parser(VERIFY).parse_args(argv)


DEMO = Command(
    "demo", "build a tiny model offline, convert it, verify it, print the verdict", _demo_args, demo, gate=GATE,
    error_output=lambda args: Path(args.output) / RESULT_NAME, schema=SCHEMA, error_fields=error_fields,
    description="Build the tiny llama offline, convert it to OpenVINO (fp16), verify it against its source and print "
                "the verdict; it is written to <output>/verify_result.json (the IR to <output>/ir). Nothing is "
                "downloaded; the exit code is the verdict's.")
