"""A certification campaign from the command line: two playbooks in one run, on the local executor and
on a local Ray instance the command starts itself (real transformers, OpenVINO and Ray; no mock).

Both must decide the same: statuses, scores, gateways, record outcomes and registry rows. Only the
driver writes (evidence, scores, registry, README, reports), and every record says where it ran.
"""
import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelgate.certify.markdown import cell as escape_md
from tests.support import procs

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "skills" / "model-certification" / "scripts" / "certify.py"
MODELS = ROOT / "skills" / "model-certification" / "playbooks" / "models"
# a model that certifies and one that produces garbage: the campaign must tell them apart on both executors
PLAYBOOKS = ("trained-llama-smoke.yaml", "llama-smoke.yaml")
# registry columns that are measurements or the run's date, not decisions
MEASURED = ("tps_", "last_certified")


def certify(*args):
    """Run the skill script in its own session; returns (exit code, verdict, stderr, session id)."""
    p = subprocess.Popen([sys.executable, str(SCRIPT), *map(str, args)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True)
    out, err = p.communicate(timeout=1200)
    return p.returncode, json.loads(out), err, p.pid


@pytest.fixture(scope="module")
def playbooks(tmp_path_factory):
    d = tmp_path_factory.mktemp("playbooks")
    for name in PLAYBOOKS:
        shutil.copy(MODELS / name, d / name)
    # the lock next to the playbooks: both runs (different outputs) find it above each playbook
    code, out, _, _ = certify("lock-playbooks", d, "--lock", d / "playbooks.lock.json")
    assert code == 0, out
    return d


@pytest.fixture(scope="module")
def runs(playbooks, tmp_path_factory):
    out = {}
    for ex in ("local", "ray"):
        folder = tmp_path_factory.mktemp(f"campaign-{ex}")
        code, verdict, err, sid = certify("--playbooks", playbooks, "--output", folder, "--executor", ex,
                                          "--workers", "2", "--no-progress")
        out[ex] = {"code": code, "verdict": verdict, "stderr": err, "folder": folder, "session": sid}
    return out


def _evidence(run, playbook):
    return json.loads((run["folder"] / playbook / "evidence.json").read_text())


def _registry(run):
    with open(run["folder"] / "certifications" / "models.csv", newline="", encoding="utf-8") as fh:
        return {r["model_id"]: {k: v for k, v in r.items() if not k.startswith(MEASURED)} for r in csv.DictReader(fh)}


def test_the_campaign_decides_the_same_on_ray_as_on_the_local_executor(runs):
    loc, ray_ = runs["local"]["verdict"], runs["ray"]["verdict"]
    assert runs["local"]["code"] == runs["ray"]["code"] == 1, (loc["detail"], runs["ray"]["stderr"][-2000:])
    assert loc["decision"] == ray_["decision"] == "BLOCKED"
    assert loc["failure_class"] == ray_["failure_class"] == "GATEWAY_FAILED"
    keys = ("playbook", "status", "raw", "grade", "failure_class", "failed_gateways", "infrastructure_losses")
    assert [{k: m[k] for k in keys} for m in loc["campaign"]] == [{k: m[k] for k in keys} for m in ray_["campaign"]]
    assert {m["playbook"]: m["status"] for m in ray_["campaign"]} == {"trained-llama-smoke": "CERTIFIED",
                                                                      "llama-smoke": "BLOCKED"}
    for name in ("trained-llama-smoke", "llama-smoke"):
        outcomes = [{r["id"]: r["outcome"] for r in _evidence(runs[ex], name)["records"]} for ex in ("local", "ray")]
        assert outcomes[0] == outcomes[1], name


def test_registry_rows_are_the_same_apart_from_measured_speeds(runs):
    loc, ray_ = _registry(runs["local"]), _registry(runs["ray"])
    assert loc == ray_
    assert {r["status"] for r in ray_.values()} == {"CERTIFIED", "BLOCKED"}
    assert all(r["provenance_verified"] == "true" for r in loc.values() if r["status"] == "CERTIFIED")


def test_only_the_driver_writes_and_every_ray_record_says_where_and_when_it_ran(runs):
    for ex in ("local", "ray"):
        folder = runs[ex]["folder"]
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        expected = ["README.md", "certifications/models.csv", "certifications/models.csv.lock"]
        for name in ("llama-smoke", "trained-llama-smoke"):
            expected += [f"{name}/{f}" for f in ("evidence.json", "report.html", "report.junit.xml", "report.md",
                                                 "score.json")]
        assert files == sorted(expected), ex
        readme = (folder / "README.md").read_text()
        # the table escapes every punctuation character of a model id
        assert escape_md("fixture:trained-llama") in readme and escape_md("fixture:llama") in readme
    for name in ("trained-llama-smoke", "llama-smoke"):
        doc = _evidence(runs["ray"], name)
        assert doc["finished"] and doc["executor"]["name"] == "ray"
        nodes = {n["node"] for n in doc["executor"]["nodes"]}
        ran = [r for r in doc["records"] if r["outcome"] != "Skipped"]
        assert ran
        for r in ran:
            p = r["placement"]
            assert p["executor"] == "ray" and p["node"] in nodes and p["attempts"] == 1, r["id"]
            assert p["submitted_at"] <= p["returned_at"] and p["started_at"] <= p["ended_at"]


def test_the_command_left_no_process_behind(runs):
    """Ray's daemons and workers run in the command's session (cells in sessions of their own, dying
    with their worker): once the command has exited, nothing of either run may be alive."""
    for ex in ("local", "ray"):
        deadline = time.monotonic() + 5.0  # a child killed with its parent (PDEATHSIG) dies a moment later
        left = procs.in_session(runs[ex]["session"])
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = procs.in_session(runs[ex]["session"])
        assert left == [], [procs.cmdline(p)[:100] for p in left]
    # stdout held the verdict alone although Ray's driver prints notices: it parsed as one JSON object
    assert runs["ray"]["verdict"]["gate"] == "certify-run"


def test_each_model_is_locked_covered_and_told_its_own_next_step(runs):
    for ex in ("local", "ray"):
        v = runs[ex]["verdict"]
        assert v["evidence"]["playbook_lock"] == ["llama-smoke: verified", "trained-llama-smoke: verified"]  # sorted
        cov = v["coverage"]
        assert set(cov["exercised"]) == {"trained-llama-smoke", "llama-smoke"}
        assert "trained-llama-smoke: CERTIFIED" in cov["summary"] and "llama-smoke: BLOCKED" in cov["summary"]
        by = {m["playbook"]: m for m in v["campaign"]}
        # the certification's own next step: the first failed record to open for the blocked model
        assert "report.html" in by["llama-smoke"]["next_action"]
        assert "rerun" not in by["llama-smoke"]["next_action"]  # nothing was lost
        for name in by:
            doc = _evidence(runs[ex], name)
            assert doc["model"] == by[name]["model"] and doc["model_source"]["id"] == doc["model"]
            assert doc["inputs"], name  # the tier template and data the run read, hashed


def test_a_campaign_with_an_unlocked_playbook_is_refused_before_anything_runs(tmp_path):
    d = tmp_path / "playbooks"
    d.mkdir()
    shutil.copy(MODELS / PLAYBOOKS[0], d / PLAYBOOKS[0])
    shutil.copy(MODELS / PLAYBOOKS[1], d / PLAYBOOKS[1])
    code, out, _, _ = certify("lock-playbooks", d, "--lock", d / "playbooks.lock.json")
    assert code == 0, out
    (d / PLAYBOOKS[1]).write_text((d / PLAYBOOKS[1]).read_text() + "\n# edited after the lock\n")
    folder = tmp_path / "out"
    code, v, _, _ = certify("--playbooks", d, "--output", folder, "--no-progress")
    assert code == 1 and v["failure_class"] == "INTEGRITY_MISMATCH", v
    assert v["evidence"]["playbook"].endswith(PLAYBOOKS[1]) and v["evidence"]["lock_state"] == "mismatch"
    assert "lock-playbooks" in v["next_action"] and str(d.resolve()) in v["next_action"]
    assert not folder.exists()  # nothing written, nothing run
