"""Strict input beyond the day-0 gates' JSON: YAML (recipes, playbooks), a model's config.json, CLI overrides.
What the fuzzing harness found, pinned."""
from __future__ import annotations

import pytest
import yaml

from modelgate import strict_yaml
from modelgate.certify.playbook import load_playbook
from modelgate.certify.runner import check_input
from modelgate.contract import GateInputError
from modelgate.openvino.tasks import TaskError, task_from_model_dir
from modelgate.release.recipes import RECIPES_PATH, get_recipe

PLAYBOOK = ('{"name": "p", "model": {"fixture": "trained-llama"}, "model_family": "llama", "tier": "smoke", '
            '"scenarios": [{"name": "a", "kind": "prompts", "prompts": ["x"], "samples": 1}%s]}')


@pytest.mark.parametrize("text,fragment", [("a: 1\na: 2\n", "duplicate key 'a'"),
                                           ("b: {c: 1, c: 2}\n", "duplicate key 'c'"),
                                           ("n: " + "9" * 400 + "\n", "does not fit a 64-bit float"),
                                           ("n: " + "9" * 5000 + "\n", "digits"),
                                           ("[" * 50000, "nested too deeply")])
def test_yaml_that_json_would_refuse_is_refused(text, fragment):
    with pytest.raises(yaml.YAMLError, match=fragment):
        strict_yaml.loads(text)


def test_yaml_merge_keys_may_still_be_overridden():
    assert strict_yaml.loads("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 3\n")["d"] == {"x": 3, "y": 2}


def test_a_recipes_file_naming_a_recipe_twice_is_refused(tmp_path):
    text = RECIPES_PATH.read_text()
    first = text.index("  int8_asym:")
    block = text[first:text.index("  int8_sym:")]
    (tmp_path / "recipes.yaml").write_text(text + block.replace("version: 1", "version: 2"))
    with pytest.raises(GateInputError, match="duplicate key 'int8_asym'"):
        get_recipe("int8_asym", tmp_path / "recipes.yaml")


def test_a_playbook_with_a_key_twice_is_refused_not_read_as_its_last_value(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text((PLAYBOOK % "")[:-1] + ', "tier": "deep"}')
    with pytest.raises(GateInputError, match="duplicate key 'tier'"):
        load_playbook(p)


def test_a_playbook_with_two_scenarios_of_one_name_is_refused(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(PLAYBOOK % ', {"name": "a", "kind": "prompts", "prompts": ["y"], "samples": 1}')
    with pytest.raises(GateInputError, match="scenario names are not unique"):
        load_playbook(p)
    p.write_text(PLAYBOOK % "")
    assert load_playbook(p)["name"] == "p"


@pytest.mark.parametrize("value", [0, -1, 10**400, 10**9 + 1, 1.5, True])
def test_cli_overrides_must_be_sane_positive_integers(value):
    with pytest.raises(GateInputError):
        check_input(value, "--workers")
    check_input(8, "--workers")


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", b"[]", b'{"architectures": 5}',
                                     b'{"architectures": [1, 2]}'])
def test_a_config_json_that_is_not_a_config_is_a_task_error_not_a_crash(tmp_path, content):
    (tmp_path / "config.json").write_bytes(content)
    with pytest.raises(TaskError):
        task_from_model_dir(tmp_path)
