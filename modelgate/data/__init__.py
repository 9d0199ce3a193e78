"""The pack's built-in data. Plain data, read from the files beside this module; no model, no hub.

Fixture data (what the tiny fixtures are trained on; fits only them):
- ``color_facts.json``: object -> color facts the trained LLM fixture learns; the
  ``fixture:color-facts`` eval of the day-0 release and the certification skill.
- ``corpus.txt``: general sentences every fixture tokenizer is trained on.
- counting lines ("one two three four five"): held-out-style text from the same grammar.
- scikit-learn's digits (``digits_data``): the image-classifier fixture's train and eval data.

General data (written for the pack, license-clean, for any model):
- ``similarity_prompts.jsonl``: 240 prompts in 8 domains, the day-0 answer-similarity default;
- ``calibration_text.jsonl``: 64 paragraphs of general text, the default calibration set of
  data-aware quantization.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


@functools.lru_cache(maxsize=1)
def _facts() -> tuple[tuple[str, str], ...]:
    return tuple((o, c) for o, c in json.loads((HERE / "color_facts.json").read_text(encoding="utf-8"))["facts"])


def color_facts() -> list[tuple[str, str]]:
    """(prompt, answer) pairs the trained LLM fixture learns: exact-match eval data."""
    return [(f"the color of {o} is", c) for o, c in _facts()]


def color_sentences() -> list[str]:
    """The facts as training sentences: "the color of <object> is <color> ."."""
    return [f"the color of {o} is {c} ." for o, c in _facts()]


def base_corpus() -> list[str]:
    """Every fixture tokenizer's training text: the general sentences, then the color sentences."""
    lines = (HERE / "corpus.txt").read_text(encoding="utf-8").splitlines()
    return [ln for ln in lines if ln.strip()] + color_sentences()


def counting_lines(n: int, start: int = 0) -> list[str]:
    """Held-out-style text from the same grammar as the trained LLM's corpus."""
    return [" ".join(NUMBER_WORDS[i % 6:i % 6 + 5]) for i in range(start, start + n)]


def trained_lm_corpus() -> list[str]:
    """What the trained LLM fixture is trained on: the color sentences and six counting lines."""
    return color_sentences() + counting_lines(6)


def digits_data():
    """scikit-learn's digits: (x_train, y_train, x_test, y_test), images float32 in [0, 1], NCHW."""
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(x))
    split = int(0.75 * len(x))
    return x[idx[:split]], y[idx[:split]], x[idx[split:]], y[idx[split:]]
