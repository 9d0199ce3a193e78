"""Will a verification fit in memory? Estimated up front, refused before anything runs.

A verify that the kernel's OOM killer stops halfway leaves no verdict and may take other work with
it. The stages run one after the other (export, source reference, OpenVINO run), so the peak is
the largest stage, estimated from the checkpoint's parameter count and stored bytes (read from the
safetensors headers, no tensor loaded) and compared with what this process may still allocate
(MemAvailable, capped by a cgroup limit). Too large: RESOURCE_EXHAUSTED with the estimate.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

from modelgate.contract import GateFailure

GIB = 1 << 30
SAFETENSORS_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                     "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
# Calibrated on a 2-core, 24 GiB machine with random-weight llamas of 200 M and 800 M parameters
# (scripts/bench_verify.py): whole-process-tree peaks of each stage.
PROCESS_BASE = 0.9 * GIB      # interpreter, torch / openvino / optimum imports
EXPORT_FACTOR = 1.75          # x bytes of the model as loaded by the exporter
SOURCE_FACTOR = 1.25          # x f32 bytes of the model (weights + activations of the long prompt)
OV_FACTOR = {"fp32": 2.0, "fp16": 2.0, "int8": 2.3, "int4": 2.6}  # x bytes of the IR's weights
IR_BYTES_PER_PARAM = {"fp32": 4.0, "fp16": 2.0, "int8": 1.0, "int4": 0.6}
SAFETY = 1.10


def _tensor_headers(model_dir: str | Path):
    """(dtype, element count) of every tensor in the checkpoint's safetensors headers (no tensor loaded);
    unreadable files are skipped."""
    for f in sorted(Path(model_dir).glob("*.safetensors")):
        try:
            with open(f, "rb") as fh:
                header = json.loads(fh.read(struct.unpack("<Q", fh.read(8))[0]))
        except (OSError, ValueError, struct.error):
            continue
        for name, meta in header.items():
            if name == "__metadata__" or not isinstance(meta, dict):
                continue
            n = 1
            for d in meta.get("shape", []):
                n *= int(d)
            yield str(meta.get("dtype")), n


def checkpoint_params(model_dir: str | Path) -> tuple[int, int]:
    """(parameter count, stored bytes) from the safetensors headers; (0, 0) when there are none."""
    params, stored = 0, 0
    for dtype, n in _tensor_headers(model_dir):
        params += n
        stored += n * SAFETENSORS_BYTES.get(dtype, 4)
    return params, stored


def checkpoint_float_dtype(model_dir: str | Path) -> str | None:
    """The one safetensors dtype ("F32", "BF16", "F16"...) every floating-point tensor of the checkpoint
    is stored in, from the headers alone; None when they differ (a source loaded in one 16-bit dtype
    would round the others) or there are no safetensors files."""
    dtypes = {dtype for dtype, _ in _tensor_headers(model_dir) if dtype.startswith(("F", "BF"))}
    return dtypes.pop() if len(dtypes) == 1 else None


def available_bytes() -> int | None:
    """What this process tree may still allocate: MemAvailable, capped by a cgroup v2/v1 limit."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except OSError:
        return None
    for limit, current in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                           ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                            "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            raw = Path(limit).read_text().strip()
            if raw != "max" and int(raw) < (1 << 60):
                found.append(int(raw) - int(Path(current).read_text().strip()))
                break
        except (OSError, ValueError):
            continue
    return min(found) if found else None


def estimate_verify(model_dir: str | Path, config: dict, weight_format: str, convert: bool) -> dict:
    """Peak bytes of each stage and of the whole verification (the largest stage)."""
    params, stored = checkpoint_params(model_dir)
    sixteen_bit = stored and stored < 3 * params
    loaded = params * (2 if sixteen_bit and weight_format != "fp32" else 4)
    # a 16-bit checkpoint stays 16-bit in the source run (modules compute in f32 one at a time): its
    # weights cost their stored bytes, the activations the same share of the f32 size as before
    source_weights = params * 2 if checkpoint_float_dtype(model_dir) in ("BF16", "F16") else params * 4
    stages = {"source": PROCESS_BASE + source_weights + (SOURCE_FACTOR - 1.0) * params * 4,
              "openvino": PROCESS_BASE + OV_FACTOR.get(weight_format, 2.0) * params
              * IR_BYTES_PER_PARAM.get(weight_format, 2.0)}
    if convert:
        stages["export"] = PROCESS_BASE + EXPORT_FACTOR * loaded
    peak = max(stages.values()) * SAFETY
    return {"params": params, "checkpoint_bytes": stored, "stages_bytes": {k: int(v) for k, v in stages.items()},
            "estimated_peak_bytes": int(peak), "available_bytes": available_bytes(),
            "rule": "largest stage x 1.1: export 0.9 GiB + 1.75 x loaded bytes; source 0.9 GiB + stored weight bytes "
                    "(f32 bytes for an f32 checkpoint) + 0.25 x f32 bytes; "
                    "OpenVINO 0.9 GiB + 2-2.6 x IR weight bytes"}


def refuse_if_too_large(estimate: dict) -> None:
    """Raise RESOURCE_EXHAUSTED (with the estimate) when the verification would not fit."""
    need, have = estimate["estimated_peak_bytes"], estimate["available_bytes"]
    if have is None or not estimate["params"] or need <= have:
        return
    raise GateFailure("RESOURCE_EXHAUSTED",
                      f"this verification needs about {need / GIB:.1f} GiB at its peak "
                      f"({estimate['params'] / 1e9:.2f} B parameters) but only {have / GIB:.1f} GiB is "
                      "available; nothing was run. Free memory, use a larger machine, or verify a smaller "
                      "weight format (int4).",
                      estimate=json.dumps(estimate))
