"""Playbook lock: hashes the content of everything a run reads, names what changed, does not care
where the lock file lives, and is never written into the skill pack."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelgate.certify import playbook as P
from modelgate.certify.lock import (
    LOCK_NAME,
    build_lock,
    check_lock,
    enforce_lock,
    lock_playbooks,
    lock_state,
    playbook_sha256,
)
from modelgate.contract import GateFailure, GateInputError, schema_errors

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "skills" / "model-certification"


@pytest.fixture()
def playbooks(tmp_path):
    root = tmp_path / "playbooks"
    (root / "models").mkdir(parents=True)
    (root / "extra").mkdir()
    (root / "models" / "tiny-llama.yaml").write_text("model: {fixture: trained-llama}\ntier: smoke\n")
    (root / "extra" / "smoke.yaml").write_text("tier: smoke\n")
    (root / "README.txt").write_text("not a playbook")
    return root


@pytest.fixture()
def skill(tmp_path):
    """A copy of the skill folder whose templates a test may edit."""
    dst = tmp_path / "skill"
    shutil.copytree(PACK, dst, ignore=shutil.ignore_patterns("vendor", "__pycache__"))
    return dst


def _lock(playbooks, skill=None):
    return lock_playbooks(playbooks, playbooks / LOCK_NAME, skill)


def test_lock_records_the_sha256_of_each_playbook_and_of_every_input(playbooks):
    doc = json.loads(_lock(playbooks).read_text())
    assert schema_errors("playbook-lock", doc) == []
    content = (playbooks / "models" / "tiny-llama.yaml").read_bytes()
    assert doc["playbooks"] == {"playbooks/models/tiny-llama.yaml": hashlib.sha256(content).hexdigest(),
                                "playbooks/extra/smoke.yaml": hashlib.sha256(b"tier: smoke\n").hexdigest()}
    assert set(doc["inputs"]) == {f"templates/{t}.yaml" for t in P.TIERS} | {"playbook.schema.json",
                                                                             "data/color_facts.json"}
    smoke = (PACK / "playbooks" / "templates" / "smoke.yaml").read_bytes()
    assert doc["inputs"]["templates/smoke.yaml"] == hashlib.sha256(smoke).hexdigest()


def test_unchanged_playbook_matches_its_lock(playbooks):
    _lock(playbooks)
    ok, detail = check_lock(playbooks / "models" / "tiny-llama.yaml")
    assert ok, detail
    assert enforce_lock(playbooks / "models" / "tiny-llama.yaml") == "verified"


def test_a_content_change_is_detected_and_named(playbooks):
    _lock(playbooks)
    pb = playbooks / "models" / "tiny-llama.yaml"
    pb.write_text(pb.read_text().replace("smoke", "deep"))
    ok, detail = check_lock(pb)
    assert not ok and "playbooks/models/tiny-llama.yaml changed since it was locked" in detail


def test_a_one_byte_change_that_keeps_size_and_mtime_is_detected(playbooks):
    _lock(playbooks)
    pb = playbooks / "extra" / "smoke.yaml"
    st = pb.stat()
    pb.write_bytes(b"tier: smokf\n")
    import os
    os.utime(pb, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert check_lock(pb)[0] is False


def test_an_edited_tier_template_breaks_the_lock_and_is_named(tmp_path, skill):
    """The template loophole: switching an oracle off in templates/smoke.yaml kept the run 'verified'."""
    mine = tmp_path / "mine"
    mine.mkdir()
    pb = mine / "m.yaml"
    pb.write_text("name: m\nmodel: {fixture: trained-llama}\nmodel_family: llama\ntier: smoke\n")
    lock_playbooks(mine, tmp_path / "out" / LOCK_NAME, skill)
    inputs = P.load_playbook(pb, skill_dir=skill)["_inputs"]
    assert enforce_lock(pb, inputs=inputs, output=tmp_path / "out") == "verified"
    template = skill / "playbooks" / "templates" / "smoke.yaml"
    template.write_text(template.read_text().replace("degenerate: {enabled: true", "degenerate: {enabled: false"))
    inputs = P.load_playbook(pb, skill_dir=skill)["_inputs"]
    state, detail = lock_state(pb, inputs=inputs, output=tmp_path / "out")
    assert state == "mismatch" and "templates/smoke.yaml" in detail and "tiny" not in detail
    with pytest.raises(GateFailure) as exc:
        enforce_lock(pb, inputs=inputs, output=tmp_path / "out")
    assert exc.value.failure_class == "INTEGRITY_MISMATCH"
    assert enforce_lock(pb, inputs=inputs, output=tmp_path / "out", allow_unlocked=True) == "overridden"


def test_an_edited_data_file_breaks_the_lock(playbooks):
    _lock(playbooks)
    pb = playbooks / "models" / "tiny-llama.yaml"
    inputs = {"data/color_facts.json": "0" * 64}
    state, detail = lock_state(pb, inputs=inputs)
    assert state == "mismatch" and "data/color_facts.json" in detail


def test_a_lock_of_schema_1_never_verifies_a_run(playbooks):
    pb = playbooks / "models" / "tiny-llama.yaml"
    (playbooks / LOCK_NAME).write_text(json.dumps({"schema_version": "1.0", "algorithm": "sha256",
                                                   "playbooks": {"models/tiny-llama.yaml": playbook_sha256(pb)}}))
    state, detail = lock_state(pb, inputs={"templates/smoke.yaml": "0" * 64})
    assert state == "missing" and "schema 1.0" in detail


def test_the_lock_files_path_is_irrelevant_to_the_hashes(playbooks, tmp_path):
    a = _lock(playbooks)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved = shutil.copy(a, elsewhere / "renamed.lock.json")
    assert json.loads(a.read_text()) == json.loads(Path(moved).read_text())
    pb = playbooks / "extra" / "smoke.yaml"
    assert check_lock(pb, moved)[0] is True
    pb.write_text("tier: deep\n")
    assert check_lock(pb, moved)[0] is False


def test_the_same_playbooks_locked_from_two_checkouts_hash_identically(playbooks, tmp_path):
    copy = shutil.copytree(playbooks, tmp_path / "other-checkout" / "playbooks")
    assert build_lock(playbooks) == build_lock(copy)


def test_a_mismatching_playbook_is_refused_unless_allowed(playbooks):
    _lock(playbooks)
    pb = playbooks / "models" / "tiny-llama.yaml"
    pb.write_text("model: {fixture: gpt2}\n")
    with pytest.raises(GateFailure) as exc:
        enforce_lock(pb)
    assert exc.value.failure_class == "INTEGRITY_MISMATCH"
    assert enforce_lock(pb, allow_unlocked=True) == "overridden"


def test_a_playbook_without_a_lock_entry_is_refused_unless_allowed(playbooks):
    _lock(playbooks)
    new = playbooks / "models" / "new.yaml"
    new.write_text("tier: mvp\n")
    assert check_lock(new)[0] is False
    with pytest.raises(GateFailure):
        enforce_lock(new)
    assert enforce_lock(new, allow_unlocked=True) == "unlocked"


def test_no_lock_at_all_is_not_ok(tmp_path):
    pb = tmp_path / "p.yaml"
    pb.write_text("tier: smoke\n")
    ok, detail = check_lock(pb)
    assert not ok and "no playbooks.lock.json" in detail


def test_corrupt_lock_or_missing_playbook_is_an_input_error(playbooks, tmp_path):
    lock = _lock(playbooks)
    with pytest.raises(GateInputError):
        check_lock(playbooks / "models" / "missing.yaml")
    lock.write_text('{"schema_version": "2.0", "algorithm": "md5", "playbooks": {}}')
    with pytest.raises(GateInputError):
        check_lock(playbooks / "extra" / "smoke.yaml")
    with pytest.raises(GateInputError):
        build_lock(tmp_path / "empty-or-missing")


def test_playbook_sha256_is_of_the_bytes(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_bytes(b"a: 1\n")
    assert playbook_sha256(p) == hashlib.sha256(b"a: 1\n").hexdigest()


def test_an_unlocked_playbook_never_borrows_the_entry_of_a_same_named_file(playbooks):
    _lock(playbooks)
    twin = playbooks / "models" / "smoke.yaml"
    twin.write_text("tier: smoke\n")  # same name and content as extra/smoke.yaml, but never locked
    ok, detail = check_lock(twin)
    assert not ok and "no entry" in detail


def test_the_pack_ships_a_current_lock_for_its_own_playbooks():
    """So the Quick start runs without --allow-unlocked (scripts/lock_playbooks.py regenerates it)."""
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "lock_playbooks.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for pb in sorted((PACK / "playbooks" / "models").glob("*.yaml")):
        doc = P.load_playbook(pb)
        assert enforce_lock(pb, inputs=doc["_inputs"]) == "verified", pb.name
