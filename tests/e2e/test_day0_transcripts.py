"""day0-release as an agent meets it: the commands are read from SKILL.md's code blocks and run as written
(placeholders filled with fixtures), and each verdict is checked for what a careful person would tell
the user: the decision, what it covers, and a next step that can be carried out.

Scenarios: a good model (the trained fixture LLM, int8), a subtle defect (the same model with outlier
weights that per-channel int8 rounds away: it loads, serves and keeps its precision promises), an
under-powered evaluation (a dozen prompts of the user's own). Also here, on the good model's run: the
answer-similarity default separates the good int8 build from a deliberately broken one.
"""
import json
import math
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from modelgate import fixtures
from modelgate.gates.compare import evaluate_compare
from modelgate.openvino import evaluate as ev
from modelgate.release import records
from tests.support.quant_faults import outlier_llm, scaled_weight_ir

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
SKILL = ROOT / "skills" / "day0-release"
PROGRESS = "day0-release ["
PROMPTS = ["What is the capital of Italy?", "Name a fruit that is yellow.", "How many legs does a cat have?",
           "Write one sentence about the sea.", "What is 3 plus 4?", "Why do birds fly south?",
           "What color is grass?", "Give a synonym for happy.", "What is a computer?", "Who wrote Hamlet?",
           "What do cows eat?", "Describe rain in three words."]


def skill_commands() -> list[list[str]]:
    """Every day0_release.py command in SKILL.md's bash blocks, as argv lists (continuations joined)."""
    text = (SKILL / "SKILL.md").read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for cmd in block.replace("\\\n", " ").splitlines():
            if "day0_release.py" in cmd:
                out.append(shlex.split(cmd))
    return out


def documented(pick, **fill) -> list[str]:
    """The first documented command ``pick`` selects, placeholders replaced by ``fill``."""
    argv = next(c for c in skill_commands() if pick(c))
    subst = {"python": sys.executable, "${CLAUDE_SKILL_DIR}/scripts/day0_release.py": str(SKILL / "scripts" /
                                                                                        "day0_release.py")}
    subst.update(fill)
    return [subst.get(a, a.replace("${CLAUDE_SKILL_DIR}", str(SKILL))) for a in argv]


def run(argv: list[str], timeout: float = 1500):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def quick_start(model: Path, ws: Path) -> list[str]:
    argv = documented(lambda c: "--recipe" in c and "--tasks" not in c and "--eval-data" not in c
                      and "hf_llm_folder" in " ".join(c), **{"path/to/hf_llm_folder": str(model), "runs/": str(ws)})
    assert "--threshold" not in argv  # the Quick start relies on the default eval's own threshold
    return argv


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    ws = tmp_path_factory.mktemp("good")
    return (*run(quick_start(fixtures.hf_model("trained-llama"), ws)), ws)


@pytest.fixture(scope="module")
def defect(tmp_path_factory):
    return run(quick_start(outlier_llm(), tmp_path_factory.mktemp("defect")))


@pytest.fixture(scope="module")
def underpowered(tmp_path_factory):
    ws = tmp_path_factory.mktemp("underpowered")
    data = ws / "your_eval.jsonl"
    data.write_text("".join(json.dumps({"id": f"u{i}", "prompt": p}) + "\n" for i, p in enumerate(PROMPTS)))
    argv = documented(lambda c: "--eval-data" in c and "hf_llm_folder" in " ".join(c),
                      **{"path/to/hf_llm_folder": str(fixtures.hf_model("trained-llama")), "runs/": str(ws),
                         "path/to/your_eval.jsonl": str(data)})
    return argv, *run(argv)


def test_the_skill_documents_a_real_model_command_with_lm_eval_tasks_and_one_with_eval_data():
    cmds = [" ".join(c) for c in skill_commands()]
    assert any("--tasks lm-eval:" in c and "hf_llm_folder" in c for c in cmds)
    assert any("--eval-data" in c and "hf_llm_folder" in c for c in cmds)


def test_good_model_is_accepted_the_verdict_says_what_it_covers_and_stderr_stays_clean(good):
    code, rep, stderr, _ = good
    assert code == 0 and rep["decision"] == "ACCEPT"
    cov = rep["coverage"]
    assert "answer-similarity (240 samples)" in cov["summary"] and "at f32" in cov["summary"]
    ex = cov["exercised"]
    assert ex["tasks"]["answer-similarity"]["samples"] == 240 and ex["eval_precision"] == "f32"
    assert ex["threshold"] == {"value": 0.05, "relative": False, "source": "default of answer-similarity"}
    assert ex["canary_precision"]  # the precision the canary served at is recorded
    if ex["canary_precision"] != "f32":  # e.g. bf16 on CPUs with bf16 support: the ACCEPT does not cover it
        assert f"not evaluated at the served precision {ex['canary_precision']}" in cov["summary"]
        assert any(ex["canary_precision"] in x for x in cov["not_exercised"])
    assert any("chat template" in x for x in cov["not_exercised"])
    ir = rep["recipes"][0]["artifacts"]["candidate_ir"]
    assert Path(ir).is_absolute() and (Path(ir) / "openvino_model.xml").is_file()
    assert rep["next_action"].startswith(f"Publish {ir} (sha256 {rep['recipes'][0]['artifacts']['candidate_sha256']})")
    # a passing run prints only its own progress on stderr; third-party output is in the run's log
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert lines and all(ln.startswith(PROGRESS) for ln in lines), [ln for ln in lines if not ln.startswith(PROGRESS)]
    log = Path(rep["evidence"]["log"]).read_text(errors="replace")
    assert "Could not infer whether the model was already converted" not in log  # avoided at the source
    assert "refs/main" not in log


def test_subtle_quantization_defect_is_a_regression_with_the_evidence_to_show(defect):
    code, rep, _ = defect
    assert code == 1 and rep["decision"] == "REGRESSION" and rep["failure_class"] == "ACCURACY_REGRESSION"
    gates = {s["gate"]: s["pass"] for s in rep["stages"]}
    assert gates["gate-ptq"] and gates["deploy-canary"]  # it loads, serves and keeps its precision promises
    task = rep["recipes"][0]["tasks"]["answer-similarity"]
    assert task["drop"] > rep["request"]["threshold"]
    assert rep["coverage"]["summary"].startswith("REGRESSION: nothing is vouched for")
    assert rep["next_action"].startswith("Do not publish") and "less aggressive recipe" in rep["next_action"]
    assert len(rep["recipes"][0]["examples"]["answer-similarity"]) == 3


def test_underpowered_eval_names_the_data_that_resolves_it_and_a_new_threshold_reuses_every_stage(underpowered):
    argv, code, rep, _ = underpowered
    assert code == 1 and rep["decision"] == "INDETERMINATE"
    task = rep["recipes"][0]["tasks"]["eval-data:prompt"]
    assert task["n"] == len(PROMPTS) and task["samples_needed"] > len(PROMPTS)
    nxt = rep["next_action"]
    assert f"at least {task['samples_needed']}" in nxt and "--eval-data FILE" in nxt and "lm-eval:" in nxt
    assert "ask the user" in nxt and "--threshold" in nxt
    assert rep["coverage"]["exercised"]["tasks"]["eval-data:prompt"]["samples"] == len(PROMPTS)
    # the user accepts the threshold the evidence resolves: the same command, decided again from cache
    suggested = re.search(r"a threshold of ([0-9.e-]+) is acceptable", nxt).group(1)
    code2, again, _ = run(argv + ["--threshold", suggested])
    assert code2 == 0 and again["decision"] == "ACCEPT"
    assert again["workspace"] == rep["workspace"] and again["resume"]["ran"] == []
    assert again["coverage"]["exercised"]["threshold"]["source"] == "--threshold"


def test_answer_similarity_separates_a_good_int8_build_from_a_broken_one_on_the_same_run(good, tmp_path):
    code, rep, _, _ = good  # the good build's run: its baseline answers are the reference for both builds
    run_dir = Path(rep["workspace"])
    good_task = rep["recipes"][0]["tasks"]["answer-similarity"]
    assert code == 0 and good_task["decision"] == "ACCEPT" and good_task["drop_upper_bound"] <= 0.05
    base_path = run_dir / "baseline" / "eval" / "run_summary.json"
    base = json.loads(base_path.read_text())
    broken = scaled_weight_ir(run_dir / "baseline" / "ir", tmp_path / "broken", "layers.0.self_attn.o_proj", 3.0)
    cand, _ = ev.run_evaluation(broken, base["eval_config"], tmp_path / "eval", variant="candidate", run_id="broken",
                                model_label=str(broken), data_root=run_dir,
                                reference_eval=run_dir / "baseline" / "eval")
    paired = records.paired_from_records(base_path, base, tmp_path / "eval" / "run_summary.json", cand)
    verdict = evaluate_compare(base, cand, threshold=rep["request"]["threshold"], paired=paired)
    task = verdict["tasks"]["answer-similarity"]
    assert verdict["decision"] == "REGRESSION" and task["stderr_source"] == "paired"
    assert task["drop"] > 0.05 > good_task["drop_upper_bound"]
    assert math.isclose(task["candidate"], 1 - task["drop"])
