"""Contract invariants I-1..I-5 as pure functions: no vacuous passes, tolerances per format."""
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelgate.gates import invariants as I


def _prompt(src, ir, st=(1, 2), it=(1, 2)):
    return {"src_logits": list(src), "ir_logits": list(ir), "src_tokens": list(st), "ir_tokens": list(it)}


def test_i1_identical_logits_and_tokens_pass_for_fp32():
    assert I.i1_roundtrip([_prompt([0.0, 1.0, 2.0], [0.0, 1.0, 2.0])], "openvino-fp32")["pass"]


def test_i1_permuted_head_fails_even_when_tokens_agree():
    r = I.i1_roundtrip([_prompt([0.0, 1.0, 2.0], [2.0, 1.0, 0.0])], "openvino-fp32")
    assert not r["pass"] and "logit diff" in r["reason"]


def test_i1_diverging_greedy_sequence_fails_fp32_but_fits_int4_tolerance():
    p = [_prompt([0.0, 1.0, 2.0], [0.0, 1.0, 2.01], st=(1, 2), it=(1, 3))] + \
        [_prompt([0.0, 1.0, 2.0], [0.0, 1.0, 2.0])] * 2
    assert not I.i1_roundtrip(p, "openvino-fp32")["pass"]
    assert I.i1_roundtrip(p, "openvino-int4")["pass"]


def test_i1_empty_and_nonfinite_inputs_fail():
    assert not I.i1_roundtrip([], "openvino-fp32")["pass"]
    assert not I.i1_roundtrip([_prompt([0.0, 1.0], [0.0, math.nan])], "openvino-fp32")["pass"]
    assert not I.i1_roundtrip([_prompt([0.0, 1.0], [0.0, 1.0], st=(), it=())], "openvino-fp32")["pass"]


def test_i1_unknown_format_is_an_error():
    with pytest.raises(ValueError):
        I.i1_roundtrip([_prompt([0.0, 1.0], [0.0, 1.0])], "gguf")


SRC = {"model.embed.weight": [10, 4], "model.l0.q.weight": [4, 4], "model.norm.weight": [4]}


def test_i2_every_source_weight_maps_and_norms_and_buffers_are_explained():
    ir = [{"name": "self.model.embed.weight", "shape": [10, 4]},
          {"name": "self.model.l0.q.weight/scale", "shape": [4, 4]},
          {"name": "Constant_1", "shape": [1, 1, 4]},
          {"name": "__module.model.rotary_emb/aten::to", "shape": [1, 2, 1]}]
    assert I.i2_bijection(SRC, ir)["pass"]


def test_i2_missing_weight_and_unexplained_extra_fail():
    ir = [{"name": "self.model.embed.weight", "shape": [10, 4]}, {"name": "mystery", "shape": [7, 7]}]
    r = I.i2_bijection(SRC, ir)
    assert not r["pass"]
    assert r["measured"]["missing"] == ["model.l0.q.weight"] and r["measured"]["unexplained_extra"] == ["mystery"]


def test_i2_empty_vs_empty_is_a_failure():
    assert not I.i2_bijection({}, [])["pass"]


def test_i2_fp16_compressed_names_map_to_source():
    ir = [{"name": "self.model.embed.weight_compressed", "shape": [10, 4]},
          {"name": "self.model.l0.q.weight_compressed", "shape": [4, 4]}, {"name": "Constant_9", "shape": [4]}]
    assert I.i2_bijection(SRC, ir)["pass"]


def test_i3_fp32_weight_found_in_int8_ir_is_a_silent_fallback():
    r = I.i3_no_silent_fallback("openvino-int8", {"u8": {"params": 90}, "f32": {"params": 10}})
    assert not r["pass"] and "silent fallback" in r["reason"]
    assert I.i3_no_silent_fallback("openvino-int8", {"u8": {"params": 100}})["pass"]


def test_i3_int4_needs_a_real_share_of_4bit_weights():
    assert I.i3_no_silent_fallback("openvino-int4", {"u4": {"params": 70}, "u8": {"params": 30}})["pass"]
    assert not I.i3_no_silent_fallback("openvino-int4", {"u4": {"params": 1}, "u8": {"params": 99}})["pass"]


def test_i3_no_weights_or_missing_counts_fail_closed():
    assert not I.i3_no_silent_fallback("openvino-fp32", {})["pass"]
    assert not I.i3_no_silent_fallback("openvino-fp32", {"f32": {"count": 3}})["pass"]


S = {"mean": 0.0, "std": 1.0, "min": -3.0, "max": 3.0}


def test_i4_scaled_tensor_fails_and_identical_passes():
    assert I.i4_statistics([{"name": "w", "src": S, "ir": dict(S)}], "openvino-fp32")["pass"]
    scaled = {"mean": 0.0, "std": 2.0, "min": -6.0, "max": 6.0}
    assert not I.i4_statistics([{"name": "w", "src": S, "ir": scaled}], "openvino-int4")["pass"]


def test_i4_int8_drift_within_tolerance_passes_but_fails_for_fp32():
    ir = {"mean": 0.001, "std": 1.005, "min": -3.02, "max": 3.02}
    assert I.i4_statistics([{"name": "w", "src": S, "ir": ir}], "openvino-int8")["pass"]
    assert not I.i4_statistics([{"name": "w", "src": S, "ir": ir}], "openvino-fp32")["pass"]


def test_i4_no_pairs_or_nan_stats_fail():
    assert not I.i4_statistics([], "openvino-fp32")["pass"]
    assert not I.i4_statistics([{"name": "w", "src": S, "ir": dict(S, std=math.nan)}], "openvino-fp32")["pass"]


def test_i5_identical_tokenizers_pass_and_empty_vs_empty_fails():
    ok = [{"text": "hi", "hf_ids": [1, 2], "ov_ids": [1, 2], "hf_text": "hi", "ov_text": "hi"}]
    assert I.i5_tokenizer_roundtrip(ok)["pass"]
    empty = [{"text": "hi", "hf_ids": [], "ov_ids": [], "hf_text": "", "ov_text": ""}]
    assert not I.i5_tokenizer_roundtrip(empty)["pass"]
    bad = [{"text": "hi", "hf_ids": [1, 2], "ov_ids": [1, 3], "hf_text": "hi", "ov_text": "hx"}]
    assert not I.i5_tokenizer_roundtrip(bad)["pass"]
    assert not I.i5_tokenizer_roundtrip([])["pass"]


finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)


@given(st.lists(finite, min_size=2, max_size=40).filter(lambda v: max(v) > min(v)),
       st.sampled_from(sorted(I.ROUNDTRIP_TOLERANCE)))
def test_i1_identical_run_passes_for_every_format(logits, fmt):
    assert I.i1_roundtrip([_prompt(logits, logits)], fmt)["pass"]


@given(st.lists(finite, min_size=2, max_size=40).filter(lambda v: max(v) - min(v) > 1e-3))
def test_i1_reversed_logits_with_a_different_argmax_never_pass_fp32(logits):
    rev = list(reversed(logits))
    if rev.index(max(rev)) != logits.index(max(logits)):
        assert not I.i1_roundtrip([_prompt(logits, rev)], "openvino-fp32")["pass"]


@given(finite, st.floats(min_value=1e-3, max_value=10), st.sampled_from(sorted(I.STAT_TOLERANCE)),
       st.floats(min_value=2.0, max_value=50.0))
def test_i4_identical_stats_pass_and_a_scaled_tensor_fails(mean, std, fmt, factor):
    s = {"mean": mean, "std": std, "min": mean - 3 * std, "max": mean + 3 * std}
    assert I.i4_statistics([{"name": "w", "src": s, "ir": dict(s)}], fmt)["pass"]
    scaled = {k: v * factor for k, v in s.items()}
    scaled["mean"] = mean  # even with the mean kept, std/min/max betray the scaling
    assert not I.i4_statistics([{"name": "w", "src": s, "ir": scaled}], fmt)["pass"]
