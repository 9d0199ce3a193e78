"""Recipes file: schema, cross-field rules, loading errors; and the day0 failure-class reference."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from modelgate.contract import GateInputError, failure_classes, schema_errors
from modelgate.gates import compare, ptq, release_decision, run
from modelgate.release.recipes import (
    MODE_PRIMARY_PRECISION,
    RECIPES_PATH,
    get_recipe,
    load_recipes,
    recipe_names,
    recipe_problems,
)

ROOT = Path(__file__).resolve().parents[2]
REFS = ROOT / "skills" / "day0-release" / "references"


def write(tmp_path, doc, name="recipes.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(doc) if name.endswith(".yaml") else json.dumps(doc))
    return p


def shipped():
    return yaml.safe_load(RECIPES_PATH.read_text())


def test_shipped_recipes_are_schema_valid_and_consistent():
    doc = shipped()
    assert schema_errors("recipe", doc) == []
    assert [p for n, r in doc["recipes"].items() for p in recipe_problems(n, r)] == []


def test_the_interface_recipes_exist_and_are_versioned():
    names = recipe_names()
    for name in ("int8_asym", "int8_sym", "int4_asym_g128", "int4_asym_g64", "int4_sym_g32_awq", "static_int8"):
        assert name in names
        assert get_recipe(name)["version"] >= 1 and get_recipe(name)["name"] == name


def test_int4_recipes_promise_the_int8_backup_nncf_keeps_for_embeddings():
    for name in recipe_names():
        r = get_recipe(name)
        if r["kind"] == "weight_compression" and r["nncf"]["mode"].startswith("int4"):
            assert "u8" in r["promises"]["weight_precisions"]


def test_group_sizes_include_ones_that_divide_the_tiny_fixtures_hidden_sizes():
    sizes = {get_recipe(n)["nncf"].get("group_size") for n in recipe_names()}
    assert 32 in sizes and 64 in sizes  # hidden 64 and 96 are divisible by 32; 64 by 64


def test_unknown_recipe_is_a_user_config_error():
    with pytest.raises(GateInputError) as exc:
        get_recipe("int3_magic")
    assert exc.value.failure_class == "USER_CONFIG_ERROR" and "int8_asym" in exc.value.detail


def test_recipe_name_that_is_not_a_string_is_a_user_config_error():
    with pytest.raises(GateInputError):
        get_recipe(["int8_asym"])


def test_missing_or_corrupt_recipes_file_is_a_user_config_error(tmp_path):
    with pytest.raises(GateInputError, match="not found"):
        load_recipes(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("recipes: [unclosed")
    with pytest.raises(GateInputError, match="unreadable"):
        load_recipes(bad)


@pytest.mark.parametrize("mutate,match", [
    (lambda r: r.update(version=0), "schema"),
    (lambda r: r.update(kind="dynamic"), "schema"),
    (lambda r: r["nncf"].update(mode="int3"), "schema"),
    (lambda r: r["nncf"].update(dataset="wikitext2"), "schema"),   # never a hub dataset
    (lambda r: r["promises"].pop("min_coverage"), "schema"),
    (lambda r: r["promises"].update(size_ratio=[0.4, 0.2]), "inconsistent"),
    (lambda r: r["promises"].update(primary_precisions=["u4"], weight_precisions=["u4", "u8"]), "inconsistent"),
    (lambda r: r["promises"].update(primary_precisions=["i8"]), "inconsistent"),
    (lambda r: r.update(applies_to="non-llm"), "inconsistent"),
    (lambda r: r["nncf"].update(awq=True), "inconsistent"),
    (lambda r: r.update(surprise=1), "schema"),
])
def test_each_recipe_field_is_validated(tmp_path, mutate, match):
    doc = shipped()
    mutate(doc["recipes"]["int8_asym"])
    with pytest.raises(GateInputError, match=match):
        load_recipes(write(tmp_path, doc))


def test_recipes_may_be_json(tmp_path):
    doc = shipped()
    assert load_recipes(write(tmp_path, doc, "r.json"))["recipes"].keys() == doc["recipes"].keys()


def test_loaded_recipes_cannot_be_mutated_through_the_cache():
    get_recipe("int8_asym")["promises"]["min_coverage"] = 0.0
    assert get_recipe("int8_asym")["promises"]["min_coverage"] == 0.95


def test_mode_table_covers_every_schema_mode():
    schema = json.loads((ROOT / "modelgate" / "schemas" / "recipe.schema.json").read_text())
    modes = schema["$defs"]["weight_compression_nncf"]["properties"]["mode"]["enum"]
    assert sorted(modes) == sorted(MODE_PRIMARY_PRECISION)


# --------------------------------------------------------------------------- references

def _sections(text: str) -> dict[str, str]:
    out = {}
    for m in re.finditer(r"^## ([A-Z_]+)\n\nEmitted by: .*?\n\n(.+?)\n", text, flags=re.M | re.S):
        out[m.group(1)] = m.group(2)
    return out


def test_failure_classes_reference_matches_the_envelope_schema():
    sections = _sections((REFS / "failure-classes.md").read_text())
    schema = failure_classes()
    assert sections, "no class sections found"
    for name, text in sections.items():
        assert name in schema, f"{name} is not a pack failure class"
        assert text == schema[name], f"{name}: reference text differs from the schema description"


def test_failure_classes_reference_covers_every_class_the_day0_gates_emit():
    emitted = (set(ptq.CLASS_PRIORITY) | set(run.CLASS_PRIORITY) | set(run.ERROR_CODE_CLASS.values())
               | {c for c in compare.DECISION_CLASS.values() if c} | set(release_decision.CLASS_DECISION)
               | {c for c in release_decision.DECISION_CLASS.values() if c} | {"UNKNOWN"})
    documented = set(_sections((REFS / "failure-classes.md").read_text()))
    assert emitted <= documented, sorted(emitted - documented)
