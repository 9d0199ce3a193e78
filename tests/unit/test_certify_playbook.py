"""Playbooks: schema strictness, tier merge, and every field changes what the runner does."""
from pathlib import Path

import pytest
import yaml

from modelgate.certify import playbook as P
from modelgate.certify.runner import plan, policy_stops
from modelgate.contract import GateInputError

MODELS = P.PLAYBOOK_DIR / "models"


def _write(tmp_path: Path, doc: dict, name="pb.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return p


BASE = {"name": "t", "model": {"fixture": "trained-llama"}, "model_family": "llama", "tier": "smoke"}


@pytest.mark.parametrize("tier", P.TIERS)
def test_every_tier_template_merges_into_a_valid_playbook_with_all_categories(tmp_path, tier):
    doc = P.load_playbook(_write(tmp_path, dict(BASE, tier=tier)))
    kinds = {s["kind"] for s in doc["scenarios"]}
    # prompts -> QUAL/G4, edge -> EDGE/G2, determinism -> STAB/G3, contract -> COMP/REGR/G0
    assert {"prompts", "edge", "determinism"} <= kinds
    assert "contract" in doc["matrix"]["modalities"] and "safetensors" in doc["matrix"]["formats"]


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_model_playbook_in_the_pack_is_valid(path):
    assert P.load_playbook(path)["name"] == path.stem


def test_unknown_top_level_field_is_rejected(tmp_path):
    with pytest.raises(GateInputError, match="Additional properties"):
        P.load_playbook(_write(tmp_path, dict(BASE, retries=3)))


def test_unknown_scenario_field_is_rejected(tmp_path):
    doc = dict(BASE, scenarios=[{"name": "x", "kind": "prompts", "prompts": ["a"], "weight": 2}])
    with pytest.raises(GateInputError):
        P.load_playbook(_write(tmp_path, doc))


def test_unparseable_arithmetic_question_refuses_the_playbook(tmp_path):
    doc = dict(BASE, scenarios=[{"name": "math", "kind": "arithmetic", "prompts": ["What is love?"]}])
    with pytest.raises(GateInputError, match="no arithmetic expression"):
        P.load_playbook(_write(tmp_path, doc))


def test_unknown_tier_and_missing_file_are_input_errors(tmp_path):
    with pytest.raises(GateInputError):
        P.load_playbook(_write(tmp_path, dict(BASE, tier="ultra")))
    with pytest.raises(GateInputError):
        P.load_playbook(tmp_path / "nope.yaml")


def test_seed_changes_the_prompt_sample_and_order(tmp_path):
    prompts = [f"prompt number {i}" for i in range(12)]
    sc = [{"name": "prompts", "kind": "prompts", "prompts": prompts, "samples": 5}]
    a = plan(P.load_playbook(_write(tmp_path, dict(BASE, seed=0, scenarios=sc), "a.yaml")))
    b = plan(P.load_playbook(_write(tmp_path, dict(BASE, seed=1, scenarios=sc), "b.yaml")))
    items = lambda p: [c["items"] for c in p["cells"] if c["scenario"] == "prompts"][0]  # noqa: E731
    assert len(items(a)) == 5 and items(a) != items(b)
    assert items(a) == items(plan(P.load_playbook(_write(tmp_path, dict(BASE, seed=0, scenarios=sc), "c.yaml"))))


def test_timeout_ms_reaches_every_cell_and_scenario_and_cli_overrides_apply(tmp_path):
    sc = [{"name": "slow", "kind": "prompts", "prompts": ["a"], "timeout_ms": 123}]
    doc = P.load_playbook(_write(tmp_path, dict(BASE, timeout_ms=4567, scenarios=sc)))
    cells = P.expand(doc)
    assert {c.timeout_ms for c in cells if c.scenario == "slow"} == {123}
    assert {c.timeout_ms for c in cells if c.scenario == "edge"} == {4567}
    assert {c.timeout_ms for c in P.expand(doc, 999) if c.scenario == "edge"} == {999}


def test_matrix_expands_formats_devices_modalities_and_scenario_restrictions(tmp_path):
    doc = P.load_playbook(_write(tmp_path, dict(BASE, tier="mvp")))
    cells = P.expand(doc)
    assert {c.format for c in cells} == set(doc["matrix"]["formats"])
    assert {c.device for c in cells} == {"CPU", "GPU"}
    assert not [c for c in cells if c.scenario == "determinism" and c.modality != "run"]
    assert not [c for c in cells if c.modality == "contract" and c.format == "safetensors"]
    assert len({c.id for c in cells}) == len(cells)


def test_max_new_tokens_workers_policy_and_oracles_are_carried_into_the_plan(tmp_path):
    doc = P.load_playbook(_write(tmp_path, dict(BASE, max_new_tokens=3, workers=3, failure_policy="fail-fast",
                                                oracles={"arithmetic": {"enabled": False}})))
    assert (doc["max_new_tokens"], doc["workers"], doc["failure_policy"]) == (3, 3, "fail-fast")
    assert doc["oracles"]["arithmetic"] == {"enabled": False} and doc["oracles"]["degenerate"]["enabled"]


def test_model_ir_must_name_a_format_in_the_matrix(tmp_path):
    with pytest.raises(GateInputError, match="not in matrix.formats"):
        P.load_playbook(_write(tmp_path, dict(BASE, model={"fixture": "llama", "ir": {"openvino-int4": "x"}})))


@pytest.mark.parametrize("policy,outcome,gateway,stops", [
    ("collect-all", "Falsified", "G4", False), ("stop-on-first", "Falsified", None, True),
    ("stop-on-p0", "Falsified", None, False), ("stop-on-p0", "Crashed", "G3", True),
    ("fail-fast", "Timeout", "G3", True), ("stop-on-first", "Skipped", "G1", False),
    ("stop-on-first", "Corroborated", "G1", False)])
def test_failure_policy_decides_when_the_run_stops(policy, outcome, gateway, stops):
    assert policy_stops(policy, {"outcome": outcome, "gateway": gateway}) is stops
