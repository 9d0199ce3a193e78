"""Seeded, realistic inputs per modality: real tokenized prompts for text, seeded random values
in each input's valid range for vision/audio/raw tensors -- never zeros.

Zeros of the minimum shape (a common choice) hide silent corruption (a zeroed weight times a
zero input is still zero) and can produce legitimate NaN (normalising an all-zero signal).
"""
from __future__ import annotations

# Prompts for text models: ordinary sentences, a question, numbers.
TEXT_PROMPTS = (
    "the quick brown fox jumps over the",
    "What is 2+2? The answer is",
    "models are converted to openvino and",
)
DEFAULT_SEED = 1234
DEFAULT_BATCH = 4
# Default value range per numpy dtype kind when the input spec gives none (data, not if-chains).
DEFAULT_RANGE = {"f": (0.0, 1.0), "i": (0, 16), "u": (0, 16), "b": (0, 2)}


def _rng(seed: int):
    import numpy as np
    return np.random.default_rng(seed)


def spec_inputs(spec: dict, seed: int = DEFAULT_SEED, batch: int | None = None) -> dict:
    """Arrays for an ``input_spec.json`` dict: ``{"inputs": [{name, shape, dtype, low?, high?}]}``.

    Values are drawn uniformly from [low, high) (integers: [low, high)). ``batch`` replaces the
    leading dimension when given (the model must have a dynamic batch axis).
    """
    import numpy as np

    rng = _rng(seed)
    out = {}
    for i, item in enumerate(spec.get("inputs") or []):
        dtype = np.dtype(item.get("dtype", "float32"))
        shape = [int(d) for d in item["shape"]]
        if batch is not None and shape:
            shape[0] = batch
        lo, hi = item.get("low"), item.get("high")
        dlo, dhi = DEFAULT_RANGE.get(dtype.kind, (0.0, 1.0))
        lo, hi = (dlo if lo is None else lo), (dhi if hi is None else hi)
        if dtype.kind == "f":
            arr = rng.uniform(lo, hi, size=shape).astype(dtype)
        else:
            arr = rng.integers(int(lo), max(int(hi), int(lo) + 1), size=shape).astype(dtype)
        out[item.get("name") or f"input_{i}"] = arr
    return out


def port_spec(ports: list[dict]) -> dict:
    """An input spec from compiled-model port descriptions ``[{name, shape (None = dynamic), dtype}]``.

    Dynamic dimensions become 1 for the batch axis and 8 elsewhere: a real extent, not the minimum.
    """
    items = []
    for p in ports:
        shape = [d if isinstance(d, int) and d > 0 else (1 if axis == 0 else 8) for axis, d in enumerate(p["shape"])]
        items.append({"name": p["name"], "shape": shape, "dtype": p["dtype"]})
    return {"inputs": items}


def text_batch(tokenizer, texts=TEXT_PROMPTS) -> dict:
    """Padded numpy arrays (input_ids, attention_mask, token_type_ids when the tokenizer makes them)."""
    enc = tokenizer(list(texts), padding=True, return_tensors="np")
    return {k: v.astype("int64") for k, v in enc.items()}
