"""Tokenizer parity: does the OpenVINO tokenizer/detokenizer reproduce the Hugging Face tokenizer?

optimum-intel converts the tokenizer with openvino-tokenizers and silently drops it when the
conversion fails, and a copied folder can ship another model's tokenizer. Both break a
deployment (openvino-genai reads ``openvino_tokenizer.xml``) while the model IR is fine.
"""
from __future__ import annotations

import os
from pathlib import Path

TOKENIZER_XML = "openvino_tokenizer.xml"
DETOKENIZER_XML = "openvino_detokenizer.xml"

# Texts that exercise the usual divergences: spaces, digits, punctuation, case, unicode.
DEFAULT_TEXTS = (
    "the quick brown fox jumps over the lazy dog",
    "Hello world! What is 2+2? The answer is 4.",
    "  leading and   repeated spaces\tand a tab",
    "models are converted to openvino and checked against the source",
    "café naïve — ünïcödé 東京 🙂",
)


class _FastTokenizer:
    """The Hugging Face fast tokenizer straight from tokenizer.json (what transformers' fast tokenizers
    wrap), without importing transformers: same ids, same post-processor, a fraction of the start-up."""

    def __init__(self, path: Path):
        from tokenizers import Tokenizer
        self._tok = Tokenizer.from_file(str(path))

    def __call__(self, texts, padding: bool | str = False, return_tensors: str | None = None,
                 add_special_tokens: bool = True, truncation: bool = False, max_length: int | None = None):
        import numpy as np
        if truncation and max_length:
            self._tok.enable_truncation(max_length)
        try:
            if isinstance(texts, str):
                return {"input_ids": self._tok.encode(texts, add_special_tokens=add_special_tokens).ids}
            encs = [self._tok.encode(t, add_special_tokens=add_special_tokens) for t in texts]
        finally:
            self._tok.no_truncation()
        width = max(len(e.ids) for e in encs)
        if padding == "max_length" and max_length:
            width = max(width, max_length)
        pad = self._tok.token_to_id("[PAD]")
        pad = pad if pad is not None else (self._tok.token_to_id("<pad>") or 0)
        ids = np.full((len(encs), width), pad, dtype=np.int64)
        mask = np.zeros((len(encs), width), dtype=np.int64)
        types = np.zeros((len(encs), width), dtype=np.int64)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)], mask[i, : len(e.ids)], types[i, : len(e.ids)] = e.ids, 1, e.type_ids
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=skip_special_tokens)


def load_hf_tokenizer(hf_dir: str | os.PathLike):
    """A callable tokenizer for ``hf_dir``: tokenizer.json directly when present, else AutoTokenizer."""
    tj = Path(hf_dir) / "tokenizer.json"
    if tj.is_file() and _fast_is_faithful(Path(hf_dir)):
        return _FastTokenizer(tj)
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(hf_dir))


def _fast_is_faithful(hf_dir: Path) -> bool:
    """tokenizer.json alone reproduces transformers unless tokenizer_config asks for extra behaviour."""
    import json
    try:
        cfg = json.loads((hf_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    # options transformers applies on top of tokenizer.json
    return not any(cfg.get(k) for k in ("add_bos_token", "add_eos_token", "do_lower_case", "add_prefix_space"))


def tokenizer_parity(hf_dir: str | os.PathLike, ov_dir: str | os.PathLike, texts=DEFAULT_TEXTS,
                     device: str = "CPU") -> dict:
    """Tokenize ``texts`` with the Hugging Face tokenizer of ``hf_dir`` and the OpenVINO tokenizer in ``ov_dir``.

    Returns a plain dict: ``present`` (tokenizer, detokenizer), per-text ``hf_ids`` / ``ov_ids`` /
    ``ids_match`` / ``ov_detokenized`` / ``hf_decoded`` / ``detok_match``, and the counts
    ``id_mismatches`` and ``detok_mismatches``. Detokenization is judged against the HF tokenizer's
    own decode of the same ids (a lossy tokenizer is not a conversion bug).
    """
    import numpy as np
    import openvino as ov
    import openvino_tokenizers  # noqa: F401  (registers the tokenizer ops with OpenVINO)
    ov_dir = Path(ov_dir)
    tok_xml, detok_xml = ov_dir / TOKENIZER_XML, ov_dir / DETOKENIZER_XML
    out = {"present": {"tokenizer": tok_xml.is_file(), "detokenizer": detok_xml.is_file()},
           "texts": [], "id_mismatches": 0, "detok_mismatches": 0, "n_texts": len(texts)}
    if not tok_xml.is_file():
        return out
    hf = load_hf_tokenizer(hf_dir)
    core = ov.Core()
    tok = core.compile_model(str(tok_xml), device)
    detok = core.compile_model(str(detok_xml), device) if detok_xml.is_file() else None
    for text in texts:
        hf_ids = [int(i) for i in hf(text)["input_ids"]]
        res = tok([text])
        ov_ids = [int(i) for i in np.asarray(res["input_ids"])[0]]
        row = {"text": text, "hf_ids": hf_ids, "ov_ids": ov_ids, "ids_match": hf_ids == ov_ids,
               "hf_decoded": hf.decode(hf_ids, skip_special_tokens=True)}
        if detok is not None:
            dres = detok(np.asarray([hf_ids], dtype=np.int64))
            row["ov_detokenized"] = str(np.asarray(dres["string_output"]).reshape(-1)[0])
            row["detok_match"] = row["ov_detokenized"] == row["hf_decoded"]
        else:
            row["ov_detokenized"], row["detok_match"] = None, False
        out["id_mismatches"] += not row["ids_match"]
        out["detok_mismatches"] += not row["detok_match"]
        out["texts"].append(row)
    return out
