"""The pure verify-conversion decision: observations + tolerances -> verdict fields."""
import copy
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelgate import contract
from modelgate.gates.values import ge_tol as at_least
from modelgate.gates.verify import CHECK_ORDER, TOLERANCES, evaluate_verify, tolerance_problems, tolerances_for


def good_obs(**fid):
    """Observations of a faithful fp16 decoder export (numbers shaped like a real run)."""
    fidelity = {"source_ran": True, "source_kind": "transformers", "comparable": True, "rows": 89,
                "max_abs_err": 0.01, "rel_err": 0.002, "cosine_mean": 0.99999, "cosine_min": 0.99998,
                "top1_agreement": 1.0, "greedy_match": 1.0, "scale_ratio": 1.0, "new_tokens": 24}
    fidelity.update(fid)
    return {
        "conversion": {"ok": True, "conversion_path": "optimum-cli", "detail": "converted"},
        "task": "text-generation-with-past", "weight_format": "fp16", "mode": "causal-lm",
        "integrity": {"xml_parses": True, "bin_exists": True, "bin_bytes": 1000, "expected_min_bytes": 1000,
                      "config_vs_ir": [], "config_vs_source": []},
        "weights": {"scanned": 5000, "nonfinite": 0, "constants": []},
        "load": {"ok": True, "seconds": 1.0},
        "outputs": [{"name": "logits[prompt 0]", "shape": [30, 320], "dtype": "float32", "size": 9600,
                     "nan": 0, "inf": 0, "expected_shape": [30, 320], "expected_dtype_kind": "float"}],
        "tokenizer": {"present": {"tokenizer": True, "detokenizer": True}, "n_texts": 5, "id_mismatches": 0,
                      "detok_mismatches": 0, "texts": []},
        "degenerate": {"rows": 89, "equal_rows": 0, "src_equal_rows": 0, "sequences": 3, "ov_degenerate": 0,
                       "src_degenerate": 0},
        "fidelity": fidelity,
    }


def decide(obs, wf="fp16", **over):
    return evaluate_verify(obs, tolerances_for(wf, over))


def test_faithful_export_is_verified_with_every_check_run():
    v = decide(good_obs())
    assert v["pass"] and v["decision"] == "VERIFIED" and v["failure_class"] is None
    assert v["verify_passed"] and v["e2e_passed"] and v["error"] is None
    assert all(c["pass"] is True for c in v["checks"]), [c for c in v["checks"] if c["pass"] is not True]
    assert [c["name"] for c in v["checks"]] == [n for n, _ in CHECK_ORDER]


def test_nan_logits_fail_even_when_decoded_text_is_nonempty():
    obs = good_obs()
    obs["outputs"][0]["nan"] = 3
    obs["generated"] = [[5, 6, 7]]  # text would decode fine: irrelevant
    v = decide(obs)
    assert not v["pass"] and v["failure_class"] == "NUMERICAL_INSANE" and v["e2e_passed"] is False


def test_nan_in_weights_fails_even_when_outputs_look_finite():
    obs = good_obs()
    obs["weights"]["nonfinite"] = 4
    assert decide(obs)["failure_class"] == "NUMERICAL_INSANE"


def test_head_scaled_by_a_constant_fails_on_magnitude_although_argmax_and_cosine_agree():
    for wf in ("fp16", "int8", "int4"):
        v = decide(good_obs(scale_ratio=3.0, rel_err=None if wf != "fp16" else 2.0), wf)
        by = {c["name"]: c for c in v["checks"]}
        assert v["failure_class"] == "FIDELITY_REGRESSION"
        assert by["fidelity_scale_ratio"]["pass"] is False and by["fidelity_top1"]["pass"] is True


def test_all_equal_logits_are_degenerate_not_merely_unfaithful():
    obs = good_obs(cosine_mean=0.0, top1_agreement=0.01)
    obs["degenerate"]["equal_rows"] = 89
    assert decide(obs)["failure_class"] == "DEGENERATE_OUTPUT"


def test_repeating_generation_is_degenerate_only_when_the_source_does_not_repeat():
    obs = good_obs()
    obs["degenerate"].update(ov_degenerate=2, src_degenerate=2)
    assert decide(obs)["pass"]
    obs["degenerate"]["src_degenerate"] = 0
    assert decide(obs)["failure_class"] == "DEGENERATE_OUTPUT"


def test_truncated_bin_fails_integrity_and_nothing_is_run_on_it():
    obs = good_obs()
    obs["integrity"]["bin_bytes"] = 600
    v = decide(obs)
    assert v["failure_class"] == "INTEGRITY_MISMATCH"
    assert all(c["pass"] is None for c in v["checks"] if c["name"] not in ("conversion", "ir_bin_complete"))


def test_config_that_lies_about_the_ir_is_an_integrity_mismatch():
    obs = good_obs()
    obs["integrity"]["config_vs_ir"] = [{"key": "num_hidden_layers", "config": 3, "ir": 2}]
    assert decide(obs)["failure_class"] == "INTEGRITY_MISMATCH"


def test_missing_or_foreign_tokenizer_is_a_tokenizer_mismatch():
    obs = good_obs()
    obs["tokenizer"]["present"]["tokenizer"] = False
    assert decide(obs)["failure_class"] == "TOKENIZER_MISMATCH"
    obs = good_obs()
    obs["tokenizer"]["id_mismatches"] = 5
    assert decide(obs)["failure_class"] == "TOKENIZER_MISMATCH"


def test_conversion_failure_keeps_the_converters_class():
    obs = {"conversion": {"ok": False, "failure_class": "RESOURCE_EXHAUSTED", "detail": "OOM"},
           "weight_format": "fp16", "task": "text-generation-with-past"}
    v = decide(obs)
    assert v["failure_class"] == "RESOURCE_EXHAUSTED" and not v["e2e_passed"]


def test_plugin_crash_during_inference_is_reported_as_such():
    obs = good_obs()
    obs["load"] = {"ok": False, "failure_class": "PLUGIN_CRASH", "detail": "child died (SIGSEGV)"}
    assert decide(obs)["failure_class"] == "PLUGIN_CRASH"


def test_missing_counts_fail_closed():
    for path in (("weights", "nonfinite"), ("degenerate", "equal_rows"), ("tokenizer", "id_mismatches")):
        obs = good_obs()
        del obs[path[0]][path[1]]
        assert not decide(obs)["pass"], path
    obs = good_obs()
    del obs["fidelity"]["top1_agreement"]
    obs["fidelity"]["greedy_match"] = None
    assert decide(obs)["failure_class"] == "FIDELITY_REGRESSION"


def test_source_that_should_run_but_did_not_means_the_model_was_not_judged():
    obs = good_obs()
    obs["fidelity"] = {"source_ran": False, "source_expected": True, "reason": "torch crashed"}
    v = decide(obs)
    assert v["failure_class"] == "SOURCE_UNAVAILABLE" and v["decision"] == "NOT_JUDGED"
    assert contract.exit_code_for(v["pass"], v["failure_class"]) == 2


def test_ir_without_an_independent_source_is_only_sane_not_verified():
    obs = good_obs()
    obs["fidelity"] = {"source_ran": False, "source_expected": False, "reason": "source is an IR"}
    v = decide(obs)
    assert v["pass"] and v["decision"] == "SANE_ONLY"
    assert all(c["pass"] is None for c in v["checks"] if c["name"].startswith("fidelity_"))


def test_quantized_formats_do_not_judge_raw_logit_error_but_do_judge_agreement():
    v = decide(good_obs(rel_err=0.5, top1_agreement=0.9, cosine_mean=0.99, greedy_match=0.8), "int8")
    assert v["pass"], v["detail"]
    v = decide(good_obs(rel_err=0.5, top1_agreement=0.5, cosine_mean=0.99, greedy_match=0.8), "int8")
    assert v["failure_class"] == "FIDELITY_REGRESSION"


def test_threshold_is_met_at_the_boundary_despite_float_noise():
    assert at_least(0.1 + 0.2 - 0.2, 0.1)
    v = decide(good_obs(top1_agreement=0.95 - 1e-15))
    assert v["pass"]


def test_per_format_tolerances_get_looser_from_fp32_to_int4():
    rows = [TOLERANCES[f] for f in ("fp32", "fp16", "int8", "int4")]
    for a, b in zip(rows, rows[1:]):
        assert a["cosine_min"] >= b["cosine_min"] and a["top1_min"] >= b["top1_min"]
        assert a["scale_band"] <= b["scale_band"]


@pytest.mark.parametrize("bad", [{"cosine_min": float("nan")}, {"top1_min": 1.5}, {"scale_band": -1},
                                 {"greedy_match_min": "0.5"}, {"cosine_min": True}])
def test_invalid_tolerances_are_a_user_error_not_a_verdict_on_the_model(bad):
    tol = dict(TOLERANCES["fp16"], **bad)
    assert tolerance_problems(tol)
    v = evaluate_verify(good_obs(), tol)
    assert v["failure_class"] == "USER_CONFIG_ERROR" and not v["pass"]


def test_unknown_weight_format_has_no_tolerances():
    with pytest.raises(KeyError):
        tolerances_for("int3")


def test_decision_does_not_mutate_its_input():
    obs = good_obs(scale_ratio=2.0)
    before = copy.deepcopy(obs)
    decide(obs)
    assert obs == before


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-10, max_value=10)
anything = st.one_of(st.none(), st.booleans(), finite, st.floats(), st.text(max_size=3), st.integers(-5, 5))


@settings(max_examples=300, deadline=None)
@given(rel=anything, cos=anything, top1=anything, greedy=anything, scale=anything,
       wf=st.sampled_from(sorted(TOLERANCES)))
def test_any_metric_values_give_a_schema_valid_verdict_and_pass_only_inside_every_band(rel, cos, top1, greedy, scale,
                                                                                       wf):
    obs = good_obs(rel_err=rel, cosine_mean=cos, top1_agreement=top1, greedy_match=greedy, scale_ratio=scale)
    tol = tolerances_for(wf)
    v = evaluate_verify(obs, tol)
    verdict = contract.make_verdict("verify-conversion", passed=v["pass"], failure_class=v["failure_class"],
                                    detail=v["detail"], checks=v["checks"], metrics=v["metrics"],
                                    decision=v["decision"])
    assert contract.schema_errors("envelope", verdict) == []

    def num(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
    inside = (num(cos) and at_least(cos, tol["cosine_min"]) and num(top1) and at_least(top1, tol["top1_min"])
              and num(greedy) and at_least(greedy, tol["greedy_match_min"]) and num(scale)
              and abs(scale - 1) <= tol["scale_band"] + 1e-12
              and (tol["rel_err_max"] is None or (num(rel) and rel <= tol["rel_err_max"] + 1e-12)))
    assert v["pass"] == inside
    if not v["pass"]:
        assert v["failure_class"] == "FIDELITY_REGRESSION"
