"""The day-0 release conductor: baseline -> PTQ -> gate_ptq -> deploy canary -> eval -> gate_run -> compare.

Each stage runs in the workspace (``modelgate.release.workspace``), is skipped when its inputs'
hashes are unchanged, and ends in a verdict; the chain stops at the first failing gate and
``modelgate.gates.release_decision`` turns the verdicts into the publish decision. The
conductor observes and sequences; every decision is made by a pure gate function.
"""
from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from modelgate.contract import GateInputError, make_verdict, versions
from modelgate.gates.canary import canary_verdict
from modelgate.gates.compare import evaluate_compare
from modelgate.gates.ptq import evaluate_ptq
from modelgate.gates.release_decision import decide_release
from modelgate.gates.run import evaluate_run
from modelgate.openvino import evaluate as ev
from modelgate.release import records
from modelgate.release.ptq_observe import observe_ptq_in_child
from modelgate.release.workspace import Workspace, tree_sha256

# failure classes that say "try again", not "this is the answer": their stage is not cached
TRANSIENT_CLASSES = frozenset({"TIMEOUT", "INFRA_TRANSIENT", "RESOURCE_EXHAUSTED", "PLUGIN_CRASH"})
# optimum task of the source -> model kind the evaluation tasks know
TASK_MODEL_KIND = {"text-generation": "llm", "text-generation-with-past": "llm",
                   "feature-extraction": "encoder", "sentence-similarity": "encoder"}
# model kind -> recipe applies_to
KIND_APPLIES_TO = {"llm": "llm", "encoder": "non-llm", "classifier": "non-llm"}
NATIVE_SUFFIXES = (".onnx", ".pt", ".pth")


@dataclass
class Source:
    """What the user pointed --model at, resolved."""
    path: Path            # HF folder or model file
    kind: str             # llm | encoder | classifier
    task: str | None      # optimum task for HF folders


@dataclass
class ChainResult:
    recipe: str
    verdict: dict                     # the release decision (decide_release)
    stages: list[dict]                # the stage verdicts, in order
    ptq_obs: dict | None = None
    canary: dict | None = None
    compare: dict | None = None
    candidate_ir: str | None = None   # absolute path of the candidate IR folder
    candidate_sha256: str | None = None
    summaries: dict = field(default_factory=dict)
    eval_info: dict = field(default_factory=dict)  # variant -> runtime properties, answer statistics
    quantize: dict | None = None      # what NNCF was asked to do (calibration source and samples)


@dataclass
class EvalOptions:
    """How the evaluations run: tasks, data, precision (all fixed before any stage runs)."""
    tasks: list[str]
    limit: int | None = None
    precision: str = "f32"
    eval_data: str | None = None           # --eval-data FILE or folder
    include_path: str | None = None        # --lm-eval-include DIR: task YAMLs
    num_fewshot: int | None = None
    allow_download: bool = False
    lm_max_length: int | None = None


def resolve_source(model: str) -> Source:
    """Classify a local source; missing/unsupported inputs -> GateInputError (exit 2)."""
    from modelgate.openvino.tasks import TaskError, task_from_model_dir

    p = Path(model)
    if not p.exists():
        raise GateInputError("USER_CONFIG_ERROR", f"model not found: {model} (a local HF folder, .onnx or .pt file)")
    if p.is_file():
        if p.suffix.lower() not in NATIVE_SUFFIXES:
            raise GateInputError("USER_CONFIG_ERROR",
                                 f"unsupported model file {p.name}: use .onnx, .pt or an HF folder")
        return Source(p.resolve(), "classifier", None)
    if not (p / "config.json").is_file():
        native = [f for f in sorted(p.iterdir()) if f.suffix.lower() == ".onnx"]
        if len(native) == 1:
            return Source(native[0].resolve(), "classifier", None)
        raise GateInputError("USER_CONFIG_ERROR", f"{p} has no config.json and not exactly one .onnx model")
    try:
        task = task_from_model_dir(p)
    except TaskError as exc:
        raise GateInputError("USER_CONFIG_ERROR", str(exc)) from exc
    kind = TASK_MODEL_KIND.get(task)
    if kind is None:
        raise GateInputError("USER_CONFIG_ERROR", f"no day-0 evaluation exists for task {task} "
                             f"(supported: {sorted(set(TASK_MODEL_KIND))} and image classifiers as .onnx/.pt)")
    return Source(p.resolve(), kind, task)


def _stage_verdict(gate: str, ok: bool, failure_class: str | None, detail: str, **extra) -> dict:
    return make_verdict(gate, passed=ok, failure_class=failure_class, detail=detail or ("ok" if ok else "failed"),
                        **extra)


def _keep(result: dict) -> bool:
    return (result.get("verdict") or result).get("failure_class") not in TRANSIENT_CLASSES


class Conductor:
    """Runs the chain for one source and one or more recipes inside one workspace.

    Everything that can be refused is checked here, before the first stage: the eval tasks (lm-eval
    tasks are resolved and their data loaded, offline, in a child), the --eval-data file, the
    calibration data of the recipes that need it.
    """

    def __init__(self, ws: Workspace, source: Source, evals: EvalOptions | list[str], *, device: str = "CPU",
                 threshold: float = 0.01, relative: bool = False, timeout: float = 900.0,
                 recipes: list[dict] = (), calibration_data: str | None = None,
                 eval_data: tuple | None = None, progress: Callable[[str], None] | None = None):
        from modelgate.openvino.quantize import resolve_calibration

        self.evals = evals if isinstance(evals, EvalOptions) else EvalOptions(tasks=list(evals))
        self.ws, self.source, self.tasks = ws, source, self.evals.tasks
        self.threshold, self.relative, self.timeout, self.device = threshold, relative, timeout, device
        self.progress = progress or (lambda msg: None)
        self.calibration = None
        if any(r.get("kind") == "static_int8" or (r.get("nncf") or {}).get("dataset") == "calibration"
               for r in recipes):
            model_dir = source.path.parent if source.path.is_file() else source.path
            self.calibration = resolve_calibration(source.kind, calibration_data, model_dir)
        if eval_data is None and self.evals.eval_data:
            from modelgate.release.eval_data import load_eval_data

            eval_data = load_eval_data(self.evals.eval_data)
        self.eval_config = ev.make_eval_config(
            self.tasks, limit=self.evals.limit, device=device, precision=self.evals.precision,
            reference_model=str(source.path) if source.kind == "encoder" else None, eval_data=eval_data,
            data_root=ws.dir, include_path=self.evals.include_path, num_fewshot=self.evals.num_fewshot,
            allow_download=self.evals.allow_download, lm_max_length=self.evals.lm_max_length, timeout=timeout)
        self.vers = versions()
        self._source_sha: str | None = None

    # ------------------------------------------------------------------ baseline
    def source_sha(self) -> str:
        if self._source_sha is None:
            self._source_sha = tree_sha256(self.source.path)
        return self._source_sha

    def baseline(self) -> dict:
        """fp32 OpenVINO IR of the source in ``baseline/ir`` (stage verdict)."""
        inputs = {"source_sha256": self.source_sha(), "kind": self.source.kind, "task": self.source.task,
                  "versions": self.vers}
        out = self.ws.path("baseline", "ir")

        def body() -> dict:
            self.progress("baseline: fp32 OpenVINO export of the source")
            if self.source.kind in ("llm", "encoder"):
                from modelgate.openvino.convert import export_cached
                try:
                    cached = export_cached(self.source.path, "fp32", task=self.source.task, timeout=self.timeout)
                except RuntimeError as exc:
                    return {"verdict": _stage_verdict("baseline-export", False, "CONVERSION_FAILED", str(exc))}
                shutil.copytree(cached, out, ignore=shutil.ignore_patterns(".*"))
                return {"verdict": _stage_verdict("baseline-export", True, None, "fp32 IR via optimum-intel (cached)")}
            from modelgate.openvino.convert import convert
            conv = convert(str(self.source.path), out, weight_format="fp32", timeout=self.timeout)
            return {"verdict": _stage_verdict("baseline-export", conv.ok, conv.failure_class, conv.detail)}

        return self.ws.stage("baseline-export", inputs, ["baseline/ir"], body, keep=_keep)["verdict"]

    # ------------------------------------------------------------------ candidate chain
    def quantize(self, recipe: dict) -> dict:
        from modelgate.openvino.quantize import quantize

        name = recipe["name"]
        rel = f"candidate-{name}/ir"
        uses_data = recipe.get("kind") == "static_int8" or (recipe.get("nncf") or {}).get("dataset") == "calibration"
        calibration = self.calibration if uses_data else None
        inputs = {"recipe": recipe, "baseline_ir": self.ws.hashes.get("baseline/ir"), "versions": self.vers,
                  "calibration_sha256": calibration["sha256"] if calibration else None}

        def body() -> dict:
            self.progress(f"{name}: NNCF {recipe['kind']}")
            res = quantize(recipe, self.ws.path("baseline", "ir"), self.ws.path(rel), calibration=calibration,
                           tokenizer_dir=self.source.path if self.source.kind == "llm" else None, timeout=self.timeout)
            detail = (f"NNCF {recipe['kind']} with {res.value['nncf_kwargs']} in {res.value['seconds']:.1f}s"
                      if res.ok else res.detail)
            return {"verdict": _stage_verdict("quantize", res.ok, None if res.ok else res.failure_class, detail,
                                              metrics=res.value if res.ok else {})}

        return self.ws.stage(f"quantize-{name}", inputs, [rel], body, keep=_keep)["verdict"]

    def gate_ptq(self, recipe: dict) -> tuple[dict, dict | None]:

        name = recipe["name"]
        rel = f"candidate-{name}/ir"
        inputs = {"recipe": recipe, "candidate_ir": self.ws.hashes.get(rel),
                  "baseline_ir": self.ws.hashes.get("baseline/ir")}

        def body() -> dict:
            self.progress(f"{name}: gate_ptq")
            try:
                # PTQ's input is the fp32 baseline IR: compare against it, so that metadata the exporter
                # rewrites (verify-conversion's business) is not blamed on quantization
                obs = observe_ptq_in_child(str(self.ws.path(rel)), str(self.ws.path("baseline", "ir")), recipe)
            except GateInputError as exc:
                return {"verdict": _stage_verdict("gate-ptq", False, exc.failure_class, exc.detail), "obs": None}
            except Exception as exc:  # GateFailure: an IR OpenVINO cannot read
                cls = getattr(exc, "failure_class", "UNKNOWN")
                return {"verdict": _stage_verdict("gate-ptq", False, cls, str(exc)), "obs": None}
            return {"verdict": evaluate_ptq(obs), "obs": obs}

        res = self.ws.stage(f"gate-ptq-{name}", inputs, [], body, keep=_keep)
        return res["verdict"], res.get("obs")

    def canary(self, recipe: dict) -> tuple[dict, dict]:
        from modelgate.openvino.canary import observe_canary

        name = recipe["name"]
        rel = f"candidate-{name}/ir"
        inputs = {"candidate_ir": self.ws.hashes.get(rel), "device": self.device, "kind": self.source.kind}

        def body() -> dict:
            self.progress(f"{name}: deploy canary on {self.device}")
            obs = observe_canary(self.ws.path(rel), llm=self.source.kind == "llm", device=self.device,
                                 sample_inputs=self._sample_inputs(), timeout=self.timeout)
            return {"verdict": canary_verdict(obs), "obs": obs}

        res = self.ws.stage(f"canary-{name}", inputs, [], body, keep=_keep)
        return res["verdict"], res["obs"]

    def _sample_inputs(self) -> dict:
        """One real request for a non-LLM canary."""
        if self.source.kind == "classifier":
            import numpy as np
            import openvino as ov

            model = ov.Core().read_model(str(self.ws.path("baseline", "ir", "openvino_model.xml")))
            shape = model.inputs[0].get_partial_shape()
            dims = [d.get_length() if d.is_static else 1 for d in shape]  # a dynamic (batch) dimension -> 1
            name = next(iter(model.inputs[0].get_names()))
            # an image-like input in [0, 1): the canary asks whether it loads and answers, not what it answers
            return {name: np.random.default_rng(0).random(dims, dtype=np.float32).tolist()}
        if self.source.kind == "encoder":
            from transformers import AutoTokenizer
            tok = AutoTokenizer.from_pretrained(self.ws.path("baseline", "ir"))
            return {k: v.tolist() for k, v in tok(ev.EMBEDDING_SENTENCES[0], return_tensors="np").items()}
        return {}

    def evaluate(self, variant_dir: str, variant: str) -> tuple[dict, dict]:
        """(run summary, eval info) of ``<variant_dir>/ir``, cached by the IR hash and the eval config hash
        (and, for a candidate judged by answer similarity, the baseline's answers)."""
        ir_rel, eval_rel = f"{variant_dir}/ir", f"{variant_dir}/eval"
        inputs = {"ir": self.ws.hashes.get(ir_rel), "eval_config_sha256": ev.eval_config_sha256(self.eval_config)}
        needs_reference = variant != "baseline" and any(
            s.get("engine") == "answer-similarity" for s in self.eval_config["task_specs"].values())
        if needs_reference:
            inputs["reference_answers"] = self.ws.hashes.get("baseline/eval")

        def body() -> dict:
            summary, info = ev.run_evaluation(
                self.ws.path(ir_rel), self.eval_config, self.ws.path(eval_rel), variant=variant,
                run_id=f"{self.ws.run_id}/{variant_dir}", model_label=str(self.ws.path(ir_rel)),
                data_root=self.ws.dir, include_path=self.evals.include_path,
                allow_download=self.evals.allow_download,
                reference_eval=self.ws.path("baseline", "eval") if needs_reference else None,
                timeout=self.timeout, progress=self.progress)
            return {"summary_path": f"{eval_rel}/run_summary.json", "status": summary["status"], "info": info,
                    "failure_class": None if summary["status"] == "COMPLETED" else "EVAL_SCORER_FAILED"}

        res = self.ws.stage(f"eval-{variant_dir}", inputs, [eval_rel], body,
                            keep=lambda r: not any(e["code"] in ("TIMEOUT", "INFRA")
                                                   for t in _read(self.ws.path(r["summary_path"]))["tasks"].values()
                                                   for e in t.get("errors", [])))
        return _read(self.ws.path(res["summary_path"])), res.get("info") or {}

    def gate_run(self, summary: dict, variant_dir: str) -> dict:
        """gate_run on a summary, with the per-sample records' statistics."""
        summary_path = self.ws.path(variant_dir, "eval", "run_summary.json")
        return evaluate_run(summary, records.summary_records_stats(summary_path, summary))

    def compare(self, baseline: dict, candidate: dict, candidate_dir: str) -> dict:
        paired = records.paired_from_records(self.ws.path("baseline", "eval", "run_summary.json"), baseline,
                                             self.ws.path(candidate_dir, "eval", "run_summary.json"), candidate)
        return evaluate_compare(baseline, candidate, threshold=self.threshold, relative=self.relative,
                                paired=paired or None)

    def closeout(self, rel: str, summary: dict) -> dict:
        """What is published must be what was evaluated: re-hash the candidate IR now."""
        now = ev.artifact_sha256(self.ws.path(rel))
        ok = now == summary.get("artifact_sha256")
        return _stage_verdict("closeout", ok, None if ok else "INTEGRITY_MISMATCH",
                              "published artifact is the evaluated one" if ok else
                              f"candidate IR changed after evaluation ({summary.get('artifact_sha256')} -> {now})",
                              metrics={"artifact_sha256": now})

    def run_chain(self, recipe: dict) -> ChainResult:
        """The whole chain for one recipe; stops at the first failing stage."""
        name = recipe["name"]
        cdir = f"candidate-{name}"
        stages: list[dict] = []
        result = ChainResult(name, {}, stages)

        def decide() -> ChainResult:
            result.verdict = decide_release(stages)
            return result

        stages.append(self.baseline())
        if not stages[-1]["pass"]:
            return decide()
        if recipe.get("applies_to") != KIND_APPLIES_TO[self.source.kind]:
            stages.append(_stage_verdict("recipe-applicability", False, "MODEL_UNSUPPORTED",
                                         f"recipe {name} ({recipe.get('kind')}) applies to {recipe.get('applies_to')} "
                                         f"models; {self.source.path.name} is a {self.source.kind} model"))
            return decide()
        stages.append(self.quantize(recipe))
        result.quantize = stages[-1].get("metrics") or None
        if not stages[-1]["pass"]:
            return decide()
        result.candidate_ir = str(self.ws.path(cdir, "ir"))
        ptq, result.ptq_obs = self.gate_ptq(recipe)
        stages.append(ptq)
        if not ptq["pass"]:
            return decide()
        canary, result.canary = self.canary(recipe)
        stages.append(canary)
        if not canary["pass"]:
            return decide()
        base, result.eval_info["baseline"] = self.evaluate("baseline", "baseline")
        run_b = self.gate_run(base, "baseline")
        stages.append(dict(run_b, gate="gate-run", variant="baseline"))
        if not run_b["pass"]:
            return decide()
        cand, result.eval_info["candidate"] = self.evaluate(cdir, "candidate")
        result.summaries = {"baseline": base, "candidate": cand}
        run_c = self.gate_run(cand, cdir)
        stages.append(dict(run_c, gate="gate-run", variant="candidate"))
        if not run_c["pass"]:
            return decide()
        result.compare = self.compare(base, cand, cdir)
        stages.append(result.compare)
        if not result.compare["pass"]:
            return decide()
        close = self.closeout(f"{cdir}/ir", cand)
        stages.append(close)
        result.candidate_sha256 = close["metrics"]["artifact_sha256"]
        return decide()


def _read(path: Path) -> dict:
    from modelgate.contract import read_json
    return read_json(path, "run summary")
