"""Playbook lock: hashes content, detects any change, does not care where the lock file lives."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from modelgate.certify.lock import LOCK_NAME, check_lock, enforce_lock, lock_playbooks, playbook_sha256
from modelgate.contract import GateFailure, GateInputError, schema_errors


@pytest.fixture()
def playbooks(tmp_path):
    root = tmp_path / "playbooks"
    (root / "models").mkdir(parents=True)
    (root / "templates").mkdir()
    (root / "models" / "tiny-llama.yaml").write_text("model: {fixture: trained-llama}\ntier: smoke\n")
    (root / "templates" / "smoke.yaml").write_text("tier: smoke\n")
    (root / "README.txt").write_text("not a playbook")
    return root


def test_lock_records_the_sha256_of_each_playbooks_content(playbooks):
    lock = lock_playbooks(playbooks)
    doc = json.loads(lock.read_text())
    assert lock == playbooks / LOCK_NAME and schema_errors("playbook-lock", doc) == []
    content = (playbooks / "models" / "tiny-llama.yaml").read_bytes()
    assert doc["playbooks"] == {"models/tiny-llama.yaml": hashlib.sha256(content).hexdigest(),
                                "templates/smoke.yaml": hashlib.sha256(b"tier: smoke\n").hexdigest()}


def test_unchanged_playbook_matches_its_lock(playbooks):
    lock_playbooks(playbooks)
    ok, detail = check_lock(playbooks / "models" / "tiny-llama.yaml")
    assert ok, detail
    assert enforce_lock(playbooks / "models" / "tiny-llama.yaml") == "verified"


def test_a_content_change_is_detected(playbooks):
    lock_playbooks(playbooks)
    pb = playbooks / "models" / "tiny-llama.yaml"
    pb.write_text(pb.read_text().replace("smoke", "deep"))
    ok, detail = check_lock(pb)
    assert not ok and "changed since it was locked" in detail


def test_a_one_byte_change_that_keeps_size_and_mtime_is_detected(playbooks):
    lock_playbooks(playbooks)
    pb = playbooks / "templates" / "smoke.yaml"
    st = pb.stat()
    pb.write_bytes(b"tier: smokf\n")
    import os
    os.utime(pb, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert check_lock(pb)[0] is False


def test_the_lock_files_path_is_irrelevant_to_the_hashes(playbooks, tmp_path):
    a = lock_playbooks(playbooks)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved = shutil.copy(a, elsewhere / "renamed.lock.json")
    assert json.loads(a.read_text())["playbooks"].values() and \
        sorted(json.loads(a.read_text())["playbooks"].values()) == \
        sorted(json.loads(Path(moved).read_text())["playbooks"].values())
    # checking against the moved lock still verifies, and still catches a change
    pb = playbooks / "templates" / "smoke.yaml"
    assert check_lock(pb, moved)[0] is True
    pb.write_text("tier: deep\n")
    assert check_lock(pb, moved)[0] is False


def test_the_same_playbooks_locked_from_two_checkouts_hash_identically(playbooks, tmp_path):
    copy = shutil.copytree(playbooks, tmp_path / "other-checkout" / "pb")
    a = json.loads(lock_playbooks(playbooks).read_text())
    b = json.loads(lock_playbooks(copy).read_text())
    assert a == b


def test_a_mismatching_playbook_is_refused_unless_allowed(playbooks):
    lock_playbooks(playbooks)
    pb = playbooks / "models" / "tiny-llama.yaml"
    pb.write_text("model: {fixture: gpt2}\n")
    with pytest.raises(GateFailure) as exc:
        enforce_lock(pb)
    assert exc.value.failure_class == "INTEGRITY_MISMATCH"
    assert enforce_lock(pb, allow_unlocked=True) == "overridden"


def test_a_playbook_without_a_lock_entry_is_refused_unless_allowed(playbooks):
    lock_playbooks(playbooks)
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
    lock = lock_playbooks(playbooks)
    with pytest.raises(GateInputError):
        check_lock(playbooks / "models" / "missing.yaml")
    lock.write_text('{"schema_version": "1.0", "algorithm": "md5", "playbooks": {}}')
    with pytest.raises(GateInputError):
        check_lock(playbooks / "templates" / "smoke.yaml")
    with pytest.raises(GateInputError):
        lock_playbooks(tmp_path / "empty-or-missing")


def test_playbook_sha256_is_of_the_bytes(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_bytes(b"a: 1\n")
    assert playbook_sha256(p) == hashlib.sha256(b"a: 1\n").hexdigest()


def test_an_unlocked_playbook_never_borrows_the_entry_of_a_same_named_file(playbooks):
    lock_playbooks(playbooks)
    twin = playbooks / "models" / "smoke.yaml"
    twin.write_text("tier: smoke\n")  # same name and content as templates/smoke.yaml, but never locked
    ok, detail = check_lock(twin)
    assert not ok and "no entry" in detail
