"""The observing half of verify-conversion: convert (or take an IR), run it and its source, measure.

Returns a plain observation dict for ``modelgate.gates.verify.evaluate_verify``. Everything that
can crash or hang (export, compile, infer, the source model) runs in child processes with a
timeout. For a Hugging Face source the source child runs first (the clean reference and the
format's expected noise, written to a reference store on disk), then the OpenVINO child compares
the IR with it block by block at f32 and runs the deployment precisions; the two never hold
their models at the same time.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from modelgate import childproc
from modelgate.contract import GateFailure, GateInputError
from modelgate.openvino import convert as conv_mod
from modelgate.openvino import families, fidelity, integrity
from modelgate.openvino.inputs import DEFAULT_SEED
from modelgate.openvino.tasks import DECODER_TASKS, TaskError, task_from_model_dir, validate_task
from modelgate.verify import assemble, family_observe, resources
from modelgate.verify import plan as plan_mod

DEFAULT_NEW_TOKENS = 8
RAW_BATCH = 8
LOG_NAME = "verify.log"
# IR weight element type -> weight format, most compressed first (data, not if-chains)
ELEMENT_FORMAT = (("u4", "int4"), ("i4", "int4"), ("nf4", "int4"), ("u8", "int8"), ("i8", "int8"),
                  ("f16", "fp16"), ("bf16", "fp16"))
# single-pass text tasks verified layer by layer (one IR, a tokenizer, a transformers class)
TEXT_ENCODER_TASKS = frozenset({"text-classification", "token-classification", "feature-extraction",
                                "sentence-similarity", "fill-mask"})
# source kind -> child body that runs the source for raw (non-HF) models
RAW_SOURCE_RUNNERS = {"onnx": "modelgate.openvino.infer:source_onnx_forward",
                      "pytorch": "modelgate.openvino.infer:source_torch_forward"}
# source kinds with no runnable reference here (fidelity is skipped, not failed)
NO_SOURCE_REASONS = {"openvino-ir": "the source is itself an OpenVINO IR; nothing independent to compare with",
                     "tf": "TensorFlow sources are not run for comparison", "tf-savedmodel":
                     "TensorFlow sources are not run for comparison"}


@dataclass
class Request:
    """What to verify (validated CLI arguments)."""
    model: str
    converted: str | None = None
    task: str | None = None
    weight_format: str | None = None
    device: str = "CPU"
    output: Path | None = None
    timeout: float = 900.0
    trust_remote_code: bool = False
    new_tokens: int = DEFAULT_NEW_TOKENS
    inference_precision: str = "default"   # --inference-precision: f32 | bf16 | f16 | default | all
    positions: int | None = None           # --positions: the position sweep's length (None: the model's own)
    # Tests and batch callers: run the bodies in this process (no crash isolation) and reuse
    # source runs across IRs of the same source through a shared dict.
    in_process: bool = False
    source_cache: dict | None = None
    evidence: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    hub: dict | None = None                # hub id, revision and where it came from (a resolved hub id)


def weight_format_of(xml: Path) -> str:
    """The weight format an IR was saved in, from its Const element types (.xml only)."""
    try:
        types = {layer.find("data").get("element_type") for layer in ET.parse(xml).getroot().iter("layer")
                 if layer.get("type") == "Const" and layer.find("data") is not None}
    except (ET.ParseError, OSError):
        return "fp32"
    return next((fmt for et, fmt in ELEMENT_FORMAT if et in types), "fp32")


# --------------------------------------------------------------------------- child bodies

def ov_side_layerwise(xml: str, hf_dir: str, store_dir: str | None, f32_dir: str, plan: dict,
                      precisions: list[str], device: str, config: dict | None) -> dict:
    """OpenVINO child for Hugging Face sources: the f32 (faithful) run with layer-wise comparisons, the
    deployment-precision runs, the config constants, IR shapes and tokenizer parity (one OpenVINO import)."""
    import openvino as ov

    from modelgate.openvino import blocks, config_constants, layerwise
    from modelgate.openvino import precision as precision_mod
    from modelgate.openvino.refstore import ReferenceStore

    core = ov.Core()
    model = core.read_model(xml)
    store = ReferenceStore(store_dir or Path(f32_dir).parent / "no-reference")
    hidden = _config_int(config, "hidden_size", "n_embd", "d_model", "dim")
    stacks = blocks.find_block_stacks(model, hidden)
    stack = layerwise.match_stack(stacks, store.meta().get("stack"))
    out: dict = {"stacks": {p: s.describe() for p, s in stacks.items()}, "stack": stack.describe() if stack else None,
                 "device_default": precision_mod.device_default_precision(device, core), "runs": {}}
    f32_logits = ReferenceStore(f32_dir).create()
    out["runs"]["f32"] = layerwise.faithful_run(core, model, stack, store, plan, device, f32_logits)
    for prec in precisions:
        if prec != "f32":
            out["runs"][prec] = layerwise.deployment_run(core, model, stack, store, plan, device, prec, f32_logits)
    out["config_constants"] = config_constants.observe(model, config)
    del model
    out.update(_shapes_and_tokenizer(xml, hf_dir, device, causal=plan["kind"] == "decoder"))
    return out


def _config_int(config: dict | None, *keys: str) -> int | None:
    for k in keys:
        v = (config or {}).get(k)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return None


def ov_side_raw(xml: str, spec: dict | None, device: str, seed: int = DEFAULT_SEED) -> dict:
    """OpenVINO child for raw models: seeded inputs from the input spec (or the ports), one pass."""
    from modelgate.openvino import infer
    from modelgate.openvino import inputs as inputs_mod
    ports = infer.ov_ports(xml)
    dynamic_batch = all(p["shape"] and p["shape"][0] is None for p in ports)
    batch = RAW_BATCH if dynamic_batch else None
    arrays = inputs_mod.spec_inputs(spec or inputs_mod.port_spec(ports), seed, batch)
    out = infer.ov_forward(xml, arrays, device)
    out["inputs"] = arrays
    return out


def _shapes_and_tokenizer(xml: str, hf_dir: str | None, device: str, causal: bool) -> dict:
    out: dict = {}
    try:
        out["ir_shapes"] = integrity.ir_shapes(xml)
    except Exception as exc:  # recorded: integrity checks then report what failed
        out["ir_shapes_error"] = f"{type(exc).__name__}: {exc}"
    ir_dir = Path(xml).parent
    has_tok = (ir_dir / "openvino_tokenizer.xml").is_file()
    if hf_dir and (causal or has_tok):
        try:
            from modelgate.openvino.tokenizer_parity import tokenizer_parity
            out["tokenizer"] = tokenizer_parity(hf_dir, ir_dir, device=device)
        except Exception as exc:  # a tokenizer that cannot run is a tokenizer mismatch, recorded as such
            out["tokenizer"] = {"error": f"{type(exc).__name__}: {str(exc)[:500]}",
                                "present": {"tokenizer": has_tok}}
    return out


# --------------------------------------------------------------------------- orchestration

def _resolve_task(req: Request, info, ir_dir: Path | None) -> str | None:
    try:
        if req.task:
            return validate_task(req.task)
        if info.kind == "hf-dir":  # config.json architectures, or model_index.json (diffusers)
            return task_from_model_dir(info.location)
        if ir_dir is not None and (ir_dir / conv_mod.CONVERSION_RECORD).is_file():
            return json.loads((ir_dir / conv_mod.CONVERSION_RECORD).read_text()).get("task")
    except TaskError as exc:
        raise GateInputError("USER_CONFIG_ERROR", str(exc)) from exc
    return None


def _convert(req: Request, info, family: str | None = None) -> tuple[dict, Path | None]:
    if req.converted:
        p = Path(req.converted)
        if not p.exists():
            raise GateInputError("USER_CONFIG_ERROR", f"--converted not found: {p}")
        xml = family_observe.require_irs(p, family) if family and p.is_dir() else conv_mod.find_ir_xml(p)
        if xml.suffix != ".xml" or not xml.is_file():
            raise GateInputError("USER_CONFIG_ERROR", f"--converted is not an OpenVINO IR: {p}")
        record = {}
        if (xml.parent / conv_mod.CONVERSION_RECORD).is_file():
            try:
                record = json.loads((xml.parent / conv_mod.CONVERSION_RECORD).read_text())
            except ValueError:
                record = {}
        return {"ok": True, "conversion_path": record.get("conversion_path", "existing"), "seconds": 0.0,
                "detail": f"existing IR {xml.name}", "weight_format": record.get("weight_format")}, xml
    out = Path(req.output) / "ir" if req.output else Path(tempfile.mkdtemp(prefix="modelgate-verify-")) / "ir"
    c = conv_mod.convert(req.model, out, task=req.task, weight_format=req.weight_format or "fp16",
                         timeout=req.timeout, trust_remote_code=req.trust_remote_code, source=info)
    req.evidence["conversion_log"] = str(c.log_path) if c.log_path else None
    req.evidence["ir_dir"] = str(out)
    return {"ok": c.ok, "conversion_path": c.conversion_path, "failure_class": c.failure_class,
            "detail": c.detail, "seconds": c.seconds, "weight_format": c.weight_format,
            "retried_int4": c.retried_int4}, (c.ir_xml if c.ok else None)


def observe(req: Request) -> dict:
    """Run everything and return the observation dict (raises GateInputError for unusable input).

    Hugging Face sources: plan the inputs, convert (or take the IR), then run the source child
    (clean reference + the format's expected noise, written to a reference store) and after it the
    OpenVINO child (layer-wise f32 run, deployment-precision runs): one after the other, so the peak
    memory is the larger of the two, not their sum.
    """
    t0 = time.monotonic()
    info = conv_mod.detect_source(req.model, req.trust_remote_code)
    if req.converted is None and info.kind == "openvino-ir":
        req.converted = info.location
    if req.task:
        try:
            validate_task(req.task)
        except TaskError as exc:
            raise GateInputError("USER_CONFIG_ERROR", str(exc)) from exc
    if info.kind == "hf-id":  # cache first, then the hub; SOURCE_UNAVAILABLE within seconds otherwise
        from modelgate.verify import hub
        resolved = hub.resolve(info.location, download_seconds=req.timeout)
        req.hub = resolved.record()
        req.evidence["source_snapshot"] = resolved.path
        info = conv_mod.detect_source(resolved.path, req.trust_remote_code)
    hf_dir = info.location if info.kind == "hf-dir" else None
    task = _resolve_task(req, info, None) if hf_dir else None
    family = families.family_for(task, info.config) if hf_dir else None
    if family:  # the source must be able to make the family's inputs (processor, feature extractor...)
        family_observe.require_source_files(hf_dir, family)
    if req.converted:  # a bad --converted must fail before anything runs
        if not Path(req.converted).exists():
            raise GateInputError("USER_CONFIG_ERROR", f"--converted not found: {req.converted}")
        if family and Path(req.converted).is_dir():
            family_observe.require_irs(Path(req.converted), family)
        else:
            conv_mod.find_ir_xml(Path(req.converted))
    plan = _plan(req, hf_dir, info.config, task) if hf_dir else None
    if hf_dir:
        resources.refuse_if_too_large(resources.estimate_verify(hf_dir, info.config, req.weight_format or "fp16",
                                                                convert=req.converted is None))
    obs = _observe_ir(req, info, hf_dir, plan, family)
    if hasattr(os, "sched_getaffinity"):  # the CPUs the runtime may use (a cpuset or taskset narrows them)
        obs["usable_cpus"] = len(os.sched_getaffinity(0))
    if req.hub:
        obs["source"] = dict(req.hub)
    req.timings["observe_s"] = time.monotonic() - t0
    return obs


def _plan(req: Request, hf_dir: str, config: dict, task: str) -> dict | None:
    """The input plan for a Hugging Face source, or None when its task is not verified end to end."""
    if task in DECODER_TASKS:
        return plan_mod.decoder_plan(_hf_tokenizer(hf_dir), config, req.new_tokens, req.positions)
    if task in TEXT_ENCODER_TASKS:
        return plan_mod.encoder_plan(_hf_tokenizer(hf_dir), config)
    return None


def _observe_ir(req: Request, info, hf_dir: str | None, plan: dict | None, family: str | None = None) -> dict:
    conversion, xml = _convert(req, info, family)
    req.timings["convert_s"] = conversion.get("seconds") or 0.0
    task = _resolve_task(req, info, xml.parent if xml else None)
    obs: dict = {"conversion": conversion, "task": task, "source_kind": info.kind,
                 "weight_format": req.weight_format or conversion.get("weight_format") or
                 (weight_format_of(xml) if xml else "fp16")}
    if not conversion["ok"]:
        return obs
    req.evidence["ir_xml"] = str(xml.resolve())
    obs["weight_format"] = req.weight_format or conversion.get("weight_format") or weight_format_of(xml)
    if family and hf_dir:  # multi-IR families: every sub-model, the user's optimum-intel class
        family_observe.observe_family(req, obs, families.export_root(xml, family), hf_dir, family, _call)
        return obs
    integ = integrity.bin_integrity(xml)
    obs["integrity"] = integ
    try:
        ir_cfg = integrity.read_config(xml.parent)
    except ValueError as exc:
        ir_cfg = None
        integ["config_vs_ir"] = [{"key": "config.json", "config": str(exc), "ir": "unreadable"}]
    if integ["expected_min_bytes"] > integ["bin_bytes"] or not integ["xml_parses"]:
        return obs  # never hand a truncated IR to the runtime
    obs["weights"] = integrity.nonfinite_weights(xml)
    if hf_dir and plan is not None and (xml.parent / conv_mod.IR_NAME).is_file():
        obs["mode"] = "causal-lm" if plan["kind"] == "decoder" else "forward"
        _observe_hf(req, obs, xml, hf_dir, info.config, task, plan)
    elif hf_dir:
        raise GateFailure("MODEL_UNSUPPORTED", f"end-to-end verification of task {task!r} is not implemented "
                          "(supported: text generation, text encoders, the families "
                          f"{', '.join(families.FAMILIES)}, ONNX/PyTorch/IR forward passes)")
    else:
        obs["mode"] = "raw"
        _observe_raw(req, obs, xml, info)
    shapes = obs.pop("_ir_shapes", None)
    if ir_cfg is not None and shapes is not None and "config_vs_ir" not in integ:
        integ["config_vs_ir"] = integrity.config_vs_ir(ir_cfg, shapes, obs.get("mode") == "causal-lm")
        integ["ir_shapes"] = shapes
    if ir_cfg is not None and info.config:
        integ["config_vs_source"] = integrity.config_vs_source(ir_cfg, info.config)
    return obs


def _observe_hf(req: Request, obs: dict, xml: Path, hf_dir: str, config: dict, task: str, plan: dict):
    """Source child (reference + expected noise), then the OpenVINO child; assemble the observation."""
    kind = plan["kind"]
    work = Path(tempfile.mkdtemp(prefix="modelgate-verify-"))
    try:
        src_res, store_dir = _reference(req, hf_dir, kind, task, plan, xml, config, work)
        req.timings["source_s"] = src_res.seconds
        precisions = _precisions(req)
        ov_res = _call(req, "modelgate.verify.observe:ov_side_layerwise",
                       dict(xml=str(xml), hf_dir=hf_dir, store_dir=str(store_dir) if src_res.ok else None,
                            f32_dir=str(work / "ov-f32"), plan=plan, precisions=precisions, device=req.device,
                            config=config))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    req.timings["ov_s"] = ov_res.seconds
    obs["load"] = _load_obs(ov_res)
    obs["plan"] = plan_mod.coverage_of(plan)
    if not ov_res.ok:
        return
    assemble.hf_observation(obs, ov_res.value, src_res.value if src_res.ok else None,
                            None if src_res.ok else (src_res.detail or "source not run"), plan,
                            None if src_res.ok else src_res.failure_class)


def _precisions(req: Request) -> list[str]:
    """f32 plus the deployment precisions ``--inference-precision`` asks for; ``default`` stays a name
    here and is resolved by the device in the OpenVINO child (read back from the compiled model)."""
    from modelgate.openvino.precision import requested_precisions
    return requested_precisions(req.inference_precision, "default")


def _reference(req: Request, hf_dir: str, kind: str, task: str, plan: dict, xml: Path, config: dict,
               work: Path) -> tuple[childproc.ChildResult, Path]:
    """The source child (memoised through ``req.source_cache`` by source, task, IR format and plan)."""
    layers = _config_int(config, "num_hidden_layers", "n_layer", "num_layers")
    kwargs = dict(model_dir=hf_dir, kind=kind, task=task, plan=plan, ir_xml=str(xml),
                  trust_remote_code=req.trust_remote_code, num_layers=layers)
    key = None
    if req.source_cache is not None:
        key = (hf_dir, task, _format_key(xml), _digest(plan))
        if key in req.source_cache:
            return req.source_cache[key]
        store_dir = Path(tempfile.mkdtemp(prefix="modelgate-reference-"))
    else:
        store_dir = work / "reference"
    res = _call(req, "modelgate.openvino.reference:source_reference", dict(kwargs, store_dir=str(store_dir)),
                source=True)
    if key is not None and res.ok:
        req.source_cache[key] = (res, store_dir)
    return res, store_dir


def _format_key(xml: Path) -> tuple:
    """What the simulated format depends on, from the .xml alone: element types and shapes of the
    quantized constants (a fault that keeps the format reuses the cached source run)."""
    try:
        root = ET.parse(xml).getroot()
    except (ET.ParseError, OSError):
        return ("unreadable",)
    sig = set()
    for layer in root.iter("layer"):
        data = layer.find("data")
        if layer.get("type") == "Const" and data is not None:
            sig.add((data.get("element_type"), data.get("shape", "").count(",")))
    return tuple(sorted(sig))


def _digest(obj) -> str:
    import hashlib
    import pickle
    return hashlib.sha256(pickle.dumps(obj, protocol=4)).hexdigest()[:16]


def _call(req: Request, target: str, kwargs: dict, *, source: bool = False) -> childproc.ChildResult:
    """Run a body in a child process (default) or, for ``req.in_process``, here.

    A child's own stdout/stderr (library warnings, progress bars) goes to ``verify.log`` in the
    output folder (a temporary one without --output), never to the terminal: stderr stays quiet
    on a passing run, and the log is evidence when a stage fails.
    """
    if req.in_process:
        return _call_here(target, kwargs)
    log = _log_path(req)
    return childproc.run_function("modelgate.verify.observe:logged_body",
                                  dict(target=target, kwargs=kwargs, log_path=str(log)), timeout=req.timeout,
                                  crash_class="INFERENCE_FAILED" if source else "PLUGIN_CRASH")


def _log_path(req: Request) -> Path:
    if "log" not in req.evidence:
        folder = Path(req.output) if req.output else Path(tempfile.mkdtemp(prefix="modelgate-verify-log-"))
        folder.mkdir(parents=True, exist_ok=True)
        req.evidence["log"] = str((folder / LOG_NAME).resolve())
    return Path(req.evidence["log"])


def logged_body(target: str, kwargs: dict, log_path: str):
    """Child entry: point this process's stdout and stderr at ``log_path``, then call ``target(**kwargs)``."""
    import importlib
    import os

    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)(**kwargs)


def _call_here(target: str, kwargs: dict) -> childproc.ChildResult:
    import importlib
    t0 = time.monotonic()
    module, _, name = target.partition(":")
    try:
        value = getattr(importlib.import_module(module), name)(**kwargs)
    except Exception as exc:  # the same contract as a child: the error becomes a result
        cls = getattr(exc, "failure_class", None) or childproc.EXCEPTION_CLASSES.get(type(exc).__name__)
        return childproc.ChildResult(False, failure_class=cls or "INFERENCE_FAILED",
                                     detail=f"{type(exc).__name__}: {exc}", seconds=time.monotonic() - t0)
    return childproc.ChildResult(True, value=value, returncode=0, seconds=time.monotonic() - t0)


def _load_obs(res: childproc.ChildResult) -> dict:
    if res.ok:
        return {"ok": True, "seconds": res.seconds}
    cls = res.failure_class
    if cls == "INFERENCE_FAILED" and ("read_model" in res.log_tail or "compile_model" in res.log_tail):
        cls = "LOAD_FAILED"
    return {"ok": False, "failure_class": cls, "detail": res.detail, "seconds": res.seconds}


def _hf_tokenizer(hf_dir: str):
    from modelgate.openvino.tokenizer_parity import load_hf_tokenizer
    try:
        return load_hf_tokenizer(hf_dir)
    except Exception as exc:  # no usable tokenizer: the source cannot be fed text
        raise GateInputError("USER_CONFIG_ERROR", f"cannot load the Hugging Face tokenizer of {hf_dir}: "
                             f"{type(exc).__name__}: {exc}") from exc


def _source_failed(res: childproc.ChildResult | None, kind: str) -> dict:
    return {"source_ran": False, "source_expected": True, "source_kind": kind,
            "reason": res.detail if res else "source not run"}


def _observe_raw(req: Request, obs: dict, xml: Path, info):
    spec = None
    for cand in (Path(info.location).parent / conv_mod.INPUT_SPEC, xml.parent / conv_mod.INPUT_SPEC):
        if cand.is_file():
            try:
                spec = json.loads(cand.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise GateInputError("USER_CONFIG_ERROR", f"input spec {cand} is not valid JSON: {exc}") from exc
            break
    ov_res = _call(req, "modelgate.verify.observe:ov_side_raw", dict(xml=str(xml), spec=spec, device=req.device))
    req.timings["ov_s"] = ov_res.seconds
    obs["load"] = _load_obs(ov_res)
    if not ov_res.ok:
        return
    runner = RAW_SOURCE_RUNNERS.get(info.kind)
    src_res = None
    if runner:
        kwargs = {"inputs": ov_res.value["inputs"]}
        kwargs["onnx_path" if info.kind == "onnx" else "pt_path"] = info.location
        if info.kind == "pytorch":
            kwargs["trust_remote_code"] = req.trust_remote_code
        src_res = _call(req, runner, kwargs, source=True)
        req.timings["source_s"] = src_res.seconds
    src_outputs = src_res.value["outputs"] if src_res is not None and src_res.ok else None
    _compare_outputs(obs, ov_res.value["outputs"], src_outputs, src_res, info.kind)
    if runner is None:
        obs["fidelity"] = {"source_ran": False, "source_expected": False, "source_kind": info.kind,
                           "reason": NO_SOURCE_REASONS.get(info.kind, "no runnable source")}


def _pair_outputs(ov_out: dict, src_out: dict) -> list[tuple[str, str]]:
    pairs = [(n, n) for n in ov_out if n in src_out]
    if not pairs and len(ov_out) == len(src_out):
        pairs = list(zip(ov_out, src_out))  # unnamed outputs: by position
    return pairs


def _compare_outputs(obs: dict, ov_out: dict, src_out: dict | None, src_res, kind: str):
    outs = []
    pairs = _pair_outputs(ov_out, src_out) if src_out else []
    for name, arr in ov_out.items():
        o = fidelity.nonfinite_counts(arr)
        o["name"] = name
        match = next((s for n, s in pairs if n == name), None)
        o["expected_shape"] = list(src_out[match].shape) if match else None
        outs.append(o)
    obs["outputs"] = outs
    primary_ov = next(iter(ov_out.values()))
    eq = fidelity.equal_logit_rows(primary_ov)
    obs["degenerate"] = {"rows": eq["rows"], "equal_rows": eq["equal_rows"], "sequences": None}
    if src_out is None:
        obs["fidelity"] = _source_failed(src_res, kind)
        return
    if not pairs:
        obs["fidelity"] = {"source_ran": True, "source_kind": kind, "comparable": False,
                           "reason": f"no common outputs: OV {sorted(ov_out)} vs source {sorted(src_out)}"}
        return
    n0, s0 = pairs[0]
    obs["degenerate"]["src_equal_rows"] = fidelity.equal_logit_rows(src_out[s0])["equal_rows"]
    fid = fidelity.compare_arrays(ov_out[n0], src_out[s0])
    fid.update(source_ran=True, source_kind=kind, compared_output=n0,
               others={n: fidelity.compare_arrays(ov_out[n], src_out[s]) for n, s in pairs[1:]})
    obs["fidelity"] = fid
