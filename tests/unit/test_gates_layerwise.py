"""The pure layer-wise decision: per-block errors against margin x the simulated format's noise."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelgate.gates.layerwise import FLOAT_FLOOR, LAYER_MARGIN, block_table, first_divergent_layer, layerwise_checks
from modelgate.gates.layerwise import limit as layer_limit


def observation(blocks=3, upd=None, acc=None, head=1e-3, emb=1e-3, deep=None, expected=1e-3):
    """A judged layer-wise observation; every error equals the expected noise unless given."""
    upd = upd or {}
    acc = acc or {}
    deep = deep or {}

    def acc_row(i, v):
        by = {"0-63": v}
        if i in deep:
            by["1024-2047"] = deep[i]
        return {"rel_err": v, "rel_err_by_position": by, "max_position": 2047}

    exp_acc = {i: {"rel_err": expected, "rel_err_by_position": {"0-63": expected, "1024-2047": expected}}
               for i in range(-1, blocks)}
    exp_dec = {i: {"update_rel_err": expected} for i in range(blocks)}
    exp_dec[blocks] = {"rel_err": expected}
    return {"judged": True, "blocks": blocks, "stack": {"stack": "model.layers"}, "format": {"weight_format": "int8"},
            "accumulated": {i: acc_row(i, acc.get(i, emb if i < 0 else expected)) for i in range(-1, blocks)},
            "decoupled": {**{i: {"update_rel_err": upd.get(i, expected)} for i in range(blocks)},
                          blocks: {"rel_err": head}},
            "expected": {"accumulated": exp_acc, "decoupled": exp_dec}}


def by_name(checks):
    return {c["name"]: c for c in checks}


def test_limit_is_margin_times_the_expected_noise_with_the_float_floor_in_quadrature():
    assert math.isclose(layer_limit(1e-2, 1.25, 2e-4), 1.25 * math.sqrt(1e-4 + 4e-8))
    assert math.isclose(layer_limit(None, 1.25, 2e-4), 1.25 * 2e-4)  # fp32: no simulated noise, the floor


def test_an_export_that_reproduces_its_formats_noise_passes_every_layer():
    checks, rows, first = layerwise_checks(observation())
    assert all(c["pass"] is True for c in checks), checks
    assert first is None and [r["layer"] for r in rows] == ["embedding", 0, 1, 2, "head"]
    assert all(r["ratio"] < 1 for r in rows)


def test_a_fault_in_a_middle_block_names_that_block_from_the_decoupled_errors():
    checks, _, first = layerwise_checks(observation(upd={1: 5e-3}, acc={1: 4e-3, 2: 4e-3}))
    c = by_name(checks)
    assert c["layerwise_blocks"]["pass"] is False and c["layerwise_blocks"]["failure_class"] == "FIDELITY_REGRESSION"
    assert first["layer"] == 1 and first["metric"] == "update_rel_err" and not first["all_blocks_over"]
    assert "block 1" in c["layerwise_blocks"]["detail"]


def test_every_block_over_from_block_zero_points_at_a_shared_input():
    _, _, first = layerwise_checks(observation(upd={0: 1e-2, 1: 1e-2, 2: 1e-2}))
    assert first["layer"] == 0 and first["all_blocks_over"]


def test_an_embedding_fault_is_named_before_any_block():
    checks, _, first = layerwise_checks(observation(emb=0.5, acc={0: 0.5, 1: 0.5, 2: 0.5}))
    assert by_name(checks)["layerwise_hidden_states"]["pass"] is False
    assert first["layer"] == "embedding"


def test_a_fault_that_shows_only_at_deep_positions_is_caught_in_its_bucket():
    checks, _, first = layerwise_checks(observation(deep={0: 5e-3, 1: 6e-3, 2: 7e-3}))
    c = by_name(checks)
    assert c["layerwise_blocks"]["pass"] is True
    assert c["layerwise_hidden_states"]["pass"] is False and "1024-2047" in c["layerwise_hidden_states"]["detail"]
    assert first["metric"] == "position_rel_err" and first["position_bucket"] == "1024-2047"


def test_a_head_fault_shows_only_in_the_head_check():
    checks, _, first = layerwise_checks(observation(head=0.3))
    c = by_name(checks)
    assert c["layerwise_blocks"]["pass"] and c["layerwise_hidden_states"]["pass"]
    assert c["layerwise_head"]["pass"] is False and first["layer"] == "head"


def test_missing_numbers_fail_closed_and_an_unjudged_comparison_says_why():
    obs = observation()
    obs["decoupled"][1]["update_rel_err"] = float("nan")
    assert by_name(layerwise_checks(obs)[0])["layerwise_blocks"]["pass"] is False
    checks, rows, first = layerwise_checks({"judged": False, "not_judged_because": "no module path in the IR"})
    assert all(c["pass"] is None and c["not_judged_because"] == "no module path in the IR" for c in checks)
    assert rows == [] and first is None
    assert all(c["pass"] is False for c in layerwise_checks(None)[0])
    assert all(c["pass"] is False for c in layerwise_checks({"judged": True, "blocks": 0})[0])


def test_an_fp32_ir_is_judged_against_the_float_floor_alone():
    obs = observation(expected=0.0, emb=1e-6, head=1e-6)
    obs["expected"] = None
    for v in obs["accumulated"].values():
        v["rel_err"] = 1e-6
        v["rel_err_by_position"] = {"0-63": 1e-6}
    for i, v in obs["decoupled"].items():
        v["update_rel_err" if i < 3 else "rel_err"] = 1e-6
    assert all(c["pass"] for c in layerwise_checks(obs)[0])
    obs["decoupled"][2]["update_rel_err"] = 1e-3  # 4x the f32 allowance: a real change of block 2
    assert layerwise_checks(obs)[2]["layer"] == 2


ratio = st.floats(min_value=0.0, max_value=3.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(r=st.lists(ratio, min_size=3, max_size=3), a=st.lists(ratio, min_size=4, max_size=4), h=ratio,
       e=st.floats(min_value=1e-5, max_value=0.3))
def test_pass_exactly_when_every_error_is_within_its_limit_and_first_divergent_is_the_first_over(r, a, h, e):
    lim = layer_limit(e, LAYER_MARGIN, FLOAT_FLOOR)
    obs = observation(upd={i: r[i] * lim for i in range(3)}, acc={i - 1: a[i] * lim for i in range(4)},
                      emb=a[0] * lim, head=h * lim, expected=e)
    checks, rows, first = layerwise_checks(obs)
    over = [x > 1 + 1e-9 for x in r]
    acc_over = [x > 1 + 1e-9 for x in a]
    assert (all(c["pass"] for c in checks)) == (not any(over) and not any(acc_over) and not h > 1 + 1e-9)
    if acc_over[0]:
        assert first["layer"] == "embedding"
    elif any(over):
        assert first["layer"] == over.index(True)
    elif any(acc_over):
        assert first["layer"] == acc_over.index(True) - 1
    elif h > 1 + 1e-9:
        assert first["layer"] == "head"
    else:
        assert first is None
    assert len(block_table(obs)) == 5 and first_divergent_layer(rows, "model.layers") == first


def test_an_update_much_smaller_than_its_residual_stream_gets_the_magnified_f32_floor_and_no_more():
    from modelgate.gates.layerwise import FLOAT_FLOOR, UPDATE_FLOAT_NOISE, block_table

    def table(ratio, err):
        lw = {"blocks": 1, "expected": None, "accumulated": {}, "decoupled": {
            0: {"update_rel_err": err, "update_norm_ratio": ratio}}}
        return block_table(lw)[0]
    # an ordinary block (residual about as large as its update): the plain floor
    assert table(3.0, 1e-4)["update_limit"] == pytest.approx(1.25 * FLOAT_FLOOR)
    # a residual stream 1,000x its update (an offset the next norm removes): f32 rounding shows 1,000x
    row = table(1000.0, 6e-4)
    assert row["update_limit"] == pytest.approx(1.25 * UPDATE_FLOAT_NOISE * 1000) and row["ratio"] < 1
    # a real fault stays over even there
    assert table(1000.0, 0.1)["ratio"] > 1
