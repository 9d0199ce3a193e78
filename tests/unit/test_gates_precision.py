"""The pure deployment-precision decision: a low-precision run against the f32 run, PRECISION_OVERFLOW."""
from hypothesis import given, settings
from hypothesis import strategies as st

from modelgate.gates.precision import BANDS, precision_checks


def run(ran_as="bf16", rel=0.02, cos=0.9999, top1=0.98, nonfinite=0, entries=(), layer=None, comparable=True):
    return {"requested": "default", "ran_as": {"inference_precision": ran_as, "kv_cache_precision": "f16"},
            "vs_f32": {"comparable": comparable, "rel_err": rel, "cosine_mean": cos, "top1_agreement": top1,
                       "nonfinite": nonfinite},
            "nonfinite_entries": list(entries), "first_nonfinite_layer": layer}


def by_name(checks):
    return {c["name"].rsplit("_", 1)[-1]: c for c in checks}


def test_a_good_bf16_run_passes_its_band():
    c = by_name(precision_checks("default", run()))
    assert c["finite"]["pass"] and c["agreement"]["pass"]
    assert "ran as bf16" in c["agreement"]["detail"]


def test_nan_only_at_low_precision_is_precision_overflow_and_names_the_layer():
    c = by_name(precision_checks("f16", run("f16", nonfinite=66240, entries=["seq0"], layer=0, comparable=False)))
    assert c["finite"]["pass"] is False and c["finite"]["failure_class"] == "PRECISION_OVERFLOW"
    assert "block 0" in c["finite"]["detail"] and c["finite"]["measured"]["first_nonfinite_layer"] == 0
    assert c["agreement"]["pass"] is None and c["agreement"]["not_judged_because"]


def test_a_large_loss_without_any_nan_is_precision_overflow_too():
    c = by_name(precision_checks("default", run(rel=1.0, cos=0.0, top1=0.0)))
    assert c["finite"]["pass"] is True
    assert c["agreement"]["pass"] is False and c["agreement"]["failure_class"] == "PRECISION_OVERFLOW"
    assert "large loss only at default (ran as bf16)" in c["agreement"]["detail"]


def test_the_band_is_the_one_of_the_precision_the_plugin_reported_not_the_one_asked_for():
    # asked for f16, the plugin ran bf16: judged by the bf16 band
    c = by_name(precision_checks("f16", run("bf16", rel=0.05)))
    assert c["agreement"]["pass"] and c["agreement"]["threshold"]["rel_err_max"] == BANDS["bf16"]["rel_err_max"]
    assert "f16 (ran as bf16)" in c["agreement"]["detail"]


def test_unreported_precision_or_counts_fail_closed():
    bad = run()
    bad["ran_as"] = {}
    assert by_name(precision_checks("default", bad))["agreement"]["pass"] is False
    bad = run()
    del bad["vs_f32"]["nonfinite"]
    assert by_name(precision_checks("default", bad))["finite"]["pass"] is False
    assert by_name(precision_checks("default", None))["finite"]["pass"] is False


metric = st.floats(min_value=0, max_value=1.2, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(rel=metric, cos=metric, top1=metric, prec=st.sampled_from(sorted(BANDS)))
def test_agreement_passes_exactly_inside_the_band(rel, cos, top1, prec):
    band = BANDS[prec]
    c = by_name(precision_checks("default", run(prec, rel, cos, top1)))
    inside = rel <= band["rel_err_max"] + 1e-12 and cos >= band["cosine_min"] - 1e-12 and \
        top1 >= band["top1_min"] - 1e-12
    assert c["agreement"]["pass"] == inside
