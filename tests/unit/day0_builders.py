"""Builders of valid day-0 gate inputs for the unit tests (each test mutates one thing)."""
from __future__ import annotations

import copy

from hypothesis import strategies as st

from modelgate.gates.run import eval_config_sha256

EVAL_CONFIG = {"tasks": ["digits"], "seed": 0, "limit": None}


def task(score=0.98, *, stderr=0.005, n=450, scale="unit", metric="top1", hib=True, status="COMPLETED", **extra):
    entry = {"status": status, "metric": metric, "scale": scale, "higher_is_better": hib,
             "expected_samples": n, "scored_samples": n, "score": score, "stderr": stderr}
    entry.update(extra)
    return entry


def run_summary(variant="baseline", tasks=None, *, config=None, status="COMPLETED", **extra):
    cfg = copy.deepcopy(EVAL_CONFIG if config is None else config)
    doc = {"schema_version": "1.0", "run_id": f"{variant}-1", "variant": variant, "model": "ir/openvino_model.xml",
           "artifact_sha256": ("a" if variant == "baseline" else "c") * 64, "eval_config": cfg,
           "eval_config_sha256": eval_config_sha256(cfg), "status": status,
           "tasks": tasks if tasks is not None else {"digits": task()}, "timings": {"seconds": 1.0}}
    doc.update(extra)
    return doc


def pair(b_score, c_score, **kw):
    """(baseline, candidate) summaries with one task 'digits' at the given scores."""
    return (run_summary("baseline", {"digits": task(b_score, **kw)}),
            run_summary("candidate", {"digits": task(c_score, **kw)}))


# arbitrary JSON, including the values that crash naive gates
json_scalars = (st.none() | st.booleans() | st.integers(min_value=-10**6, max_value=10**6)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=5), max_leaves=25)


def mutated(base: dict, keys: list[str]):
    """A strategy that replaces some fields of ``base`` (a dict) by arbitrary JSON values or deletes them."""
    return st.fixed_dictionaries({k: st.sampled_from(["__keep__"] * 6 + ["__del__"]) | json_values for k in keys}
                                 ).map(lambda repl: _apply(base, repl))


def _apply(base: dict, repl: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in repl.items():
        if v == "__del__":
            out.pop(k, None)
        elif v != "__keep__":
            out[k] = v
    return out
