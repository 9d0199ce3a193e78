"""verify-conversion as an agent uses it: the commands come from SKILL.md's own code blocks, the answers
from the verdict's decision, coverage and next_action, and each must be what a careful person would
tell the user.

Scenarios (the requests of the "verdicts an agent can repeat" issue):
- "Is this IR faithful to the checkpoint? I'm about to publish it." on a good IR: VERIFIED, and the
  coverage says at which precisions, on how many prompts, up to which position;
- the same request on an IR with a corrupted rotary constant (its lowest frequency x1.5, invisible
  on short prompts): REJECTED, nothing vouched for, the next step is to re-export;
- a run too short to judge generation (--new-tokens 2): not judged, and the next step names the flag;
- --new-tokens 64 on a good int8 IR: VERIFIED (greedy agreement keeps its meaning with length).
"""
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from modelgate import contract, fixtures
from modelgate.openvino.convert import export_cached
from tests.support import fault_draws

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SKILL = ROOT / "skills" / "verify-conversion"


def skill_commands() -> list[list[str]]:
    """Every command of SKILL.md's bash code blocks, as argv lists (line continuations joined)."""
    text = (SKILL / "SKILL.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [shlex.split(b.replace("\\\n", " ").replace("${CLAUDE_SKILL_DIR}", str(SKILL))) for b in blocks]


def command_with(*flags: str) -> list[str]:
    """The first documented command that uses every one of ``flags``."""
    for argv in skill_commands():
        if all(f in argv for f in flags):
            return argv
    raise AssertionError(f"SKILL.md documents no command with {flags}")


def run_documented(argv: list[str], model: Path, ir: Path | None, tmp: Path, **values: str):
    """Run a documented command with its placeholders filled in, as an agent would."""
    fill = {"path/to/hf-model": str(model), "path/to/ir-folder": str(ir), "verify-out": str(tmp / "verify-out")}
    args = [fill.get(a, a) for a in argv]
    for flag, value in values.items():
        args[args.index(flag) + 1] = value
    assert args[0] == "python"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    p = subprocess.run([sys.executable, *args[1:]], capture_output=True, text=True, cwd=tmp, env=env, timeout=1800)
    v = json.loads(p.stdout)
    assert contract.schema_errors("verify-result" if "verify_passed" in v else "envelope", v) == []
    assert v["exit_code"] == p.returncode
    return p, v


@pytest.fixture(scope="module")
def llama():
    return fixtures.hf_model("llama")


def test_publish_request_on_a_good_ir_is_verified_and_says_what_it_covered(llama, tmp_path):
    p, v = run_documented(command_with("--converted"), llama, export_cached(llama, "fp16"), tmp_path)
    assert p.returncode == 0 and v["decision"] == "VERIFIED", v["detail"]
    cov = v["coverage"]
    # what the agent repeats: precisions, prompts, the deepest position, layer-wise
    assert re.match(r"VERIFIED at f32( and (bf16|f16|f32))? on \d+ prompts up to position 255 \(fp16 weights; "
                    r"2 blocks compared layer by layer\)", cov["summary"]), cov["summary"]
    assert cov["exercised"]["longest_position"] == 255 == cov["exercised"]["max_positions"] - 1
    assert cov["exercised"]["precisions"]["f32"] == "f32"
    assert v["deployment_precision"] == cov["exercised"]["precisions"]["default"]
    assert any("devices other than CPU" in x for x in cov["not_exercised"])
    assert v["next_action"] == "none" and v["first_divergent_layer"] is None
    assert all(c.get("not_judged_because") for c in v["checks"] if c["pass"] is None)
    assert p.stderr.strip() == ""


def test_publish_request_on_an_ir_with_a_corrupted_rotary_constant_is_rejected(llama, tmp_path):
    good = export_cached(llama, "fp16")
    cat = fault_draws.catalog_of(good)
    bad = fault_draws.apply_named(fault_draws.named("rotary_lowest_x1.5", cat), good, tmp_path / "bad", cat, 16)
    p, v = run_documented(command_with("--converted"), llama, bad, tmp_path)
    assert p.returncode == 1 and v["decision"] == "REJECTED"
    assert v["failure_class"] == "INTEGRITY_MISMATCH" and "rotary frequency" in v["detail"]
    assert v["coverage"]["summary"].startswith("REJECTED") and "nothing is vouched for" in v["coverage"]["summary"]
    assert v["next_action"].startswith("Re-export")
    # the layer-wise comparison sees the same defect independently, from block 0 on
    assert v["first_divergent_layer"]["layer"] == 0
    blocks = {c["name"]: c["pass"] for c in v["checks"]}
    assert blocks["layerwise_blocks"] is False or blocks["layerwise_hidden_states"] is False


def test_a_run_too_short_to_judge_generation_is_not_judged_and_names_the_fix(llama, tmp_path):
    p, v = run_documented(command_with("--new-tokens"), llama, export_cached(llama, "fp16"), tmp_path,
                          **{"--new-tokens": "2"})
    assert p.returncode == 2
    assert v["failure_class"] == "USER_CONFIG_ERROR" and "--new-tokens 4 or more" in v["detail"]
    assert "nothing is vouched for" in v["coverage"]["summary"]
    assert v["next_action"]


def test_a_longer_generation_does_not_reject_a_good_int8_ir(llama, tmp_path):
    p, v = run_documented(command_with("--new-tokens"), llama, export_cached(llama, "int8"), tmp_path)
    assert "64" in command_with("--new-tokens")
    assert p.returncode == 0 and v["decision"] == "VERIFIED", v["detail"]
    greedy = next(c for c in v["checks"] if c["name"] == "fidelity_greedy_match")
    assert greedy["pass"] is True and v["metrics"]["greedy_horizon"] == 8 and v["metrics"]["new_tokens"] == 64
    assert v["coverage"]["exercised"]["new_tokens"] == 64
