"""Observe a quantized IR and its source for the PTQ gate (reads the real files).

What is measured (the pure ``modelgate.gates.ptq.evaluate_ptq`` decides):
- the IR's weight constants by element type (count, bytes, parameters), via
  ``modelgate.openvino.ir``; their bytes plus the decompression scales/zero points;
- the source's weight parameters (tensors of rank >= 2) from safetensors headers,
  a PyTorch state dict, ONNX initializers or an OpenVINO IR, and its weight-file bytes;
- key-level differences of the metadata files (config, generation config, tokenizer files);
- whether the model is an LLM (from config.json architectures, via the task table).
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

from modelgate.contract import INPUT_CLASSES, GateFailure, GateInputError

# Files whose content must survive quantization unchanged (apart from gates.ptq.BENIGN_METADATA).
METADATA_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                  "special_tokens_map.json", "added_tokens.json", "chat_template.jinja", "vocab.json",
                  "merges.txt", "vocab.txt", "tokenizer.model", "spiece.model", "preprocessor_config.json")
# Tasks whose models weight-compression recipes are for.
LLM_TASKS = frozenset({"text-generation", "text-generation-with-past", "text2text-generation",
                       "text2text-generation-with-past", "image-text-to-text"})
MAX_DIFFS = 200
# quantization-parameter roles whose bytes count toward the compressed weights' size
QPARAM_ROLES = frozenset({"scale", "zero_point"})


# --------------------------------------------------------------------------- source weights

def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _safetensors_params(files: list[Path]) -> int:
    """Parameters of rank >= 2 tensors, read from the safetensors headers only (no weights loaded)."""
    total = 0
    for f in files:
        try:
            with open(f, "rb") as fh:
                (n,) = struct.unpack("<Q", fh.read(8))
                if n <= 0 or n > 100 * 1024 * 1024:
                    raise ValueError(f"implausible header length {n}")
                header = json.loads(fh.read(n))
        except (OSError, ValueError, struct.error) as exc:
            raise GateInputError("USER_CONFIG_ERROR", f"{f} is not a readable safetensors file: {exc}") from exc
        if not isinstance(header, dict):
            raise GateInputError("USER_CONFIG_ERROR", f"{f} has a safetensors header that is not an object")
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            shape = meta.get("shape") if isinstance(meta, dict) else None
            if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
                raise GateInputError("USER_CONFIG_ERROR", f"{f}: tensor {name!r} has no valid shape")
            if len(shape) >= 2:
                total += _numel(shape)
    return total


def _torch_params(files: list[Path]) -> int:
    import torch

    total = 0
    for f in files:
        try:
            state = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as exc:  # any unpickling error means: not a state dict we can read
            raise GateInputError("USER_CONFIG_ERROR", f"{f} is not a readable PyTorch state dict: {exc}") from exc
        total += sum(t.numel() for t in state.values() if hasattr(t, "dim") and t.dim() >= 2)
    return total


def _onnx_params(path: Path) -> int:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise GateInputError("USER_CONFIG_ERROR", f"{path} is not a readable ONNX model: {exc}") from exc
    return sum(_numel(t.dims) for t in model.graph.initializer if len(t.dims) >= 2)


def _ir_weights(xml: Path) -> list[dict]:
    from modelgate.openvino.ir import weight_constants

    try:
        return weight_constants(xml)
    except GateInputError:
        raise
    except Exception as exc:  # OpenVINO raises RuntimeError subclasses for unreadable IRs
        raise GateFailure("INTEGRITY_MISMATCH", f"OpenVINO cannot read the IR {xml}: {str(exc)[:500]}") from exc


def _model_xmls(folder: Path) -> list[Path]:
    return [x for x in sorted(folder.glob("*.xml")) if "tokenizer" not in x.name]


def _find_ir(path: Path) -> Path:
    from modelgate.openvino.convert import IR_NAME

    if path.is_file():
        return path
    if (path / IR_NAME).is_file():
        return path / IR_NAME
    xmls = _model_xmls(path)
    if len(xmls) == 1:
        return xmls[0]
    if not xmls:
        raise GateInputError("USER_CONFIG_ERROR", f"no OpenVINO IR (.xml) in {path}")
    raise GateFailure("MODEL_UNSUPPORTED", f"{path} holds {len(xmls)} model IRs ({[x.name for x in xmls]}): "
                      "multi-model (encoder-decoder) IRs are not supported by gate_ptq; pass one .xml")


def _ir_bytes(xml: Path) -> int:
    binf = xml.with_suffix(".bin")
    return xml.stat().st_size + (binf.stat().st_size if binf.is_file() else 0)


def source_weights(source: Path) -> dict:
    """{kind, params, bytes, files} of a local source model (folder or file)."""
    if not source.exists():
        raise GateInputError("USER_CONFIG_ERROR", f"source not found: {source} (gate_ptq needs a local source)")
    if source.is_dir():
        st = sorted(source.glob("*.safetensors"))
        if st:
            return {"kind": "safetensors", "params": _safetensors_params(st),
                    "bytes": sum(f.stat().st_size for f in st), "files": [f.name for f in st]}
        pt = sorted(source.glob("pytorch_model*.bin"))
        if pt:
            return {"kind": "pytorch", "params": _torch_params(pt), "bytes": sum(f.stat().st_size for f in pt),
                    "files": [f.name for f in pt]}
        if _model_xmls(source):
            source = _find_ir(source)
        else:
            onnx_files = sorted(source.glob("*.onnx"))
            if len(onnx_files) != 1:
                raise GateInputError("USER_CONFIG_ERROR", f"no weights found in source folder {source} "
                                     "(safetensors, pytorch_model*.bin, one .onnx or an OpenVINO IR)")
            source = onnx_files[0]
    suffix = source.suffix.lower()
    if suffix == ".onnx":
        return {"kind": "onnx", "params": _onnx_params(source), "bytes": source.stat().st_size, "files": [source.name]}
    if suffix == ".xml":
        weights = [c for c in _ir_weights(source) if c["role"] == "weight"]
        return {"kind": "openvino-ir", "params": sum(c["numel"] for c in weights), "bytes": _ir_bytes(source),
                "files": [source.name, source.with_suffix(".bin").name]}
    if suffix == ".safetensors":
        return {"kind": "safetensors", "params": _safetensors_params([source]), "bytes": source.stat().st_size,
                "files": [source.name]}
    raise GateInputError("USER_CONFIG_ERROR",
                         f"unsupported source file {source} (.safetensors, .onnx, .xml or a folder)")


# --------------------------------------------------------------------------- metadata

def _short_value(v: Any) -> Any:
    text = json.dumps(v, sort_keys=True, default=str)
    return v if len(text) <= 200 else text[:197] + "..."


def _json_diffs(fname: str, a: Any, b: Any, prefix: str = "") -> list[dict]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            key = f"{prefix}.{k}" if prefix else str(k)
            if k not in b:
                out.append({"file": fname, "key": key, "change": "removed", "source": _short_value(a[k]),
                            "output": None})
            elif k not in a:
                out.append({"file": fname, "key": key, "change": "added", "source": None, "output": _short_value(b[k])})
            else:
                out += _json_diffs(fname, a[k], b[k], key)
            if len(out) > MAX_DIFFS:
                break
        return out
    if a != b:
        return [{"file": fname, "key": prefix, "change": "changed", "source": _short_value(a),
                 "output": _short_value(b)}]
    return []


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def metadata_diffs(source_dir: Path, output_dir: Path) -> tuple[list[dict], list[str]]:
    """(differences, files compared) between the metadata files of the source and the output."""
    diffs, compared = [], []
    for fname in METADATA_FILES:
        src, out = source_dir / fname, output_dir / fname
        if not src.is_file():
            continue
        compared.append(fname)
        if not out.is_file():
            diffs.append({"file": fname, "key": "", "change": "missing_in_output", "source": "present", "output": None})
            continue
        if fname.endswith(".json"):
            try:
                a = json.loads(src.read_text(encoding="utf-8"))
            except (OSError, ValueError, UnicodeDecodeError) as exc:
                raise GateInputError("USER_CONFIG_ERROR", f"source metadata {src} is not valid JSON: {exc}") from exc
            try:
                b = json.loads(out.read_text(encoding="utf-8"))
            except (OSError, ValueError, UnicodeDecodeError):
                diffs.append({"file": fname, "key": "", "change": "unreadable", "source": "valid JSON",
                              "output": "not valid JSON"})
                continue
            diffs += _json_diffs(fname, a, b)
        elif _sha(src) != _sha(out):
            diffs.append({"file": fname, "key": "", "change": "changed", "source": _sha(src), "output": _sha(out)})
    return diffs[:MAX_DIFFS], compared


def model_kind(config: dict | None) -> tuple[str, str | None]:
    """("llm" | "non-llm", model_type) from a config.json dict (no config: a non-LLM graph)."""
    if not isinstance(config, dict):
        return "non-llm", None
    from modelgate.openvino.tasks import TaskError, task_from_config

    try:
        task = task_from_config(config)
    except TaskError:
        task = None
    mt = config.get("model_type") if isinstance(config.get("model_type"), str) else None
    return ("llm" if task in LLM_TASKS else "non-llm"), mt


def _config(folder: Path) -> dict | None:
    p = folder / "config.json"
    if not p.is_file():
        return None
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise GateInputError("USER_CONFIG_ERROR", f"{p} is not valid JSON: {exc}") from exc
    return cfg if isinstance(cfg, dict) else None


# --------------------------------------------------------------------------- observation

def observe_ptq(checkpoint_dir: str | os.PathLike, source: str | os.PathLike, recipe: dict) -> dict:
    """The observation ``evaluate_ptq`` judges, measured from the real IR and source.

    Raises GateInputError (missing/unreadable inputs, exit 2) or GateFailure (an IR OpenVINO
    cannot read: INTEGRITY_MISMATCH; multi-model IRs: MODEL_UNSUPPORTED).
    """
    ckpt, src = Path(checkpoint_dir), Path(source)
    if not ckpt.exists():
        raise GateInputError("USER_CONFIG_ERROR", f"checkpoint not found: {ckpt}")
    xml = _find_ir(ckpt)
    if not xml.with_suffix(".bin").is_file():
        raise GateFailure("INTEGRITY_MISMATCH", f"{xml} has no weights file {xml.with_suffix('.bin').name}")
    out_dir = xml.parent
    src_info = source_weights(src)
    consts = _ir_weights(xml)
    lpc: dict[str, dict] = {}
    for c in consts:
        if c["role"] == "weight":
            slot = lpc.setdefault(c["element_type"], {"count": 0, "bytes": 0, "params": 0})
            slot["count"] += 1
            slot["bytes"] += c["nbytes"]
            slot["params"] += c["numel"]
    weight_bytes = sum(c["nbytes"] for c in consts if c["role"] == "weight")
    qparam_bytes = sum(c["nbytes"] for c in consts if c["role"] in QPARAM_ROLES)
    src_dir = src if src.is_dir() else src.parent
    diffs, compared = metadata_diffs(src_dir, out_dir)
    kind, mtype = model_kind(_config(src_dir) if _config(src_dir) is not None else _config(out_dir))
    return {
        "recipe": recipe,
        "model_type": mtype,
        "model_kind": kind,
        "source_kind": src_info["kind"],
        "source_weight_params": src_info["params"],
        # fp32-equivalent bytes: the size ratio is measured against an fp32 source whatever its dtype
        "source_weight_bytes": src_info["params"] * 4,
        "source_bytes": src_info["bytes"],
        "output_weight_bytes": weight_bytes + qparam_bytes,
        "output_qparam_bytes": qparam_bytes,
        "output_bytes": _ir_bytes(xml),
        "layer_precision_counts": lpc,
        "metadata_diffs": diffs,
        "metadata_files_compared": compared,
        "checkpoint": str(ckpt),
        "ir_xml": str(xml),
        "source": str(src),
    }


OBSERVE_TIMEOUT = 600.0


def observe_ptq_in_child(checkpoint: str, source: str, recipe: dict, timeout: float = OBSERVE_TIMEOUT) -> dict:
    """``observe_ptq`` in a child process (OpenVINO reads the IR there, so a crash is a verdict).

    Errors come back as GateInputError (the input could not be judged) or GateFailure.
    """
    from modelgate import childproc

    res = childproc.run_function("modelgate.release.ptq_observe:observe_ptq",
                                 {"checkpoint_dir": checkpoint, "source": source, "recipe": recipe},
                                 timeout=timeout, crash_class="INTEGRITY_MISMATCH", error_class="UNKNOWN")
    if res.ok:
        return res.value
    cls = res.failure_class or "UNKNOWN"
    if cls in INPUT_CLASSES:
        raise GateInputError(cls, res.detail)
    raise GateFailure(cls, res.detail)
