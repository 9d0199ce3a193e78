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


# --------------------------------------------------------------------------- layer-wise verification inputs
# Enough inputs that every metric has resolution: many prompts of varied length (text and seeded
# random ids, each continued through the KV cache), one prompt reaching deep positions, and for
# encoders many sentences plus rows of the maximum length.

def _corpus_words() -> list[str]:
    from modelgate import data
    return " ".join(data.base_corpus()).split()


def text_ids(tokenizer, n: int, seed: int) -> list[int]:
    """``n`` token ids of shuffled corpus text (tokenized a sentence at a time: no length warnings)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    words = _corpus_words()
    ids: list[int] = []
    while len(ids) < n:
        chunk = rng.permutation(words)[:12]
        ids += [int(i) for i in tokenizer(" ".join(chunk), add_special_tokens=False)["input_ids"]]
    return ids[:n]


def decoder_sequences(tokenizer, vocab_size: int, count: int, min_len: int, max_len: int, continuation: int,
                      seed: int = DEFAULT_SEED) -> list[dict]:
    """``count`` sequences of prompt + ``continuation`` tokens; prompts log-spread in [min_len, max_len],
    half shuffled corpus text, half seeded random ids. Each is ``{"ids", "prefill"}``: the OpenVINO side
    runs the prefill in one call and the continuation through the KV cache (see the plan's ``chunked``)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        n = int(round(float(np.exp(rng.uniform(np.log(min_len), np.log(max_len))))))
        if k % 2 == 0:
            ids = text_ids(tokenizer, n + continuation, seed * 1000 + k)
        else:
            ids = [int(i) for i in rng.integers(0, vocab_size, n + continuation)]
        out.append({"ids": ids, "prefill": n})
    return out


def long_sequence(tokenizer, length: int, continuation: int, seed: int = DEFAULT_SEED + 7) -> dict:
    """One text sequence of ``length`` tokens whose last ``continuation`` go through the KV cache."""
    continuation = max(1, min(continuation, length - 1))
    return {"ids": text_ids(tokenizer, length, seed), "prefill": length - continuation}


def sampled_positions(length: int, count: int) -> list[int]:
    """``count`` of the positions 0..length-1: the first and last 8, log-spaced in between (deep ones included)."""
    import numpy as np

    if length <= count:
        return list(range(length))
    edge = list(range(8)) + list(range(length - 8, length))
    middle = np.unique(np.round(np.geomspace(8, length - 9, max(1, count - 16))).astype(int)).tolist()
    return sorted(set(edge) | {int(p) for p in middle})


def encoder_batches(tokenizer, sentences: int, batch: int, max_len: int, long_rows: int,
                    seed: int = DEFAULT_SEED) -> list[dict]:
    """``sentences`` corpus sentences of 3-40 words padded per batch, then ``long_rows`` rows of ``max_len``
    tokens. Arrays are int64 numpy, the tokenizer's own keys (a model input it does not give is zeros)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    words = _corpus_words()
    texts = []
    for _ in range(sentences):
        n = int(rng.integers(3, 41))
        texts.append(" ".join(rng.choice(words, size=n)))
    batches = [_encode(tokenizer, texts[i:i + batch], max_len, "longest") for i in range(0, len(texts), batch)]
    if long_rows:
        rows = [" ".join(rng.choice(words, size=max_len * 2)) for _ in range(long_rows)]
        batches.append(_encode(tokenizer, rows, max_len, "max_length"))
    return batches


def _encode(tokenizer, texts: list[str], max_len: int, padding: str) -> dict:
    import numpy as np

    enc = tokenizer(texts, padding=padding, truncation=True, max_length=max_len, return_tensors="np")
    return {k: np.asarray(v).astype(np.int64) for k, v in enc.items()}
