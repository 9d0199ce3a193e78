"""Graph constants that config.json determines exactly: normalization epsilons and rotary frequencies.

Two faults hide under quantization noise yet are exact to check without running anything: a norm
epsilon that is wrong (LayerNorm eps = 1.0 moves an int8 model's hidden states by ~1 %, below its
noise) and a rotary frequency that is wrong (the lowest frequency x1.5 changes nothing on short
prompts). Both are constants of the graph, and config.json says what they must be:

- **eps**: every RMSNorm epsilon (a scalar Constant added to the mean of squares) and every ``MVN``
  epsilon must equal one of the config's ``*_eps`` / ``*_epsilon`` values, within the rounding of
  the element type the IR stores it in.
- **rotary**: the inverse frequencies feeding Sin/Cos must be ``rope_theta ** (-2i/d)`` (transformers'
  default rope), within one unit in the last place of the stored type (a good fp16 export stores
  them in f16; that rounding is allowed here and its effect at deep positions is measured by the
  position sweep against the f16-simulated source).

What cannot be checked robustly is reported as not judged with the reason, never as a pass.
"""
from __future__ import annotations

import math

EPS_TOLERANCE = {"f32": 1e-6, "f16": 1e-3, "bf16": 8e-3}  # relative, per stored element type
F16_SUBNORMAL = 2.0 ** -24
ROPE_TYPES_JUDGED = frozenset({"default"})


def config_epsilons(config: dict) -> list[float]:
    """The epsilon values config.json declares (keys ending in eps / epsilon)."""
    out = []
    for key, value in config.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1 and (
                key.endswith("_eps") or key.endswith("epsilon") or key == "eps"):
            out.append(float(value))
    return sorted(set(out))


def _is_square(node) -> bool:
    kind = node.get_type_name()
    if kind == "Power":
        exp = _const_through_convert(node.input_value(1).get_node())
        return exp is not None and _scalar(exp) == 2.0
    if kind == "Multiply":
        return node.input_value(0).get_node() is node.input_value(1).get_node()
    return False


def _scalar(const) -> float | None:
    import numpy as np
    data = np.asarray(const.get_data(), dtype=np.float64)
    return float(data.reshape(-1)[0]) if data.size == 1 else None


def _const_through_convert(node):
    """A Constant, possibly behind a Convert (an f16-stored scalar), else None."""
    for _ in range(3):
        if node.get_type_name() == "Constant":
            return node
        if node.get_type_name() != "Convert":
            return None
        node = node.input_value(0).get_node()
    return None


def _eps_matches(value: float, expected: list[float], element_type: str) -> bool:
    tol = EPS_TOLERANCE.get(element_type, 1e-6)
    for e in expected:
        floor = F16_SUBNORMAL if element_type == "f16" else 0.0
        if abs(value - e) <= max(tol * e, floor):
            return True
    return False


def epsilons(model, config: dict) -> dict:
    """Every norm epsilon in the IR against the config's values."""
    expected = config_epsilons(config)
    found, mismatches = [], []
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind == "MVN":
            value = float(op.get_attributes().get("eps", 0.0))
            found.append({"node": op.get_friendly_name(), "value": value, "element_type": "f32"})
        elif kind == "Add":
            a, b = op.input_value(0).get_node(), op.input_value(1).get_node()
            for mean, other in ((a, b), (b, a)):
                if mean.get_type_name() != "ReduceMean" or not _is_square(mean.input_value(0).get_node()):
                    continue
                const = _const_through_convert(other)
                if const is None:
                    continue
                value = _scalar(const)
                if value is not None:
                    found.append({"node": op.get_friendly_name(), "value": value,
                                  "element_type": const.get_element_type().get_type_name()})
    if not found:
        return {"judged": False, "reason": "no normalization epsilon found in the IR", "found": 0}
    if not expected:
        return {"judged": False, "reason": "config.json declares no epsilon (*_eps / *_epsilon)",
                "found": len(found)}
    for f in found:
        if not _eps_matches(f["value"], expected, f["element_type"]):
            mismatches.append(f)
    return {"judged": True, "found": len(found), "config": expected, "mismatches": mismatches[:10],
            "mismatched": len(mismatches)}


def _rope(config: dict) -> tuple[float | None, str, int | None]:
    """(theta, rope type, rotary dimension) from config.json (transformers 4 and 5 spellings)."""
    params = config.get("rope_parameters") or {}
    scaling = config.get("rope_scaling") or {}
    theta = params.get("rope_theta", config.get("rope_theta"))
    rope_type = params.get("rope_type") or scaling.get("rope_type") or scaling.get("type") or "default"
    heads = config.get("num_attention_heads")
    head_dim = config.get("head_dim") or (config.get("hidden_size") // heads if heads and config.get("hidden_size")
                                          else None)
    factor = params.get("partial_rotary_factor", config.get("partial_rotary_factor", config.get("rotary_pct", 1.0)))
    dim = int(head_dim * factor) if head_dim else None
    return (float(theta) if isinstance(theta, (int, float)) else None), str(rope_type), dim


def expected_inv_freq(theta: float, dim: int):
    """transformers' default rope: 1 / theta ** (arange(0, dim, 2) / dim), computed in float32."""
    import numpy as np
    exponent = (np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / np.float32(dim)).astype(np.float32)
    return (np.float32(1.0) / np.power(np.float32(theta), exponent, dtype=np.float32)).astype(np.float32)


def _sincos_constants(model, numel: int) -> list:
    """Float Constants of ``numel`` elements upstream of a Sin or Cos (not crossing model inputs)."""
    seen, found = set(), {}
    for op in model.get_ordered_ops():
        if op.get_type_name() not in ("Sin", "Cos"):
            continue
        stack = [op]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            kind = node.get_type_name()
            if kind == "Constant":
                if node.get_element_type().is_real() and math.prod(node.get_shape()) == numel:
                    found[node.get_friendly_name()] = node
                continue
            if kind in ("Parameter", "ReadValue"):
                continue
            stack.extend(v.get_node() for v in node.input_values())
    return list(found.values())


def rotary(model, config: dict) -> dict:
    """The IR's rotary inverse frequencies against ``rope_theta`` from config.json."""
    import numpy as np

    theta, rope_type, dim = _rope(config)
    if theta is None or not dim:
        return {"judged": False, "reason": "config.json declares no rotary embedding (rope_theta)"}
    if rope_type not in ROPE_TYPES_JUDGED:
        return {"judged": False, "reason": f"rope type {rope_type!r} has no closed form checked here"}
    cands = _sincos_constants(model, dim // 2)
    if not cands:
        return {"judged": False, "reason": f"no rotary frequency constant of {dim // 2} values feeds Sin/Cos "
                                           "(e.g. precomputed cos/sin tables)"}
    expected = expected_inv_freq(theta, dim)
    out = {"judged": True, "theta": theta, "dim": dim, "constants": [], "mismatched": 0}
    for const in cands:
        et = const.get_element_type().get_type_name()
        value = np.asarray(const.get_data(), dtype=np.float32).reshape(-1)
        stored = expected.astype(np.float16).astype(np.float32) if et == "f16" else expected
        ulp = np.abs(np.spacing(stored.astype(np.float16 if et == "f16" else np.float32))).astype(np.float32)
        bad = np.nonzero(np.abs(value - stored) > ulp * (1.0 if et == "f16" else 8.0))[0]
        item = {"node": const.get_friendly_name(), "element_type": et, "bad_indices": bad[:8].tolist()}
        if bad.size:
            k = int(bad[0])
            item.update(value=float(value[k]), expected=float(expected[k]), index=k)
            out["mismatched"] += 1
        out["constants"].append(item)
    return out


def observe(xml_or_model, config: dict | None) -> dict:
    """Both checks on an IR (path or model) against config.json (None: nothing to check)."""
    from modelgate.openvino.ir import read_model

    if not config:
        return {"eps": {"judged": False, "reason": "no config.json to compare with"},
                "rotary": {"judged": False, "reason": "no config.json to compare with"}}
    model = read_model(xml_or_model)
    return {"eps": epsilons(model, config), "rotary": rotary(model, config)}
