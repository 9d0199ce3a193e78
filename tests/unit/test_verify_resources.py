"""The memory estimate read from safetensors headers, and the refusal before anything runs."""
import json
import struct

import pytest

from modelgate.contract import GateFailure
from modelgate.verify import resources


def header_only(path, tensors: dict):
    meta = {name: {"dtype": dtype, "shape": shape, "data_offsets": [0, 0]} for name, (dtype, shape) in tensors.items()}
    meta["__metadata__"] = {"format": "pt"}
    raw = json.dumps(meta).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)


def test_parameters_and_bytes_come_from_every_shard_header(tmp_path):
    header_only(tmp_path / "model-00001.safetensors", {"a": ("F32", [1000, 100]), "b": ("F32", [100])})
    header_only(tmp_path / "model-00002.safetensors", {"c": ("BF16", [10, 10, 10])})
    assert resources.checkpoint_params(tmp_path) == (100_100 + 1_000, 100_100 * 4 + 1_000 * 2)


def test_a_16_bit_checkpoint_is_estimated_as_loaded_in_16_bits_unless_exported_to_fp32(tmp_path):
    header_only(tmp_path / "model.safetensors", {"w": ("BF16", [100_000, 10_000])})  # 1 B params
    fp16 = resources.estimate_verify(tmp_path, {}, "fp16", convert=True)
    fp32 = resources.estimate_verify(tmp_path, {}, "fp32", convert=True)
    assert fp16["params"] == 1_000_000_000
    assert fp32["stages_bytes"]["export"] > fp16["stages_bytes"]["export"]
    assert abs(fp16["estimated_peak_bytes"] - max(fp16["stages_bytes"].values()) * resources.SAFETY) <= 1
    existing = resources.estimate_verify(tmp_path, {}, "fp16", convert=False)
    assert "export" not in existing["stages_bytes"]


@pytest.mark.parametrize("need,have,refused", [(10, 5, True), (5, 10, False), (10, None, False)])
def test_refused_only_when_the_estimate_exceeds_what_is_available(need, have, refused):
    estimate = {"estimated_peak_bytes": need << 30, "available_bytes": None if have is None else have << 30,
                "params": 7_000_000_000}
    if refused:
        with pytest.raises(GateFailure) as err:
            resources.refuse_if_too_large(estimate)
        assert err.value.failure_class == "RESOURCE_EXHAUSTED" and "nothing was run" in err.value.detail
        assert json.loads(err.value.evidence["estimate"])["estimated_peak_bytes"] == need << 30
    else:
        resources.refuse_if_too_large(estimate)
