"""Pure numpy measurements used by the verify gate: comparisons, degeneracy, seeded inputs."""
import numpy as np
import pytest

from modelgate.openvino import fidelity
from modelgate.openvino.inputs import port_spec, spec_inputs


def test_scaled_logits_keep_argmax_and_cosine_but_not_the_scale_ratio():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(10, 50)).astype(np.float32)
    out = fidelity.compare_arrays(src * 3.0, src)
    assert out["top1_agreement"] == 1.0 and out["cosine_mean"] == pytest.approx(1.0)
    assert out["scale_ratio"] == pytest.approx(3.0) and out["rel_err"] == pytest.approx(2.0)


def test_a_per_row_shift_is_not_a_regression():
    src = np.random.default_rng(1).normal(size=(4, 20))
    out = fidelity.compare_arrays(src + 7.0, src)
    assert out["cosine_mean"] == pytest.approx(1.0) and out["scale_ratio"] == pytest.approx(1.0)


def test_shape_mismatch_and_nonfinite_values_are_not_comparable():
    assert fidelity.compare_arrays(np.zeros((2, 3)), np.zeros((3, 2)))["comparable"] is False
    assert fidelity.compare_arrays(np.array([[np.nan, 1.0]]), np.array([[0.0, 1.0]]))["comparable"] is False


def test_zeroed_head_gives_all_equal_rows_and_nonfinite_counts_see_nan():
    assert fidelity.equal_logit_rows(np.zeros((6, 32)))["equal_rows"] == 6
    assert fidelity.equal_logit_rows(np.eye(6, 32))["equal_rows"] == 0
    counts = fidelity.nonfinite_counts(np.array([1.0, np.nan, np.inf]))
    assert counts["nan"] == 1 and counts["inf"] == 1 and counts["size"] == 3


@pytest.mark.parametrize("tokens,degenerate", [([4, 4, 4, 4], True), ([1, 2, 1, 2, 1], True),
                                               ([1, 2, 3, 1, 2, 3], False), ([7, 7, 7], False)])
def test_constant_and_period_two_runs_are_degenerate(tokens, degenerate):
    assert fidelity.sequence_degenerate(tokens) is degenerate


def test_causal_comparison_stops_at_the_first_greedy_divergence():
    v = 5
    src = {"prompt_ids": [1, 2], "generated": [3, 4, 0], "logits": np.eye(v)[[3, 3, 4, 0]].astype(np.float32)}
    ov = {"prompt_ids": [1, 2], "generated": [3, 1, 1], "logits": np.eye(v)[[3, 3, 1, 1]].astype(np.float32)}
    out = fidelity.compare_causal_runs([ov], [src])
    assert out["per_prompt"][0]["common_prefix"] == 1 and out["rows"] == 3
    assert out["greedy_match"] == pytest.approx(1 / 3)


def test_seeded_inputs_are_reproducible_nonzero_and_inside_the_spec_range():
    spec = {"inputs": [{"name": "x", "shape": [2, 3], "dtype": "float32", "low": -1.0, "high": 1.0},
                       {"name": "ids", "shape": [1, 4], "dtype": "int64", "low": 5, "high": 9}]}
    a, b = spec_inputs(spec), spec_inputs(spec)
    assert np.array_equal(a["x"], b["x"]) and (a["x"] >= -1).all() and (a["x"] < 1).all()
    assert np.abs(a["x"]).sum() > 0 and ((a["ids"] >= 5) & (a["ids"] < 9)).all()
    assert spec_inputs(spec, batch=8)["x"].shape == (8, 3)


def test_dynamic_port_dims_become_real_extents_not_the_minimum():
    spec = port_spec([{"name": "pixel_values", "shape": [None, 3, None, None], "dtype": "float32"}])
    assert spec["inputs"][0]["shape"] == [1, 3, 8, 8]
