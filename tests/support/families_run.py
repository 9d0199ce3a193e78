"""Shared by the task-family tests: cached fixtures and exports, an in-process verification that
returns the schema-checked verdict, and the fault table of every family."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelgate import contract, family_fixtures
from modelgate.cli.verify import make_result
from modelgate.contract import GateError
from modelgate.gates.verify import evaluate_verify, tolerances_for
from modelgate.openvino.convert import export_cached
from modelgate.verify.observe import Request, observe
from tests.support import family_faults

WEIGHT_FORMAT = "fp16"   # what `modelgate verify` exports by default


@dataclass(frozen=True)
class Case:
    fixture: str
    family: str
    task: str
    sub_model: str                 # the sub-model a weight fault / swap / deletion hits
    lie: tuple                     # (file beside the IR, key, value): a config that lies
    twin: bool = False             # swap the sub-model from a twin export (costs one more export)


def source(case: Case) -> Path:
    return family_fixtures.family_model(case.fixture)


def export(case: Case, wf: str = WEIGHT_FORMAT) -> Path:
    return export_cached(source(case), wf)


def twin_export(case: Case) -> Path:
    """The same architecture, other weights (another seed, a few training steps): its sub-models load
    and run in place of the good export's."""
    seed = family_fixtures.RECIPES[case.fixture]["seed"] + 1000
    return export_cached(family_fixtures.family_model(case.fixture, seed=seed, train_steps=10), WEIGHT_FORMAT)


SOURCE_RUNS: dict = {}   # one source run per fixture for the whole session


def verify(model: Path, ir_dir: Path | None) -> dict:
    req = Request(model=str(model), converted=str(ir_dir) if ir_dir else None, in_process=True,
                  source_cache=SOURCE_RUNS)
    obs = observe(req)
    verdict = make_result(evaluate_verify(obs, tolerances_for(obs["weight_format"])), obs, req.evidence, req.timings)
    assert contract.schema_errors("verify-result", verdict) == []
    return verdict


def verify_error(model: Path, ir_dir: Path | None) -> GateError:
    with pytest.raises(GateError) as exc:
        verify(model, ir_dir)
    return exc.value


def assert_verified(v: dict, case: Case) -> None:
    assert v["pass"] and v["decision"] == "VERIFIED", v["detail"]
    assert v["mode"] == "family" and v["family"] == case.family
    ran = {c["name"]: c["pass"] for c in v["checks"]}
    for name in ("outputs_finite", "source_ran", "fidelity_rel_err", "fidelity_cosine", "fidelity_scale_ratio"):
        assert ran[name] is True, (name, v["detail"])
    # the deployment run (the device's default precision, read back from every compiled sub-model) is judged
    runs = {p["name"]: p for p in v["precisions"]}
    assert runs["f32"]["ran_as"] == "f32" and set(runs) == {"f32", "default"}, v["precisions"]
    assert runs["f32"]["kv_cache_precision"] in ("f32", "None"), v["precisions"]  # the faithful run's cache
    assert runs["default"]["ran_as"] in ("bf16", "f16", "f32") and runs["default"]["vs_f32"]["nonfinite"] == 0
    assert ran["precision_default_finite"] is True and ran["precision_default_agreement"] is True, v["detail"]


def assert_rejected(v: dict) -> None:
    assert not v["pass"] and v["exit_code"] == 1 and v["decision"] == "REJECTED", v["detail"]


def inject_and_verify(case: Case, fault: str, tmp_path: Path) -> tuple[dict, dict]:
    good, bad = export(case), tmp_path / "bad"
    if fault == "garbled_weight":
        info = family_faults.garbled_weight(good, bad, case.sub_model)
    elif fault == "swapped_sub_model":
        info = family_faults.swapped_sub_model(good, bad, case.sub_model, twin_export(case))
    elif fault == "lying_config":
        info = family_faults.lying_config(good, bad, *case.lie)
    else:
        raise ValueError(fault)
    return verify(source(case), bad), info


def without(src: Path, dst: Path, names: tuple[str, ...]) -> Path:
    """A copy of a source folder without ``names`` (a processor / feature extractor left behind)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".complete", *names))
    return dst
