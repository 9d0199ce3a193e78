"""The evidence writer accepts only schema-valid records and always leaves a valid file behind."""
from __future__ import annotations

import json

import pytest
from cert_builders import full_marks, header, record

from modelgate.certify.evidence import (
    OUTPUT_LIMIT,
    EvidenceError,
    EvidenceWriter,
    evidence_errors,
    make_header,
    read_evidence,
    record_errors,
    write_evidence,
)
from modelgate.contract import GateInputError, schema_errors


def _header():
    h = header()
    h.pop("records")
    h["finished"] = None
    return h


def test_writer_persists_a_valid_document_after_every_record(tmp_path):
    path = tmp_path / "evidence.json"
    w = EvidenceWriter(path, _header())
    assert json.loads(path.read_text())["records"] == []
    w.add(record("QUAL", gateway="G2"))
    on_disk = json.loads(path.read_text())
    assert len(on_disk["records"]) == 1 and on_disk["finished"] is None
    assert evidence_errors(on_disk) == []
    doc = w.close()
    assert doc["finished"] and schema_errors("evidence", json.loads(path.read_text())) == []


@pytest.mark.parametrize("field,value", [
    ("outcome", "Passed"), ("outcome", "passed"), ("category", "QUALITY"), ("gateway", "G5"), ("reason", ""),
    ("hypothesis", ""), ("check", "rm -rf /; echo"), ("id", ""), ("output", 3),
    ("metrics", {"tokens_per_s": -5.0}), ("metrics", {"ttft_ms": "fast"}), ("failure_class", "NOT_A_CLASS"),
])
def test_writer_rejects_invalid_records(tmp_path, field, value):
    w = EvidenceWriter(tmp_path / "e.json", _header())
    bad = record("QUAL")
    bad[field] = value
    with pytest.raises(EvidenceError):
        w.add(bad)
    assert json.loads((tmp_path / "e.json").read_text())["records"] == []


@pytest.mark.parametrize("missing", ["hypothesis", "reason", "outcome", "output", "metrics", "gateway", "cell"])
def test_writer_rejects_records_missing_a_required_field(tmp_path, missing):
    w = EvidenceWriter(tmp_path / "e.json", _header())
    bad = record("QUAL")
    del bad[missing]
    with pytest.raises(EvidenceError):
        w.add(bad)


def test_writer_rejects_unknown_record_fields(tmp_path):
    w = EvidenceWriter(tmp_path / "e.json", _header())
    with pytest.raises(EvidenceError):
        w.add(record("QUAL", passed=True))


def test_writer_rejects_a_duplicate_record_id(tmp_path):
    w = EvidenceWriter(tmp_path / "e.json", _header())
    rec = record("QUAL")
    w.add(rec)
    with pytest.raises(EvidenceError, match="duplicate"):
        w.add(dict(rec))


def test_writer_rejects_a_cell_outside_the_declared_matrix(tmp_path):
    w = EvidenceWriter(tmp_path / "e.json", _header())
    rec = record("QUAL")
    rec["cell"]["format"] = "openvino-int8"  # valid format, but not in this run's matrix
    with pytest.raises(EvidenceError, match="matrix.formats"):
        w.add(rec)


def test_writer_rejects_an_invalid_header(tmp_path):
    h = _header()
    h["tier"] = "ultra"
    with pytest.raises(EvidenceError):
        EvidenceWriter(tmp_path / "e.json", h)
    assert not (tmp_path / "e.json").exists()


def test_writer_truncates_model_output_to_the_limit(tmp_path):
    w = EvidenceWriter(tmp_path / "e.json", _header())
    stored = w.add(record("QUAL", output="x" * (OUTPUT_LIMIT + 500)))
    assert len(stored["output"]) == OUTPUT_LIMIT


def test_nan_metrics_are_refused_not_written_as_nan_literals(tmp_path):
    w = EvidenceWriter(tmp_path / "e.json", _header())
    with pytest.raises(EvidenceError):
        w.add(record("PERF", metrics={"tokens_per_s": float("nan")}))


def test_make_header_fills_host_and_versions_and_validates():
    h = make_header(playbook="p", playbook_sha256="0" * 64, model="m", model_family="llama", tier="smoke",
                    matrix={"formats": ["safetensors"], "devices": ["CPU"], "modalities": ["run"],
                            "scenarios": ["basic"]}, playbook_lock="verified")
    assert h["host"]["cpu_count"] >= 1 and "openvino" in h["versions"]
    assert evidence_errors(dict(h, records=[])) == []


def test_record_errors_validates_a_record_on_its_own():
    assert record_errors(record("QUAL")) == []
    assert record_errors(record("QUAL", outcome="Skipped", reason=""))


def test_write_evidence_refuses_an_invalid_document_and_writes_nothing(tmp_path):
    doc = full_marks()
    doc["records"][0]["outcome"] = "OK"
    with pytest.raises(EvidenceError):
        write_evidence(tmp_path / "e.json", doc)
    assert not (tmp_path / "e.json").exists()


@pytest.mark.parametrize("content", ["{not json", '{"records": NaN}', "[]", json.dumps({"schema_version": "1.0"})])
def test_reading_corrupt_or_invalid_evidence_is_an_input_error(tmp_path, content):
    path = tmp_path / "e.json"
    path.write_text(content)
    with pytest.raises(GateInputError) as exc:
        read_evidence(path)
    assert exc.value.failure_class == "USER_CONFIG_ERROR"


def test_reading_missing_evidence_is_an_input_error(tmp_path):
    with pytest.raises(GateInputError):
        read_evidence(tmp_path / "nope.json")


def test_make_header_leaves_out_unknown_optional_fields():
    h = make_header(playbook="p", playbook_sha256="0" * 64, model="m", model_family="llama", tier="smoke",
                    matrix={"formats": ["safetensors"], "devices": ["CPU"], "modalities": ["run"],
                            "scenarios": ["basic"]}, model_parameters=None, playbook_lock=None)
    assert "model_parameters" not in h and "playbook_lock" not in h
    assert evidence_errors(dict(h, records=[])) == []


def test_a_corroborated_record_cannot_carry_a_failure_class(tmp_path):
    w = EvidenceWriter(tmp_path / "e.json", _header())
    with pytest.raises(EvidenceError, match="Corroborated"):
        w.add(record("QUAL", failure_class="DEGENERATE_OUTPUT"))
    w.add(record("QUAL", "Falsified", failure_class="DEGENERATE_OUTPUT"))
