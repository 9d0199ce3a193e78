"""model-certification as an agent uses it: the commands are the ones SKILL.md documents (parsed from
its code blocks, ${CLAUDE_SKILL_DIR} expanded, run as written from a working folder), on fixtures:
a good model, a subtle defect, an under-powered run. Each asserts what a careful person would tell
the user: the decision, what the certificate covers (coverage) and the next step (next_action)."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "skills" / "model-certification"
# the pack's trained fixture, asked what it knows (as trained-llama-smoke.yaml does)
SCENARIOS = ("scenarios:\n"
             "  - {name: prompts, kind: prompts, prompts: ['the color of sky is', 'the color of grass is',"
             " 'the color of snow is', 'the color of coal is'], samples: 1}\n"
             "  - {name: facts, kind: exact, pairs_from: color-facts, modalities: [run], samples: 3}\n")


def documented_commands() -> list[str]:
    """Every command line of SKILL.md's bash blocks, continuation lines joined."""
    text = (PACK / "SKILL.md").read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        lines += [" ".join(ln.split()) for ln in re.sub(r"\\\n\s*", " ", block).splitlines() if ln.strip()]
    return lines


def command(pred) -> str:
    found = [c for c in documented_commands() if pred(c)]
    assert found, "SKILL.md no longer documents this step"
    return found[0]


@pytest.fixture()
def agent(tmp_path):
    """Runs a command the way an agent would: in its working folder, with CLAUDE_SKILL_DIR set."""
    skill = tmp_path / "skills" / "model-certification"
    shutil.copytree(PACK, skill, ignore=shutil.ignore_patterns("__pycache__"))
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, CLAUDE_SKILL_DIR=str(skill), HF_HUB_OFFLINE="1")

    def run(cmd: str) -> tuple[int, dict]:
        argv = shlex.split(cmd.replace("${CLAUDE_SKILL_DIR}", str(skill)))
        assert argv[0] == "python", cmd
        p = subprocess.run([sys.executable, *argv[1:]], cwd=work, env=env, capture_output=True, text=True,
                           timeout=1200)
        assert "Traceback" not in p.stdout
        v = json.loads(p.stdout)
        assert v["exit_code"] == p.returncode, v
        return p.returncode, v

    run.work, run.skill = work, skill
    return run


def _human(v: dict) -> str:
    return " ".join([v["detail"], v["coverage"]["summary"], v["next_action"]])


def test_a_good_model_quick_start_certifies_and_says_exactly_what_it_covers(agent):
    quick = command(lambda c: "--playbook" in c and "--output" in c and "--workers" not in c)
    assert "--allow-unlocked" not in quick  # the pack ships its lock
    code, v = agent(quick)
    assert (code, v["decision"]) == (0, "CERTIFIED"), v["detail"]
    assert v["evidence"]["playbook_lock"] == "verified"
    cov = v["coverage"]
    assert cov["exercised"]["formats"] == ["safetensors", "openvino-fp32"]
    assert cov["exercised"]["devices"] == ["CPU"] and cov["exercised"]["cells_skipped"] == 0
    assert cov["exercised"]["inference_precision"]["openvino-fp32"] == ["f32"]
    for missing in ("openvino-fp16", "openvino-int8", "openvino-int4", "chat", "serve", "GPU", "NPU"):
        assert any(x.startswith(missing + " ") for x in cov["not_exercised"]), missing
        assert missing in cov["summary"] and missing in v["next_action"]
    assert "MQS 1000/1000, A+" in v["detail"] and "100.0" not in _human(v)  # one scale
    assert v["next_action"].startswith("none for what was exercised")
    for name in ("evidence", "score", "registry", "readme", "html", "junit", "markdown"):
        assert Path(v["outputs"][name]).is_absolute() and Path(v["outputs"][name]).is_file(), name


def test_a_subtle_defect_is_blocked_and_the_agent_is_pointed_at_the_failing_record(agent):
    """An fp32 IR with two layers' weights swapped (every tensor statistic unchanged), certified as
    model.ir. The agent runs before locking; the refusal's next_action is the lock command; it runs
    that, then the run again."""
    from modelgate import fixtures
    from modelgate.openvino.convert import export_cached
    from tests.support import faults

    faults.inject("swapped_layers", export_cached(fixtures.hf_model("trained-llama"), "fp32"),
                  agent.work / "ir-swapped")
    pb = agent.work / "my-playbooks" / "my-model.yaml"
    pb.parent.mkdir()
    pb.write_text("name: my-model\nmodel: {fixture: trained-llama, ir: {openvino-fp32: ../ir-swapped}}\n"
                  "model_family: llama\ntier: smoke\n" + SCENARIOS)
    run = command(lambda c: "--playbook my-playbooks/" in c)
    code, v = agent(run)
    assert (code, v["failure_class"]) == (1, "INTEGRITY_MISMATCH") and "nothing was run" in v["next_action"]
    lock = re.search(r"`([^`]*lock-playbooks[^`]*)`", v["next_action"]).group(1)
    assert str(PACK) not in lock and "--output out/my-model" in lock
    code, lv = agent(lock)
    assert code == 0 and not Path(lv["outputs"]["lock"]).is_relative_to(agent.skill)
    code, v = agent(run)
    assert (code, v["decision"], v["failure_class"]) == (1, "BLOCKED", "GATEWAY_FAILED"), v["detail"]
    assert "G4" in v["score"]["failed_gateways"] and v["evidence"]["playbook_lock"] == "verified"
    first = v["score"]["gateways"][v["score"]["failed_gateways"][0]]["failed_records"][0]
    assert first in v["next_action"] and "report.html" in v["next_action"]
    assert "not a finding against the model" not in v["next_action"]
    assert v["coverage"]["summary"].startswith("BLOCKED at tier smoke (MQS 0/1000, F)")
    assert v["score"]["model"].startswith("fixture:trained-llama+openvino-fp32@")  # the IR is in the identity


def test_an_under_powered_run_is_not_reported_as_a_defect(agent):
    """The user asks for GPU certification on a host without a GPU: nothing of the matrix can run."""
    pb = agent.work / "my-playbooks" / "my-model.yaml"
    pb.parent.mkdir()
    pb.write_text("name: my-model\nmodel: {fixture: trained-llama}\nmodel_family: llama\ntier: smoke\n"
                  "matrix: {formats: [safetensors, openvino-fp32], devices: [GPU], modalities: [run, contract]}\n"
                  + SCENARIOS)
    code, _ = agent(command(lambda c: "lock-playbooks my-playbooks" in c))
    assert code == 0
    code, v = agent(command(lambda c: "--playbook my-playbooks/" in c))
    assert (code, v["decision"]) == (1, "BLOCKED")
    cov = v["coverage"]
    assert cov["exercised"]["cells_run"] == 0 and cov["exercised"]["cells_skipped"] > 0
    assert "no cell of the matrix ran" in cov["summary"] and "GPU not present" in cov["summary"]
    assert "not a finding against the model" in v["next_action"] and "GPU" in v["next_action"]
    assert any(x.startswith("GPU (device): every cell skipped") for x in cov["not_exercised"])
