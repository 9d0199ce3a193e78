"""The skill validator on synthetic skills in temporary repositories."""
import json
import os
from pathlib import Path

from modelgate.cli.spine import run_command
from modelgate.cli.validate_skills import VALIDATE_SKILLS
from modelgate.skillpack import validate

GOOD_DESC = ("Bakes bread from flour and water. Use when asked to bake bread; to make sourdough. "
             "Do NOT use for cakes (use cake-icing).")


def _evals(name, n_pos=12, n_neg=12):
    out = []
    for i in range(n_pos):
        out.append({"name": f"p{i}", "query": f"bake loaf number {i}", "should_trigger": True, "skill": name,
                    "expected_behavior": ["bakes"]})
    for i in range(n_neg):
        out.append({"name": f"n{i}", "query": f"ice cake number {i}", "should_trigger": False, "skill": name,
                    "routes_to": None, "expected_behavior": ["does not bake"]})
    return out


def make_skill(root: Path, name="bread-baking", frontmatter=None, body="# Bread\n\nRun `scripts/bake.py --help`.\n",
               script="import sys\nsys.exit(0)\n", evals=None, link=True):
    sdir = root / "skills" / name
    (sdir / "scripts").mkdir(parents=True, exist_ok=True)
    fm = frontmatter if frontmatter is not None else f'name: {name}\ndescription: "{GOOD_DESC}"\nlicense: Apache-2.0\n'
    (sdir / "SKILL.md").write_text(f"---\n{fm}---\n{body}")
    if script is not None:
        (sdir / "scripts" / "bake.py").write_text(script)
    (sdir / "evals.json").write_text(json.dumps(_evals(name) if evals is None else evals))
    if link:
        (root / ".claude" / "skills").mkdir(parents=True, exist_ok=True)
        os.symlink(f"../../skills/{name}", root / ".claude" / "skills" / name)
    return sdir


def checks_of(report):
    return {p["check"] for p in report["problems"]}


def test_a_well_formed_skill_passes(tmp_path):
    make_skill(tmp_path)
    report = validate.validate(tmp_path)
    assert report["pass"], report["problems"]
    assert report["exit_code"] == 0


def test_name_that_differs_from_its_folder_fails(tmp_path):
    make_skill(tmp_path, frontmatter=f'name: bread\ndescription: "{GOOD_DESC}"\n')
    assert "frontmatter.name" in checks_of(validate.validate(tmp_path))


def test_uppercase_or_underscore_name_fails(tmp_path):
    make_skill(tmp_path, name="Bread_Baking", frontmatter=f'name: Bread_Baking\ndescription: "{GOOD_DESC}"\n')
    report = validate.validate(tmp_path)
    assert any("lowercase" in p["detail"] for p in report["problems"])


def test_description_over_1024_characters_fails(tmp_path):
    long = GOOD_DESC + " Also" + " more" * 220 + "."
    make_skill(tmp_path, frontmatter=f'name: bread-baking\ndescription: "{long}"\n')
    report = validate.validate(tmp_path)
    assert any("characters" in p["detail"] for p in report["problems"])


def test_description_between_800_and_1024_characters_is_a_warning_not_an_error(tmp_path):
    desc = GOOD_DESC + " Also" + " more" * ((850 - len(GOOD_DESC)) // 5) + "."
    assert 800 < len(desc) <= 1024
    make_skill(tmp_path, frontmatter=f'name: bread-baking\ndescription: "{desc}"\n')
    report = validate.validate(tmp_path, run_scripts=False)
    assert report["pass"], report["problems"]
    assert any(w["check"] == "frontmatter.description" and "800" in w["detail"] for w in report["warnings"])


def test_description_of_800_characters_or_fewer_gets_no_length_warning(tmp_path):
    make_skill(tmp_path)
    report = validate.validate(tmp_path, run_scripts=False)
    assert not [w for w in report["warnings"] if w["check"] == "frontmatter.description"]


def test_shipped_descriptions_stay_within_the_house_target_of_500_to_700_characters():
    from modelgate.routing import cases
    root = Path(__file__).resolve().parents[2]
    for name, desc in cases.descriptions(root).items():
        assert 500 <= len(desc) <= 700, (name, len(desc))


def test_description_without_when_not_fails(tmp_path):
    make_skill(tmp_path, frontmatter='name: bread-baking\ndescription: "Bakes bread. Use when asked to bake."\n')
    report = validate.validate(tmp_path)
    assert any("when not" in p["detail"] for p in report["problems"])


def test_unquoted_description_with_colon_space_is_a_yaml_error_not_a_silent_empty_skill(tmp_path):
    make_skill(tmp_path, frontmatter="name: bread-baking\ndescription: Bakes bread: fast. Use when asked.\n")
    report = validate.validate(tmp_path)
    assert "frontmatter.yaml" in checks_of(report)
    assert report["exit_code"] == 1


def test_field_outside_the_open_spec_fails(tmp_path):
    make_skill(tmp_path, frontmatter=f'name: bread-baking\ndescription: "{GOOD_DESC}"\nuser-invocable: true\n')
    assert "frontmatter.fields" in checks_of(validate.validate(tmp_path))


def test_missing_referenced_file_fails(tmp_path):
    make_skill(tmp_path, body="# Bread\n\nSee [tolerances](references/tolerances.md) and references/triage.md.\n")
    report = validate.validate(tmp_path)
    missing = [p for p in report["problems"] if p["check"] == "references.exist"]
    assert {Path(p["path"]).name for p in missing} == {"tolerances.md", "triage.md"}


def test_script_whose_help_fails_is_reported(tmp_path):
    make_skill(tmp_path, script="import sys\nraise SystemExit(3)\n")
    report = validate.validate(tmp_path)
    assert "scripts.help" in checks_of(report)


def test_a_script_that_runs_only_from_the_skill_root_is_reported(tmp_path):
    # an agent runs commands from its own working folder, not from the skill folder
    make_skill(tmp_path, script="import os, sys\nsys.exit(0 if os.path.isfile('SKILL.md') else 4)\n")
    assert "scripts.help" in checks_of(validate.validate(tmp_path))


def test_script_help_runs_with_the_skill_folder_variable_expanded(tmp_path):
    # the script finds its skill folder through ${CLAUDE_SKILL_DIR}, as Claude Code sets it
    make_skill(tmp_path, body="# Bread\n\n```bash\npython ${CLAUDE_SKILL_DIR}/scripts/bake.py --help\n```\n",
               script="import os, sys\nd = os.environ['CLAUDE_SKILL_DIR']\n"
                      "sys.exit(0 if os.path.isfile(os.path.join(d, 'SKILL.md')) else 4)\n")
    assert validate.validate(tmp_path)["pass"]


def test_a_command_block_without_the_skill_folder_variable_is_reported(tmp_path):
    make_skill(tmp_path, body="# Bread\n\n```bash\npython scripts/bake.py --help\n```\n")
    assert "scripts.skill_dir" in checks_of(validate.validate(tmp_path))


def test_unknown_modelgate_command_is_reported(tmp_path):
    make_skill(tmp_path, body="# Bread\n\nRun `modelgate bake-bread --help`.\n")
    assert "commands.exist" in checks_of(validate.validate(tmp_path, run_scripts=True))


def test_broken_claude_symlink_fails(tmp_path):
    make_skill(tmp_path, link=False)
    (tmp_path / ".claude" / "skills").mkdir(parents=True)
    os.symlink("../../skills/bread-bakin", tmp_path / ".claude" / "skills" / "bread-baking")
    report = validate.validate(tmp_path)
    assert any(p["check"] == "claude_link" and "broken" in p["detail"] for p in report["problems"])


def test_missing_claude_link_fails(tmp_path):
    make_skill(tmp_path, link=False)
    assert "claude_link" in checks_of(validate.validate(tmp_path))


def test_claude_link_to_another_skill_fails(tmp_path):
    make_skill(tmp_path, name="bread-baking", link=False)
    make_skill(tmp_path, name="cake-icing", frontmatter=f'name: cake-icing\ndescription: "{GOOD_DESC}"\n')
    os.symlink("../../skills/cake-icing", tmp_path / ".claude" / "skills" / "bread-baking")
    report = validate.validate(tmp_path)
    assert any("resolves to" in p["detail"] for p in report["problems"])


def test_too_few_negative_evals_fail(tmp_path):
    make_skill(tmp_path, evals=_evals("bread-baking", n_neg=3))
    assert "evals.counts" in checks_of(validate.validate(tmp_path))


def test_evals_naming_another_skill_fail(tmp_path):
    make_skill(tmp_path, evals=_evals("cake-icing"))
    assert "evals.skill" in checks_of(validate.validate(tmp_path))


def test_invalid_evals_json_fails(tmp_path):
    make_skill(tmp_path, evals=[{"query": "bake", "should_trigger": True}])
    assert "evals.schema" in checks_of(validate.validate(tmp_path))


def test_skill_md_over_500_lines_fails_and_over_300_warns(tmp_path):
    make_skill(tmp_path, body="line\n" * 600)
    assert "skill_md.lines" in checks_of(validate.validate(tmp_path))
    other = tmp_path / "other"
    make_skill(other, body="line\n" * 350)
    report = validate.validate(other)
    assert report["pass"] and [w["check"] for w in report["warnings"]] == ["skill_md.lines"]


def test_main_prints_json_and_exits_1_on_problems(tmp_path, capsys):
    make_skill(tmp_path, frontmatter="name: bread-baking\n")
    code = run_command(VALIDATE_SKILLS, ["--root", str(tmp_path)])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["pass"] is False and out["problems"]


def test_main_without_skills_folder_is_an_input_error(tmp_path, capsys):
    assert run_command(VALIDATE_SKILLS, ["--root", str(tmp_path)]) == 2


def test_modelgate_in_prose_is_not_taken_for_a_command(tmp_path):
    make_skill(tmp_path, body="# Bread\n\nThe modelgate package bakes. Run `modelgate bake --help`.\n")
    assert validate.named_modelgate_commands((tmp_path / "skills/bread-baking/SKILL.md").read_text()) == ["bake"]
