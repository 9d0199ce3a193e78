"""The pure verify-conversion decision: observations + tolerances -> verdict fields."""
import copy
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelgate import contract
from modelgate.gates.values import ge_tol as at_least
from modelgate.gates.verify import (
    CHECK_ORDER,
    NOT_APPLICABLE,
    TOLERANCES,
    evaluate_verify,
    rel_err_limit,
    tolerance_problems,
    tolerances_for,
)


def layerwise_obs(blocks=2, error=1e-3, **over):
    """A judged layer-wise observation whose every error equals the simulated format's (a good export)."""
    acc = {i: {"rel_err": error, "rel_err_by_position": {"0-63": error, "64-255": error}, "max_position": 255}
           for i in range(-1, blocks)}
    dec = {i: {"update_rel_err": error} for i in range(blocks)}
    dec[blocks] = {"rel_err": error}
    expected = {"accumulated": copy.deepcopy(acc), "decoupled": copy.deepcopy(dec)}
    for index, value in over.items():
        dec[int(index.lstrip("b"))]["update_rel_err"] = value
    return {"judged": True, "blocks": blocks, "stack": {"stack": "model.layers"}, "format": {"weight_format": "fp16"},
            "accumulated": acc, "decoupled": dec, "expected": expected}


def good_obs(**fid):
    """Observations of a faithful fp16 decoder export (numbers shaped like a real run)."""
    fidelity = {"source_ran": True, "source_kind": "transformers", "comparable": True, "rows": 89,
                "max_abs_err": 0.01, "rel_err": 0.002, "cosine_mean": 0.99999, "cosine_min": 0.99998,
                "top1_agreement": 1.0, "greedy_match": 1.0, "greedy_horizon": 8, "prompts": 8,
                "scale_ratio": 1.0, "new_tokens": 8, "expected": {"rel_err": 0.002}}
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
        "layerwise": layerwise_obs(),
        "config_constants": {"eps": {"judged": True, "mismatched": 0, "config": [1e-6]},
                             "rotary": {"judged": True, "mismatched": 0, "theta": 1e4, "dim": 16, "constants": []}},
        "precisions": {"f32": {"requested": "f32", "ran_as": {"inference_precision": "f32"}},
                       "default": {"requested": "default", "ran_as": {"inference_precision": "bf16"},
                                   "vs_f32": {"comparable": True, "rel_err": 0.02, "cosine_mean": 0.9999,
                                              "top1_agreement": 0.98, "nonfinite": 0},
                                   "nonfinite_entries": []}},
        "device_default_precision": "bf16",
        "plan": {"prompts": 17, "greedy_prompts": 8, "new_tokens": 8, "greedy_horizon": 8, "compared_tokens": 683,
                 "longest_position": 255, "max_positions": 256, "kv_cache_steps": 144},
    }


def decide(obs, wf="fp16", **over):
    return evaluate_verify(obs, tolerances_for(wf, over))


def test_faithful_export_is_verified_with_every_check_run():
    v = decide(good_obs())
    assert v["pass"] and v["decision"] == "VERIFIED" and v["failure_class"] is None
    assert v["verify_passed"] and v["e2e_passed"] and v["error"] is None
    assert all(c["pass"] is True for c in v["checks"]), [c for c in v["checks"] if c["pass"] is not True]
    assert [c["name"] for c in v["checks"]] == [n for n, _ in CHECK_ORDER] + ["precision_default_finite",
                                                                             "precision_default_agreement"]
    assert v["deployment_precision"] == "bf16" and v["first_divergent_layer"] is None
    assert v["coverage"]["summary"].startswith("VERIFIED at f32 and bf16 on 17 prompts up to position 255")
    assert v["next_action"] == "none"


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


def test_a_crash_on_a_single_cpu_names_the_known_runtime_defect_and_the_way_around_it():
    obs = good_obs()
    obs["load"] = {"ok": False, "failure_class": "PLUGIN_CRASH", "detail": "child died (signal SIGFPE)"}
    obs["usable_cpus"] = 1
    one = decide(obs)
    assert one["failure_class"] == "PLUGIN_CRASH" and one["metrics"]["usable_cpus"] == 1
    assert "at least 2 CPUs" in one["next_action"] and "33300" in one["next_action"]
    obs["usable_cpus"] = 2
    assert "33300" not in decide(obs)["next_action"]


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


def test_quantized_formats_judge_logit_error_against_their_simulated_noise_and_agreement_floors():
    v = decide(good_obs(rel_err=0.07, expected={"rel_err": 0.05}, top1_agreement=0.9, cosine_mean=0.99,
                        greedy_match=0.8), "int8")
    assert v["pass"], v["detail"]
    by = {c["name"]: c for c in v["checks"]}
    assert by["fidelity_rel_err"]["pass"] is True and by["fidelity_rel_err"]["threshold"] == "<= 0.075"
    v = decide(good_obs(rel_err=0.5, expected={"rel_err": 0.05}), "int8")  # a wrong scale: 10x the int8 error
    assert v["failure_class"] == "FIDELITY_REGRESSION" and v["detail"].startswith("fidelity_rel_err")
    v = decide(good_obs(rel_err=0.07, expected={"rel_err": 0.05}, top1_agreement=0.5), "int8")
    assert v["failure_class"] == "FIDELITY_REGRESSION"


def test_a_floor_that_the_simulated_format_also_misses_is_reported_as_the_formats_loss():
    lossy = decide(good_obs(rel_err=0.7, expected={"rel_err": 0.7, "cosine_mean": 0.87}, cosine_mean=0.871), "int4")
    assert lossy["failure_class"] == "FIDELITY_REGRESSION" and lossy["detail"].startswith("fidelity_cosine")
    assert "simulated on the source gives 0.87, also outside" in lossy["detail"]
    broken = decide(good_obs(rel_err=0.7, expected={"rel_err": 0.7, "cosine_mean": 0.99}, cosine_mean=0.871), "int4")
    assert broken["detail"].startswith("fidelity_cosine") and "also outside" not in broken["detail"]
    assert "gives 0.99" in broken["detail"]


def test_every_format_judges_rel_err_even_without_a_simulated_source():
    for wf, row in TOLERANCES.items():
        obs = good_obs(rel_err=row["rel_err_max"] * 2, expected=None)
        assert not decide(obs, wf)["pass"], wf


def test_a_mid_network_divergence_is_a_fidelity_regression_at_that_layer_not_degenerate_output():
    obs = good_obs()
    obs["layerwise"] = layerwise_obs(b1=0.05)
    obs["degenerate"].update(ov_degenerate=3, src_degenerate=0)  # the fault also makes generation repeat
    v = decide(obs)
    assert v["failure_class"] == "FIDELITY_REGRESSION" and v["first_divergent_layer"]["layer"] == 1
    assert "first divergent layer: 1" in v["detail"] and "model.layers.1" in v["next_action"]


def test_nan_only_at_the_deployment_precision_is_precision_overflow():
    obs = good_obs()
    obs["precisions"]["default"].update(nonfinite_entries=["seq0"], first_nonfinite_layer=1,
                                        vs_f32={"comparable": False, "nonfinite": 9600})
    v = decide(obs)
    assert v["failure_class"] == "PRECISION_OVERFLOW" and v["decision"] == "REJECTED"
    assert "INFERENCE_PRECISION_HINT" in v["next_action"] and "block 1" in v["next_action"]


def test_an_f32_failure_takes_precedence_over_a_low_precision_one():
    obs = good_obs()
    obs["layerwise"] = layerwise_obs(b0=0.05)
    obs["precisions"]["default"]["vs_f32"]["top1_agreement"] = 0.1
    assert decide(obs)["failure_class"] == "FIDELITY_REGRESSION"


def test_every_null_check_of_a_passing_verdict_has_a_documented_reason_and_is_in_the_coverage():
    obs = good_obs()
    obs["tokenizer"] = None
    obs["integrity"].pop("config_vs_ir")
    obs["degenerate"]["sequences"] = None
    obs["mode"] = "forward"
    v = decide(obs)
    nulls = [c for c in v["checks"] if c["pass"] is None]
    assert v["pass"] and v["decision"] == "VERIFIED" and nulls
    for c in nulls:
        assert c["not_judged_because"] in NOT_APPLICABLE.values(), c
        assert f"{c['name']}: {c['not_judged_because']}" in v["coverage"]["not_exercised"]


def test_the_coverage_says_which_positions_and_precisions_were_not_exercised():
    obs = good_obs()
    obs["plan"].update(longest_position=63, max_positions=2048)
    del obs["precisions"]["default"]
    v = decide(obs)
    not_ex = " | ".join(v["coverage"]["not_exercised"])
    assert "positions 64..2,047" in not_ex and "--positions 2048" in not_ex
    assert "bf16" in not_ex and v["coverage"]["exercised"]["precisions"] == {"f32": "f32"}
    assert v["deployment_precision"] is None


def test_a_config_constant_that_disagrees_with_config_json_is_an_integrity_mismatch():
    obs = good_obs()
    obs["config_constants"]["rotary"].update(mismatched=1, constants=[
        {"node": "inv_freq", "bad_indices": [7], "index": 7, "value": 4.7e-4, "expected": 3.2e-4}])
    v = decide(obs)
    assert v["failure_class"] == "INTEGRITY_MISMATCH" and "rotary frequency [7]" in v["detail"]
    assert v["next_action"].startswith("Re-export")


def test_threshold_is_met_at_the_boundary_despite_float_noise():
    assert at_least(0.1 + 0.2 - 0.2, 0.1)
    v = decide(good_obs(top1_agreement=0.95 - 1e-15))
    assert v["pass"], v["detail"]


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
    rel_limit = rel_err_limit(obs["fidelity"], tol)[0]
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
              and num(rel) and rel <= rel_limit + 1e-12)
    assert v["pass"] == inside
    if not v["pass"]:
        assert v["failure_class"] == "FIDELITY_REGRESSION"


def _encoder(task, top1):
    obs = good_obs(top1_agreement=top1, greedy_match=None)
    obs.update(task=task, mode="forward", generative=False)
    obs["precisions"]["default"]["vs_f32"]["top1_agreement"] = top1
    return obs


def test_hidden_state_outputs_are_not_judged_on_top1_a_near_tie_between_channels_is_no_defect():
    v = decide(_encoder("feature-extraction", 0.4))
    checks = {c["name"]: c for c in v["checks"]}
    assert checks["fidelity_top1"]["pass"] is None and checks["fidelity_top1"]["not_judged_because"]
    assert checks["precision_default_agreement"]["pass"] is True
    assert v["pass"] and v["decision"] == "VERIFIED"


def test_class_scores_are_still_judged_on_top1():
    v = decide(_encoder("text-classification", 0.4))
    checks = {c["name"]: c for c in v["checks"]}
    assert checks["fidelity_top1"]["pass"] is False and checks["precision_default_agreement"]["pass"] is False
    assert v["decision"] == "REJECTED"
