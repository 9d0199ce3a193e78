"""Agent backend: argv building, skip rules and reading which skill an agent loaded."""
import json

from modelgate.routing import agent

SKILLS = ["verify-conversion", "day0-release"]


def test_skill_tool_call_in_stream_json_names_the_loaded_skill():
    event = {"type": "assistant", "message": {"content": [
        {"type": "text", "text": "I'll use a skill."},
        {"type": "tool_use", "name": "Skill", "input": {"skill": "day0-release"}}]}}
    out = "\n".join([json.dumps({"type": "system"}), json.dumps(event)])
    assert agent.parse_loaded_skill(out, SKILLS)[0] == "day0-release"


def test_reading_a_skill_md_counts_as_loading_that_skill():
    event = {"type": "tool_use", "name": "Read",
             "input": {"file_path": "/repo/.claude/skills/verify-conversion/SKILL.md"}}
    assert agent.parse_loaded_skill(json.dumps(event), SKILLS)[0] == "verify-conversion"


def test_first_skill_loaded_wins():
    lines = ["MODELGATE_SKILL: verify-conversion", "MODELGATE_SKILL: day0-release"]
    assert agent.parse_loaded_skill("\n".join(lines), SKILLS)[0] == "verify-conversion"


def test_mentioning_a_skill_name_in_prose_is_not_loading_it():
    out = "You could use verify-conversion or day0-release for this."
    assert agent.parse_loaded_skill(out, SKILLS)[0] == "none"


def test_unknown_skill_names_are_ignored():
    assert agent.parse_loaded_skill("MODELGATE_SKILL: other-skill", SKILLS)[0] == "none"


def test_query_replaces_placeholder_or_is_appended():
    assert agent.build_argv(["agent", "-p", "{query}", "--json"], "hi there") == ["agent", "-p", "hi there", "--json"]
    assert agent.build_argv(["agent", "-p"], "hi there") == ["agent", "-p", "hi there"]


def test_no_configured_agent_is_skipped_with_a_reason(monkeypatch):
    monkeypatch.delenv(agent.ENV_VAR, raising=False)
    argv, reason = agent.agent_argv(None)
    assert argv is None and agent.ENV_VAR in reason


def test_agent_not_on_path_is_skipped_with_a_reason():
    argv, reason = agent.agent_argv("definitely-not-an-agent-cli-xyz -p")
    assert argv is None and "not found" in reason


def test_env_var_supplies_the_command(monkeypatch):
    monkeypatch.setenv(agent.ENV_VAR, "python3 -c pass")
    argv, _ = agent.agent_argv(None)
    assert argv == ["python3", "-c", "pass"]
