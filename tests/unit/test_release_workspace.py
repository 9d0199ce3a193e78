"""Workspace: stage input hashing, skip-on-unchanged, resume after a kill, path containment."""
import json

import pytest

from modelgate.contract import GateInputError
from modelgate.release.workspace import Workspace, default_run_id, inputs_sha256, tree_sha256


def _writer(ws, rel, text, calls):
    def body():
        calls.append(rel)
        p = ws.path(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        return {"verdict": {"pass": True, "failure_class": None}, "text": text}
    return body


def test_input_hash_ignores_key_order_but_not_values():
    assert inputs_sha256({"a": 1, "b": [1, 2]}) == inputs_sha256({"b": [1, 2], "a": 1})
    assert inputs_sha256({"a": 1}) != inputs_sha256({"a": 2})


def test_default_run_id_is_stable_for_the_same_request_so_a_rerun_resumes():
    req = {"model": "m", "recipes": ["int8_asym"], "threshold": 0.01}
    assert default_run_id(req) == default_run_id(dict(req))
    assert default_run_id(req) != default_run_id(dict(req, threshold=0.02))


def test_stage_with_unchanged_inputs_is_skipped_and_returns_the_recorded_result(tmp_path):
    ws, calls = Workspace(tmp_path, "r1"), []
    first = ws.stage("s", {"x": 1}, ["out/a.txt"], _writer(ws, "out/a.txt", "hello", calls))
    ws2 = Workspace(tmp_path, "r1")
    second = ws2.stage("s", {"x": 1}, ["out/a.txt"], _writer(ws2, "out/a.txt", "other", calls))
    assert calls == ["out/a.txt"]
    assert second == first and ws2.skipped == ["s"] and ws2.ran == []
    assert ws2.hashes["out/a.txt"] == tree_sha256(tmp_path / "r1" / "out" / "a.txt")


def test_changed_inputs_rerun_the_stage(tmp_path):
    ws, calls = Workspace(tmp_path, "r1"), []
    ws.stage("s", {"x": 1}, ["o.txt"], _writer(ws, "o.txt", "a", calls))
    ws.stage("s", {"x": 2}, ["o.txt"], _writer(ws, "o.txt", "b", calls))
    assert len(calls) == 2 and (tmp_path / "r1" / "o.txt").read_text() == "b"


def test_tampered_output_reruns_the_stage_even_with_unchanged_inputs(tmp_path):
    ws, calls = Workspace(tmp_path, "r1"), []
    ws.stage("s", {"x": 1}, ["o.txt"], _writer(ws, "o.txt", "a", calls))
    (tmp_path / "r1" / "o.txt").write_text("tampered")
    Workspace(tmp_path, "r1").stage("s", {"x": 1}, ["o.txt"], _writer(ws, "o.txt", "a", calls))
    assert len(calls) == 2 and (tmp_path / "r1" / "o.txt").read_text() == "a"


def test_a_killed_stage_leaves_no_record_and_its_partial_output_is_cleared_on_resume(tmp_path):
    ws = Workspace(tmp_path, "r1")

    def dies():
        ws.path("o").mkdir()
        (ws.path("o") / "partial.bin").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ws.stage("s", {"x": 1}, ["o"], dies)
    assert not ws.record_path("s").exists()
    calls = []
    ws2 = Workspace(tmp_path, "r1")
    ws2.stage("s", {"x": 1}, ["o"], lambda: (calls.append(1), ws2.path("o").mkdir(),
                                              (ws2.path("o") / "full.bin").write_text("ok"), {"r": 1})[-1])
    assert calls == [1] and sorted(p.name for p in ws2.path("o").iterdir()) == ["full.bin"]


def test_transient_result_is_not_recorded_so_the_next_run_retries(tmp_path):
    ws, calls = Workspace(tmp_path, "r1"), []

    def body():
        calls.append(1)
        return {"verdict": {"failure_class": "TIMEOUT"}}
    ws.stage("s", {}, [], body, keep=lambda r: False)
    Workspace(tmp_path, "r1").stage("s", {}, [], body, keep=lambda r: False)
    assert len(calls) == 2


def test_a_corrupt_stage_record_reruns_instead_of_crashing(tmp_path):
    ws, calls = Workspace(tmp_path, "r1"), []
    ws.stage("s", {}, ["o.txt"], _writer(ws, "o.txt", "a", calls))
    ws.record_path("s").write_text("{not json")
    Workspace(tmp_path, "r1").stage("s", {}, ["o.txt"], _writer(ws, "o.txt", "a", calls))
    assert len(calls) == 2
    assert json.loads(ws.record_path("s").read_text())["stage"] == "s"


@pytest.mark.parametrize("rel", ["../escape.txt", "a/../../b", "/etc/passwd"])
def test_paths_outside_the_run_folder_are_refused(tmp_path, rel):
    ws = Workspace(tmp_path, "r1")
    with pytest.raises(GateInputError) as exc:
        ws.path(rel)
    assert exc.value.failure_class == "USER_CONFIG_ERROR"


@pytest.mark.parametrize("run_id", ["../up", "a/b", "", ".", "..", "x" * 200])
def test_run_ids_that_are_not_plain_folder_names_are_refused(tmp_path, run_id):
    with pytest.raises(GateInputError):
        Workspace(tmp_path, run_id)
