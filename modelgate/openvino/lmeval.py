"""lm-evaluation-harness tasks as day-0 evaluations: preflight, run and per-sample records.

Three steps, each in a child process started with the offline switches in its environment:

1. ``preflight`` (no model loaded): resolve the task names (a folder of task YAMLs first, then the
   harness's built-in index), load their datasets from local files or the datasets cache, and return
   one *spec* per pack task: the leaf tasks with their version, output type, few-shot setting and
   seed, the metric the pack scores, the sample count, ``config_sha256`` (the task config with paths
   and function addresses canonicalised, local data files by content) and ``data_sha256`` (the
   harness's own ``task_hash``: sha256 over doc, prompt and target hashes of every request). The
   specs go into the eval config, so ``eval_config_sha256`` covers task name, version, few-shot
   setting and dataset content. Unknown tasks, bad YAML, missing or corrupt local files are
   USER_CONFIG_ERROR; a dataset that is neither cached nor reachable is SOURCE_UNAVAILABLE, in well
   under a second offline (nothing is tried over the network unless downloads are allowed).
2. ``run_body``: ``lm_eval.simple_evaluate(..., log_samples=True)`` on the IR through
   ``modelgate.openvino.lmeval_lm.OVCausalLM``; every leaf's logged requests must hash to the
   preflight's ``data_sha256`` or the task FAILS (the run evaluated other data than it claims).
3. ``records``: per-sample ``{id, score, prediction, reference, doc_hash}`` whose mean is exactly the
   task score the harness reports, so gate_run's records check and gate_compare's paired statistics
   work unchanged. Ratio metrics (bits_per_byte, perplexities) are linearised exactly (``_ratio_records``).

A requested group (``mmlu``) becomes one pack task over all its leaves (ids ``<leaf>/<doc_id>``, the
mean over every document: the group score with ``weight_by_size``), which gives the comparison the
power of the whole group rather than of each subject.

``datasets`` caches local files by path and modification time, not content: local data files of a
task are copied to content-addressed names before they are loaded.
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import math
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from modelgate import childproc
from modelgate.contract import GateError, GateInputError

# huggingface_hub and datasets read these once, when they are first imported: they go into the
# environment of every child before it starts (``offline_env``) and are checked there (``_assert_offline``)
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
# metric -> (scale, higher_is_better, how per-sample values become records).
#   mean: the per-sample value is the record score; ratio: the value is (loglikelihood, weight) and
#   the harness aggregates a ratio of sums (see _ratio_records).
# A metric not in this table is refused: its scale would be a guess, and corpus-level metrics
# (f1, bleu, mcc, ...) have no per-sample decomposition to pair on.
METRICS = {
    "acc": ("unit", True, "mean"),
    "acc_norm": ("unit", True, "mean"),
    "acc_mutual_info": ("unit", True, "mean"),
    "exact_match": ("unit", True, "mean"),
    "bits_per_byte": ("unbounded", False, "ratio"),
    "word_perplexity": ("unbounded", False, "ratio"),
    "byte_perplexity": ("unbounded", False, "ratio"),
}
# perplexities are exp(ratio), not linear in the samples: the pack scores their logarithm
RATIO_PACK_METRIC = {"word_perplexity": "nll_per_word", "byte_perplexity": "nll_per_byte",
                     "bits_per_byte": "bits_per_byte"}
# the metric the pack scores per output type when the task lists several (else the first listed)
PREFERRED = {"loglikelihood_rolling": "bits_per_byte", "multiple_choice": "acc", "generate_until": "exact_match"}
LOCAL_BUILDERS = frozenset({"json", "csv", "parquet", "text", "arrow"})
# exception type names anywhere in the cause/context chain that mean "the data source is unreachable"
UNAVAILABLE_TYPES = frozenset({"ConnectionError", "OfflineModeIsEnabled", "LocalEntryNotFoundError",
                               "RepositoryNotFoundError", "GatedRepoError", "DatasetNotFoundError",
                               "HfHubHTTPError", "ConnectError", "ConnectTimeout", "ReadTimeout"})
UNAVAILABLE_TEXT = ("is not cached", "couldn't reach", "offline mode")
TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")
FEWSHOT_SEED = 1234  # lm-eval's default few-shot seed
PREFLIGHT_TIMEOUT = 600.0  # the built-in index alone takes 20-30 s to build on a loaded machine
QA_SCORE = "qa_match"  # --eval-data prompts with answers: the pack's exact / contains score


def _sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode("utf-8") if isinstance(text, str) else text).hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- environment

@contextlib.contextmanager
def offline_env(allow_download: bool = False):
    """The offline switches in ``os.environ`` while children are spawned (they copy it at start)."""
    if allow_download:
        yield
        return
    saved = {k: os.environ.get(k) for k in OFFLINE_ENV}
    os.environ.update(OFFLINE_ENV)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _assert_offline(allow_download: bool) -> None:
    """Fail closed when the hub clients did not pick up the offline switches: a dataset would then be
    looked up over the network (13-20 s of retries without DNS, unbounded on a silent network)."""
    if allow_download:
        return
    import datasets
    import huggingface_hub.constants as hub

    if not (hub.HF_HUB_OFFLINE and datasets.config.HF_HUB_OFFLINE):
        raise GateError("UNKNOWN", "huggingface_hub/datasets were imported before HF_HUB_OFFLINE=1 took effect: "
                        "the evaluation would reach for the network")


# --------------------------------------------------------------------------- canonical config

def _canon(obj: Any) -> Any:
    """JSON-able, deterministic form of a task config: functions by qualified name + source hash
    (their repr carries a memory address)."""
    if isinstance(obj, dict):
        return {str(k): _canon(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canon(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if callable(obj):
        try:
            src = _sha(inspect.getsource(obj))
        except (OSError, TypeError):
            src = None
        return {"callable": f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}",
                "source_sha256": src}
    return {"object": type(obj).__name__, "repr_sha256": _sha(repr(obj))}


def canonical_config(task) -> dict:
    """The task's config without where it lives: no YAML path, local data files by name and content."""
    cfg = json.loads(json.dumps(_canon(task.dump_config())))
    meta = dict(cfg.get("metadata") or {})
    meta.pop("config_source", None)
    cfg["metadata"] = meta
    dk = dict(cfg.get("dataset_kwargs") or {})
    files = dk.get("data_files")
    if files is not None:
        flat = files if isinstance(files, dict) else {"_": files}
        dk["data_files"] = {split: [{"name": Path(p).name, "sha256": file_sha256(p)}
                                    for p in ([v] if isinstance(v, str) else v)] for split, v in flat.items()}
    cfg["dataset_kwargs"] = dk
    return cfg


# --------------------------------------------------------------------------- loading tasks

def _chain(exc: BaseException) -> list[BaseException]:
    out, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def _chain_text(exc: BaseException) -> str:
    return " <- ".join(f"{type(e).__name__}: {str(e).splitlines()[0][:240] if str(e) else ''}" for e in _chain(exc))


def load_error(name: str, exc: BaseException) -> GateInputError:
    """The failure class of a task that cannot be loaded, from its exception chain (types, then text)."""
    chain = _chain(exc)
    types = {type(e).__name__ for e in chain}
    text = _chain_text(exc)
    if types & UNAVAILABLE_TYPES or any(m in str(e).lower() for e in chain for m in UNAVAILABLE_TEXT):
        return GateInputError("SOURCE_UNAVAILABLE", f"lm-eval task {name!r}: its dataset is neither cached nor "
                              f"reachable (offline; download it first or allow downloads): {text}"[:1500])
    if types & {"ArrowInvalid", "DatasetGenerationError"}:
        return GateInputError("USER_CONFIG_ERROR", f"lm-eval task {name!r}: its data file does not parse "
                              f"(validate it line by line; pyarrow's row numbers count per block): {text}"[:1500])
    if "FileNotFoundError" in types:
        return GateInputError("USER_CONFIG_ERROR", f"lm-eval task {name!r}: data file not found: {text}"[:1500])
    return GateInputError("USER_CONFIG_ERROR", f"lm-eval task {name!r} cannot be loaded: {text}"[:1500])


def _content_addressed(cfg: dict, data_dir: Path) -> dict:
    """A task config whose local data files are copies named by their sha256 (datasets' cache is
    keyed by path and mtime: an edited file with the same mtime would return stale rows)."""
    if cfg.get("dataset_path") not in LOCAL_BUILDERS:
        return cfg
    dk = dict(cfg.get("dataset_kwargs") or {})
    files = dk.get("data_files")
    if not files:
        return cfg

    def copy(p: str) -> str:
        src = Path(p)
        if not src.is_file():
            raise FileNotFoundError(f"data file {p} not found")
        dst = data_dir / f"{file_sha256(src)}{''.join(src.suffixes[-1:])}"
        if not dst.is_file():
            data_dir.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
            shutil.copyfile(src, tmp)
            tmp.replace(dst)
        return str(dst)

    if isinstance(files, dict):
        dk["data_files"] = {k: ([copy(p) for p in v] if isinstance(v, list) else copy(v)) for k, v in files.items()}
    else:
        dk["data_files"] = [copy(p) for p in files] if isinstance(files, list) else copy(files)
    return dict(cfg, dataset_kwargs=dk)


class _Tasks:
    """Task lookup: a folder of YAMLs first (cheap), the harness's built-in index only when needed."""

    def __init__(self, include_path: str | None, data_dir: Path):
        from lm_eval.tasks import TaskManager

        self.local = TaskManager(include_path=include_path, include_defaults=False) if include_path else None
        self._builtin = None
        self.data_dir = data_dir

    def manager(self, name: str):
        if self.local is not None and name in self.local.task_index:
            return self.local
        if self._builtin is None:
            from lm_eval.tasks import TaskManager

            self._builtin = TaskManager(include_defaults=True)
        return self._builtin

    def load(self, request: dict) -> dict:
        """leaf name -> Task for one pack task (a harness task or group, or a generated config)."""
        name = request.get("task") or request["name"]
        try:
            if "config" in request:
                tm = self.local or _empty_manager()
                cfg = _content_addressed(dict(request["config"]), self.data_dir)
                return tm.load([cfg])["tasks"]
            tm = self.manager(name)
            entry = tm.task_index.get(name)
            if entry is None:
                raise GateInputError("USER_CONFIG_ERROR", f"unknown lm-eval task {name!r} (not in "
                                     f"{'the task folder or ' if self.local else ''}the harness's task index)")
            if getattr(entry, "yaml_path", None) and str(getattr(entry.kind, "name", entry.kind)).upper() == "TASK":
                from lm_eval.tasks._yaml_loader import load_yaml

                cfg = _content_addressed(dict(load_yaml(entry.yaml_path, resolve_func=True)), self.data_dir)
                for key in ("tag", "group", "task_list"):
                    cfg.pop(key, None)
                return tm.load([cfg])["tasks"]
            return tm.load([name])["tasks"]
        except GateInputError:
            raise
        except Exception as exc:  # the harness raises many types; the chain decides the class
            raise load_error(name, exc) from None


def _empty_manager():
    from lm_eval.tasks import TaskManager

    return TaskManager(include_defaults=False)


def _configure(task, num_fewshot: int | None, fewshot_seed: int) -> None:
    """Few-shot setting as simple_evaluate applies it (so preflight and run build identical requests)."""
    if num_fewshot is not None:
        task.set_config(key="num_fewshot", value=num_fewshot)
    elif task.get_config("num_fewshot") is None:
        task.set_config(key="num_fewshot", value=0)
    task.set_fewshot_seed(seed=fewshot_seed)


def pick_metric(task, requested: str | None = None) -> tuple[str, str]:
    """(metric, filter) the pack scores for a task."""
    listed = [m["metric"] if isinstance(m, dict) else m for m in (task.config.metric_list or [])]
    if not listed:
        listed = list(task._metric_fn_list)
    out_type = task.config.output_type
    if requested:
        if requested not in listed:
            raise GateInputError("USER_CONFIG_ERROR", f"lm-eval task {task.config.task}: metric {requested!r} "
                                 f"is not one of its metrics {listed}")
        metric = requested
    else:
        metric = PREFERRED.get(out_type) if PREFERRED.get(out_type) in listed else listed[0]
    if metric not in METRICS:
        raise GateInputError("USER_CONFIG_ERROR", f"lm-eval task {task.config.task}: metric {metric!r} has no "
                             f"per-sample form with a known scale (supported: {sorted(METRICS)}); pick one with "
                             f"lm-eval:{task.config.task}@<metric>")
    filters = [f["name"] for f in (task.config.filter_list or [])] or ["none"]
    return metric, filters[0]


def leaf_spec(task, *, limit: int | None) -> dict:
    """Version, few-shot setting, sample count, config and data hashes of one leaf (requests built here)."""
    from lm_eval.utils import handle_non_serializable, hash_string

    task.build_all_requests(limit=limit, rank=0, world_size=1)
    by_doc: dict[int, list] = {}
    for inst in task.instances:
        by_doc.setdefault(inst.doc_id, []).append(inst)
    parts = []
    for doc_id in sorted(by_doc):
        reqs = sorted(by_doc[doc_id], key=lambda r: r.idx)
        doc = reqs[0].doc
        doc_hash = hash_string(json.dumps(doc, indent=2, default=handle_non_serializable, ensure_ascii=False))
        parts.append(doc_hash + hash_string(reqs[0].arguments[0]) + hash_string(str(task.doc_to_target(doc))))
    task._instances = None  # simple_evaluate builds them again
    version = task.VERSION if task.VERSION is not None else (task.config.metadata or {}).get("version")
    return {"version": version, "output_type": task.config.output_type,
            "num_fewshot": task.config.num_fewshot or 0, "samples": len(parts),
            "config_sha256": _sha(json.dumps(canonical_config(task), sort_keys=True, separators=(",", ":"))),
            # the harness's own task_hash formula (EvaluationTracker): over doc, prompt and target hashes
            "data_sha256": hash_string("".join(parts))}


def pack_spec(request: dict, leaves: dict, *, limit: int | None, fewshot_seed: int) -> dict:
    """The spec of one pack task over its leaves (one metric, one scale, one record kind)."""
    name = request["name"]
    if not leaves:
        raise GateInputError("USER_CONFIG_ERROR", f"{name}: the task has no leaf tasks to evaluate")
    picks = {leaf: pick_metric(t, request.get("metric")) for leaf, t in leaves.items()}
    out_types = {t.config.output_type for t in leaves.values()}
    if request.get("scorer") == QA_SCORE:
        metric, scale, hib, kind = QA_SCORE, "unit", True, "qa"
    else:
        metrics = {m for m, _ in picks.values()}
        if len(metrics) != 1:
            raise GateInputError("USER_CONFIG_ERROR", f"{name}: its leaf tasks score different metrics "
                                 f"{sorted(metrics)}; request the leaves one by one")
        metric = metrics.pop()
        scale, hib, kind = METRICS[metric]
        if kind == "ratio" and len(leaves) > 1:
            raise GateInputError("USER_CONFIG_ERROR", f"{name}: a group of {len(leaves)} rolling-likelihood tasks "
                                 "has no per-sample decomposition; request the leaves one by one")
    specs = {leaf: dict(leaf_spec(t, limit=limit), metric=picks[leaf][0], filter=picks[leaf][1])
             for leaf, t in sorted(leaves.items())}
    for leaf, s in specs.items():
        if s["samples"] < 1:
            raise GateInputError("USER_CONFIG_ERROR", f"{name}: lm-eval task {leaf!r} has no documents to evaluate")
    combined = _sha("".join(f"{leaf}:{s['data_sha256']}" for leaf, s in specs.items()))
    return {"engine": "lm-eval", "task": request.get("task") or name, "leaves": specs,
            "output_types": sorted(out_types), "fewshot_seed": fewshot_seed, "limit": limit, "metric": metric,
            "pack_metric": RATIO_PACK_METRIC.get(metric, metric), "scale": scale, "higher_is_better": hib,
            "records": kind, "samples": sum(s["samples"] for s in specs.values()), "data_sha256": combined}


# --------------------------------------------------------------------------- child bodies

def preflight_body(requests: list[dict], include_path: str | None, data_dir: str, limit: int | None,
                   num_fewshot: int | None, fewshot_seed: int, allow_download: bool = False) -> dict:
    """Child body: resolve and load every task, return name -> spec; no model is loaded."""
    t0 = time.monotonic()
    _assert_offline(allow_download)
    tasks = _Tasks(include_path, Path(data_dir))
    specs = {}
    for req in requests:
        leaves = tasks.load(req)
        for t in leaves.values():
            _configure(t, num_fewshot, fewshot_seed)
        try:
            specs[req["name"]] = pack_spec(req, leaves, limit=limit, fewshot_seed=fewshot_seed)
        except GateInputError:
            raise
        except Exception as exc:  # building a task's requests runs its templates over the data
            raise load_error(req["name"], exc) from None
    return {"specs": specs, "seconds": time.monotonic() - t0}


def preflight(requests: list[dict], *, include_path: str | None, data_dir: str | os.PathLike, limit: int | None,
              num_fewshot: int | None, fewshot_seed: int = FEWSHOT_SEED, allow_download: bool = False,
              timeout: float = PREFLIGHT_TIMEOUT) -> dict:
    """name -> spec for every lm-eval pack task, before any model is loaded; GateInputError (exit 2) on a
    task that cannot run (USER_CONFIG_ERROR, SOURCE_UNAVAILABLE)."""
    for req in requests:
        if "config" not in req and not TASK_NAME.match(str(req.get("task") or "")):
            raise GateInputError("USER_CONFIG_ERROR", f"{req['name']}: {req.get('task')!r} is not an lm-eval task name")
    with offline_env(allow_download):
        res = childproc.run_function("modelgate.openvino.lmeval:preflight_body",
                                     dict(requests=requests, include_path=include_path, data_dir=str(data_dir),
                                          limit=limit, num_fewshot=num_fewshot, fewshot_seed=fewshot_seed,
                                          allow_download=allow_download),
                                     timeout=timeout, error_class="USER_CONFIG_ERROR")
    if not res.ok:
        cls = res.failure_class if res.failure_class in ("USER_CONFIG_ERROR", "SOURCE_UNAVAILABLE") else None
        if cls is None:  # a crash or timeout of the preflight is not the user's input
            raise GateError(res.failure_class or "UNKNOWN", f"lm-eval preflight failed: {res.detail}")
        raise GateInputError(cls, res.detail.split(": ", 1)[-1] if res.detail.startswith("GateInputError") else
                             res.detail)
    return res.value["specs"]


def run_body(ir_dir: str, requests: list[dict], specs: dict, include_path: str | None, data_dir: str,
             out_dir: str, device: str, properties: dict, max_length: int, batch_size: int,
             allow_download: bool = False) -> dict:
    """Child body: every lm-eval pack task on one IR with one model load; writes ``records/<file>.jsonl``.

    Returns {"tasks": name -> {records_path, scores, errors}, "runtime": compiled properties}.
    """
    import random

    import numpy as np
    from lm_eval.evaluator import evaluate

    from modelgate.contract import atomic_write_text
    from modelgate.openvino.lmeval_lm import OVCausalLM

    _assert_offline(allow_download)
    tasks = _Tasks(include_path, Path(data_dir))
    leaves_of: dict[str, dict] = {}
    objects = []
    for req in requests:
        spec = specs[req["name"]]
        leaves = tasks.load(req)
        if sorted(leaves) != sorted(spec["leaves"]):
            raise GateError("INFRA_TRANSIENT", f"{req['name']}: the task resolves to {sorted(leaves)} now, "
                            f"{sorted(spec['leaves'])} at preflight")
        for leaf, t in leaves.items():
            _configure(t, spec["leaves"][leaf]["num_fewshot"], spec["fewshot_seed"])
            objects.append(t)
        leaves_of[req["name"]] = leaves
    limits = {specs[r["name"]]["limit"] for r in requests}
    if len(limits) != 1:
        raise GateError("UNKNOWN", "lm-eval tasks of one run must share one limit")
    model = OVCausalLM(ir_dir, device=device, properties=properties, max_length=max_length, batch_size=batch_size)
    t0 = time.monotonic()
    # simple_evaluate's seeds, then its evaluate(): simple_evaluate itself also collects environment
    # information by importing torch and transformers (about 20 s) and runs git
    random.seed(0)
    np.random.seed(FEWSHOT_SEED)
    res = evaluate(lm=model, task_dict=_empty_manager().load(objects), limit=limits.pop(), log_samples=True,
                   bootstrap_iters=0, verbosity="ERROR")
    seconds = time.monotonic() - t0
    out = {}
    for req in requests:
        name, spec = req["name"], specs[req["name"]]
        errors, recs = [], []
        for leaf in sorted(leaves_of[name]):
            samples = res["samples"].get(leaf) or []
            lspec = spec["leaves"][leaf]
            got = samples_hash(samples, lspec["filter"])
            if got != lspec["data_sha256"]:
                errors.append({"code": "INFRA", "message": f"{leaf}: the evaluated requests hash to {got}, the eval "
                               f"config promises {lspec['data_sha256']}: not the data the config names"})
                continue
            prefix = f"{leaf}/" if len(spec["leaves"]) > 1 else ""
            recs += records(spec, lspec, samples, prefix=prefix, id_field=req.get("id_field"))
        rel = f"records/{record_file(name)}"
        if not errors:
            atomic_write_text(Path(out_dir) / rel, "".join(json.dumps(r, sort_keys=True) + "\n" for r in recs))
        out[name] = {"records_path": None if errors else rel, "scores": [r["score"] for r in recs],
                     "errors": errors,
                     "harness": {leaf: {k: v for k, v in (res["results"].get(leaf) or {}).items() if k != "alias"}
                                 for leaf in leaves_of[name]}}
    return {"tasks": out, "runtime": model.runtime, "tokenizer": model.tok.kind, "seconds": seconds}


# --------------------------------------------------------------------------- records

def record_file(task_name: str) -> str:
    """A file name for a pack task's records (task names carry ':'; keep names portable)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", task_name)
    if safe != task_name:
        safe += "-" + _sha(task_name)[:8]
    return safe + ".jsonl"


def samples_hash(samples: list[dict], flt: str) -> str:
    """lm-eval's task_hash over the logged samples (must equal the leaf spec's data_sha256)."""
    from lm_eval.utils import hash_string

    ss = sorted((s for s in samples if s["filter"] == flt), key=lambda s: s["doc_id"])
    return hash_string("".join(s["doc_hash"] + s["prompt_hash"] + s["target_hash"] for s in ss))


def _norm(text: str) -> str:
    return " ".join(str(text).casefold().split()).strip(" .,!?;:\"'")


def qa_score(response: str, answers: list[str], match: str) -> float:
    """1.0 when the response matches one of the answers: ``exact`` (after case folding, collapsing spaces
    and stripping end punctuation) or ``contains`` (an answer occurs in the response)."""
    r = _norm(response)
    if match == "contains":
        return float(any(_norm(a) in r for a in answers))
    return float(any(_norm(a) == r for a in answers))


def ratio_records(metric: str, pairs: list[tuple[str, float, float, str]]) -> list[dict]:
    """(id, loglikelihood, weight, doc_hash) per doc -> records whose mean is the harness's aggregate.

    The harness reports bits_per_byte = -sum(ll) / (sum(bytes) * ln 2) and perplexity =
    exp(-sum(ll) / sum(weight)). Weights (bytes, words) depend only on the text, so they are the same
    for baseline and candidate; with W = mean(weight) the record ``score_i = -ll_i / W`` (/ ln 2 for
    bits_per_byte) has mean equal to the aggregate (its logarithm for a perplexity), and candidate -
    baseline per id is an exact paired difference of that ratio estimator.
    """
    wbar = math.fsum(w for _, _, w, _ in pairs) / len(pairs)
    div = wbar * (math.log(2) if metric == "bits_per_byte" else 1.0)
    return [{"id": rid, "score": -ll / div, "prediction": {"loglikelihood": ll, "weight": w}, "reference": None,
             "doc_hash": dh} for rid, ll, w, dh in pairs]


def records(spec: dict, leaf: dict, samples: list[dict], *, prefix: str = "",
            id_field: str | None = None) -> list[dict]:
    """The pack's per-sample records of one leaf from the harness's logged samples."""
    samples = sorted((s for s in samples if s["filter"] == leaf["filter"]), key=lambda s: s["doc_id"])

    def rid(s: dict) -> str:
        own = s["doc"].get(id_field) if id_field and isinstance(s.get("doc"), dict) else None
        return prefix + (str(own) if own is not None else str(s["doc_id"]))

    if spec["records"] == "ratio":
        m = spec["metric"]
        return ratio_records(m, [(rid(s), float(s[m][0]), float(s[m][1]), s["doc_hash"]) for s in samples])
    out = []
    for s in samples:
        if spec["records"] == "qa":
            response = s["filtered_resps"][0] if s["filtered_resps"] else ""
            doc = s["doc"]
            score, pred, ref = qa_score(response, doc["answers"], doc["match"]), response, doc["answers"]
        else:
            score = float(s[spec["metric"]])
            resp = s["filtered_resps"]
            pred = resp[0] if leaf["output_type"] == "generate_until" else [r[0] for r in resp]
            ref = s["target"] if isinstance(s["target"], (str, int, float)) else str(s["target"])
        out.append({"id": rid(s), "score": score, "prediction": pred, "reference": ref, "doc_hash": s["doc_hash"]})
    return out


def harness_score(spec: dict, leaf: dict, results: dict) -> float:
    """The harness's own aggregate of a leaf in the pack's form (log of a perplexity)."""
    v = results[f"{spec['metric']},{leaf['filter']}"]
    return math.log(v) if spec["metric"] in ("word_perplexity", "byte_perplexity") else v


# --------------------------------------------------------------------------- --eval-data -> a task config

def eval_data_config(kind: str, rows: list[dict], data_dir: str | os.PathLike, name: str) -> dict:
    """An lm-eval task config (a dict, as a YAML would give) over ``--eval-data`` rows of kind qa, choice or
    text, their data written to a content-addressed JSONL in ``data_dir``."""
    if kind == "qa":
        norm = [{"id": r["id"], "prompt": r["prompt"], "answers": r["answers"], "target": r["answers"][0],
                 "match": r["match"]} for r in rows]
    elif kind == "choice":
        norm = [{"id": r["id"], "prompt": r["prompt"], "choices": r["choices"], "answer": r["answer"]} for r in rows]
    elif kind == "text":
        norm = [{"id": r["id"], "text": r["text"]} for r in rows]
    else:
        raise ValueError(f"{kind!r} data is not an lm-eval task")
    body = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in norm).encode("utf-8")
    out = Path(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{_sha(body)}.jsonl"
    if not path.is_file():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(body)
        tmp.replace(path)
    cfg = {"task": name, "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(path)}},
           "test_split": "test", "num_fewshot": 0, "metadata": {"version": 1.0}}
    if kind == "qa":
        cfg.update(output_type="generate_until", doc_to_text="{{prompt}}", doc_to_target="{{target}}",
                   target_delimiter=" ",
                   generation_kwargs={"until": ["\n"], "max_gen_toks": max(r["max_new_tokens"] for r in rows),
                                      "do_sample": False},
                   metric_list=[{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}])
    elif kind == "choice":
        cfg.update(output_type="multiple_choice", doc_to_text="{{prompt}}", doc_to_choice="{{choices}}",
                   doc_to_target="answer", target_delimiter=" ",
                   metric_list=[{"metric": "acc", "aggregation": "mean", "higher_is_better": True}])
    else:
        cfg.update(output_type="loglikelihood_rolling", doc_to_text="", doc_to_target="{{text}}",
                   metric_list=[{"metric": "bits_per_byte"}])
    return cfg
