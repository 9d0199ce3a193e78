"""The three standalone day-0 gate commands, run as subprocesses: exit codes, JSON on stdout, files."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelgate.contract import schema_errors
from tests.support.runs import write_run

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "skills" / "day0-release" / "scripts"


def run(script: str, *args) -> tuple[int, dict | None, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, str(SCRIPTS / script), *map(str, args)], capture_output=True, text=True,
                       env=env, timeout=300, cwd=ROOT)
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        doc = None
    assert "Traceback" not in p.stdout
    return p.returncode, doc, p.stdout


@pytest.mark.parametrize("script", ["gate_ptq.py", "gate_run.py", "gate_compare.py"])
def test_every_gate_script_has_help_and_exits_0(script):
    p = subprocess.run([sys.executable, str(SCRIPTS / script), "--help"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "usage" in p.stdout.lower()


def test_gate_run_passes_a_complete_run_and_writes_a_schema_valid_verdict(tmp_path):
    summary = write_run(tmp_path / "b", "baseline", [1.0] * 90 + [0.0] * 10)
    code, doc, _ = run("gate_run.py", "--run", summary, "--output", tmp_path / "v.json")
    assert code == 0 and doc["pass"] is True
    written = json.loads((tmp_path / "v.json").read_text())
    assert schema_errors("run-verdict", written) == [] and written == doc


def test_gate_run_fails_when_records_disagree_with_the_summary(tmp_path):
    summary = write_run(tmp_path / "b", "baseline", [1.0] * 100)
    with open(tmp_path / "b" / "records" / "digits.jsonl", "a") as fh:
        fh.write('{"id": "s0", "score": 1.0}\n')  # duplicate id, 101 records
    code, doc, _ = run("gate_run.py", "--run", summary)
    assert code == 1 and doc["failure_class"] == "SAMPLE_ACCOUNTING_FAILED"


def test_gate_run_rejects_records_outside_the_run_folder(tmp_path):
    summary = write_run(tmp_path / "b", "baseline", [1.0] * 10)
    doc = json.loads(summary.read_text())
    doc["tasks"]["digits"]["records_path"] = "../../etc/passwd"
    summary.write_text(json.dumps(doc))
    code, out, _ = run("gate_run.py", "--run", summary)
    assert code == 2 and out["failure_class"] == "USER_CONFIG_ERROR" and "outside" in out["detail"]


@pytest.mark.parametrize("content", ["{not json", '{"tasks": {"digits": {"score": NaN}}}', ""])
def test_gate_run_on_a_corrupt_summary_exits_2_with_a_verdict(tmp_path, content):
    bad = tmp_path / "run_summary.json"
    bad.write_text(content)
    code, doc, _ = run("gate_run.py", "--run", bad)
    assert code == 2 and doc["failure_class"] == "USER_CONFIG_ERROR"


def test_gate_run_on_a_missing_file_exits_2(tmp_path):
    code, doc, _ = run("gate_run.py", "--run", tmp_path / "nope.json")
    assert code == 2 and "not found" in doc["detail"]


def test_gate_compare_accepts_agreeing_runs_through_paired_records(tmp_path):
    scores = [1.0] * 430 + [0.0] * 20
    b = write_run(tmp_path / "b", "baseline", scores)
    c = write_run(tmp_path / "c", "candidate", scores)
    code, doc, _ = run("gate_compare.py", "--baseline", b, "--candidate", c, "--threshold", "0.01")
    assert code == 0 and doc["decision"] == "ACCEPT"
    assert doc["tasks"]["digits"]["stderr_source"] == "paired"
    # the same runs without their records cannot resolve 1 %
    code, doc, _ = run("gate_compare.py", "--baseline", b, "--candidate", c, "--no-paired")
    assert code == 1 and doc["decision"] == "INDETERMINATE" and doc["tasks"]["digits"]["samples_needed"] > 450


def test_gate_compare_reports_a_regression_with_exit_1(tmp_path):
    b = write_run(tmp_path / "b", "baseline", [1.0] * 430 + [0.0] * 20)
    c = write_run(tmp_path / "c", "candidate", [1.0] * 380 + [0.0] * 70)
    code, doc, _ = run("gate_compare.py", "--baseline", b, "--candidate", c)
    assert code == 1 and doc["decision"] == "REGRESSION" and schema_errors("compare-verdict", doc) == []


def test_gate_compare_mismatched_task_sets_exit_2(tmp_path):
    b = write_run(tmp_path / "b", "baseline", [1.0] * 50)
    c = write_run(tmp_path / "c", "candidate", [1.0] * 50, task="other", config={"tasks": ["digits"], "seed": 0,
                                                                              "limit": None})
    code, doc, _ = run("gate_compare.py", "--baseline", b, "--candidate", c)
    assert code == 2 and doc["decision"] == "ANOMALOUS"


def test_gate_compare_nan_score_exits_2(tmp_path):
    b = write_run(tmp_path / "b", "baseline", [1.0] * 50)
    c = write_run(tmp_path / "c", "candidate", [1.0] * 50)
    c.write_text(c.read_text().replace('"score": 1.0', '"score": NaN'))
    code, doc, _ = run("gate_compare.py", "--baseline", b, "--candidate", c)
    assert code == 2 and doc["pass"] is False


@pytest.mark.parametrize("args", [["--threshold", "nan"], ["--threshold", "abc"], ["--bogus"], ["--z", "-1"]])
def test_gate_compare_bad_flags_exit_2(tmp_path, args):
    b = write_run(tmp_path / "b", "baseline", [1.0] * 50)
    code, doc, _ = run("gate_compare.py", "--baseline", b, "--candidate", b, *args)
    assert code == 2 and doc["failure_class"] == "USER_CONFIG_ERROR"


def test_gate_ptq_missing_checkpoint_exits_2(tmp_path):
    code, doc, _ = run("gate_ptq.py", "--checkpoint", tmp_path / "none", "--source", tmp_path, "--recipe", "int8_asym")
    assert code == 2 and doc["failure_class"] == "USER_CONFIG_ERROR" and "not found" in doc["detail"]


def test_gate_ptq_unknown_recipe_exits_2(tmp_path):
    code, doc, _ = run("gate_ptq.py", "--checkpoint", tmp_path, "--source", tmp_path, "--recipe", "int3")
    assert code == 2 and "unknown recipe" in doc["detail"]


def test_gate_ptq_without_checkpoint_or_summary_exits_2():
    code, doc, _ = run("gate_ptq.py", "--recipe", "int8_asym")
    assert code == 2 and "--checkpoint" in doc["detail"]


def test_gate_ptq_on_a_folder_without_an_ir_exits_2(tmp_path):
    (tmp_path / "ckpt").mkdir()
    code, doc, _ = run("gate_ptq.py", "--checkpoint", tmp_path / "ckpt", "--source", tmp_path, "--recipe", "int8_asym")
    assert code == 2 and "no OpenVINO IR" in doc["detail"]


def test_gate_ptq_reads_a_saved_observation_with_summary(tmp_path):
    obs = {"model_type": "llama", "model_kind": "llm", "source_weight_params": 1000, "source_weight_bytes": 4000,
           "source_bytes": 4100, "output_weight_bytes": 1050, "output_bytes": 3000,
           "layer_precision_counts": {"u8": {"count": 2, "bytes": 1000, "params": 1000}}, "metadata_diffs": []}
    (tmp_path / "obs.json").write_text(json.dumps(obs))
    code, doc, _ = run("gate_ptq.py", "--summary", tmp_path / "obs.json", "--recipe", "int8_asym")
    assert code == 0 and doc["pass"] is True and schema_errors("ptq-verdict", doc) == []
    code, doc, _ = run("gate_ptq.py", "--summary", tmp_path / "obs.json", "--recipe", "int4_asym_g64")
    assert code == 1 and doc["failure_class"] == "QUANT_COVERAGE_FAILURE"


def test_modelgate_console_dispatches_the_gates(tmp_path):
    summary = write_run(tmp_path / "b", "baseline", [1.0] * 10)
    p = subprocess.run([sys.executable, "-m", "modelgate.cli", "gate-run", "--run", str(summary)],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert p.returncode == 0 and json.loads(p.stdout)["gate"] == "gate-run"
