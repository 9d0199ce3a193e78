"""Convert a model to OpenVINO IR: optimum-intel for Hugging Face models (path A),
``openvino.convert_model`` / ``ovc`` for ONNX, PyTorch and TensorFlow (path B).

Every conversion runs in a child process with a timeout (an exporter that hangs or a
converter that segfaults still yields a ``Conversion`` with a failure class). The IR always
lands as ``<ir_dir>/openvino_model.xml``; a ``modelgate_conversion.json`` beside it records
how it was made so a later ``--converted`` verification knows its source.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import sys
import threading
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from modelgate import childproc
from modelgate.contract import GateInputError, atomic_write_json, versions
from modelgate.openvino.tasks import TaskError, task_from_model_dir, validate_task

WEIGHT_FORMATS = ("fp32", "fp16", "int8", "int4")
IR_NAME = "openvino_model.xml"
CONVERSION_RECORD = "modelgate_conversion.json"
INPUT_SPEC = "input_spec.json"

# file suffix -> source kind (data, not if-chains)
SUFFIX_KIND = {".onnx": "onnx", ".pt": "pytorch", ".pth": "pytorch", ".xml": "openvino-ir", ".pb": "tf"}
# how each kind is converted
KIND_PATH = {"hf-dir": "optimum-cli", "hf-id": "optimum-cli", "onnx": "convert_model",
             "pytorch": "convert_model", "tf": "ovc", "tf-savedmodel": "convert_model", "openvino-ir": "existing"}
# NNCF weight-compression mode for path B weight formats
NATIVE_COMPRESSION = {"int8": "INT8_ASYM", "int4": "INT4_ASYM"}
# failure classes after which an export is retried with int4
RETRY_INT4_CLASSES = frozenset({"RESOURCE_EXHAUSTED", "TIMEOUT"})

# what optimum-intel says when it has no export for an architecture or task
UNSUPPORTED_EXPORT = re.compile(r"is not supported yet (?:for|with)|custom or unsupported architecture|"
                                r"does(?:n't| not) support (?:the )?task|not supported in Optimum")
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")
HUB_PROBE_SECONDS = 3.0


@dataclass
class SourceInfo:
    kind: str  # hf-dir | hf-id | onnx | pytorch | tf | tf-savedmodel | openvino-ir
    location: str
    config: dict = field(default_factory=dict)
    needs_remote_code: bool = False


@dataclass
class Conversion:
    ok: bool
    conversion_path: str
    source_kind: str
    task: str | None
    weight_format: str
    ir_dir: Path | None
    ir_xml: Path | None
    seconds: float
    failure_class: str | None
    detail: str
    log_path: Path | None = None
    retried_int4: bool = False

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


# --------------------------------------------------------------------------- source detection

def _looks_like_path(model: str) -> bool:
    return (model.startswith(("/", "./", "../", "~")) or model.count("/") > 1
            or os.sep in model and not HUB_ID.match(model)
            or Path(model).suffix.lower() in SUFFIX_KIND or model.endswith((".safetensors", ".bin")))


def _hub_reachable(timeout: float = HUB_PROBE_SECONDS) -> bool:
    """Can we open a TCP connection to the hub within ``timeout``? (DNS included, bounded by a thread.)"""
    if any(os.environ.get(var, "") not in ("", "0") for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = re.sub(r"^https?://", "", endpoint).split("/")[0].split(":")[0]
    result: list[bool] = []

    def probe():
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    return bool(result and result[0])


def _hub_cached(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    hit = try_to_load_from_cache(repo_id, "config.json")
    return isinstance(hit, str) and os.path.isfile(hit)


def _read_config(path: Path) -> dict:
    try:
        return json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GateInputError("USER_CONFIG_ERROR", f"config.json in {path} is unreadable: {exc}") from exc


def _check_onnx(path: Path) -> None:
    try:
        import onnx
        onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:  # any parse error means the file is not ONNX
        raise GateInputError("USER_CONFIG_ERROR",
                             f"{path} is not a valid ONNX model: {type(exc).__name__}: {exc}") from exc


def _check_ir_xml(path: Path) -> None:
    head = path.read_bytes()[:512].lstrip()
    if not head.startswith(b"<?xml") and b"<net" not in head:
        raise GateInputError("USER_CONFIG_ERROR", f"{path} is not an OpenVINO IR .xml file")
    if not path.with_suffix(".bin").is_file():
        raise GateInputError("USER_CONFIG_ERROR",
                             f"{path} has no weights file {path.with_suffix('.bin').name} beside it")


def find_ir_xml(path: str | os.PathLike) -> Path:
    """The main IR .xml of a folder (openvino_model.xml, else the single non-tokenizer .xml) or the file itself."""
    p = Path(path)
    if p.is_file():
        return p
    if (p / IR_NAME).is_file():
        return p / IR_NAME
    xmls = [x for x in sorted(p.glob("*.xml")) if "tokenizer" not in x.name]
    if len(xmls) == 1:
        return xmls[0]
    raise GateInputError("USER_CONFIG_ERROR", f"no OpenVINO IR (.xml) found in {p}" if not xmls
                         else f"several IR files in {p}: {[x.name for x in xmls]}; pass the .xml")


def detect_source(model: str, trust_remote_code: bool = False) -> SourceInfo:
    """Classify a --model argument; raise GateInputError (exit-2 classes) when it cannot be used."""
    if not isinstance(model, str) or not model.strip():
        raise GateInputError("USER_CONFIG_ERROR", "--model is empty")
    p = Path(model).expanduser()
    if p.exists():
        if p.is_dir():
            entries = [e for e in p.iterdir() if not e.name.startswith(".")]
            if not entries:
                raise GateInputError("SOURCE_UNAVAILABLE", f"{p} is an empty folder: no model to convert")
            if (p / "config.json").is_file() or (p / "model_index.json").is_file():
                cfg = _read_config(p) if (p / "config.json").is_file() else {}
                remote = bool(cfg.get("auto_map"))
                if remote and not trust_remote_code:
                    raise GateInputError(
                        "USER_CONFIG_ERROR",
                        f"{p} needs remote code (config.json auto_map: {sorted(cfg['auto_map'])}); it was not run. "
                        "Pass --trust-remote-code only if you trust this code.")
                return SourceInfo("hf-dir", str(p), cfg, remote)
            if (p / "saved_model.pb").is_file():
                return SourceInfo("tf-savedmodel", str(p))
            if (p / IR_NAME).is_file() or any(x.suffix == ".xml" for x in entries):
                xml = find_ir_xml(p)
                _check_ir_xml(xml)
                return SourceInfo("openvino-ir", str(xml))
            raise GateInputError("USER_CONFIG_ERROR", f"{p} holds no recognizable model (no config.json, "
                                 "saved_model.pb, .onnx or OpenVINO .xml)")
        kind = SUFFIX_KIND.get(p.suffix.lower())
        if kind is None:
            raise GateInputError("USER_CONFIG_ERROR", f"{p}: unsupported model file type {p.suffix!r} "
                                 f"(supported: {', '.join(sorted(SUFFIX_KIND))}, or a folder)")
        if p.stat().st_size == 0:
            raise GateInputError("USER_CONFIG_ERROR", f"{p} is empty")
        if kind == "onnx":
            _check_onnx(p)
        elif kind == "openvino-ir":
            _check_ir_xml(p)
        elif kind == "pytorch" and not zipfile.is_zipfile(p) and not trust_remote_code:
            raise GateInputError("USER_CONFIG_ERROR", f"{p} is not a TorchScript/torch.save zip archive; a legacy "
                                 "pickle runs arbitrary code when loaded: pass --trust-remote-code if you trust it")
        return SourceInfo(kind, str(p))
    if _looks_like_path(model) or not HUB_ID.match(model):
        raise GateInputError("USER_CONFIG_ERROR", f"model path not found: {model}")
    # A hub id: usable if cached locally or the hub answers within seconds; never hang.
    if _hub_cached(model):
        return SourceInfo("hf-id", model)
    if not _hub_reachable():
        raise GateInputError("SOURCE_UNAVAILABLE", f"{model} looks like a Hugging Face hub id, it is not in the "
                             "local cache and the hub is unreachable (offline?). Download it where the hub is "
                             "reachable and pass the local folder.")
    return SourceInfo("hf-id", model)


# --------------------------------------------------------------------------- conversion

def _optimum_cli() -> list[str]:
    exe = Path(sys.executable).parent / "optimum-cli"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "optimum.commands.optimum_cli"]


def int4_group_size(config: dict, preferred: int = 128) -> int:
    """Largest group size <= preferred dividing every linear input width (tiny models have 64)."""
    widths = [config.get(k) for k in ("hidden_size", "intermediate_size", "n_embd", "d_model", "d_ff")]
    widths = [w for w in widths if isinstance(w, int) and w > 0]
    for g in (preferred, 128, 64, 32, 16, 8):
        if g <= preferred and all(w % g == 0 for w in widths):
            return g
    return -1  # per-channel


def _resolve_task(info: SourceInfo, task: str | None) -> str:
    try:
        if task:
            return validate_task(task)
        if info.kind == "hf-dir":
            return task_from_model_dir(info.location)
        if info.kind == "hf-id":
            from transformers import AutoConfig  # config only, no weights; may use cache
            cfg = AutoConfig.from_pretrained(info.location, trust_remote_code=False).to_dict()
            from modelgate.openvino.tasks import task_from_config
            return task_from_config(cfg)
    except TaskError as exc:
        raise GateInputError("USER_CONFIG_ERROR", str(exc)) from exc
    return task or ""


def _export_optimum(info: SourceInfo, out_dir: Path, task: str, weight_format: str, timeout: float,
                    trust_remote_code: bool, log_path: Path) -> childproc.ChildResult:
    argv = _optimum_cli() + ["export", "openvino", "--model", str(Path(info.location).resolve())
                             if info.kind == "hf-dir" else info.location, "--task", task,
                             "--weight-format", weight_format]
    if task == "text-to-image":
        argv += ["--library", "diffusers"]
    if weight_format == "int4":
        g = int4_group_size(info.config)
        argv += ["--group-size", str(g)]
    if trust_remote_code:
        argv.append("--trust-remote-code")
    argv.append(str(out_dir))
    env = {"TOKENIZERS_PARALLELISM": "false"}
    if info.kind == "hf-dir":
        env["HF_HUB_OFFLINE"] = "1"  # a local folder never needs the hub; don't let it try
    return childproc.run_command(argv, timeout=timeout, env=env, log_path=log_path)


def convert_native(kind: str, src: str, out_xml: str, weight_format: str, input_spec: dict | None,
                   trust_remote_code: bool) -> dict:
    """Path B body (runs in the child process): convert_model / ovc, optional NNCF weight compression."""
    import numpy as np
    import openvino as ov

    example = None
    if kind == "pytorch":
        import torch
        try:
            module = torch.jit.load(src, map_location="cpu")
        except Exception:
            if not trust_remote_code:
                raise
            module = torch.load(src, map_location="cpu", weights_only=False)
        module.eval()
        if not input_spec or not input_spec.get("inputs"):
            raise ValueError("a PyTorch model needs an input spec (input_spec.json beside it or --input-spec): "
                             '{"inputs": [{"name": "x", "shape": [1, 3, 224, 224], "dtype": "float32"}]}')
        rng = np.random.default_rng(0)
        example = tuple(torch.from_numpy(
            rng.uniform(i.get("low", 0.0), i.get("high", 1.0), size=i["shape"]).astype(i.get("dtype", "float32")))
            for i in input_spec["inputs"])
        model = ov.convert_model(module, example_input=example if len(example) > 1 else example[0])
        # TorchScript carries no tensor names; give inputs the spec's names and outputs stable ones
        for port, spec_in in zip(model.inputs, input_spec["inputs"]):
            if not port.get_names() and spec_in.get("name"):
                port.get_tensor().set_names({spec_in["name"]})
        for i, port in enumerate(model.outputs):
            if not port.get_names():
                port.get_tensor().set_names({f"output_{i}" if len(model.outputs) > 1 else "logits"})
    else:
        model = ov.convert_model(src)
    if weight_format in NATIVE_COMPRESSION:
        import nncf
        model = nncf.compress_weights(model, mode=getattr(nncf.CompressWeightsMode, NATIVE_COMPRESSION[weight_format]))
    ov.save_model(model, out_xml, compress_to_fp16=(weight_format == "fp16"))
    return {"inputs": [sorted(i.get_names()) for i in model.inputs],
            "outputs": [sorted(o.get_names()) for o in model.outputs]}


def _load_input_spec(src: Path, input_spec: str | dict | None) -> dict | None:
    if isinstance(input_spec, dict):
        return input_spec
    candidates = [Path(input_spec)] if input_spec else [src.with_suffix(".input_spec.json"),
                                                         src.parent / INPUT_SPEC]
    for c in candidates:
        if c.is_file():
            try:
                return json.loads(c.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise GateInputError("USER_CONFIG_ERROR", f"input spec {c} is not valid JSON: {exc}") from exc
        elif input_spec:
            raise GateInputError("USER_CONFIG_ERROR", f"input spec not found: {c}")
    return None


def convert(model: str, out_dir: str | os.PathLike, *, task: str | None = None, weight_format: str = "fp16",
            timeout: float = 900.0, trust_remote_code: bool = False, retry_int4: bool = True,
            input_spec: str | dict | None = None, source: SourceInfo | None = None) -> Conversion:
    """Convert ``model`` into ``out_dir`` (created; must not hold another IR). Never raises for model
    problems: a failed conversion is a ``Conversion`` with ``ok=False``. Bad *input* raises GateInputError."""
    if weight_format not in WEIGHT_FORMATS:
        raise GateInputError("USER_CONFIG_ERROR", f"unknown weight format {weight_format!r}; one of {WEIGHT_FORMATS}")
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise GateInputError("USER_CONFIG_ERROR", f"timeout must be a positive number of seconds, got {timeout!r}")
    info = source or detect_source(model, trust_remote_code)
    out_dir = Path(out_dir)
    path = KIND_PATH[info.kind]
    if info.kind == "openvino-ir":
        xml = Path(info.location)
        return Conversion(True, "existing", info.kind, task, weight_format, xml.parent, xml, 0.0, None,
                          "existing OpenVINO IR; nothing converted")
    out_dir.mkdir(parents=True, exist_ok=True)
    if (out_dir / IR_NAME).exists():
        raise GateInputError("USER_CONFIG_ERROR", f"{out_dir} already holds an IR; choose an empty output folder")
    log_path = out_dir / "conversion.log"
    resolved_task = _resolve_task(info, task)
    from modelgate.openvino import families
    family = families.family_for(resolved_task, info.config) if path == "optimum-cli" else None
    if family:  # the family's export task (e.g. speech seq2seq with past) and its IR layout
        resolved_task = families.export_task(family)
    spec = None
    if info.kind == "pytorch" or (info.kind == "onnx" and input_spec):
        spec = _load_input_spec(Path(info.location), input_spec)

    def attempt(wf: str) -> childproc.ChildResult:
        if path == "optimum-cli":
            return _export_optimum(info, out_dir, resolved_task, wf, timeout, trust_remote_code, log_path)
        if info.kind == "tf-savedmodel" and not _has_module("tensorflow"):
            return childproc.ChildResult(False, failure_class="USER_CONFIG_ERROR",
                                         detail="converting a TensorFlow SavedModel needs the tensorflow package "
                                                "(pip install tensorflow); it is not installed")
        if info.kind == "tf":
            argv = [str(Path(sys.executable).parent / "ovc"), info.location, "--output_model", str(out_dir / IR_NAME)]
            if wf != "fp16":
                argv += ["--compress_to_fp16", "False"]
            return childproc.run_command(argv, timeout=timeout, log_path=log_path)
        return childproc.run_function("modelgate.openvino.convert:convert_native",
                                      dict(kind=info.kind, src=info.location, out_xml=str(out_dir / IR_NAME),
                                           weight_format=wf, input_spec=spec, trust_remote_code=trust_remote_code),
                                      timeout=timeout, crash_class="CONVERSION_FAILED", error_class="CONVERSION_FAILED")

    res = attempt(weight_format)
    used_wf, retried = weight_format, False
    if not res.ok and retry_int4 and weight_format != "int4" and res.failure_class in RETRY_INT4_CLASSES:
        _clear(out_dir, keep={"conversion.log"})
        res2 = attempt("int4")
        retried = True
        if res2.ok:
            res, used_wf = res2, "int4"
        else:
            res2.detail = f"{res.detail}; int4 retry also failed: {res2.detail}"
            res = res2
    seconds = res.seconds
    unsupported = UNSUPPORTED_EXPORT.search(f"{res.log_tail}\n{res.detail}") if not res.ok and \
        path == "optimum-cli" else None
    if unsupported:  # optimum-intel itself cannot export it: say so, with its own words
        line = next((ln for ln in f"{res.log_tail}\n{res.detail}".splitlines() if unsupported.group(0) in ln), "")
        res = childproc.ChildResult(False, failure_class="MODEL_UNSUPPORTED", log_tail=res.log_tail,
                                    seconds=res.seconds, detail=f"optimum-intel cannot export this model "
                                    f"(task {resolved_task}): {line.strip()[:400]}")
    xml = out_dir / (families.MAIN_IR[family] if family else IR_NAME)
    missing = families.missing_irs(out_dir, family) if family else ([] if xml.is_file() else [IR_NAME])
    if res.ok and missing:
        res = childproc.ChildResult(False, failure_class="CONVERSION_FAILED", log_tail=res.log_tail,
                                    detail=f"converter exited 0 but wrote no {', '.join(missing)}"
                                    + (f" (a {family} export needs {', '.join(families.FAMILIES[family].irs)})"
                                       if family else ""))
    if res.log_tail and not log_path.exists():
        log_path.write_text(res.log_tail)
    if not res.ok:
        return Conversion(False, path, info.kind, resolved_task or None, used_wf, out_dir, None, seconds,
                          res.failure_class or "CONVERSION_FAILED", res.detail, log_path if log_path.exists() else None,
                          retried)
    if spec:
        atomic_write_json(out_dir / INPUT_SPEC, spec)
    conv = Conversion(True, path, info.kind, resolved_task or None, used_wf, out_dir, xml, seconds, None,
                      f"converted with {path} ({used_wf})" + (" after an int4 retry" if retried else ""),
                      log_path if log_path.exists() else None, retried)
    atomic_write_json(out_dir / CONVERSION_RECORD, {"source": info.location, "source_kind": info.kind,
                                                     "task": conv.task, "weight_format": used_wf,
                                                     "conversion_path": path, "versions": versions()})
    return conv


def _has_module(name: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(name) is not None


def _clear(out_dir: Path, keep: set[str]) -> None:
    for entry in out_dir.iterdir():
        if entry.name in keep:
            continue
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


# --------------------------------------------------------------------------- cached exports

def _dir_digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def export_cached(model_dir: str | os.PathLike, weight_format: str = "fp32", task: str | None = None,
                  timeout: float = 900.0, cache_dir: str | os.PathLike | None = None) -> Path:
    """An optimum-intel export of a LOCAL Hugging Face folder, cached by (content, format, task, versions).

    Returns the IR folder. Raises RuntimeError when the export fails (callers that need a verdict
    should call ``convert`` directly). ``cache_dir``: cache there instead of the build cache (a
    campaign's shared ``--artifact-dir``).
    """
    from modelgate.buildcache import cached_build

    model_dir = Path(model_dir)
    v = versions()
    recipe = {"source": _dir_digest(model_dir), "weight_format": weight_format, "task": task,
              "openvino": v.get("openvino"), "optimum-intel": v.get("optimum-intel"), "nncf": v.get("nncf")}

    def build(out: Path):
        conv = convert(str(model_dir), out, task=task, weight_format=weight_format, timeout=timeout,
                       retry_int4=False)
        if not conv.ok:
            raise RuntimeError(f"export of {model_dir} ({weight_format}) failed: {conv.failure_class}: {conv.detail}")

    return cached_build(f"export-{model_dir.name}-{weight_format}", recipe, build, root=cache_dir)
