"""Defects a day-0 release must catch: a source model that quantizes badly, and a deliberately broken build.

- ``outlier_llm()``: the trained fixture LLM with four dead MLP neurons (their ``up_proj`` rows zeroed, so
  their activation is exactly 0) whose ``down_proj`` columns hold outlier weights in half of the output
  rows. In f32 the outliers multiply zeros and change nothing; per-channel int8 weight quantization
  spends each affected row's whole 8-bit range on the outlier and rounds the row's real weights to zero.
  The int8 build loads, serves, keeps its precision promises: only an evaluation that looks at the
  answers can see what it lost. Cached in the build cache like the other fixtures.
- ``scaled_weight_ir(src, dst, match, factor)``: a copy of an f32 IR with the weights of the MatMul
  whose constant's name contains ``match`` multiplied by ``factor`` (a broken build of the same model).
"""
from __future__ import annotations

import shutil
from pathlib import Path

from modelgate import fixtures
from modelgate.buildcache import cached_build

OUTLIER_RECIPE = {"base": "trained-llama", "layer": 1, "neurons": 4, "rows_fraction": 0.5, "magnitude": 1000.0,
                  "seed": 0}
SIDE_FILES = ("chat_template.jinja", "generation_config.json")


def _build_outliers(r: dict, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = fixtures.hf_model(r["base"])
    model = AutoModelForCausalLM.from_pretrained(src)
    mlp = model.model.layers[r["layer"]].mlp
    down = mlp.down_proj.weight.data
    rows = torch.randperm(down.shape[0], generator=torch.Generator().manual_seed(r["seed"]))
    rows = rows[:int(down.shape[0] * r["rows_fraction"])]
    outlier = r["magnitude"] * down.abs().max()
    with torch.no_grad():
        for j in range(r["neurons"]):
            mlp.up_proj.weight.data[j, :] = 0.0      # the neuron's activation is exactly 0 ...
            down[rows, j] = outlier                  # ... so its outlier weights change nothing in f32
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(src).save_pretrained(out)
    for name in SIDE_FILES:
        if (src / name).is_file() and not (out / name).exists():
            shutil.copy2(src / name, out / name)


def outlier_llm() -> Path:
    """The trained fixture LLM with quantization-hostile outlier weights (see the module docstring)."""
    return cached_build("trained-llama-outliers", OUTLIER_RECIPE, lambda out: _build_outliers(OUTLIER_RECIPE, out))


def scaled_weight_ir(src: Path, dst: Path, match: str, factor: float) -> Path:
    """Copy the IR folder ``src`` to ``dst`` with every f32 weight constant whose name contains ``match``
    multiplied by ``factor``; raises when nothing matches (a fault that changes nothing proves nothing)."""
    import numpy as np
    import openvino as ov

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("openvino_model.xml", "openvino_model.bin", ".*"))
    model = ov.Core().read_model(str(Path(src) / "openvino_model.xml"))
    hits = 0
    for op in model.get_ops():
        if op.get_type_name() != "Constant" or match not in op.get_friendly_name():
            continue
        data = op.get_data()
        if data.dtype != np.float32 or data.ndim != 2:
            continue
        scaled = ov.opset13.constant((data * factor).astype(np.float32))
        scaled.set_friendly_name(op.get_friendly_name())
        op.output(0).replace(scaled.output(0))
        hits += 1
    if not hits:
        raise ValueError(f"no 2-D f32 constant named like {match!r} in {src}")
    ov.save_model(model, str(Path(dst) / "openvino_model.xml"), compress_to_fp16=False)
    return Path(dst)
