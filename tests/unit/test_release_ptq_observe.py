"""The PTQ observer's file readers (no OpenVINO): safetensors headers, metadata diffs, model kind."""
from __future__ import annotations

import json
import struct

import pytest

from modelgate.contract import GateInputError
from modelgate.release.ptq_observe import metadata_diffs, model_kind, source_weights


def safetensors(path, tensors: dict):
    header = {name: {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]} for name, shape in tensors.items()}
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    return path


def test_source_parameters_count_tensors_of_rank_two_or_more_from_the_header(tmp_path):
    safetensors(tmp_path / "model.safetensors", {"emb": [10, 4], "norm": [4], "w": [4, 4], "conv": [2, 1, 3, 3]})
    info = source_weights(tmp_path)
    assert info["kind"] == "safetensors" and info["params"] == 40 + 16 + 18


def test_sharded_safetensors_are_summed(tmp_path):
    safetensors(tmp_path / "model-00001.safetensors", {"a": [4, 4]})
    safetensors(tmp_path / "model-00002.safetensors", {"b": [2, 4]})
    assert source_weights(tmp_path)["params"] == 24


@pytest.mark.parametrize("content", [b"\xff" * 20, struct.pack("<Q", 2) + b"[]",
                                     struct.pack("<Q", 18) + b'{"w": {"shape":1}}', b"abc"])
def test_corrupt_safetensors_is_an_input_error(tmp_path, content):
    (tmp_path / "model.safetensors").write_bytes(content)
    with pytest.raises(GateInputError, match="safetensors|shape"):
        source_weights(tmp_path)


@pytest.mark.parametrize("setup", ["missing", "empty"])
def test_missing_or_empty_source_is_an_input_error(tmp_path, setup):
    target = tmp_path / "src"
    if setup == "empty":
        target.mkdir()
    with pytest.raises(GateInputError):
        source_weights(target)


def test_metadata_diffs_are_key_level_and_name_missing_files(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    (src / "config.json").write_text(json.dumps({"a": 1, "nested": {"b": 2, "c": 3}, "gone": 1}))
    (out / "config.json").write_text(json.dumps({"a": 1, "nested": {"b": 5, "c": 3}, "new": 1}))
    (src / "merges.txt").write_text("a b\n")
    (out / "merges.txt").write_text("a c\n")
    (src / "tokenizer.json").write_text("{}")
    (src / "generation_config.json").write_text("{}")
    (out / "generation_config.json").write_text("{not json")
    diffs, compared = metadata_diffs(src, out)
    got = {(d["file"], d["key"], d["change"]) for d in diffs}
    assert got == {("config.json", "nested.b", "changed"), ("config.json", "gone", "removed"),
                   ("config.json", "new", "added"), ("merges.txt", "", "changed"),
                   ("tokenizer.json", "", "missing_in_output"), ("generation_config.json", "", "unreadable")}
    assert set(compared) == {"config.json", "merges.txt", "tokenizer.json", "generation_config.json"}


def test_files_only_in_the_output_are_not_differences(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    (out / "openvino_config.json").write_text("{}")
    assert metadata_diffs(src, out) == ([], [])


@pytest.mark.parametrize("config,kind", [
    ({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}, "llm"),
    ({"architectures": ["T5ForConditionalGeneration"], "model_type": "t5"}, "llm"),
    ({"architectures": ["BertForSequenceClassification"], "model_type": "bert"}, "non-llm"),
    ({"architectures": ["Mystery"], "model_type": "mystery"}, "non-llm"),
    (None, "non-llm"),
])
def test_model_kind_comes_from_the_task_table(config, kind):
    assert model_kind(config)[0] == kind
