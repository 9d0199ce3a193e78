"""Inference precision: the runtime configs verify runs an IR under, and what a compiled model really used.

Two questions, two configs:

- **f32 (faithfulness)**: ``INFERENCE_PRECISION_HINT=f32`` alone is not enough on the CPU plugin: its
  KV cache stays f16 (u8 for int8/int4 IRs) and dynamic activation quantization stays on, which
  adds 2e-4 relative error per layer to an fp32 IR (250x its float noise). ``FAITHFUL_CONFIG`` pins
  all three, so differences from the source come from the IR's weights and graph only.
- **the device default (deployment)**: an empty config, i.e. what a user who loads the IR gets
  (bf16 on CPUs with AMX / AVX512-BF16, f16 on GPUs). The precision it resolves to is read back
  from the compiled model, never assumed.

``compiled_precision(compiled)`` is the helper other gates call to record the precision a compiled
model runs at (the release canary, certification cells).
"""
from __future__ import annotations

# precisions a user can ask for; "default" is the device's own choice, read back after compiling
PRECISIONS = ("f32", "bf16", "f16")
PRECISION_CHOICES = ("default", "f32", "bf16", "f16", "all")
FAITHFUL_CONFIG = {"INFERENCE_PRECISION_HINT": "f32", "KV_CACHE_PRECISION": "f32",
                   "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0"}
# the keys above that only some plugins know: dropped where the device does not support them
OPTIONAL_KEYS = ("KV_CACHE_PRECISION", "DYNAMIC_QUANTIZATION_GROUP_SIZE")
# how OpenVINO spells an element type -> the short name used in verdicts
_NAMES = {"f32": "f32", "float32": "f32", "fp32": "f32", "bf16": "bf16", "bfloat16": "bf16",
          "f16": "f16", "float16": "f16", "fp16": "f16"}


def normalize(value) -> str:
    """A precision as the verdict names it (``f32``, ``bf16``, ``f16``) from any OpenVINO spelling.

    Accepts ``ov.Type`` objects, ``<Type: 'float32'>`` reprs and plain names; anything else is
    returned lower-cased (e.g. ``dynamic``), so an unexpected value is reported, not hidden.
    """
    if hasattr(value, "get_type_name"):
        value = value.get_type_name()
    text = str(value).strip().lower()
    for token in (text, text.split("'")[1] if text.count("'") >= 2 else text):
        if token in _NAMES:
            return _NAMES[token]
    return text


def compiled_precision(compiled) -> str:
    """The inference precision a compiled model runs at (``f32``/``bf16``/``f16``), read from the plugin.

    For a caller that reports the precision of its own run (a canary, a certification cell): call it
    on the ``ov.CompiledModel`` right after ``compile_model``.
    """
    return normalize(compiled.get_property("INFERENCE_PRECISION_HINT"))


def device_default_precision(device: str = "CPU", core=None) -> str:
    """The precision ``device`` uses when nothing is asked for (its ``INFERENCE_PRECISION_HINT`` default)."""
    import openvino as ov

    core = core or ov.Core()
    return normalize(core.get_property(device, "INFERENCE_PRECISION_HINT"))


def device_supported_keys(device: str = "CPU", core=None) -> set[str]:
    import openvino as ov

    core = core or ov.Core()
    try:
        return {str(k) for k in core.get_property(device, "SUPPORTED_PROPERTIES")}
    except Exception:  # a plugin without the property list: send every key, the plugin will say
        return set(FAITHFUL_CONFIG)


def runtime_config(precision: str, device: str = "CPU", core=None) -> dict:
    """The compile config for a requested precision: ``f32`` -> ``FAITHFUL_CONFIG``; ``bf16``/``f16`` ->
    that hint; ``default`` -> nothing (the device decides). Keys the device does not know are dropped."""
    if precision == "default":
        return {}
    if precision == "f32":
        supported = device_supported_keys(device, core)
        return {k: v for k, v in FAITHFUL_CONFIG.items() if k not in OPTIONAL_KEYS or k in supported}
    if precision in ("bf16", "f16"):
        return {"INFERENCE_PRECISION_HINT": precision}
    raise ValueError(f"unknown precision {precision!r}; one of {PRECISIONS + ('default',)}")


def requested_precisions(choice: str, device_default: str) -> list[str]:
    """The precisions to run for ``--inference-precision``: f32 always (the faithfulness run), plus the
    device default (``default``), one named low precision, or every low precision (``all``)."""
    if choice not in PRECISION_CHOICES:
        raise ValueError(f"--inference-precision must be one of {PRECISION_CHOICES}, got {choice!r}")
    extra = {"default": [device_default], "f32": [], "bf16": ["bf16"], "f16": ["f16"],
             "all": ["bf16", "f16"]}[choice]
    out = ["f32"]
    for p in extra:
        if p not in out:
            out.append(p)
    return out


def ran_as(compiled) -> dict:
    """What a compiled model reports it uses: inference precision, KV cache precision, execution mode."""
    out = {"inference_precision": compiled_precision(compiled)}
    for key, name in (("KV_CACHE_PRECISION", "kv_cache_precision"), ("EXECUTION_MODE_HINT", "execution_mode")):
        try:
            out[name] = normalize(compiled.get_property(key)) if key != "EXECUTION_MODE_HINT" else str(
                compiled.get_property(key)).split(".")[-1]
        except Exception:  # the plugin does not report it; record that it is unknown
            out[name] = None
    return out
