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
    calibration_dir: Path  # where a static_int8 calibration set / tokenizer lives


@dataclass
class ChainResult:
    recipe: str
    verdict: dict                     # the release decision (decide_release)
    stages: list[dict]                # the stage verdicts, in order
    ptq_obs: dict | None = None
    canary: dict | None = None
    compare: dict | None = None
    candidate_ir: str | None = None
    candidate_sha256: str | None = None
    summaries: dict = field(default_factory=dict)


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
        return Source(p.resolve(), "classifier", None, p.resolve().parent)
    if not (p / "config.json").is_file():
        native = [f for f in sorted(p.iterdir()) if f.suffix.lower() == ".onnx"]
        if len(native) == 1:
            return Source(native[0].resolve(), "classifier", None, p.resolve())
        raise GateInputError("USER_CONFIG_ERROR", f"{p} has no config.json and not exactly one .onnx model")
    try:
        task = task_from_model_dir(p)
    except TaskError as exc:
        raise GateInputError("USER_CONFIG_ERROR", str(exc)) from exc
    kind = TASK_MODEL_KIND.get(task)
    if kind is None:
        raise GateInputError("USER_CONFIG_ERROR", f"no day-0 evaluation exists for task {task} "
                             f"(supported: {sorted(set(TASK_MODEL_KIND))} and image classifiers as .onnx/.pt)")
    return Source(p.resolve(), kind, task, p.resolve())


def _stage_verdict(gate: str, ok: bool, failure_class: str | None, detail: str, **extra) -> dict:
    return make_verdict(gate, passed=ok, failure_class=failure_class, detail=detail or ("ok" if ok else "failed"),
                        **extra)


def _keep(result: dict) -> bool:
    return (result.get("verdict") or result).get("failure_class") not in TRANSIENT_CLASSES


class Conductor:
    """Runs the chain for one source and one or more recipes inside one workspace."""

    def __init__(self, ws: Workspace, source: Source, tasks: list[str], *, limit: int | None = None,
                 device: str = "CPU", threshold: float = 0.01, relative: bool = False, timeout: float = 900.0,
                 progress: Callable[[str], None] | None = None):
        self.ws, self.source, self.tasks = ws, source, tasks
        self.threshold, self.relative, self.timeout, self.device = threshold, relative, timeout, device
        self.progress = progress or (lambda msg: None)
        self.eval_config = ev.make_eval_config(tasks, limit=limit, device=device,
                                               reference_model=str(source.path) if source.kind == "encoder" else None)
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
        inputs = {"recipe": recipe, "baseline_ir": self.ws.hashes.get("baseline/ir"), "versions": self.vers}

        def body() -> dict:
            self.progress(f"{name}: NNCF {recipe['kind']}")
            res = quantize(recipe, self.ws.path("baseline", "ir"), self.ws.path(rel),
                           calibration_source=self.source.calibration_dir,
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
            import openvino as ov
            model = ov.Core().read_model(str(self.ws.path("baseline", "ir", "openvino_model.xml")))
            name = next(iter(model.inputs[0].get_names()))
            return {name: [ev.digits_samples()[0]["input"]]}
        if self.source.kind == "encoder":
            from transformers import AutoTokenizer
            tok = AutoTokenizer.from_pretrained(self.ws.path("baseline", "ir"))
            return {k: v.tolist() for k, v in tok(ev.EMBEDDING_SENTENCES[0], return_tensors="np").items()}
        return {}

    def evaluate(self, variant_dir: str, variant: str) -> dict:
        """Run summary of ``<variant_dir>/ir`` (cached by the IR hash and the eval config hash)."""
        ir_rel, eval_rel = f"{variant_dir}/ir", f"{variant_dir}/eval"
        inputs = {"ir": self.ws.hashes.get(ir_rel), "eval_config_sha256": ev.eval_config_sha256(self.eval_config)}

        def body() -> dict:
            summary = ev.run_evaluation(self.ws.path(ir_rel), self.eval_config, self.ws.path(eval_rel),
                                        variant=variant, run_id=f"{self.ws.run_id}/{variant_dir}",
                                        model_label=ir_rel, timeout=self.timeout, progress=self.progress)
            return {"summary_path": f"{eval_rel}/run_summary.json", "status": summary["status"],
                    "failure_class": None if summary["status"] == "COMPLETED" else "EVAL_SCORER_FAILED"}

        res = self.ws.stage(f"eval-{variant_dir}", inputs, [eval_rel], body,
                            keep=lambda r: not any(e["code"] in ("TIMEOUT", "INFRA")
                                                   for t in _read(self.ws.path(r["summary_path"]))["tasks"].values()
                                                   for e in t.get("errors", [])))
        return _read(self.ws.path(res["summary_path"]))

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
        if not stages[-1]["pass"]:
            return decide()
        result.candidate_ir = f"{cdir}/ir"
        ptq, result.ptq_obs = self.gate_ptq(recipe)
        stages.append(ptq)
        if not ptq["pass"]:
            return decide()
        canary, result.canary = self.canary(recipe)
        stages.append(canary)
        if not canary["pass"]:
            return decide()
        base = self.evaluate("baseline", "baseline")
        run_b = self.gate_run(base, "baseline")
        stages.append(dict(run_b, gate="gate-run", variant="baseline"))
        if not run_b["pass"]:
            return decide()
        cand = self.evaluate(cdir, "candidate")
        result.summaries = {"baseline": base, "candidate": cand}
        run_c = self.gate_run(cand, cdir)
        stages.append(dict(run_c, gate="gate-run", variant="candidate"))
        if not run_c["pass"]:
            return decide()
        result.compare = self.compare(base, cand, cdir)
        stages.append(result.compare)
        if not result.compare["pass"]:
            return decide()
        close = self.closeout(result.candidate_ir, cand)
        stages.append(close)
        result.candidate_sha256 = close["metrics"]["artifact_sha256"]
        return decide()


def _read(path: Path) -> dict:
    from modelgate.contract import read_json
    return read_json(path, "run summary")
