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
    doc = P.load_playbook(_write(tmp_path, dict(BASE, max_new_tokens=12, workers=3, failure_policy="fail-fast",
                                                oracles={"degenerate": {"max_char_run": 6}})))
    assert (doc["max_new_tokens"], doc["workers"], doc["failure_policy"]) == (12, 3, "fail-fast")
    assert doc["oracles"]["degenerate"]["max_char_run"] == 6 and doc["oracles"]["degenerate"]["enabled"]


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


# --- issue 14: tier floors, silent no-ops, duplicate keys

@pytest.mark.parametrize("override,setting", [
    ({"oracles": {"degenerate": {"enabled": False}}}, "oracles.degenerate.enabled"),
    ({"oracles": {"reference": {"enabled": False}}}, "oracles.reference.enabled"),
    ({"oracles": {"exact": {"enabled": False}}}, "oracles.exact.enabled"),
    ({"oracles": {"degenerate": {"max_char_run": 50}}}, "oracles.degenerate.max_char_run"),
    ({"oracles": {"degenerate": {"min_period_reps": 9}}}, "oracles.degenerate.min_period_reps"),
    ({"gates": {"reference_agreement": {"openvino-fp32": 0.1}}}, "gates.reference_agreement.openvino-fp32"),
    ({"gates": {"min_tokens_per_s": 0.001}}, "gates.min_tokens_per_s"),
    ({"gates": {"max_ttft_ms": 999999}}, "gates.max_ttft_ms"),
    ({"max_new_tokens": 1}, "max_new_tokens"),
    ({"matrix": {"formats": ["openvino-fp32"], "devices": ["CPU"], "modalities": ["run", "contract"]}},
     "matrix.formats"),
    ({"matrix": {"formats": ["safetensors", "openvino-fp32"], "devices": ["CPU"], "modalities": ["run"]}},
     "matrix.modalities"),
    ({"scenarios": [{"name": "edge", "kind": "edge", "prompts": ["a"]}]}, "scenarios.edge.items"),
    ({"scenarios": [{"name": "determinism", "kind": "determinism", "prompts": ["x"], "repeats": 2}]}, None),
    ({"scenarios": [{"name": "prompts", "kind": "selftest", "fault": "crash"}]}, "scenarios.prompts.kind"),
    ({"tier": "mvp", "scenarios": [{"name": "prompts", "kind": "prompts", "prompts": ["x", "y"],
                                    "modalities": ["run"]}]}, "scenarios.prompts.modalities"),
])
def test_a_model_playbook_cannot_weaken_its_tier(tmp_path, override, setting):
    path = _write(tmp_path, dict(BASE, **override))
    if setting is None:  # repeats equal to the smoke floor (2) is allowed
        P.load_playbook(path)
        return
    with pytest.raises(GateInputError, match="weakens the (smoke|mvp) tier") as exc:
        P.load_playbook(path)
    assert exc.value.failure_class == "USER_CONFIG_ERROR" and exc.value.exit_code == 2
    assert setting in exc.value.detail and setting in [v["setting"] for v in exc.value.evidence["weakened"]]


def test_the_garbage_loophole_disabling_the_degenerate_oracle_is_refused(tmp_path):
    with pytest.raises(GateInputError, match="oracles.degenerate.enabled may not be switched off"):
        P.load_playbook(_write(tmp_path, dict(BASE, model={"fixture": "llama"},
                                              oracles={"degenerate": {"enabled": False}})))


def test_weakening_is_judged_against_the_tier_actually_run(tmp_path):
    """trained-llama-smoke's prompts scenario has 1 sample: fine at smoke, too few at deep."""
    P.load_playbook(MODELS / "trained-llama-smoke.yaml")
    with pytest.raises(GateInputError, match="scenarios.prompts.items"):
        P.load_playbook(MODELS / "trained-llama-smoke.yaml", "deep")


@pytest.mark.parametrize("override", [
    {"oracles": {"degenerate": {"max_char_run": 4}}}, {"gates": {"reference_agreement": {"openvino-int8": 0.9}}},
    {"max_new_tokens": 16}, {"matrix": {"formats": ["safetensors", "openvino-fp32", "openvino-int8"],
                                        "devices": ["CPU"], "modalities": ["run", "chat", "contract"]}},
    {"scenarios": [{"name": "more", "kind": "prompts", "prompts": ["x", "y"]}]},
    {"matrix": {"formats": ["safetensors", "openvino-fp32"], "devices": ["GPU"], "modalities": ["run", "contract"]}},
])
def test_adding_checks_or_tightening_is_allowed(tmp_path, override):
    P.load_playbook(_write(tmp_path, dict(BASE, **override)))


def test_every_playbook_setting_is_classified_as_a_floor_or_harmless():
    """A setting added to the schema later must be decided about, not slip past the floors."""
    import json

    from modelgate.gates import playbook_floors as F
    schema = json.loads((P.PLAYBOOK_DIR / "playbook.schema.json").read_text())

    def paths(node, prefix=""):
        props = node.get("properties")
        if not props:
            yield prefix.rstrip(".")
            return
        for key, sub in props.items():
            if key in ("model", "serve", "scenarios"):
                yield prefix + key
                continue
            if "$ref" in sub:
                yield prefix + key + ".*"
                continue
            yield from paths(sub, prefix + key + ".")

    found = list(paths(schema))
    assert "oracles.degenerate.enabled" in found and "gates.reference_agreement.*" in found
    for path in found:
        F.classify(path)  # KeyError when unclassified
    for key in schema["$defs"]["scenario"]["properties"]:
        assert key in F.SCENARIO_NOT_FLOORS or key in F.SCENARIO_FLOORS, key


def test_a_key_given_twice_is_refused_not_last_one_wins(tmp_path):
    p = tmp_path / "dup.yaml"
    p.write_text("name: dup\nmodel: {fixture: trained-llama}\nmodel_family: llama\ntier: deep\ntier: smoke\n")
    with pytest.raises(GateInputError, match="duplicate key 'tier'"):
        P.load_playbook(p)
    p.write_text("name: dup\nmodel: {fixture: trained-llama}\nmodel_family: llama\ntier: smoke\n"
                 "oracles:\n  degenerate: {enabled: true, enabled: false}\n")
    with pytest.raises(GateInputError, match="duplicate key 'enabled'"):
        P.load_playbook(p)


@pytest.mark.parametrize("kind,extra,field", [
    ("prompts", {"repeats": 3}, "repeats"), ("arithmetic", {"repeats": 3}, "repeats"),
    ("edge", {"fault": "crash"}, "fault"), ("prompts", {"pairs_from": "color-facts"}, "pairs_from")])
def test_a_field_that_means_nothing_for_its_kind_is_refused(tmp_path, kind, extra, field):
    prompts = ["What is 2+2?"] if kind == "arithmetic" else ["a b"]
    doc = dict(BASE, scenarios=[dict({"name": "extra", "kind": kind, "prompts": prompts}, **extra)])
    with pytest.raises(GateInputError, match=f"{field} means nothing for this kind"):
        P.load_playbook(_write(tmp_path, doc))


def test_a_scenario_that_expands_to_no_cell_is_refused(tmp_path):
    # chat is not in the smoke matrix: the scenario would silently run nowhere
    doc = dict(BASE, scenarios=[{"name": "talk", "kind": "prompts", "prompts": ["hi"], "modalities": ["chat"]}])
    with pytest.raises(GateInputError, match="scenario talk .* runs in no modality"):
        P.load_playbook(_write(tmp_path, doc))


def test_a_matrix_value_that_gets_no_cell_is_refused(tmp_path):
    doc = dict(BASE, matrix={"formats": ["safetensors", "openvino-fp32"], "devices": ["CPU"],
                             "modalities": ["run", "chat", "contract"]},
               scenarios=[{"name": "prompts", "kind": "prompts", "prompts": ["a", "b"], "modalities": ["run"]}])
    with pytest.raises(GateInputError, match="matrix modality chat gets no cell"):
        P.load_playbook(_write(tmp_path, doc))


def test_the_run_records_the_hash_of_every_file_it_reads(tmp_path):
    doc = P.load_playbook(MODELS / "trained-llama-smoke.yaml")
    assert set(doc["_inputs"]) == {"templates/smoke.yaml", "playbook.schema.json", "data/color_facts.json"}
    assert all(len(h) == 64 for h in doc["_inputs"].values())
