"""Skill folders that install anywhere: a copy of a skill folder runs its pure gates in a fresh venv that
has only jsonschema (offline), its heavy scripts answer there with a JSON install verdict, and a copied
skill reads its own (edited) templates when the engine is installed."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from modelgate.contract import schema_errors
from tests.support.runs import write_run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from cert_builders import full_marks  # noqa: E402

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SKILLS = ROOT / "skills"


def _dist_closure(name: str) -> list[metadata.Distribution]:
    """jsonschema and the distributions it requires (extras left out)."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [name]
    while todo:
        req = todo.pop()
        key = re.sub(r"[-_.]+", "-", req).lower()
        if key in seen:
            continue
        try:
            dist = metadata.distribution(req)
        except metadata.PackageNotFoundError:
            continue  # a requirement for another Python version
        seen[key] = dist
        todo += [re.split(r"[ ;<>=!~\[(]", r, maxsplit=1)[0] for r in dist.requires or [] if "extra ==" not in r]
    return list(seen.values())


@pytest.fixture(scope="module")
def light_python(tmp_path_factory) -> tuple[str, dict]:
    """A fresh venv (no pip, no system site-packages) whose only packages are copies of jsonschema and
    its dependencies, on PYTHONPATH: (python, environment)."""
    base = tmp_path_factory.mktemp("light")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(base / "venv")], check=True, timeout=120)
    site = base / "site"
    for dist in _dist_closure("jsonschema"):
        for f in dist.files or []:
            if ".." in Path(f).parts:
                continue  # console scripts outside site-packages
            src = Path(dist.locate_file(f))
            if src.is_file():
                (site / f).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, site / f)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(PYTHONPATH=str(site), PYTHONNOUSERSITE="1", HF_HUB_OFFLINE="1")
    python = str(base / "venv" / "bin" / "python")
    probe = subprocess.run([python, "-c", "import jsonschema, importlib.util as u; "
                                          "print(u.find_spec('modelgate'), u.find_spec('numpy'), u.find_spec('yaml'))"],
                           capture_output=True, text=True, env=env, cwd=base, timeout=120)
    assert probe.returncode == 0 and probe.stdout.split() == ["None", "None", "None"], probe.stdout + probe.stderr
    return python, env


def copy_skill(name: str, dest: Path) -> Path:
    target = dest / "skills-elsewhere" / name
    shutil.copytree(SKILLS / name, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def run(python: str, script: Path, *args, env: dict, cwd: Path) -> tuple[int, dict]:
    p = subprocess.run([python, str(script), *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd,
                       timeout=300)
    assert "Traceback" not in p.stdout, p.stdout
    verdict = json.loads(p.stdout)  # exactly one JSON object
    assert verdict["exit_code"] == p.returncode
    return p.returncode, verdict


def test_pure_day0_gates_run_from_a_copied_skill_with_only_jsonschema(light_python, tmp_path):
    python, env = light_python
    skill = copy_skill("day0-release", tmp_path)
    scores = [1.0] * 430 + [0.0] * 20  # enough agreeing samples to resolve a 1-point threshold
    b = write_run(tmp_path / "b", "baseline", scores)
    c = write_run(tmp_path / "c", "candidate", scores)
    code, v = run(python, skill / "scripts" / "gate_run.py", "--run", b, "--output", tmp_path / "run.json",
                  env=env, cwd=tmp_path)
    assert code == 0 and v["pass"] and schema_errors("run-verdict", v) == []
    assert json.loads((tmp_path / "run.json").read_text()) == v
    code, v = run(python, skill / "scripts" / "gate_compare.py", "--baseline", b, "--candidate", c,
                  env=env, cwd=tmp_path)
    assert code == 0 and v["decision"] == "ACCEPT" and schema_errors("compare-verdict", v) == []
    assert v["evidence"]["paired_tasks"] == ["digits"]  # per-sample records read by the vendored engine
    assert v["tasks"]["digits"]["stderr_source"] == "paired"
    code, v = run(python, skill / "scripts" / "gate_run.py", "--run", tmp_path / "missing.json", env=env, cwd=tmp_path)
    assert code == 2 and v["failure_class"] == "USER_CONFIG_ERROR"


def test_the_mqs_score_runs_from_a_copied_skill_with_only_jsonschema(light_python, tmp_path):
    python, env = light_python
    skill = copy_skill("model-certification", tmp_path)
    evidence = tmp_path / "evidence.json"
    evidence.write_text(json.dumps(full_marks()))
    code, v = run(python, skill / "scripts" / "certify.py", "score", evidence, env=env, cwd=tmp_path)
    assert code == 0 and v["decision"] == "CERTIFIED" and v["score"]["raw"] == 1000.0
    assert schema_errors("certify-verdict", v) == []


@pytest.mark.parametrize("skill,script,args,gate,schema", [
    ("day0-release", "gate_ptq.py", ["--recipe", "int8_asym", "--checkpoint", "ir", "--source", "src"], "gate-ptq",
     "ptq-verdict"),
    ("day0-release", "day0_release.py", ["--model", "m", "--recipe", "int8_asym", "--workspace", "ws"],
     "release-decision", "release-report"),
    ("model-certification", "certify.py", ["--playbook", "playbooks/models/trained-llama-smoke.yaml", "--dry-run"],
     "certify-run", "certify-verdict"),
    ("verify-conversion", "verify_conversion.py", ["--model", "m"], "verify-conversion", "verify-result"),
])
def test_a_heavy_script_without_the_engine_says_how_to_install_it(light_python, tmp_path, skill, script, args, gate,
                                                                   schema):
    python, env = light_python
    folder = copy_skill(skill, tmp_path)
    code, v = run(python, folder / "scripts" / script, *args, env=env, cwd=folder)
    assert code == 2 and v["failure_class"] == "USER_CONFIG_ERROR" and v["gate"] == gate
    assert "pip install" in v["detail"] and "scripts/setup.sh" in v["detail"]
    # the command module is in the copy: the install verdict is valid against the command's own schema
    assert schema_errors(schema, v) == []


def test_a_copied_certification_skill_reads_its_own_edited_templates(tmp_path):
    skill = copy_skill("model-certification", tmp_path)
    template = skill / "playbooks" / "templates" / "smoke.yaml"
    template.write_text(template.read_text().replace("timeout_ms: 60000", "timeout_ms: 43210"))
    env = dict(os.environ, PYTHONPATH=str(ROOT))  # the full engine, installed (here: from the checkout)
    p = subprocess.run([sys.executable, str(skill / "scripts" / "certify.py"), "--playbook",
                        str(skill / "playbooks" / "models" / "trained-llama-smoke.yaml"), "--dry-run"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    plan = json.loads(p.stdout)["plan"]
    assert p.returncode == 0 and {c["timeout_ms"] for c in plan["cells"]} == {43210}
    # the repository's own skill folder still says 60000
    p = subprocess.run([sys.executable, "-m", "modelgate.cli", "certify", "--playbook",
                        str(skill / "playbooks" / "models" / "trained-llama-smoke.yaml"), "--dry-run"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert {c["timeout_ms"] for c in json.loads(p.stdout)["plan"]["cells"]} == {60000}
