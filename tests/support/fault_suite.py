"""The random fault suite: draw faults on good IRs, ask an oracle whether each is a fault, ask the gate.

A perturbation counts as a fault only when it moves some hidden state beyond the good export's
spread. Per (architecture, weight format) cell the suite first measures, on *holdout* inputs (not
the gate's):

- the spread: the good IR's error against the source at every tensor (embedding output, each
  block's output, the logits), per position bucket, at least the f32 arithmetic floor the gate allows;
- the good IR's own outputs, stored as a reference.

For a draw, the oracle runs the perturbed IR on the same holdout inputs and measures its
displacement from the good IR at every tensor; it is a fault when some displacement exceeds the
spread there. The gate then verifies the perturbed IR exactly as a user would (its own inputs,
f32). ``scripts/bench_faults.py`` runs hundreds of draws; ``tests/integration/test_verify_random_faults.py``
a sample.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from modelgate import fixtures
from modelgate.cli.verify import make_result
from modelgate.gates.layerwise import FLOAT_FLOOR
from modelgate.gates.verify import evaluate_verify, tolerances_for
from modelgate.openvino.convert import export_cached
from modelgate.openvino.refstore import ReferenceStore
from modelgate.verify import plan as plan_mod
from modelgate.verify.observe import Request, observe
from tests.support import fault_draws

HOLDOUT_SEED = 4321


@dataclass
class Cell:
    """One (architecture, weight format): the good IR, its catalog and the oracle's measurements."""
    arch: str
    weight_format: str
    source: Path
    good_ir: Path
    catalog: list
    head_dim: int
    holdout: dict
    good_store: Path
    spread: dict
    source_cache: dict = field(default_factory=dict)
    good_verdict: dict | None = None


def _config(source: Path) -> dict:
    return json.loads((source / "config.json").read_text(encoding="utf-8"))


def _holdout_plan(source: Path) -> dict:
    from modelgate.openvino.tokenizer_parity import load_hf_tokenizer
    config = _config(source)
    tok = load_hf_tokenizer(source)
    if config.get("architectures", [""])[0].endswith(("ForCausalLM", "LMHeadModel")):
        plan = plan_mod.decoder_plan(tok, config, 8, seed=HOLDOUT_SEED)
        plan["greedy"] = []  # the oracle compares hidden states on teacher-forced inputs only
        return plan
    return plan_mod.encoder_plan(tok, config, seed=HOLDOUT_SEED)


def _ov_model(ir: Path):
    import openvino as ov

    from modelgate.openvino import blocks
    core = ov.Core()
    model = core.read_model(str(ir / "openvino_model.xml"))
    return core, model, blocks.find_block_stacks(model)


def tensor_errors(ir: Path, store_dir: Path, plan: dict) -> dict:
    """The IR's per-tensor errors against a reference store on ``plan``: {tensor label: {overall, buckets}}."""
    import tempfile

    from modelgate.openvino import layerwise
    store = ReferenceStore(store_dir)
    core, model, stacks = _ov_model(ir)
    stack = layerwise.match_stack(stacks, store.meta().get("stack"))
    with tempfile.TemporaryDirectory(prefix="fault-oracle-") as tmp:
        run = layerwise.faithful_run(core, model, stack, store, plan, "CPU", ReferenceStore(Path(tmp) / "f32"),
                                     decoupled=False)
    out = {}
    for index, s in run["accumulated"].items():
        out[str(index)] = {"all": s["rel_err"], **{f"@{b}": v for b, v in s["rel_err_by_position"].items()}}
    out["logits"] = {"all": (run.get("logits") or {}).get("rel_fro")}
    out["logits_long"] = {"all": (run.get("logits_long") or {}).get("rel_fro")}
    out["nonfinite"] = sum(o.get("nan", 0) + o.get("inf", 0) for o in run.get("outputs") or [])
    return out


def prepare(arch: str, weight_format: str, work: Path) -> Cell:
    """Export (cached), catalog, holdout reference of the source and of the good IR, and the spread."""
    from modelgate.openvino import layerwise, reference
    source = fixtures.hf_model(arch)
    good = export_cached(source, weight_format)
    config = _config(source)
    holdout = _holdout_plan(source)
    work = Path(work) / f"{arch}-{weight_format}"
    kind = holdout["kind"]
    task = "text-generation-with-past" if kind == "decoder" else "text-classification"
    reference.source_reference(str(source), kind, task, holdout, str(work / "source"),
                               ir_xml=str(good / "openvino_model.xml"))
    spread = tensor_errors(good, work / "source", holdout)
    core, model, stacks = _ov_model(good)
    stack = layerwise.match_stack(stacks, ReferenceStore(work / "source").meta().get("stack"))
    layerwise.record_ir(core, model, stack, holdout, ReferenceStore(work / "good"))
    heads = config.get("num_attention_heads") or config.get("n_head")
    hidden = config.get("hidden_size") or config.get("n_embd")
    return Cell(arch, weight_format, source, good, fault_draws.catalog_of(good), hidden // heads, holdout,
                work / "good", spread)


def verify(cell: Cell, ir: Path, precision: str = "f32") -> dict:
    """The gate's verdict on ``ir`` as a user gets it (in process, the source run shared per cell)."""
    req = Request(model=str(cell.source), converted=str(ir), in_process=True, source_cache=cell.source_cache,
                  inference_precision=precision)
    obs = observe(req)
    return make_result(evaluate_verify(obs, tolerances_for(obs["weight_format"])), obs, req.evidence, req.timings)


def oracle(cell: Cell, bad_ir: Path) -> dict:
    """Is the perturbed IR a fault? The largest displacement from the good IR over the spread there."""
    disp = tensor_errors(bad_ir, cell.good_store, cell.holdout)
    if disp.pop("nonfinite"):
        return {"fault": True, "ratio": math.inf, "where": "non-finite outputs"}
    worst = (0.0, None)
    for tensor, values in disp.items():
        for key, d in values.items():
            s = (cell.spread.get(tensor) or {}).get(key)
            if d is None or s is None:
                continue
            ratio = d / max(s, FLOAT_FLOOR)
            if not math.isfinite(ratio) or ratio > worst[0]:
                worst = (ratio, f"{tensor}{'' if key == 'all' else key}")
    return {"fault": worst[0] > 1.0, "ratio": worst[0], "where": worst[1]}


def run_draw(cell: Cell, d: fault_draws.Draw, work: Path) -> dict:
    """Apply one draw, ask the oracle and the gate; a record of the outcome."""
    t0 = time.monotonic()
    row = {"cell": f"{cell.arch}/{cell.weight_format}", "draw": d.to_dict(), "label": d.label()}
    try:
        bad = fault_draws.apply(d, cell.good_ir, Path(work) / "bad", cell.catalog, cell.head_dim)
    except Exception as exc:  # a draw the IR cannot take (e.g. a row op on a scalar): recorded, not judged
        row.update(applied=False, error=f"{type(exc).__name__}: {exc}")
        return row
    row["applied"] = True
    try:
        row["oracle"] = oracle(cell, bad)
    except Exception as exc:  # the perturbed IR does not even compile: a fault any gate must catch
        row["oracle"] = {"fault": True, "ratio": math.inf, "where": f"does not run: {type(exc).__name__}"}
    verdict = verify(cell, bad)
    divergent = verdict.get("first_divergent_layer") or {}
    row.update(caught=not verdict["pass"], failure_class=verdict["failure_class"], detail=verdict["detail"][:300],
               first_divergent_layer=divergent.get("layer"), seconds=round(time.monotonic() - t0, 2))
    if d.layer is not None:
        row["drawn_layer"] = d.layer[1]
    return row


def summarize(rows: list[dict], good: list[dict]) -> dict:
    """Catch rate over the oracle's faults, flags on non-faults, good exports rejected, localization."""
    applied = [r for r in rows if r.get("applied")]
    faults = [r for r in applied if r["oracle"]["fault"]]
    caught = [r for r in faults if r["caught"]]
    localizable = [r for r in caught if "drawn_layer" in r and isinstance(r.get("first_divergent_layer"), int)]
    same = sum(1 for r in localizable if r["first_divergent_layer"] == r["drawn_layer"])
    return {"draws": len(rows), "applied": len(applied), "faults": len(faults), "caught": len(caught),
            "catch_rate": (len(caught) / len(faults)) if faults else None,
            "missed": [r["label"] for r in faults if not r["caught"]],
            "non_faults": len(applied) - len(faults),
            "non_faults_flagged": sum(1 for r in applied if not r["oracle"]["fault"] and r["caught"]),
            "first_divergent_is_drawn_layer": f"{same}/{len(localizable)}",
            "by_role": by_role(faults), "good_exports": len(good),
            "good_rejected": [g["cell"] for g in good if not g["pass"]]}


def by_role(faults: list[dict]) -> dict:
    """Faults and catches per drawn tensor role (the fault's class)."""
    out: dict = {}
    for r in faults:
        role = out.setdefault(r["draw"]["role"], {"faults": 0, "caught": 0})
        role["faults"] += 1
        role["caught"] += bool(r["caught"])
    return out
