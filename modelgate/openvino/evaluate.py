"""Real evaluations of an OpenVINO IR for the day-0 release: what runs, on which data, at which precision.

Task names say where their data comes from:
- ``answer-similarity`` (LLM default): greedy answers of baseline and candidate to the pack's 240
  prompts, compared by sentence-embedding similarity (``modelgate.openvino.similarity``);
- ``lm-eval:<task>[@<metric>]``: an lm-evaluation-harness task or group (``modelgate.openvino.lmeval``);
- ``eval-data:<kind>``: the user's own ``--eval-data`` file (``modelgate.release.eval_data``): prompts
  with answers, multiple choice and plain text through the harness, prompts without answers through
  answer similarity, sentence pairs for encoders, labelled images for classifiers;
- ``embedding-similarity`` (encoder default): cosine between the IR's mean-pooled embeddings and the
  PyTorch source model's on a fixed set of general sentences;
- ``fixture:color-facts``, ``fixture:grammar-ppl``, ``fixture:digits``: the pack's fixture data, which
  only the fixtures learned (tests and demos); never a default.

Every evaluation runs at one precision (``PRECISIONS``): ``f32`` (the default: f32 arithmetic, f32 KV
cache, no dynamic activation quantization, so the comparison isolates what the recipe did to the
weights) or ``served`` (the device's defaults, e.g. bf16 on CPUs that support it). Every scored
sample becomes a JSONL record ``{id, score, prediction, reference}`` whose mean is the task score;
the summary follows ``schemas/run-summary.schema.json`` with the ``eval_config_sha256`` that makes
baseline/candidate parity checkable.
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
# 1797 digits, 75 % train split in data.digits_data -> 450 held-out images
DIGITS_TEST_SAMPLES = 450
LMEVAL = "lm-eval:"
EVAL_DATA = "eval-data:"
ANSWER_SIMILARITY = "answer-similarity"
# evaluation precision -> OpenVINO properties for every compiled model of the evaluation
PRECISIONS = {
    "f32": {"EXECUTION_MODE_HINT": "ACCURACY", "INFERENCE_PRECISION_HINT": "f32"},
    "served": {},
}
GENERATION = {"max_new_tokens": 6, "do_sample": False, "add_special_tokens": False}
EVAL_TIMEOUT = 900.0
LMEVAL_BATCH = 8


# --------------------------------------------------------------------------- fixture and built-in data

def digits_samples() -> list[dict]:
    """The 450 held-out digits images (id, image, label)."""
    from modelgate import data

    _, _, x, y = data.digits_data()
    return [{"id": i, "input": x[i].tolist(), "reference": int(y[i])} for i in range(len(y))]


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
    """Prompts with one known next word: the trained fixture LLM's color facts and counting sequences."""
    from modelgate import data

    items = [{"id": f"color-{i}", "input": p, "reference": a} for i, (p, a) in enumerate(data.color_facts())]
    words = data.NUMBER_WORDS
    for start in range(6):
        for length in range(2, 5):
            items.append({"id": f"count-{start}-{length}", "input": " ".join(words[start:start + length]),
                          "reference": words[start + length]})
    return items


def perplexity_samples() -> list[dict]:
    """Lines of the trained fixture LLM's grammar (color facts and counting lines)."""
    from modelgate import data

    return [{"id": f"line-{i}", "input": ln, "reference": None} for i, ln in enumerate(data.trained_lm_corpus())]


def embedding_samples() -> list[dict]:
    return [{"id": f"sent-{i}", "input": s, "reference": None} for i, s in enumerate(EMBEDDING_SENTENCES)]


def similarity_samples() -> list[dict]:
    from modelgate.openvino.similarity import builtin_prompts

    return [{"id": p["id"], "input": p["prompt"], "reference": None} for p in builtin_prompts()]


# Static tasks: metric, scale, direction, model kind, engine, data, default threshold (absolute, a
# fraction of full scale; metric units for an unbounded scale) and what the data is.
TASKS: dict[str, dict] = {
    ANSWER_SIMILARITY: {
        "metric": "answer_similarity", "scale": "unit", "higher_is_better": True, "model_kind": "llm",
        "engine": "answer-similarity", "samples": similarity_samples, "default_threshold": 0.05,
        "about": "greedy answers to the pack's 240 general prompts (8 domains), candidate vs baseline by "
                 "sentence-embedding similarity"},
    "embedding-similarity": {
        "metric": "cosine", "scale": "unit", "higher_is_better": True, "model_kind": "encoder",
        "engine": "builtin", "samples": embedding_samples, "body": "embedding_body", "default_threshold": 0.01,
        "about": "cosine of the IR's sentence embeddings to the PyTorch source's on 32 general sentences"},
    "fixture:color-facts": {
        "metric": "exact_match", "scale": "unit", "higher_is_better": True, "model_kind": "llm",
        "engine": "fixture", "samples": exact_match_samples, "body": "exact_match_body", "default_threshold": 0.1,
        "about": "fixture data: 20 color facts and 18 counting continuations only the trained fixture LLM learned"},
    "fixture:grammar-ppl": {
        "metric": "perplexity", "scale": "unbounded", "higher_is_better": False, "model_kind": "llm",
        "engine": "fixture", "samples": perplexity_samples, "body": "perplexity_body", "default_threshold": 0.1,
        "about": "fixture data: perplexity of the 26 lines the trained fixture LLM was trained on"},
    "fixture:digits": {
        "metric": "top1", "scale": "unit", "higher_is_better": True, "model_kind": "classifier",
        "engine": "fixture", "samples": digits_samples, "fingerprint": digits_fingerprint, "body": "digits_body",
        "default_threshold": 0.01,
        "about": "fixture data: 450 held-out scikit-learn digits (8x8 grayscale) for the digits fixture CNN"},
}
# names of earlier releases -> today's, so an old command gets a clear answer
RENAMED = {"lm_exact_match": "fixture:color-facts", "lm_perplexity": "fixture:grammar-ppl",
           "digits_top1": "fixture:digits", "embedding_similarity": "embedding-similarity"}
DEFAULT_TASKS = {"llm": [ANSWER_SIMILARITY], "encoder": ["embedding-similarity"], "classifier": []}
# --eval-data kind -> how it is scored: metric, scale, direction, engine, default threshold
EVAL_DATA_TASKS = {
    "qa": {"metric": "qa_match", "scale": "unit", "higher_is_better": True, "engine": "lm-eval",
           "default_threshold": 0.01},
    "choice": {"metric": "acc", "scale": "unit", "higher_is_better": True, "engine": "lm-eval",
               "default_threshold": 0.01},
    "text": {"metric": "bits_per_byte", "scale": "unbounded", "higher_is_better": False, "engine": "lm-eval",
             "default_threshold": 0.01},
    "prompt": {"metric": "answer_similarity", "scale": "unit", "higher_is_better": True,
               "engine": "answer-similarity", "default_threshold": 0.05},
    "pair": {"metric": "pair_agreement", "scale": "unit", "higher_is_better": True, "engine": "eval-data",
             "body": "pair_body", "default_threshold": 0.01},
    "image": {"metric": "top1", "scale": "unit", "higher_is_better": True, "engine": "eval-data",
              "body": "image_body", "default_threshold": 0.01},
}
LMEVAL_DEFAULT_THRESHOLD = 0.01  # one point of full scale: the harness's usual reporting resolution
LMEVAL_SPEC = re.compile(r"^lm-eval:([A-Za-z0-9][A-Za-z0-9_.\-]{0,199})(?:@([A-Za-z0-9_]{1,64}))?$")


# --------------------------------------------------------------------------- resolving tasks

def resolve_tasks(tasks: list[str] | None, model_kind: str, eval_data_kind: str | None = None) -> list[str]:
    """The tasks to run for a model kind (explicit ones, plus ``eval-data:<kind>`` with --eval-data);
    unknown or inapplicable tasks -> GateInputError (exit 2)."""
    from modelgate.release.eval_data import KIND_MODEL

    names = list(dict.fromkeys(t.strip() for t in (tasks or []) if t.strip()))
    renamed = [t for t in names if t in RENAMED]
    if renamed:
        raise GateInputError("USER_CONFIG_ERROR", "renamed eval task(s): " + ", ".join(
            f"{t} is now {RENAMED[t]}" for t in renamed) + " (fixture:* tasks use data only the pack's fixtures fit)")
    for t in names:
        if t.startswith(EVAL_DATA):
            raise GateInputError("USER_CONFIG_ERROR", f"{t}: eval-data tasks come from --eval-data FILE, not --tasks")
        if t.startswith(LMEVAL):
            if not LMEVAL_SPEC.match(t):
                raise GateInputError("USER_CONFIG_ERROR", f"{t!r} is not lm-eval:<task>[@<metric>] "
                                     "(task names: letters, digits, '_', '-', '.')")
            if model_kind != "llm":
                raise GateInputError("USER_CONFIG_ERROR", f"{t}: lm-eval tasks evaluate LLMs; the model is a "
                                     f"{model_kind}")
        elif t not in TASKS:
            raise GateInputError("USER_CONFIG_ERROR", f"unknown eval task {t!r}; known: {sorted(TASKS)}, "
                                 "lm-eval:<task>, and --eval-data FILE for your own data")
        elif TASKS[t]["model_kind"] != model_kind:
            raise GateInputError("USER_CONFIG_ERROR", f"task {t} does not apply to a {model_kind} model (it needs "
                                 f"a {TASKS[t]['model_kind']})")
    if eval_data_kind is not None:
        if KIND_MODEL[eval_data_kind] != model_kind:
            raise GateInputError("USER_CONFIG_ERROR", f"--eval-data holds {eval_data_kind!r} data, for "
                                 f"{KIND_MODEL[eval_data_kind]} models; the model is a {model_kind}")
        names.append(EVAL_DATA + eval_data_kind)
    if names:
        return names
    if not DEFAULT_TASKS.get(model_kind):
        raise GateInputError("USER_CONFIG_ERROR", f"a {model_kind} has no built-in evaluation that fits it: give "
                             "--eval-data (a labelled image folder <root>/<label>/<image> or an image JSONL) "
                             "or, for the pack's digits fixture only, --tasks fixture:digits")
    return list(DEFAULT_TASKS[model_kind])


def task_info(name: str, spec: dict | None = None) -> dict:
    """metric, scale, higher_is_better, engine and default threshold of a task name (with its spec)."""
    if name in TASKS:
        return TASKS[name]
    if name.startswith(EVAL_DATA):
        return EVAL_DATA_TASKS[name[len(EVAL_DATA):]]
    if spec is None:
        return {"engine": "lm-eval", "default_threshold": LMEVAL_DEFAULT_THRESHOLD}
    return {"metric": spec["pack_metric"], "scale": spec["scale"], "higher_is_better": spec["higher_is_better"],
            "engine": "lm-eval", "default_threshold": LMEVAL_DEFAULT_THRESHOLD}


def default_threshold(tasks: list[str]) -> tuple[float | None, dict]:
    """The one default threshold of ``tasks`` (None when they differ) and each task's default."""
    per = {t: task_info(t)["default_threshold"] for t in tasks}
    values = set(per.values())
    return (values.pop() if len(values) == 1 else None), per


# --------------------------------------------------------------------------- the eval config

def _data_sha(samples: list[dict]) -> str:
    text = json.dumps([(s["id"], s["input"], s["reference"]) for s in samples], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _check_limit(limit) -> None:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 2):
        raise GateInputError("USER_CONFIG_ERROR", f"--limit must be an integer >= 2, got {limit!r}")


def write_rows(kind: str, rows: list[dict], data_root: str | Path) -> tuple[str, str]:
    """Normalised --eval-data rows into ``<run>/eval-data/<sha>.rows.jsonl``; returns (relative path, sha)."""
    from modelgate.release.eval_data import rows_sha256

    sha = rows_sha256(kind, rows)
    rel = f"eval-data/{sha}.rows.jsonl"
    p = Path(data_root) / rel
    if not p.is_file():
        atomic_write_text(p, "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows))
    return rel, sha


def read_rows(data_root: str | Path, rel: str) -> list[dict]:
    with open(Path(data_root) / rel, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _static_spec(name: str, limit: int | None, reference_model: str | None) -> dict:
    t = TASKS[name]
    if "fingerprint" in t:
        n, sha = t["fingerprint"]()
        n = min(n, limit) if limit else n
    else:
        samples = t["samples"]()[:limit] if limit else t["samples"]()
        n, sha = len(samples), _data_sha(samples)
    spec = {"engine": t["engine"], "metric": t["metric"], "samples": n, "data_sha256": sha}
    if t["engine"] == "answer-similarity":
        from modelgate.openvino import similarity

        spec.update(generation=dict(similarity.GENERATION), embedder=similarity.embedder_identity())
    if name == "embedding-similarity":
        spec["reference_model"] = reference_model
    return spec


def make_eval_config(tasks: list[str], *, limit: int | None = None, seed: int = 0, device: str = "CPU",
                     precision: str = "f32", reference_model: str | None = None, eval_data: tuple | None = None,
                     data_root: str | Path | None = None, include_path: str | None = None,
                     num_fewshot: int | None = None, allow_download: bool = False,
                     lm_max_length: int | None = None, timeout: float = EVAL_TIMEOUT) -> dict:
    """Everything that decides the scores; baseline and candidate must share it byte for byte.

    lm-eval tasks (and --eval-data prompts with answers, multiple choice and text) are resolved and
    their data loaded here, in a child, before any model is loaded: an unknown task or unreadable data
    exits 2 at once, a dataset that is not available offline is SOURCE_UNAVAILABLE.
    """
    from modelgate.openvino import lmeval
    from modelgate.openvino.lmeval_lm import DEFAULT_MAX_LENGTH

    _check_limit(limit)
    if precision not in PRECISIONS:
        raise GateInputError("USER_CONFIG_ERROR", f"--eval-precision must be one of {sorted(PRECISIONS)}, "
                             f"got {precision!r}")
    specs: dict[str, dict] = {}
    lm_requests = []
    for name in tasks:
        if name in TASKS:
            specs[name] = _static_spec(name, limit, reference_model)
        elif name.startswith(LMEVAL):
            m = LMEVAL_SPEC.match(name)
            lm_requests.append({"name": name, "task": m.group(1), "metric": m.group(2)})
        elif name.startswith(EVAL_DATA):
            kind, rows = eval_data
            rows = rows[:limit] if limit else rows
            if len(rows) < 2:
                raise GateInputError("USER_CONFIG_ERROR", f"--eval-data has {len(rows)} usable line(s): a "
                                     "comparison needs at least 2")
            rel, sha = write_rows(kind, rows, data_root)
            info = EVAL_DATA_TASKS[kind]
            spec = {"engine": info["engine"], "kind": kind, "metric": info["metric"], "samples": len(rows),
                    "data_sha256": sha, "rows_file": rel}
            if info["engine"] == "lm-eval":  # the preflight below completes the spec
                lm_requests.append(eval_data_request(name, kind, rows, data_root))
            elif info["engine"] == "answer-similarity":
                from modelgate.openvino import similarity

                spec.update(generation=dict(similarity.GENERATION), embedder=similarity.embedder_identity())
            specs[name] = spec
    cfg = {"tasks": sorted(tasks), "seed": seed, "limit": limit, "device": device, "precision": precision,
           "properties": dict(PRECISIONS[precision]), "task_specs": specs, "generation": dict(GENERATION)}
    if lm_requests:
        import lm_eval

        lm_specs = lmeval.preflight(lm_requests, include_path=include_path, data_dir=Path(data_root) / "eval-data",
                                    limit=limit, num_fewshot=num_fewshot, allow_download=allow_download,
                                    timeout=max(timeout, lmeval.PREFLIGHT_TIMEOUT))
        for name, spec in lm_specs.items():
            specs[name] = dict(specs.get(name, {}), **spec)
        cfg["lm_eval"] = {"version": lm_eval.__version__, "adapter": "modelgate.openvino.lmeval_lm.OVCausalLM",
                          "max_length": int(lm_max_length or DEFAULT_MAX_LENGTH), "batch_size": LMEVAL_BATCH,
                          "num_fewshot": num_fewshot}
    if "embedding-similarity" in tasks:
        cfg["reference_model"] = reference_model
    return cfg


def eval_data_request(name: str, kind: str, rows: list[dict], data_root: str | Path) -> dict:
    """The lm-eval request of an --eval-data task of kind qa, choice or text (its config written from rows)."""
    from modelgate.openvino import lmeval

    cfg = lmeval.eval_data_config(kind, rows, Path(data_root) / "eval-data", name=f"eval_data_{kind}")
    req = {"name": name, "task": cfg["task"], "config": cfg, "id_field": "id"}
    if kind == "qa":
        req["scorer"] = lmeval.QA_SCORE
    return req


def lm_requests(eval_config: dict, data_root: str | Path) -> list[dict]:
    """The lm-eval requests of an eval config (rebuilt from its specs; --eval-data rows from the run folder)."""
    out = []
    for name in eval_config["tasks"]:
        spec = eval_config["task_specs"][name]
        if spec.get("engine") != "lm-eval":
            continue
        if name.startswith(EVAL_DATA):
            out.append(eval_data_request(name, spec["kind"], read_rows(data_root, spec["rows_file"]), data_root))
        else:
            m = LMEVAL_SPEC.match(name)
            out.append({"name": name, "task": m.group(1), "metric": m.group(2)})
    return out


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


def _compile(path: str | Path, cfg: dict):
    import openvino as ov

    return ov.Core().compile_model(str(path), cfg["device"], dict(cfg.get("properties") or {}))


def _runtime(compiled) -> dict:
    """The properties the model was compiled with that decide its arithmetic."""
    out = {}
    for p in ("INFERENCE_PRECISION_HINT", "KV_CACHE_PRECISION", "EXECUTION_MODE_HINT"):
        try:
            value = compiled.get_property(p)
        except RuntimeError:
            value = None
        out[p] = value.get_type_name() if hasattr(value, "get_type_name") else (None if value is None else str(value))
    return out


def _score_class_row(sample: dict, row, recs: list, errors: list) -> None:
    """One classifier sample: a top-1 record, or an INVALID_PREDICTION error when its logits are not finite."""
    import numpy as np

    if not np.isfinite(row).all():
        errors.append({"code": "INVALID_PREDICTION", "message": "non-finite logits", "sample_id": sample["id"]})
        return
    pred = int(row.argmax())
    recs.append({"id": sample["id"], "score": float(pred == sample["reference"]), "prediction": pred,
                 "reference": sample["reference"]})


def digits_body(ir_dir: str, samples: list[dict], cfg: dict) -> dict:
    import numpy as np

    compiled = _compile(Path(ir_dir) / "openvino_model.xml", cfg)
    x = np.asarray([s["input"] for s in samples], dtype=np.float32)
    logits = np.asarray(compiled(x)[compiled.output(0)])
    recs, errors = [], []
    for s, row in zip(samples, logits):
        _score_class_row(s, row, recs, errors)
    return {"records": recs, "errors": errors, "runtime": _runtime(compiled)}


def exact_match_body(ir_dir: str, samples: list[dict], cfg: dict) -> dict:
    import openvino_genai as ov_genai

    pipe = ov_genai.LLMPipeline(ir_dir, cfg["device"], **dict(cfg.get("properties") or {}))
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
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ir_dir)
    compiled = _compile(Path(ir_dir) / "openvino_model.xml", cfg)
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
    return {"records": recs, "errors": errors, "runtime": _runtime(compiled)}


def _mean_pooled(compiled, names: set, tok, texts: list[str]):
    import numpy as np

    out = []
    for text in texts:
        enc = tok(text, return_tensors="np")
        hidden = np.asarray(compiled({k: v for k, v in enc.items() if k in names})[compiled.output(0)],
                            dtype=np.float64)
        mask = enc["attention_mask"][..., None].astype(np.float64)
        out.append((hidden * mask).sum(1)[0] / mask.sum())
    return out


def embedding_body(ir_dir: str, samples: list[dict], cfg: dict) -> dict:
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    ref = cfg.get("reference_model")
    if not ref or not Path(ref).is_dir():
        raise GateInputError("USER_CONFIG_ERROR", f"embedding-similarity needs the source model folder, got {ref!r}")
    tok = AutoTokenizer.from_pretrained(ir_dir)
    compiled = _compile(Path(ir_dir) / "openvino_model.xml", cfg)
    names = {next(iter(i.get_names())) for i in compiled.inputs}
    torch_model = AutoModel.from_pretrained(ref).eval()
    recs, errors = [], []
    for s, emb in zip(samples, _mean_pooled(compiled, names, tok, [s["input"] for s in samples])):
        with torch.no_grad():
            t_enc = tok(s["input"], return_tensors="pt")
            t_hidden = torch_model(**t_enc).last_hidden_state.double().numpy()
        mask = t_enc["attention_mask"].numpy()[..., None].astype(np.float64)
        t_emb = (t_hidden * mask).sum(1)[0] / mask.sum()
        denom = np.linalg.norm(emb) * np.linalg.norm(t_emb)
        if not np.isfinite(emb).all() or denom == 0:
            errors.append({"code": "INVALID_PREDICTION", "message": "non-finite or zero embedding",
                           "sample_id": s["id"]})
            continue
        cos = float(np.dot(emb, t_emb) / denom)
        recs.append({"id": s["id"], "score": max(0.0, min(1.0, cos)), "prediction": round(cos, 6),
                     "reference": "source-model embedding"})
    return {"records": recs, "errors": errors, "runtime": _runtime(compiled)}


def pair_body(ir_dir: str, samples: list[dict], cfg: dict) -> dict:
    """Sentence pairs: ``1 - |cos(a, b) - score / scale_max|`` per pair (cosine clipped to [0, 1])."""
    import numpy as np
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ir_dir)
    compiled = _compile(Path(ir_dir) / "openvino_model.xml", cfg)
    names = {next(iter(i.get_names())) for i in compiled.inputs}
    recs, errors = [], []
    for s in samples:
        a, b = _mean_pooled(compiled, names, tok, [s["input"]["text_a"], s["input"]["text_b"]])
        denom = np.linalg.norm(a) * np.linalg.norm(b)
        if not (np.isfinite(a).all() and np.isfinite(b).all()) or denom == 0:
            errors.append({"code": "INVALID_PREDICTION", "message": "non-finite or zero embedding",
                           "sample_id": s["id"]})
            continue
        cos = max(0.0, min(1.0, float(np.dot(a, b) / denom)))
        target = s["reference"]["score"] / s["reference"]["scale_max"]
        recs.append({"id": s["id"], "score": 1.0 - abs(cos - target), "prediction": round(cos, 6),
                     "reference": target})
    return {"records": recs, "errors": errors, "runtime": _runtime(compiled)}


def _load_image(path: str, shape: list[int]):
    """An image as float32 CHW in [0, 1] at the model's input size (.npy arrays are taken as they are)."""
    import numpy as np

    c, h, w = shape
    if path.endswith(".npy"):
        arr = np.load(path, allow_pickle=False).astype(np.float32)
        return arr[None] if arr.ndim == 2 else arr
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("L" if c == 1 else "RGB").resize((w, h))
        arr = np.asarray(im, dtype=np.float32) / 255.0
    return arr[None] if c == 1 else arr.transpose(2, 0, 1)


def image_body(ir_dir: str, samples: list[dict], cfg: dict) -> dict:
    """Labelled images: top-1 of a classifier whose input is ``[N, C, H, W]``."""
    import numpy as np

    compiled = _compile(Path(ir_dir) / "openvino_model.xml", cfg)
    shape = compiled.input(0).get_partial_shape()
    if shape.rank.get_length() != 4 or not all(shape[i].is_static for i in (1, 2, 3)):
        raise GateInputError("USER_CONFIG_ERROR", f"image evaluation needs a [N, C, H, W] input with static C, H, "
                             f"W; the model's is {shape}")
    chw = [shape[i].get_length() for i in (1, 2, 3)]
    recs, errors = [], []
    for s in samples:
        x = _load_image(s["input"], chw)
        if list(x.shape) != chw:
            raise GateInputError("USER_CONFIG_ERROR", f"image {s['id']}: shape {list(x.shape)} does not fit the "
                                 f"model input {chw}")
        row = np.asarray(compiled(x[None])[compiled.output(0)])[0]
        _score_class_row(s, row, recs, errors)
    return {"records": recs, "errors": errors, "runtime": _runtime(compiled)}


# --------------------------------------------------------------------------- run

def _stderr(scores: list[float]) -> float | None:
    n = len(scores)
    if n < 2:
        return None
    mean = math.fsum(scores) / n
    return math.sqrt(math.fsum((x - mean) ** 2 for x in scores) / (n - 1) / n)


def _samples(name: str, spec: dict, eval_config: dict, data_root: Path | None) -> list[dict]:
    """The samples a body scores, for tasks scored by the pack's own bodies."""
    limit = eval_config.get("limit")
    if name in TASKS:
        rows = TASKS[name]["samples"]()
        return rows[:limit] if limit else rows
    rows = read_rows(data_root, spec["rows_file"])
    if spec["kind"] == "prompt":
        return [{"id": r["id"], "input": r["prompt"], "reference": None} for r in rows]
    if spec["kind"] == "pair":
        return [{"id": r["id"], "input": {"text_a": r["text_a"], "text_b": r["text_b"]},
                 "reference": {"score": r["score"], "scale_max": r["scale_max"]}} for r in rows]
    from modelgate.release.eval_data import class_indices

    names = class_indices(rows)
    return [{"id": r["id"], "input": r["image"], "reference": names[r["label"]] if names else r["label"]}
            for r in rows]


def _entry(name: str, spec: dict) -> dict:
    info = task_info(name, spec)
    return {"status": "COMPLETED", "metric": info["metric"], "scale": info["scale"],
            "higher_is_better": info["higher_is_better"], "expected_samples": spec["samples"], "scored_samples": 0,
            "score": None, "stderr": None, "records_path": None, "errors": []}


def _child_failure(entry: dict, res: childproc.ChildResult) -> dict:
    code = "TIMEOUT" if res.failure_class == "TIMEOUT" else (
        "SCORER_EXCEPTION" if res.failure_class == "EVAL_SCORER_FAILED" else "INFRA")
    entry.update(status="FAILED", errors=[{"code": code, "message": res.detail[:500]}])
    return entry


def _finish(entry: dict, scores: list[float], rel: str | None, errors: list[dict]) -> dict:
    entry.update(scored_samples=len(scores), records_path=rel, errors=errors[:50],
                 score=(math.fsum(scores) / len(scores)) if scores else None, stderr=_stderr(scores))
    if not scores or rel is None:
        entry["status"] = "FAILED"
    return entry


def run_evaluation(ir_dir: str | Path, eval_config: dict, out_dir: str | Path, *, variant: str, run_id: str,
                   model_label: str, data_root: str | Path | None = None, include_path: str | None = None,
                   allow_download: bool = False, reference_eval: str | Path | None = None,
                   timeout: float = EVAL_TIMEOUT, progress=None) -> tuple[dict, dict]:
    """Score every task of ``eval_config`` on the IR; write records + run_summary.json.

    Returns (summary, info): info holds what the summary schema has no place for (the runtime
    properties the models were compiled with, answer statistics). ``reference_eval`` is the
    baseline's eval folder: answer-similarity scores the candidate's answers against its answers.
    A task whose child crashes or times out is FAILED with a structured error, never dropped.
    """
    from modelgate.openvino import lmeval

    ir_dir, out_dir = Path(ir_dir), Path(out_dir)
    t0 = time.monotonic()
    sha = artifact_sha256(ir_dir)
    tasks: dict[str, dict] = {}
    info: dict = {"runtime": {}, "seconds": {}}
    say = progress or (lambda msg: None)

    def write(name: str, recs: list[dict]) -> str:
        rel = f"records/{lmeval.record_file(name)}"
        atomic_write_text(out_dir / rel, "".join(json.dumps(r, sort_keys=True) + "\n" for r in recs))
        return rel

    specs = eval_config["task_specs"]
    lm_names = [n for n in eval_config["tasks"] if specs[n]["engine"] == "lm-eval"]
    if lm_names:
        say(f"{variant}: lm-eval {', '.join(lm_names)} ({sum(specs[n]['samples'] for n in lm_names)} samples)")
        with lmeval.offline_env(allow_download):
            res = childproc.run_function(
                "modelgate.openvino.lmeval:run_body",
                dict(ir_dir=str(ir_dir), requests=lm_requests(eval_config, data_root),
                     specs={n: specs[n] for n in lm_names}, include_path=include_path,
                     data_dir=str(Path(data_root) / "eval-data"), out_dir=str(out_dir),
                     device=eval_config["device"], properties=eval_config["properties"],
                     max_length=eval_config["lm_eval"]["max_length"], batch_size=eval_config["lm_eval"]["batch_size"],
                     allow_download=allow_download),
                timeout=timeout, error_class="EVAL_SCORER_FAILED")
        info["seconds"]["lm-eval"] = res.seconds
        for n in lm_names:
            entry = _entry(n, specs[n])
            if not res.ok:
                tasks[n] = _child_failure(entry, res)
                continue
            got = res.value["tasks"][n]
            tasks[n] = _finish(entry, got["scores"], got["records_path"], got["errors"])
            info.setdefault("harness", {})[n] = got["harness"]
        if res.ok:
            info["runtime"]["lm-eval"] = dict(res.value["runtime"], tokenizer=res.value["tokenizer"])
    for name in eval_config["tasks"]:
        spec = specs[name]
        if spec["engine"] == "lm-eval":
            continue
        entry = _entry(name, spec)
        samples = _samples(name, spec, eval_config, Path(data_root) if data_root else None)
        if len(samples) != spec["samples"]:
            raise RuntimeError(f"{name}: the eval config promises {spec['samples']} samples, the data has "
                               f"{len(samples)}")
        say(f"{variant}: {name} ({len(samples)} samples)")
        if spec["engine"] == "answer-similarity":
            tasks[name] = _similarity(name, entry, samples, spec, eval_config, ir_dir, reference_eval, write, info,
                                      timeout)
            continue
        body = TASKS[name]["body"] if name in TASKS else EVAL_DATA_TASKS[spec["kind"]]["body"]
        res = childproc.run_function(f"modelgate.openvino.evaluate:{body}",
                                     dict(ir_dir=str(ir_dir), samples=samples, cfg=eval_config),
                                     timeout=timeout, error_class="EVAL_SCORER_FAILED")
        info["seconds"][name] = res.seconds
        if not res.ok:
            if res.failure_class == "USER_CONFIG_ERROR":  # data that does not fit the model: the input's fault
                raise GateInputError("USER_CONFIG_ERROR", f"{name}: {res.detail}")
            tasks[name] = _child_failure(entry, res)
            continue
        if res.value.get("runtime"):
            info["runtime"][name] = res.value["runtime"]
        recs = res.value["records"]
        tasks[name] = _finish(entry, [r["score"] for r in recs], write(name, recs), res.value["errors"])
    status = "COMPLETED" if all(t["status"] == "COMPLETED" for t in tasks.values()) else "FAILED"
    summary = {"schema_version": "1.0", "run_id": run_id, "variant": variant, "model": model_label,
               "artifact_sha256": sha, "eval_config": eval_config,
               "eval_config_sha256": eval_config_sha256(eval_config),
               "status": status, "tasks": {n: tasks[n] for n in eval_config["tasks"]},
               "timings": {"seconds": round(time.monotonic() - t0, 4)}}
    errs = schema_errors("run-summary", summary)
    if errs:
        raise RuntimeError("run summary violates schemas/run-summary.schema.json: " + "; ".join(errs[:5]))
    atomic_write_json(out_dir / "run_summary.json", summary)
    return summary, info


def _similarity(name, entry, samples, spec, eval_config, ir_dir, reference_eval, write, info, timeout) -> dict:
    """answer-similarity: generate; the baseline scores 1.0 per prompt, a candidate its similarity to it."""
    from modelgate.openvino import similarity
    from modelgate.openvino.lmeval import record_file

    prompts = [{"id": s["id"], "prompt": s["input"]} for s in samples]
    res = childproc.run_function("modelgate.openvino.similarity:generate_body",
                                 dict(ir_dir=str(ir_dir), prompts=prompts, generation=spec["generation"],
                                      device=eval_config["device"], properties=eval_config["properties"]),
                                 timeout=timeout, error_class="EVAL_SCORER_FAILED")
    info["seconds"][name] = res.seconds
    if not res.ok:
        return _child_failure(entry, res)
    answers = {a["id"]: a["answer"] for a in res.value["answers"]}
    tokens = [a["new_tokens"] for a in res.value["answers"]]
    info.setdefault("answers", {})[name] = {"mean_new_tokens": math.fsum(tokens) / len(tokens),
                                            "empty": sum(1 for a in answers.values() if not a.strip())}
    info["runtime"][name] = {"properties": eval_config["properties"]}
    if reference_eval is None:  # the baseline: its own answers are the reference
        recs = [{"id": rid, "score": 1.0, "prediction": text, "reference": None} for rid, text in answers.items()]
        return _finish(entry, [r["score"] for r in recs], write(name, recs), [])
    ref_path = Path(reference_eval) / "records" / record_file(name)
    reference = {}
    with open(ref_path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                r = json.loads(line)
                reference[str(r["id"])] = r["prediction"]
    if set(reference) != set(answers):
        entry.update(status="FAILED", errors=[{"code": "MISSING_REFERENCE", "message":
                     f"baseline answers cover {len(reference)} prompts, the candidate answered {len(answers)}"}])
        return entry
    try:
        recs = similarity.score_answers(reference, {k: answers[k] for k in reference}, timeout)
    except RuntimeError as exc:
        entry.update(status="FAILED", errors=[{"code": "SCORER_EXCEPTION", "message": str(exc)[:500]}])
        return entry
    return _finish(entry, [r["score"] for r in recs], write(name, recs), [])
