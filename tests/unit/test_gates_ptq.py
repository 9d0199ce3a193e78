"""gate_ptq as a pure function: every class it emits, known bugs of earlier gates pinned, arbitrary JSON in."""
from __future__ import annotations

import copy

import pytest
from day0_builders import json_values, mutated
from hypothesis import HealthCheck, given, settings

from modelgate.contract import schema_errors
from modelgate.gates.ptq import BENIGN_METADATA, evaluate_ptq
from modelgate.release.recipes import get_recipe


def obs_for(recipe="int8_asym", **over):
    """An observation shaped like the real int8 export of the tiny llama fixture."""
    o = {"recipe": get_recipe(recipe) if isinstance(recipe, str) else recipe, "model_type": "llama",
         "model_kind": "llm",
         "source_weight_params": 114688, "source_weight_bytes": 114688 * 4, "source_bytes": 462176,
         "output_weight_bytes": 119728, "output_bytes": 337965,
         "layer_precision_counts": {"u8": {"count": 16, "bytes": 114688, "params": 114688},
                                    "f32": {"count": 1, "bytes": 32, "params": 8}},
         "metadata_diffs": [{"file": "tokenizer_config.json", "key": "is_local", "change": "added",
                             "source": None, "output": True}]}
    o.update(over)
    return o


def int4_obs(**over):
    o = obs_for("int4_asym_g32", output_weight_bytes=85552,
                layer_precision_counts={"u8": {"count": 2, "bytes": 40960, "params": 40960},
                                        "u4": {"count": 14, "bytes": 36864, "params": 73728},
                                        "f32": {"count": 1, "bytes": 32, "params": 8}})
    o.update(over)
    return o


def judge(o):
    v = evaluate_ptq(o)
    assert schema_errors("ptq-verdict", v) == []
    return v


def failed(v):
    return {c["name"] for c in v["checks"] if c["pass"] is False}


def test_the_builder_observation_is_valid_against_the_observation_schema():
    assert schema_errors("ptq-observation", obs_for()) == []
    assert schema_errors("ptq-observation", int4_obs()) == []


def test_real_shaped_int8_observation_passes_with_its_measurements():
    v = judge(obs_for())
    assert (v["pass"], v["exit_code"], v["failure_class"]) == (True, 0, None)
    assert v["metrics"]["coverage"] == pytest.approx(114688 / 114696)
    assert v["metrics"]["size_ratio"] == pytest.approx(119728 / 458752)
    assert v["recipe"] == {"name": "int8_asym", "version": 1}


def test_int4_recipe_accepts_int8_embedding_and_head_as_nncf_really_does():
    assert judge(int4_obs())["pass"] is True


def test_unquantized_fp32_weights_fail_coverage_and_size():
    o = obs_for(output_weight_bytes=458800, output_bytes=628000,
                layer_precision_counts={"f32": {"count": 17, "bytes": 458784, "params": 114696}})
    v = judge(o)
    assert v["failure_class"] == "QUANT_COVERAGE_FAILURE" and v["exit_code"] == 1
    assert {"coverage", "primary_precision", "size_ratio_max", "artifact_smaller"} <= failed(v)


def test_int4_recipe_that_produced_only_int8_fails_the_primary_precision():
    o = obs_for("int4_asym_g32")  # all u8: covered by [u4, u8] but not int4
    v = judge(o)
    assert v["failure_class"] == "QUANT_COVERAGE_FAILURE" and failed(v) >= {"primary_precision"}
    assert "coverage" not in failed(v)


def test_partial_coverage_below_the_promise_fails():
    o = obs_for(layer_precision_counts={"u8": {"count": 10, "bytes": 100000, "params": 100000},
                                        "f32": {"count": 7, "bytes": 58784, "params": 14696}},
                output_weight_bytes=160000)
    v = judge(o)
    assert v["failure_class"] == "QUANT_COVERAGE_FAILURE"


def test_coverage_exactly_at_the_promise_passes():
    recipe = dict(get_recipe("int8_asym"))
    recipe["promises"] = dict(recipe["promises"], min_coverage=0.7, min_primary_fraction=0.7)
    o = obs_for(recipe=recipe, layer_precision_counts={"u8": {"count": 7, "bytes": 70, "params": 70},
                                                       "f32": {"count": 3, "bytes": 120, "params": 30}},
                source_weight_params=100, source_weight_bytes=400, output_weight_bytes=100)
    assert "coverage" not in failed(judge(o))


def test_weights_larger_than_the_band_are_size_not_reduced():
    v = judge(obs_for(output_weight_bytes=200000))
    assert v["failure_class"] == "SIZE_NOT_REDUCED" and "size_ratio_max" in failed(v)


def test_artifact_not_smaller_than_source_is_size_not_reduced():
    v = judge(obs_for(output_bytes=462176))
    assert v["failure_class"] == "SIZE_NOT_REDUCED" and failed(v) == {"artifact_smaller"}


def test_weights_below_the_band_are_quantized_beyond_the_recipe():
    o = obs_for(output_weight_bytes=50000)
    o["layer_precision_counts"]["u8"]["bytes"] = 40000
    v = judge(o)
    assert v["failure_class"] == "QUANT_COVERAGE_FAILURE" and failed(v) == {"size_ratio_min"}


def test_dropped_weights_are_an_integrity_mismatch():
    o = obs_for(layer_precision_counts={"u8": {"count": 8, "bytes": 57344, "params": 57344}})
    assert "parameters_intact" in failed(judge(o))


def test_changed_metadata_is_an_integrity_mismatch_with_the_keys_named():
    diffs = [{"file": "config.json", "key": "eos_token_id", "change": "changed", "source": 2, "output": 0}]
    v = judge(obs_for(metadata_diffs=diffs))
    assert v["failure_class"] == "INTEGRITY_MISMATCH" and "config.json:eos_token_id" in v["detail"]


def test_missing_tokenizer_file_is_an_integrity_mismatch():
    diffs = [{"file": "tokenizer.json", "key": "", "change": "missing_in_output", "source": "present", "output": None}]
    assert judge(obs_for(metadata_diffs=diffs))["failure_class"] == "INTEGRITY_MISMATCH"


@pytest.mark.parametrize("file,key", sorted(BENIGN_METADATA))
def test_benign_exporter_metadata_changes_are_ignored_but_reported(file, key):
    v = judge(obs_for(metadata_diffs=[{"file": file, "key": key, "change": "added", "source": None, "output": 1}]))
    assert v["pass"] is True
    meta = next(c for c in v["checks"] if c["name"] == "metadata_intact")
    assert f"{file}:{key}" in meta["measured"]["ignored_benign"]


def test_llm_recipe_on_a_non_llm_model_is_model_unsupported():
    v = judge(obs_for(model_kind="non-llm", model_type="bert"))
    assert v["failure_class"] == "MODEL_UNSUPPORTED" and v["exit_code"] == 1


def test_static_recipe_on_an_llm_is_model_unsupported():
    o = obs_for("static_int8", layer_precision_counts={"i8": {"count": 16, "bytes": 114688, "params": 114688}})
    assert judge(o)["failure_class"] == "MODEL_UNSUPPORTED"


def test_ir_without_quantizable_weights_is_model_unsupported():
    v = judge(obs_for(layer_precision_counts={}, output_weight_bytes=0))
    assert v["failure_class"] == "MODEL_UNSUPPORTED"


def test_model_unsupported_outranks_coverage_failures():
    o = obs_for(model_kind="non-llm", layer_precision_counts={"f32": {"count": 17, "bytes": 458784, "params": 114696}},
                output_weight_bytes=458800)
    assert judge(o)["failure_class"] == "MODEL_UNSUPPORTED"


@pytest.mark.parametrize("key", ["source_weight_params", "source_weight_bytes", "output_weight_bytes",
                                 "source_bytes", "output_bytes", "layer_precision_counts", "metadata_diffs",
                                 "model_kind", "recipe"])
def test_regression_seed_summary_missing_a_measurement_cannot_be_judged(key):
    o = obs_for()
    del o[key]
    v = judge(o)
    assert (v["failure_class"], v["exit_code"]) == ("USER_CONFIG_ERROR", 2)


@pytest.mark.parametrize("value", [float("nan"), -1, 1.5, "100", None, True])
def test_non_integer_byte_counts_cannot_be_judged(value):
    assert judge(obs_for(output_weight_bytes=value))["failure_class"] == "USER_CONFIG_ERROR"


def test_precision_counts_without_parameters_cannot_be_judged():
    o = obs_for(layer_precision_counts={"u8": {"count": 16, "bytes": 114688}})
    assert judge(o)["failure_class"] == "USER_CONFIG_ERROR"


def test_inconsistent_observation_cannot_be_judged():
    # weight constants alone exceed the total weight bytes reported
    assert judge(obs_for(output_weight_bytes=1000))["failure_class"] == "USER_CONFIG_ERROR"


@pytest.mark.parametrize("mutate", [
    lambda r: r["promises"].update(size_ratio=[0.4, 0.2]),
    lambda r: r["promises"].update(min_coverage=0),
    lambda r: r["promises"].update(min_coverage=float("nan")),
    lambda r: r["promises"].update(weight_precisions=[]),
    lambda r: r.update(applies_to="both"),
    lambda r: r.pop("promises"),
    lambda r: r.update(version=0),
])
def test_an_invalid_recipe_cannot_be_judged(mutate):
    o = obs_for()
    mutate(o["recipe"])
    assert judge(o)["failure_class"] == "USER_CONFIG_ERROR"


@pytest.mark.parametrize("bad", [None, [], "obs", 7])
def test_observation_that_is_not_an_object_cannot_be_judged(bad):
    assert judge(bad)["failure_class"] == "USER_CONFIG_ERROR"


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(o=json_values)
def test_arbitrary_json_in_gives_a_schema_valid_verdict_never_an_exception(o):
    judge(o)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(o=mutated(obs_for(), ["recipe", "model_type", "model_kind", "source_weight_params", "source_weight_bytes",
                             "source_bytes", "output_weight_bytes", "output_bytes", "layer_precision_counts",
                             "metadata_diffs"]),
       recipe=mutated(get_recipe("int8_asym"), ["name", "version", "applies_to", "promises"]))
def test_field_by_field_garbage_gives_a_schema_valid_verdict(o, recipe):
    if isinstance(o.get("recipe"), dict):
        o["recipe"] = recipe
    v = judge(copy.deepcopy(o))
    if v["pass"]:
        assert v["metrics"]["coverage"] >= 0.95
