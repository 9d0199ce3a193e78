"""The certification subcommands as processes: one JSON verdict on stdout, exit 0/1/2, never a traceback."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from cert_builders import full_marks, record  # noqa: E402

from modelgate.certify.readme_table import END, START  # noqa: E402
from modelgate.cli.certify import TOOLS  # noqa: E402
from modelgate.contract import schema_errors  # noqa: E402

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def run(*argv: str) -> tuple[int, dict | str]:
    proc = subprocess.run([sys.executable, "-m", "modelgate.cli", "certify", *argv], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert "Traceback" not in proc.stdout
    if argv[-1] == "--help":
        return proc.returncode, proc.stdout
    verdict = json.loads(proc.stdout)
    assert schema_errors("certify-verdict", verdict) == []
    assert verdict["exit_code"] == proc.returncode
    return proc.returncode, verdict


def _write(path: Path, doc: dict) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


@pytest.mark.parametrize("name", sorted(t.name for t in TOOLS))
def test_every_subcommand_has_help(name):
    code, out = run(name, "--help")
    assert code == 0 and "usage" in out


def test_score_exit_codes_follow_the_status(tmp_path):
    good = _write(tmp_path / "good.json", full_marks())
    blocked_doc = full_marks()
    blocked_doc["records"].append(record("QUAL", "Falsified", gateway="G4"))
    blocked = _write(tmp_path / "blocked.json", blocked_doc)
    pending_doc = full_marks()
    for r in pending_doc["records"]:
        r["outcome"] = "Skipped"
    pending = _write(tmp_path / "pending.json", pending_doc)

    code, v = run("score", good, "--output", str(tmp_path / "score.json"))
    assert (code, v["decision"], v["score"]["raw"]) == (0, "CERTIFIED", 1000.0)
    assert v["detail"].endswith("CERTIFIED, MQS 1000/1000, A+") and "100.0" not in v["detail"]
    assert v["coverage"]["exercised"]["cells_run"] == 1 and "openvino-int8 (format)" in " ".join(
        v["coverage"]["not_exercised"])
    assert json.loads((tmp_path / "score.json").read_text()) == v
    code, v = run("score", blocked)
    assert (code, v["decision"], v["failure_class"]) == (1, "BLOCKED", "GATEWAY_FAILED")
    assert [c["name"] for c in v["checks"] if c["pass"] is False] == ["gateway_G4", "category_QUAL", "status"]
    code, v = run("score", pending)
    assert (code, v["decision"], v["failure_class"]) == (2, "PENDING", "USER_CONFIG_ERROR")


@pytest.mark.parametrize("content", ["{broken", '{"records": [NaN]}'])
def test_corrupt_evidence_is_exit_2_with_a_verdict(tmp_path, content):
    path = tmp_path / "e.json"
    path.write_text(content)
    code, v = run("score", str(path))
    assert code == 2 and v["failure_class"] == "USER_CONFIG_ERROR"


def test_report_export_sync_tickets_pipeline(tmp_path):
    doc = full_marks(playbook_lock="verified")
    doc["records"].append(record("EDGE", "Falsified", output="<b>bold</b>"))
    ev = _write(tmp_path / "evidence.json", doc)
    csv_path = tmp_path / "out" / "certifications" / "models.csv"
    readme = tmp_path / "README.md"
    readme.write_text(f"# R\n{START}\n{END}\n")

    code, v = run("report", ev, "--output", str(tmp_path / "reports"))
    assert code == 0 and set(v["outputs"]) == {"html", "junit", "markdown"}
    code, v = run("export-csv", "--evidence", ev, "--csv", str(csv_path))
    assert code == 0 and csv_path.is_file()
    code, v = run("sync-readme", "--csv", str(csv_path), "--readme", str(readme))
    assert code == 0 and "| fixture\\:trained\\-llama |" in readme.read_text()
    code, v = run("tickets", ev, "--output", str(tmp_path / "tickets"))
    assert code == 0 and list(v["outputs"]) == ["other"]


def test_sync_readme_without_markers_is_exit_2(tmp_path):
    csv_path = tmp_path / "models.csv"
    csv_path.write_text("model_id,status\na,CERTIFIED\n")
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    code, v = run("sync-readme", "--csv", str(csv_path), "--readme", str(readme))
    assert code == 2 and "exactly once" in v["detail"]
    assert readme.read_text() == "# no markers\n"


def test_lock_then_check_then_edit_is_exit_1(tmp_path):
    pb = tmp_path / "pb" / "smoke.yaml"
    pb.parent.mkdir()
    pb.write_text("tier: smoke\n")
    out = str(tmp_path / "out")
    code, v = run("lock-playbooks", str(pb.parent), "--output", out)
    assert code == 0 and v["outputs"]["lock"] == str(tmp_path / "out" / "playbooks.lock.json")
    assert run("check-lock", str(pb), "--output", out)[0] == 0
    pb.write_text("tier: deep\n")
    code, v = run("check-lock", str(pb), "--output", out)
    assert code == 1 and v["failure_class"] == "INTEGRITY_MISMATCH" and "pb/smoke.yaml changed" in v["detail"]


def test_check_lock_names_a_changed_tier_template(tmp_path):
    import shutil
    skill = tmp_path / "skill"
    shutil.copytree(ROOT / "skills" / "model-certification", skill, ignore=shutil.ignore_patterns("vendor"))
    pb = tmp_path / "pb" / "m.yaml"
    pb.parent.mkdir()
    pb.write_text("name: m\nmodel: {fixture: trained-llama}\nmodel_family: llama\ntier: mvp\n")
    out = str(tmp_path / "out")
    assert run("lock-playbooks", str(pb.parent), "--output", out, "--skill-dir", str(skill))[0] == 0
    assert run("check-lock", str(pb), "--output", out, "--skill-dir", str(skill))[0] == 0
    t = skill / "playbooks" / "templates" / "mvp.yaml"
    t.write_text(t.read_text().replace("reference: {enabled: true}", "reference: {enabled: false}"))
    code, v = run("check-lock", str(pb), "--output", out, "--skill-dir", str(skill))
    assert code == 1 and "templates/mvp.yaml" in v["detail"] and "m.yaml" not in v["detail"].split("in ")[0]


def test_lock_playbooks_never_writes_into_the_skill_pack(tmp_path):
    pack = ROOT / "skills" / "model-certification" / "playbooks"
    before = (pack / "playbooks.lock.json").read_bytes()
    code, v = run("lock-playbooks", str(pack / "models"), "--lock", str(pack / "playbooks.lock.json"))
    assert code == 2 and "inside the skill pack" in v["detail"]
    code, v = run("lock-playbooks", str(pack / "models"), "--output", str(pack / "models"))
    assert code == 2
    assert (pack / "playbooks.lock.json").read_bytes() == before


def test_bad_arguments_are_exit_2():
    code, v = run("export-csv", "--csv", "x.csv")
    assert code == 2 and v["failure_class"] == "USER_CONFIG_ERROR"
