"""The evals schema, the shipped evals files, the config and the report schema."""
import json
from pathlib import Path

import pytest

from modelgate import contract
from modelgate.routing import cases

ROOT = Path(__file__).resolve().parents[2]
EVAL_FILES = sorted(ROOT.glob("skills/*/evals.json")) + sorted((ROOT / "evals" / "heldout").glob("*.json"))


def _case(**kw):
    c = {"name": "c1", "query": "convert gpt2", "should_trigger": True, "skill": "verify-conversion",
         "expected_behavior": ["runs the gate"]}
    c.update(kw)
    return c


@pytest.mark.parametrize("path", EVAL_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_evals_file_is_valid_and_balanced(path):
    data = json.loads(path.read_text())
    assert contract.schema_errors("evals", data) == []
    pos = sum(c["should_trigger"] for c in data)
    assert pos >= 8 and len(data) - pos >= 8
    assert len({c["name"] for c in data}) == len(data)


def test_train_and_heldout_share_no_query():
    train = {c["query"].lower() for p in ROOT.glob("skills/*/evals.json") for c in json.loads(p.read_text())}
    held = {c["query"].lower() for p in (ROOT / "evals" / "heldout").glob("*.json") for c in json.loads(p.read_text())}
    assert held and not (train & held)


def test_every_skill_has_at_least_twelve_positive_and_twelve_negative_train_cases():
    for p in ROOT.glob("skills/*/evals.json"):
        data = json.loads(p.read_text())
        assert sum(c["should_trigger"] for c in data) >= 12
        assert sum(not c["should_trigger"] for c in data) >= 12


def test_skill_creator_style_minimal_case_is_not_enough_without_expected_behavior():
    bad = [{"query": "x y z", "should_trigger": True}]
    assert contract.schema_errors("evals", bad)


def test_positive_case_cannot_point_elsewhere():
    assert contract.schema_errors("evals", [_case(routes_to="day0-release")])


def test_negative_case_may_point_to_a_sibling_or_to_none():
    assert contract.schema_errors("evals", [_case(should_trigger=False, routes_to="day0-release")]) == []
    assert contract.schema_errors("evals", [_case(should_trigger=False, routes_to=None)]) == []


def test_bad_skill_name_is_rejected():
    assert contract.schema_errors("evals", [_case(skill="Verify_Conversion")])


def test_loader_rejects_duplicate_case_names(tmp_path):
    f = tmp_path / "e.json"
    f.write_text(json.dumps([_case(), _case()]))
    with pytest.raises(contract.GateInputError, match="duplicate"):
        cases.load_file(f, "extra")


def test_loader_rejects_corrupt_json_as_input_error(tmp_path):
    f = tmp_path / "e.json"
    f.write_text("[{")
    with pytest.raises(contract.GateInputError):
        cases.load_file(f, "extra")


def test_expected_label_of_negative_defaults_to_none():
    assert cases.expected_label(_case(should_trigger=False)) == "none"
    assert cases.expected_label(_case(should_trigger=False, routes_to="day0-release")) == "day0-release"


def test_shipped_config_is_valid_and_requires_95_percent_heldout_and_no_false_trigger():
    cfg = json.loads((ROOT / "evals" / "routing-config.json").read_text())
    assert contract.schema_errors("routing-config", cfg) == []
    assert cfg["min_accuracy"]["heldout"] >= 0.95
    assert cfg["max_false_triggers"] == 0
    assert cfg["router"]["embedding"]["calibrated_on"] == "train"


def test_report_schema_rejects_a_pass_with_unknown_backend():
    report = {"schema_version": "1.0", "tool": "routing-evals", "pass": True, "exit_code": 0, "detail": "x",
              "gate_backend": "embedding", "skills": ["a"], "checks": [], "backends": {"magic": {"status": "ran"}},
              "config": {}, "timings": {}, "versions": {}}
    assert contract.schema_errors("routing-report", report)
