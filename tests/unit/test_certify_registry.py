"""models.csv: pinned columns, lossless round-trips, locked concurrent updates."""
from __future__ import annotations

import csv
import io
import multiprocessing

import pytest
from cert_builders import full_marks, record
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelgate.certify.registry import (
    COLUMNS,
    GATEWAY_COLUMNS,
    TPS_COLUMNS,
    evidence_row,
    read_registry,
    render_registry,
    size_category,
    update_registry,
)
from modelgate.contract import GateInputError


def _rows(path):
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_column_order_is_pinned_with_g0_to_g4_in_order():
    assert COLUMNS[:9] == ("model_id", "family", "parameters", "size_category", "status", "mqs_score", "grade",
                           "certified_tier", "last_certified")
    assert COLUMNS[9:14] == ("g0", "g1", "g2", "g3", "g4") == GATEWAY_COLUMNS
    assert COLUMNS[14:29] == TPS_COLUMNS
    assert TPS_COLUMNS[:4] == ("tps_st_cpu", "tps_st_gpu", "tps_st_npu", "tps_ov_fp32_cpu")
    assert TPS_COLUMNS[-1] == "tps_ov_int4_npu" and len(TPS_COLUMNS) == 15
    assert COLUMNS[-1] == "provenance_verified" and len(COLUMNS) == 30


def test_gateway_flags_land_in_their_own_columns_not_shifted(tmp_path):
    doc = full_marks()
    for r in doc["records"]:
        if r["gateway"] == "G3":
            r["outcome"] = "Falsified"
    update_registry(tmp_path / "m.csv", evidence_row(doc))
    row = _rows(tmp_path / "m.csv")[0]
    assert [row[g] for g in ("g0", "g1", "g2", "g3", "g4")] == ["true", "true", "true", "false", "true"]
    assert row["status"] == "BLOCKED" and row["mqs_score"] == "0.0" and row["certified_tier"] == "none"


def test_row_values_come_from_the_mqs_score():
    doc = full_marks(model_parameters=1_200_000, playbook_lock="verified")
    row = evidence_row(doc)
    assert (row["status"], row["mqs_score"], row["grade"], row["certified_tier"]) == ("CERTIFIED", "1000.0", "A+",
                                                                                      "smoke")
    assert row["size_category"] == "tiny" and row["parameters"] == "1200000"
    assert row["provenance_verified"] == "true" and row["last_certified"] == "2026-11-23"


def test_provenance_is_not_verified_without_a_verified_lock():
    assert evidence_row(full_marks(playbook_lock="overridden"))["provenance_verified"] == "false"
    assert evidence_row(full_marks())["provenance_verified"] == "false"


def test_tokens_per_s_is_the_median_of_completed_records_of_each_cell():
    recs = [record("PERF", metrics={"tokens_per_s": v}, cell={"format": "openvino-int4", "device": "GPU",
                                                               "modality": "chat", "scenario": "basic"})
            for v in (10.0, 30.0, 20.0)]
    recs.append(record("PERF", "Crashed", metrics={"tokens_per_s": 999.0},
                       cell={"format": "openvino-int4", "device": "GPU", "modality": "chat", "scenario": "basic"}))
    doc = full_marks()
    doc["records"] += recs
    row = evidence_row(doc)
    assert row["tps_ov_int4_gpu"] == "20.00"
    assert row["tps_ov_fp32_cpu"] == "40.00" and row["tps_st_cpu"] == ""


def test_a_score_that_belongs_to_other_evidence_is_refused():
    from modelgate.gates.mqs import score
    other = score(full_marks(model="someone-else"))
    with pytest.raises(GateInputError):
        evidence_row(full_marks(), other)


@pytest.mark.parametrize("params,cat", [(None, ""), (5_000_000, "tiny"), (999_999_999, "tiny"),
                                        (1_000_000_000, "small"), (7_000_000_000, "medium"),
                                        (70_000_000_000, "xlarge"), (400_000_000_000, "huge")])
def test_size_category_bands(params, cat):
    assert size_category(params) == cat


def test_round_trip_keeps_unknown_statuses_extra_columns_and_other_rows(tmp_path):
    path = tmp_path / "models.csv"
    # a seed-era file: old columns, a status this version does not know, an extra column, a quoted comma
    path.write_text("model_id,family,status,mqs_score,g1,notes,tps_gguf_cpu\n"
                    "org/a,qwen,QUARANTINED,512,true,\"kept, with a comma\",33.1\n"
                    "org/b,llama,PARTIAL,640,false,,\n"
                    "org/c,phi,SOMETHING_NEW,,,\"multi\nline\",\n")
    update_registry(path, evidence_row(full_marks(model="org/new")))
    rows = _rows(path)
    by_id = {r["model_id"]: r for r in rows}
    assert [r["model_id"] for r in rows] == ["org/a", "org/b", "org/c", "org/new"]
    assert by_id["org/a"]["status"] == "QUARANTINED" and by_id["org/a"]["notes"] == "kept, with a comma"
    assert by_id["org/a"]["tps_gguf_cpu"] == "33.1" and by_id["org/a"]["mqs_score"] == "512"
    assert by_id["org/b"]["status"] == "PARTIAL"
    assert by_id["org/c"]["status"] == "SOMETHING_NEW" and by_id["org/c"]["notes"] == "multi\nline"
    assert by_id["org/new"]["status"] == "CERTIFIED" and by_id["org/new"]["notes"] == ""
    header = path.read_text().splitlines()[0].split(",")
    assert header[:30] == list(COLUMNS) and header[30:] == ["notes", "tps_gguf_cpu"]


def test_rewriting_an_unchanged_registry_is_a_fixed_point(tmp_path):
    path = tmp_path / "models.csv"
    update_registry(path, evidence_row(full_marks(model="org/x")))
    update_registry(path, {"model_id": "org/y", "status": "WEIRD", "custom": "v"})
    first = path.read_bytes().decode("utf-8")
    header, rows = read_registry(path)
    assert render_registry(header, rows) == first


def test_updating_a_model_replaces_run_columns_and_keeps_identity_and_extra_columns(tmp_path):
    path = tmp_path / "models.csv"
    update_registry(path, {**evidence_row(full_marks(model="org/a", model_parameters=7_000_000_000)),
                           "tps_st_gpu": "55.0", "owner": "team-x"})
    doc = full_marks(model="org/a")
    doc["records"][0]["outcome"] = "Falsified"
    res = update_registry(path, evidence_row(doc))
    rows = _rows(path)
    assert res["action"] == "updated" and len(rows) == 1
    assert rows[0]["status"] == "BLOCKED" and rows[0]["owner"] == "team-x"
    assert rows[0]["parameters"] == "7000000000" and rows[0]["size_category"] == "medium"
    assert rows[0]["tps_st_gpu"] == ""  # a stale measurement from another run is not kept


@pytest.mark.parametrize("content", ["family,status\nllama,CERTIFIED\n", "model_id,model_id\na,b\n",
                                     "model_id,status\na,CERTIFIED,extra\n"])
def test_a_registry_that_cannot_be_written_back_losslessly_is_refused_untouched(tmp_path, content):
    path = tmp_path / "models.csv"
    path.write_text(content)
    with pytest.raises(GateInputError):
        update_registry(path, {"model_id": "x", "status": "PENDING"})
    assert path.read_text() == content


@pytest.mark.parametrize("row", [{"model_id": ""}, {"status": "CERTIFIED"}, {"model_id": "x", "mqs": float("nan")},
                                 {"model_id": "x", "g0": ["list"]}])
def test_invalid_rows_are_refused(tmp_path, row):
    with pytest.raises(GateInputError):
        update_registry(tmp_path / "m.csv", row)
    assert not (tmp_path / "m.csv").exists()


def _add_rows(args):
    path, worker, n = args
    for i in range(n):
        update_registry(path, {"model_id": f"w{worker}/m{i}", "status": "PENDING", "family": "llama"})
    return worker


def test_concurrent_updates_from_four_processes_lose_no_rows(tmp_path):
    path = str(tmp_path / "models.csv")
    update_registry(path, {"model_id": "seed/keep", "status": "LEGACY", "extra": "x"})
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        assert sorted(pool.map(_add_rows, [(path, w, 15) for w in range(4)])) == [0, 1, 2, 3]
    ids = [r["model_id"] for r in _rows(tmp_path / "models.csv")]
    assert len(ids) == 61 and len(set(ids)) == 61
    assert {f"w{w}/m{i}" for w in range(4) for i in range(15)} | {"seed/keep"} == set(ids)
    assert (tmp_path / "models.csv.lock").exists()


_text = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.fixed_dictionaries({"status": _text, "notes": _text, "family": _text}), min_size=1, max_size=5))
def test_any_values_round_trip_byte_exact_through_an_update(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("reg") / "models.csv"
    for i, r in enumerate(rows):
        update_registry(path, {"model_id": f"m{i}", **r})
    update_registry(path, {"model_id": "other", "status": "PENDING"})
    _, back = read_registry(path)
    for i, r in enumerate(rows):
        assert {k: back[i][k] for k in r} == r


# --- issue 14: registry identity by a stable id

def _hf_folder(path, config: str, weights: bytes):
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(config)
    (path / "model.safetensors").write_bytes(weights)
    return path


def _path_doc(tmp_path, ref="../model"):
    return {"model": {"path": ref}, "_path": str(tmp_path / "pb" / "p.yaml")}


def test_two_different_models_under_the_same_path_get_different_ids(tmp_path):
    """For path: models the key used to be the path as written, so two models under ../model shared a row."""
    from modelgate.certify.playbook import model_identity

    folder = tmp_path / "model"
    a = model_identity(_path_doc(tmp_path), _hf_folder(folder, '{"a": 1}', b"weights-A"))
    b = model_identity(_path_doc(tmp_path), _hf_folder(folder, '{"a": 1}', b"weights-B"))  # same config, new weights
    c = model_identity(_path_doc(tmp_path), _hf_folder(folder, '{"a": 2}', b"weights-A"))
    assert len({a["id"], b["id"], c["id"]}) == 3
    assert a["id"].startswith("path:model@") and a["ref"] == "../model" and len(a["sha256"]) == 64


def test_the_same_model_moved_or_renamed_keeps_its_hash(tmp_path):
    from modelgate.certify.playbook import model_identity

    a = model_identity(_path_doc(tmp_path), _hf_folder(tmp_path / "x" / "llm", "{}", b"w"))
    b = model_identity(_path_doc(tmp_path, "../y/llm"), _hf_folder(tmp_path / "y" / "llm", "{}", b"w"))
    assert a["id"] == b["id"] and a["sha256"] == b["sha256"]


def test_hub_and_fixture_ids_are_unchanged_and_given_irs_join_the_id(tmp_path):
    from modelgate.certify.playbook import model_identity

    assert model_identity({"model": {"hf_id": "org/name"}}, tmp_path)["id"] == "org/name"
    assert model_identity({"model": {"fixture": "llama"}}, tmp_path)["id"] == "fixture:llama"
    ir = tmp_path / "ir"
    ir.mkdir()
    (ir / "openvino_model.xml").write_text("<net/>")
    (ir / "openvino_model.bin").write_bytes(b"\0" * 8)
    got = model_identity({"model": {"hf_id": "org/name"}}, tmp_path, {"openvino-int8": ir})
    assert got["id"].startswith("org/name+openvino-int8@") and "openvino-int8" in got["ir_sha256"]


def test_rows_of_two_path_models_stay_apart_and_a_legacy_path_row_is_kept_not_overwritten(tmp_path):
    path = tmp_path / "m.csv"
    update_registry(path, {"model_id": "../model", "status": "CERTIFIED", "mqs_score": "990.0"})  # an old row
    for digest in ("1" * 16, "2" * 16):
        doc = full_marks(model=f"path:model@{digest}",
                         model_source={"id": f"path:model@{digest}", "kind": "path", "ref": "../model"})
        from modelgate.certify.registry import legacy_key
        res = update_registry(path, evidence_row(doc), legacy_key(doc))
        assert res["legacy_rows"] == ["../model"]
    rows = {r["model_id"]: r for r in _rows(path)}
    assert set(rows) == {"../model", "path:model@" + "1" * 16, "path:model@" + "2" * 16}
    assert rows["../model"]["mqs_score"] == "990.0"
