"""The certify command line: --help, dry run, bad input -> exit 2 with a JSON verdict, lock refusal."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "skills" / "model-certification" / "scripts" / "certify.py"
PLAYBOOK = ROOT / "skills" / "model-certification" / "playbooks" / "models" / "trained-llama-smoke.yaml"

pytestmark = pytest.mark.e2e


def _run(*args, cwd=None):
    p = subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                       timeout=300)
    return p.returncode, p.stdout, p.stderr


def test_help_exits_zero_and_names_the_options():
    code, out, _ = _run("--help")
    assert code == 0 and "--failure-policy" in out and "--workers" in out and "--dry-run" in out


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path):
    code, out, _ = _run("--playbook", PLAYBOOK, "--dry-run", "--timeout-ms", "1234", "--output", tmp_path / "o")
    v = json.loads(out)
    assert code == 0 and v["plan"]["count"] == len(v["plan"]["cells"]) > 0
    assert {c["timeout_ms"] for c in v["plan"]["cells"]} == {1234}
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args,needle", [
    (["--playbook", "missing.yaml"], "not found"),
    (["--playbook", PLAYBOOK, "--workers", "0"], "--workers"),
    (["--playbook", PLAYBOOK, "--failure-policy", "sometimes"], "bad arguments"),
    (["--playbook", PLAYBOOK, "--tier", "ultra"], "bad arguments"),
])
def test_bad_input_is_a_json_verdict_with_exit_2(args, needle):
    code, out, _ = _run(*args, "--dry-run")
    v = json.loads(out)
    assert code == 2 and v["failure_class"] == "USER_CONFIG_ERROR" and needle in v["detail"]


def test_playbook_with_an_unknown_field_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(PLAYBOOK.read_text() + "retries: 3\n")
    code, out, _ = _run("--playbook", bad, "--dry-run")
    assert code == 2 and "retries" in json.loads(out)["detail"]


def test_an_unlocked_playbook_is_refused_without_allow_unlocked(tmp_path):
    pb = tmp_path / "pb.yaml"
    pb.write_text(PLAYBOOK.read_text())
    code, out, _ = _run("--playbook", pb, "--output", tmp_path / "o")
    v = json.loads(out)
    assert code == 1 and v["failure_class"] == "INTEGRITY_MISMATCH"
    assert not (tmp_path / "o" / "evidence.json").exists()
    assert f"lock-playbooks {tmp_path} --output {tmp_path / 'o'}" in v["next_action"]


def test_a_playbook_that_weakens_its_tier_is_refused_with_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(PLAYBOOK.read_text() + "oracles: {degenerate: {enabled: false}}\n")
    code, out, _ = _run("--playbook", bad, "--dry-run")
    v = json.loads(out)
    assert code == 2 and "oracles.degenerate.enabled may not be switched off" in v["detail"]
    assert v["evidence"]["weakened"][0]["setting"] == "oracles.degenerate.enabled"


def test_the_dry_run_says_what_the_tier_does_not_cover(tmp_path):
    code, out, _ = _run("--playbook", PLAYBOOK, "--dry-run")
    cov = json.loads(out)["coverage"]
    assert code == 0 and "nothing certified" in cov["summary"] and "openvino-int8" in cov["summary"]


def test_scoring_subcommands_are_dispatched():
    code, out, _ = _run("score", "--help")
    assert code == 0 and "evidence" in out
