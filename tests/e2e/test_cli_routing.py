"""The routing-eval and skill-validator scripts as a user runs them."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "scripts" / "run_routing_evals.py"
VALIDATOR = ROOT / "scripts" / "validate_skills.py"
pytestmark = pytest.mark.e2e


def run(*argv, env=None, cwd=None):
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, *map(str, argv)], capture_output=True, text=True, env=full_env,
                          cwd=cwd, timeout=300)


@pytest.mark.parametrize("script", [RUNNER, VALIDATOR], ids=["runner", "validator"])
def test_help_exits_zero(script):
    res = run(script, "--help")
    assert res.returncode == 0 and "usage" in res.stdout


def test_runner_help_documents_the_agent_skip_exit_code():
    assert "3  the agent backend was skipped" in run(RUNNER, "--help").stdout


def test_runner_help_says_the_comparison_routers_run_only_with_baselines():
    out = run(RUNNER, "--help").stdout
    assert "--baselines" in out and "only with --baselines" in " ".join(out.split())


def test_corrupt_cases_file_is_exit_2_with_json(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    res = run(RUNNER, "--cases", bad, "--output", tmp_path / "r.json")
    assert res.returncode == 2
    assert json.loads(res.stdout)["detail"].startswith("evals file is not valid JSON")


def test_cases_naming_an_unknown_skill_are_exit_2(tmp_path):
    f = tmp_path / "x.json"
    f.write_text(json.dumps([{"name": "a", "query": "do it", "should_trigger": True, "skill": "no-such-skill",
                              "expected_behavior": ["does it"]}]))
    res = run(RUNNER, "--cases", f, "--output", tmp_path / "r.json")
    assert res.returncode == 2 and "no-such-skill" in res.stdout


def test_agent_backend_without_an_agent_cli_skips_with_exit_3_and_says_why(tmp_path):
    env = {"MODELGATE_AGENT_CMD": ""}
    res = run(RUNNER, "--backend", "agent", "--output", tmp_path / "r.json", env=env)
    assert res.returncode == 3
    assert "skipped" in res.stdout and "MODELGATE_AGENT_CMD" in res.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["backends"]["agent"]["status"] == "skipped" and report["pass"] is False
    assert "splits" not in report["backends"]["agent"]


def _mini_repo(tmp_path: Path) -> Path:
    """Two skills with a handful of cases: enough to drive the agent backend end to end."""
    for name, desc in [("bread-baking",
                        "Bakes bread. Use when asked to bake bread. Do NOT use for cakes (use cake-icing)."),
                       ("cake-icing",
                        "Ices cakes. Use when asked to ice a cake. Do NOT use for bread (use bread-baking).")]:
        d = tmp_path / "skills" / name
        d.mkdir(parents=True)
        (d / "SKILL.md").write_text(f'---\nname: {name}\ndescription: "{desc}"\n---\n# {name}\n')
        word = "bread" if name == "bread-baking" else "cake"
        cases = [{"name": f"{word}-{i}", "query": f"please do {word} job {i}", "should_trigger": True,
                  "skill": name, "expected_behavior": ["works"]} for i in range(2)]
        cases.append({"name": f"{word}-neg", "query": "tell me a joke", "should_trigger": False, "skill": name,
                      "routes_to": None, "expected_behavior": ["no skill"]})
        (d / "evals.json").write_text(json.dumps(cases))
    (tmp_path / "evals").mkdir()
    (tmp_path / "evals" / "routing-config.json").write_text(json.dumps(
        {"gate_backend": "agent", "min_accuracy": {"train": 1.0}, "max_false_triggers": 0, "router": {}}))
    return tmp_path


def test_agent_backend_reads_the_skill_each_agent_run_loaded(tmp_path):
    # A stand-in agent CLI: it only exercises the plumbing (argv, one process per query, parsing).
    agent_py = tmp_path / "agent.py"
    agent_py.write_text(textwrap.dedent("""
        import json, sys
        q = sys.argv[-1]
        skill = "bread-baking" if "bread" in q else "cake-icing" if "cake" in q else None
        if skill:
            print(json.dumps({"type": "tool_use", "name": "Skill", "input": {"skill": skill}}))
        print(json.dumps({"type": "result", "text": "done"}))
    """))
    repo = _mini_repo(tmp_path / "repo")
    res = run(RUNNER, "--root", repo, "--backend", "agent", "--agent-cmd", f"{sys.executable} {agent_py}",
              "--output", tmp_path / "r.json")
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["backends"]["agent"]["splits"]["train"]["accuracy"] == 1.0
    assert {c["predicted"] for c in report["backends"]["agent"]["cases"]} == {"bread-baking", "cake-icing", "none"}


def test_agent_that_loads_the_wrong_skill_fails_the_gate(tmp_path):
    agent_py = tmp_path / "agent.py"
    agent_py.write_text("print('MODELGATE_SKILL: cake-icing')\n")
    repo = _mini_repo(tmp_path / "repo")
    res = run(RUNNER, "--root", repo, "--backend", "agent", "--agent-cmd", f"{sys.executable} {agent_py}",
              "--output", tmp_path / "r.json")
    assert res.returncode == 1
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["backends"]["agent"]["splits"]["train"]["false_triggers"] == 2


def _one_skill_repo(tmp_path: Path) -> Path:
    """One skill, only should-trigger cases, no 'Do NOT use' clause: a single label to learn from."""
    d = tmp_path / "skills" / "bread-baking"
    d.mkdir(parents=True)
    (d / "SKILL.md").write_text('---\nname: bread-baking\n'
                                'description: "Bakes bread. Use when asked to bake bread."\n---\n# b\n')
    (d / "evals.json").write_text(json.dumps([{"name": f"b-{i}", "query": f"bake loaf number {i}",
                                               "should_trigger": True,
                                               "skill": "bread-baking", "expected_behavior": ["bakes"]}
                                              for i in range(3)]))
    return tmp_path


def test_calibrating_on_train_cases_with_a_single_label_is_exit_2_with_json_not_a_traceback(tmp_path):
    repo = _one_skill_repo(tmp_path / "repo")
    res = run(RUNNER, "--root", repo, "--calibrate", "--config", tmp_path / "cfg.json", "--output", tmp_path / "r.json")
    assert res.returncode == 2, res.stdout + res.stderr
    verdict = json.loads(res.stdout)
    assert verdict["failure_class"] == "USER_CONFIG_ERROR" and "two labels" in verdict["detail"]
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "cfg.json").exists()
