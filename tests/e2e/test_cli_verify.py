"""The verify-conversion command line, as an agent runs it: one JSON verdict on stdout, exit codes,
bad input never a traceback, pipeline mode always writes its result file."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelgate import contract, fixtures
from modelgate.openvino.convert import export_cached
from tests.support import faults

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SKILL = ROOT / "skills" / "verify-conversion"
SCRIPT = SKILL / "scripts" / "verify_conversion.py"


def run(args, cwd=None, timeout=300):
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                       cwd=cwd or ROOT, env=env, timeout=timeout)
    return p, time.monotonic() - t0


def verdict_of(p):
    v = json.loads(p.stdout)  # exactly one JSON object, nothing else on stdout
    schema = "verify-result" if "verify_passed" in v else "envelope"
    assert contract.schema_errors(schema, v) == []
    assert v["exit_code"] == p.returncode
    return v


def test_help_exits_zero_from_the_skill_root_as_skill_md_says():
    p, _ = run(["--help"], cwd=SKILL)
    assert p.returncode == 0 and "--converted" in p.stdout


BAD_INPUTS = {
    "missing-path": (lambda t: ["--model", t / "no" / "such" / "model"], "USER_CONFIG_ERROR"),
    "text-file-named-onnx": (lambda t: (t / "m.onnx").write_text("not a model") and ["--model", t / "m.onnx"],
                             "USER_CONFIG_ERROR"),
    "empty-folder": (lambda t: (t / "empty").mkdir() or ["--model", t / "empty"], "SOURCE_UNAVAILABLE"),
    "hub-id-offline": (lambda t: ["--model", "some-org/not-a-cached-model"], "SOURCE_UNAVAILABLE"),
    "unknown-task": (lambda t: ["--model", fixtures.hf_model("llama"), "--task", "telepathy"], "USER_CONFIG_ERROR"),
    "needs-remote-code": (lambda t: ["--model", fixtures.hf_model("needs-remote-code")], "USER_CONFIG_ERROR"),
    "nan-timeout": (lambda t: ["--model", fixtures.hf_model("llama"), "--timeout", "nan"], "USER_CONFIG_ERROR"),
    "unknown-weight-format": (lambda t: ["--model", fixtures.hf_model("llama"), "--weight-format", "int3"],
                              "USER_CONFIG_ERROR"),
    "missing-converted-ir": (lambda t: ["--model", fixtures.hf_model("llama"), "--converted", t / "nope"],
                             "USER_CONFIG_ERROR"),
    "nan-tolerance": (lambda t: ["--model", fixtures.hf_model("llama"), "--converted",
                                 export_cached(fixtures.hf_model("llama"), "fp16"), "--top1-min", "nan"],
                      "USER_CONFIG_ERROR"),
    "rel-err-not-judged": (lambda t: ["--model", fixtures.hf_model("llama"), "--rel-err-max", "none"],
                           "USER_CONFIG_ERROR"),
    "new-tokens-too-short": (lambda t: ["--model", fixtures.hf_model("llama"), "--new-tokens", "2"],
                             "USER_CONFIG_ERROR"),
    "positions-too-short": (lambda t: ["--model", fixtures.hf_model("llama"), "--positions", "8"],
                            "USER_CONFIG_ERROR"),
    "unknown-precision": (lambda t: ["--model", fixtures.hf_model("llama"), "--inference-precision", "fp8"],
                          "USER_CONFIG_ERROR"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_a_json_verdict_with_exit_2_and_no_traceback(case, tmp_path):
    make, cls = BAD_INPUTS[case]
    p, seconds = run(make(tmp_path))
    v = verdict_of(p)
    assert p.returncode == 2 and v["failure_class"] == cls, v["detail"]
    assert "Traceback" not in p.stdout + p.stderr
    assert seconds < 20, f"{case} took {seconds:.1f}s"


def test_existing_good_ir_is_verified_through_child_processes(tmp_path):
    p, _ = run(["--model", fixtures.hf_model("llama"), "--converted", export_cached(fixtures.hf_model("llama"), "fp16"),
                "--output", tmp_path])
    v = verdict_of(p)
    assert p.returncode == 0 and v["decision"] == "VERIFIED", v["detail"]
    assert v["verify_passed"] and v["e2e_passed"] and v["conversion_path"] == "optimum-cli"
    assert json.loads((tmp_path / "verify_result.json").read_text()) == v
    assert p.stderr.strip() == "", p.stderr[-2000:]  # library chatter goes to verify.log, not the terminal
    assert all(Path(e).is_absolute() for e in v["evidence"].values() if e)
    assert Path(v["evidence"]["log"]) == (tmp_path / "verify.log").resolve()


def test_corrupted_ir_fails_with_exit_1_and_names_the_check(tmp_path):
    bad = faults.inject("transposed_weight", export_cached(fixtures.hf_model("gpt2"), "int8"), tmp_path / "bad")
    p, _ = run(["--model", fixtures.hf_model("gpt2"), "--converted", bad])
    v = verdict_of(p)
    assert p.returncode == 1 and v["failure_class"] == "FIDELITY_REGRESSION"
    assert v["error"].startswith("layerwise_blocks") and v["verify_passed"] is False
    assert isinstance(v["first_divergent_layer"]["layer"], int)
    assert f"transformer.h.{v['first_divergent_layer']['layer']}" in v["next_action"]


def test_pipeline_mode_writes_the_agent_result_even_for_bad_state(tmp_path):
    state = tmp_path / "agent-results" / "pipeline_state.json"
    state.parent.mkdir()
    state.write_text(json.dumps({"optimum_supported": True}))  # no model_id
    p, _ = run(["--pipeline-state", state, "--agent", "verifier"])
    written = json.loads((tmp_path / "agent-results" / "verifier" / "verify_result.json").read_text())
    assert p.returncode == 2 and written["failure_class"] == "USER_CONFIG_ERROR" and written == verdict_of(p)


def test_pipeline_mode_reads_the_model_from_state_and_verifies_it(tmp_path):
    state = tmp_path / "agent-results" / "pipeline_state.json"
    state.parent.mkdir()
    state.write_text(json.dumps({"model_id": str(fixtures.hf_model("llama")), "optimum_supported": True,
                                 "converted": str(export_cached(fixtures.hf_model("llama"), "int8"))}))
    p, _ = run(["--pipeline-state", state, "--agent", "verifier"])
    written = json.loads((tmp_path / "agent-results" / "verifier" / "verify_result.json").read_text())
    assert p.returncode == 0, written["detail"]
    assert written["verify_passed"] is True and written["weight_format"] == "int8"
    for key in ("verify_passed", "e2e_passed", "conversion_path", "task", "e2e_detail", "error"):
        assert key in written


def test_pipeline_agent_name_cannot_escape_agent_results(tmp_path):
    state = tmp_path / "agent-results" / "pipeline_state.json"
    state.parent.mkdir()
    state.write_text(json.dumps({"model_id": "x"}))
    p, _ = run(["--pipeline-state", state, "--agent", "../../etc"])
    assert p.returncode == 2 and verdict_of(p)["failure_class"] == "USER_CONFIG_ERROR"
    assert not (tmp_path / "etc").exists()


def test_demo_converts_and_verifies_the_tiny_llama_offline(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    # the README's command: the console script that setup installs beside the interpreter
    script = Path(sys.executable).parent / "modelgate"
    assert script.is_file(), "the modelgate console script is not installed in this environment"
    p = subprocess.run([str(script), "demo", "--output", str(tmp_path / "demo")],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    v = verdict_of(p)
    assert p.returncode == 0 and v["conversion_path"] == "optimum-cli", v["detail"]
    assert (tmp_path / "demo" / "verify_result.json").is_file()
    assert (tmp_path / "demo" / "ir" / "openvino_model.xml").is_file()


def test_a_stage_that_exceeds_its_timeout_is_killed_and_still_yields_a_verdict(tmp_path):
    p, seconds = run(["--model", fixtures.hf_model("llama"), "--converted",
                      export_cached(fixtures.hf_model("llama"), "fp16"), "--timeout", "0.3"])
    v = verdict_of(p)
    assert p.returncode == 1 and v["failure_class"] == "TIMEOUT", v["detail"]
    assert v["e2e_passed"] is False and seconds < 30


def _header_only_checkpoint(src: Path, dst: Path, rows: int, cols: int) -> Path:
    """A copy of ``src`` (config, tokenizer) whose safetensors header claims one rows x cols f32 tensor:
    the estimate reads headers only, so nothing that large is ever written or loaded."""
    import shutil
    import struct
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.safetensors*", "*.bin"))
    header = json.dumps({"model.embed_tokens.weight": {"dtype": "F32", "shape": [rows, cols],
                                                        "data_offsets": [0, rows * cols * 4]}}).encode()
    (dst / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    return dst


def test_a_verification_that_cannot_fit_in_memory_is_refused_before_anything_runs(tmp_path):
    big = _header_only_checkpoint(fixtures.hf_model("llama"), tmp_path / "huge", 1_000_000, 100_000)  # 100 B
    p, s = run(["--model", big, "--output", tmp_path / "out"])
    v = verdict_of(p)
    assert p.returncode == 1 and v["failure_class"] == "RESOURCE_EXHAUSTED", v["detail"]
    assert "nothing was run" in v["detail"] and "100.00 B parameters" in v["detail"]
    estimate = json.loads(v["evidence"]["estimate"])
    assert estimate["params"] == 100_000_000_000 and estimate["estimated_peak_bytes"] > estimate["available_bytes"]
    assert not (tmp_path / "out" / "ir").exists()  # no export was started
    assert json.loads((tmp_path / "out" / "verify_result.json").read_text())["failure_class"] == "RESOURCE_EXHAUSTED"
