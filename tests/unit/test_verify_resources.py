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


def test_the_source_run_of_a_16_bit_checkpoint_costs_its_stored_bytes_not_an_f32_copy(tmp_path):
    shapes = {"w": [100_000, 80_000], "v": [1000]}  # 8 B params: an f32 source would not fit in 32 GB
    for dtype in ("BF16", "F16", "F32"):
        (tmp_path / dtype).mkdir()
        header_only(tmp_path / dtype / "model.safetensors", {k: (dtype, s) for k, s in shapes.items()})
    est = {d: resources.estimate_verify(tmp_path / d, {}, "int8", convert=False) for d in ("BF16", "F16", "F32")}
    params = est["F32"]["params"]
    assert est["F32"]["stages_bytes"]["source"] - est["BF16"]["stages_bytes"]["source"] == 2 * params
    assert est["F16"]["stages_bytes"]["source"] == est["BF16"]["stages_bytes"]["source"]
    assert est["BF16"]["estimated_peak_bytes"] < 30 << 30 < est["F32"]["estimated_peak_bytes"]


def test_the_source_loads_in_16_bits_only_when_every_float_tensor_is_stored_so(tmp_path):
    header_only(tmp_path / "model-00001.safetensors", {"a": ("BF16", [10, 10]), "ids": ("I64", [4])})
    assert resources.checkpoint_float_dtype(tmp_path) == "BF16"
    header_only(tmp_path / "model-00002.safetensors", {"norm": ("F32", [10])})  # a mixed checkpoint: f32 load
    assert resources.checkpoint_float_dtype(tmp_path) is None
    assert resources.checkpoint_float_dtype(tmp_path / "nothing-here") is None
