"""Real evaluations of an OpenVINO IR on data that ships with the pack or a package.

Tasks are a data table (``TASKS``): each names its metric, scale, direction, the model kind
it applies to, how its samples are built and which child-process body scores them.
- ``digits_top1``: top-1 of an image classifier on scikit-learn's digits (450 test images);
- ``lm_exact_match``: greedy continuation of the trained LLM's color facts and counting
  sequences, first word against the known answer (openvino-genai, as served);
- ``lm_perplexity``: mean per-line perplexity on text of the trained LLM's grammar (OpenVINO
  runtime logits; lower is better, scale ``unbounded``);
- ``embedding_similarity``: cosine between the IR's mean-pooled sentence embeddings and the
  PyTorch source model's on a fixed sentence set (negative cosine scores 0).

Every scored sample becomes a JSONL record ``{id, score, prediction, reference}`` whose mean is
the task score; the summary follows ``schemas/run-summary.schema.json`` and carries the
``eval_config_sha256`` that makes baseline/candidate parity checkable.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import time
from pathlib import Path

from modelgate import childproc
from modelgate.contract import GateInputError, atomic_write_json, atomic_write_text, schema_errors

EMBEDDING_SENTENCES = [
    "A man is playing a guitar on the stage.", "Someone plays an instrument in front of an audience.",
    "The cat sleeps on the warm windowsill.", "A kitten is napping in the sun by the window.",
    "The stock market fell sharply this morning.", "Shares dropped quickly at the opening bell.",
    "She is cooking pasta for dinner.", "A woman prepares a meal in the kitchen.",
    "The train arrives at the station at noon.", "Children are building a sandcastle on the beach.",
    "It is raining heavily in the city tonight.", "The weather forecast predicts snow tomorrow.",
    "He repaired the bicycle's flat tire.", "A mechanic fixes the wheel of a bike.",
    "The library closes early on Sundays.", "Quantized models must match their baseline.",
    "OpenVINO runs neural networks on the CPU.", "The release was delayed by a failing test.",
    "Two dogs are running through a field.", "A puppy chases a ball across the grass.",
    "The chef tastes the soup before serving.", "Astronomers discovered a new distant planet.",
    "The spacecraft landed safely on the moon.", "Farmers harvest wheat at the end of summer.",
    "The museum displays ancient pottery.", "A violinist performs a solo concert.",
    "The child is reading a picture book.", "Traffic is heavy on the highway today.",
    "The bakery sells fresh bread every morning.", "A storm knocked down several trees.",
    "The programmer fixed a bug in the parser.", "Students are taking an exam in the hall.",
]


def digits_samples() -> list[dict]:
    """The 450 held-out digits images (id, image, label)."""
    from modelgate import data

    _, _, x, y = data.digits_data()
    return [{"id": i, "input": x[i].tolist(), "reference": int(y[i])} for i in range(len(y))]


# 1797 digits, 75 % train split in data.digits_data -> 450 held-out images
DIGITS_TEST_SAMPLES = 450


def digits_fingerprint() -> tuple[int, str]:
    """(samples, sha256) of the digits test set without importing scikit-learn (keeps a resumed run fast):
    the hash of the data file scikit-learn ships plus the split recipe of ``modelgate.data.digits_data``."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    data = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    h = hashlib.sha256(b"digits-split:default_rng(0),75%,test;")
    h.update(data.read_bytes())
    return DIGITS_TEST_SAMPLES, h.hexdigest()


def exact_match_samples() -> list[dict]:
    """Prompts with one known next word: the trained LLM's color facts and counting sequences."""
    from modelgate import data

    items = [{"id": f"color-{i}", "input": p, "reference": a} for i, (p, a) in enumerate(data.color_facts())]
    words = data.NUMBER_WORDS
    for start in range(6):
        for length in range(2, 5):
            items.append({"id": f"count-{start}-{length}", "input": " ".join(words[start:start + length]),
                          "reference": words[start + length]})
    return items


def perplexity_samples() -> list[dict]:
    """Lines of the trained LLM's grammar (color facts and counting lines)."""
    from modelgate import data

    lines = data.trained_lm_corpus()
    return [{"id": f"line-{i}", "input": ln, "reference": None} for i, ln in enumerate(lines)]


def embedding_samples() -> list[dict]:
    return [{"id": f"sent-{i}", "input": s, "reference": None} for i, s in enumerate(EMBEDDING_SENTENCES)]


# task -> how it is scored. model_kind: what --model must be for the task to apply.
TASKS: dict[str, dict] = {
    "digits_top1": {"metric": "top1", "scale": "unit", "higher_is_better": True, "model_kind": "classifier",
                    "samples": digits_samples, "fingerprint": digits_fingerprint, "body": "digits_body"},
    "lm_exact_match": {"metric": "exact_match", "scale": "unit", "higher_is_better": True, "model_kind": "llm",
                       "samples": exact_match_samples, "body": "exact_match_body"},
    "lm_perplexity": {"metric": "perplexity", "scale": "unbounded", "higher_is_better": False, "model_kind": "llm",
                      "samples": perplexity_samples, "body": "perplexity_body"},
    "embedding_similarity": {"metric": "cosine", "scale": "unit", "higher_is_better": True, "model_kind": "encoder",
                             "samples": embedding_samples, "body": "embedding_body"},
}
DEFAULT_TASKS = {"classifier": ["digits_top1"], "llm": ["lm_exact_match", "lm_perplexity"],
                 "encoder": ["embedding_similarity"]}
GENERATION = {"max_new_tokens": 6, "do_sample": False, "add_special_tokens": False}
EVAL_TIMEOUT = 900.0


def _data_sha(samples: list[dict]) -> str:
    text = json.dumps([(s["id"], s["input"], s["reference"]) for s in samples], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def resolve_tasks(tasks: list[str] | None, model_kind: str) -> list[str]:
    """The tasks to run for a model kind; unknown or inapplicable tasks -> GateInputError (exit 2)."""
    if not tasks:
        if model_kind not in DEFAULT_TASKS:
            raise GateInputError("USER_CONFIG_ERROR", f"no evaluation task applies to a {model_kind} model")
        return list(DEFAULT_TASKS[model_kind])
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise GateInputError("USER_CONFIG_ERROR", f"unknown eval task(s) {unknown}; known: {sorted(TASKS)}")
    wrong = [t for t in tasks if TASKS[t]["model_kind"] != model_kind]
    if wrong:
        raise GateInputError("USER_CONFIG_ERROR", f"task(s) {wrong} do not apply to a {model_kind} model "
                             f"(they need: {', '.join(TASKS[t]['model_kind'] for t in wrong)})")
    return list(dict.fromkeys(tasks))


def make_eval_config(tasks: list[str], *, limit: int | None = None, seed: int = 0, device: str = "CPU",
                     reference_model: str | None = None) -> dict:
    """Everything that decides the scores; baseline and candidate must share it byte for byte."""
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 2):
        raise GateInputError("USER_CONFIG_ERROR", f"--limit must be an integer >= 2, got {limit!r}")
    specs = {}
    for t in tasks:
        if "fingerprint" in TASKS[t]:
            n, sha = TASKS[t]["fingerprint"]()
            n = min(n, limit) if limit else n
        else:
            samples = TASKS[t]["samples"]()[:limit] if limit else TASKS[t]["samples"]()
            n, sha = len(samples), _data_sha(samples)
        specs[t] = {"metric": TASKS[t]["metric"], "samples": n, "data_sha256": sha}
    cfg = {"tasks": sorted(tasks), "seed": seed, "limit": limit, "device": device, "task_specs": specs,
           "generation": dict(GENERATION)}
    if "embedding_similarity" in tasks:
        cfg["reference_model"] = reference_model
    return cfg


def eval_config_sha256(cfg: dict) -> str:
    from modelgate.gates.run import eval_config_sha256 as _sha

    return _sha(cfg)


def artifact_sha256(ir_dir: str | Path) -> str:
    """sha256 over the IR's .xml and .bin (what is evaluated is what is published)."""
    ir_dir = Path(ir_dir)
    h = hashlib.sha256()
    for name in ("openvino_model.xml", "openvino_model.bin"):
        p = ir_dir / name
        if not p.is_file():
            raise GateInputError("USER_CONFIG_ERROR", f"evaluated artifact missing: {p}")
        h.update(name.encode())
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- child bodies

def _first_word(text: str) -> str | None:
    m = re.search(r"[A-Za-z]+", text)
    return m.group(0).lower() if m else None


def digits_body(ir_dir: str, samples: list[dict], cfg: dict) -> dict:
    import numpy as np
    import openvino as ov

    compiled = ov.Core().compile_model(str(Path(ir_dir) / "openvino_model.xml"), cfg["device"])
    x = np.asarray([s["input"] for s in samples], dtype=np.float32)
    logits = np.asarray(compiled(x)[compiled.output(0)])
    recs, errors = [], []
    for s, row in zip(samples, logits):
        if not np.isfinite(row).all():
            errors.append({"code": "INVALID_PREDICTION", "message": "non-finite logits", "sample_id": s["id"]})
            continue
        pred = int(row.argmax())
        recs.append({"id": s["id"], "score": float(pred == s["reference"]), "prediction": pred,
                     "reference": s["reference"]})
    return {"records": recs, "errors": errors}


def exact_match_body(ir_dir: str, samples: list[dict], cfg: dict) -> dict:
    import openvino_genai as ov_genai

    pipe = ov_genai.LLMPipeline(ir_dir, cfg["device"])
    tok = pipe.get_tokenizer()
    gen = ov_genai.GenerationConfig()
    gen.max_new_tokens = cfg["generation"]["max_new_tokens"]
    gen.do_sample = cfg["generation"]["do_sample"]
    recs, errors = [], []
    for s in samples:
        try:
            # no chat template, no BOS: the fixture LM was trained on raw lines
            res = pipe.generate(tok.encode(s["input"], add_special_tokens=cfg["generation"]["add_special_tokens"]), gen)
            text = tok.decode(res.tokens[0])
        except Exception as exc:  # one failed sample is an accounted error, not a crashed run
            errors.append({"code": "SCORER_EXCEPTION", "message": f"{type(exc).__name__}: {exc}"[:300],
                           "sample_id": s["id"]})
            continue
        word = _first_word(text)
        recs.append({"id": s["id"], "score": float(word == s["reference"]), "prediction": text,
                     "reference": s["reference"]})
    return {"records": recs, "errors": errors}


def _ov_logits(compiled, ids):
    import numpy as np

    req = compiled.create_infer_request()
    names = {next(iter(i.get_names())) for i in compiled.inputs}
    n = ids.shape[1]
    feed = {"input_ids": ids}
    if "attention_mask" in names:
        feed["attention_mask"] = np.ones_like(ids)
    if "position_ids" in names:
        feed["position_ids"] = np.arange(n, dtype=np.int64)[None, :]
    if "beam_idx" in names:
        feed["beam_idx"] = np.zeros(1, dtype=np.int32)
    req.reset_state()
    req.infer(feed)
    return np.asarray(req.get_tensor("logits").data)


def perplexity_body(ir_dir: str, samples: list[dict], cfg: dict) -> dict:
    import numpy as np
    import openvino as ov
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ir_dir)
    compiled = ov.Core().compile_model(str(Path(ir_dir) / "openvino_model.xml"), cfg["device"])
    recs, errors = [], []
    for s in samples:
        ids = np.asarray([tok(s["input"] + " " + tok.eos_token)["input_ids"]], dtype=np.int64)
        logits = _ov_logits(compiled, ids)[0].astype(np.float64)
        if not np.isfinite(logits).all():
            errors.append({"code": "INVALID_PREDICTION", "message": "non-finite logits", "sample_id": s["id"]})
            continue
        logp = logits - logits.max(-1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
        nll = -np.mean([logp[i, ids[0, i + 1]] for i in range(ids.shape[1] - 1)])
        recs.append({"id": s["id"], "score": float(math.exp(nll)), "prediction": None, "reference": None})
    return {"records": recs, "errors": errors}


def embedding_body(ir_dir: str, samples: list[dict], cfg: dict) -> dict:
    import numpy as np
    import openvino as ov
    import torch
    from transformers import AutoModel, AutoTokenizer

    ref = cfg.get("reference_model")
    if not ref or not Path(ref).is_dir():
        raise GateInputError("USER_CONFIG_ERROR", f"embedding_similarity needs the source model folder, got {ref!r}")
    tok = AutoTokenizer.from_pretrained(ir_dir)
    compiled = ov.Core().compile_model(str(Path(ir_dir) / "openvino_model.xml"), cfg["device"])
    names = {next(iter(i.get_names())) for i in compiled.inputs}
    torch_model = AutoModel.from_pretrained(ref).eval()
    recs, errors = [], []
    for s in samples:
        enc = tok(s["input"], return_tensors="np")
        out = compiled({k: v for k, v in enc.items() if k in names})
        hidden = np.asarray(out[compiled.output(0)], dtype=np.float64)
        mask = enc["attention_mask"][..., None].astype(np.float64)
        emb = (hidden * mask).sum(1)[0] / mask.sum()
        with torch.no_grad():
            t_enc = tok(s["input"], return_tensors="pt")
            t_hidden = torch_model(**t_enc).last_hidden_state.double().numpy()
        t_emb = (t_hidden * mask).sum(1)[0] / mask.sum()
        denom = np.linalg.norm(emb) * np.linalg.norm(t_emb)
        if not np.isfinite(emb).all() or denom == 0:
            errors.append({"code": "INVALID_PREDICTION", "message": "non-finite or zero embedding",
                           "sample_id": s["id"]})
            continue
        cos = float(np.dot(emb, t_emb) / denom)
        recs.append({"id": s["id"], "score": max(0.0, min(1.0, cos)), "prediction": round(cos, 6),
                     "reference": "source-model embedding"})
    return {"records": recs, "errors": errors}


# --------------------------------------------------------------------------- run

def _stderr(scores: list[float]) -> float | None:
    n = len(scores)
    if n < 2:
        return None
    mean = math.fsum(scores) / n
    return math.sqrt(math.fsum((x - mean) ** 2 for x in scores) / (n - 1) / n)


def run_evaluation(ir_dir: str | Path, eval_config: dict, out_dir: str | Path, *, variant: str, run_id: str,
                   model_label: str, timeout: float = EVAL_TIMEOUT, progress=None) -> dict:
    """Score every task of ``eval_config`` on the IR; write records + run_summary.json; return the summary.

    A task whose child crashes or times out is FAILED with a structured error (INFRA/TIMEOUT),
    never silently dropped; the run is then FAILED.
    """
    ir_dir, out_dir = Path(ir_dir), Path(out_dir)
    t0 = time.monotonic()
    sha = artifact_sha256(ir_dir)
    tasks: dict[str, dict] = {}
    limit = eval_config.get("limit")
    for name in eval_config["tasks"]:
        spec = TASKS[name]
        samples = spec["samples"]()[:limit] if limit else spec["samples"]()
        if len(samples) != eval_config["task_specs"][name]["samples"]:
            raise RuntimeError(f"{name}: the eval config promises {eval_config['task_specs'][name]['samples']} "
                               f"samples, the data has {len(samples)}")
        if progress:
            progress(f"{variant}: {name} ({len(samples)} samples)")
        res = childproc.run_function(f"modelgate.openvino.evaluate:{spec['body']}",
                                     dict(ir_dir=str(ir_dir), samples=samples, cfg=eval_config),
                                     timeout=timeout, error_class="EVAL_SCORER_FAILED")
        entry = {"status": "COMPLETED", "metric": spec["metric"], "scale": spec["scale"],
                 "higher_is_better": spec["higher_is_better"], "expected_samples": len(samples),
                 "scored_samples": 0, "score": None, "stderr": None, "records_path": None, "errors": []}
        if not res.ok:
            code = "TIMEOUT" if res.failure_class == "TIMEOUT" else (
                "SCORER_EXCEPTION" if res.failure_class == "EVAL_SCORER_FAILED" else "INFRA")
            entry.update(status="FAILED", errors=[{"code": code, "message": res.detail[:500]}])
            tasks[name] = entry
            continue
        recs, errors = res.value["records"], res.value["errors"]
        rel = f"records/{name}.jsonl"
        atomic_write_text(out_dir / rel, "".join(json.dumps(r, sort_keys=True) + "\n" for r in recs))
        scores = [r["score"] for r in recs]
        entry.update(scored_samples=len(recs), records_path=rel, errors=errors[:50],
                     score=(math.fsum(scores) / len(scores)) if scores else None, stderr=_stderr(scores))
        if not scores:
            entry["status"] = "FAILED"
        tasks[name] = entry
    status = "COMPLETED" if all(t["status"] == "COMPLETED" for t in tasks.values()) else "FAILED"
    summary = {"schema_version": "1.0", "run_id": run_id, "variant": variant, "model": model_label,
               "artifact_sha256": sha, "eval_config": eval_config,
               "eval_config_sha256": eval_config_sha256(eval_config),
               "status": status, "tasks": tasks, "timings": {"seconds": round(time.monotonic() - t0, 4)}}
    errs = schema_errors("run-summary", summary)
    if errs:
        raise RuntimeError("run summary violates schemas/run-summary.schema.json: " + "; ".join(errs[:5]))
    atomic_write_json(out_dir / "run_summary.json", summary)
    return summary
