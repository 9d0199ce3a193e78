"""Random faults for property-based tests: draw a tensor of any role, a layer and a perturbation; apply it.

``draw(rng, catalog)`` picks a role (weights more often than epsilons), one tensor of that role
(so any layer), an operation and a magnitude (log-uniform over three decades); ``apply`` writes a
perturbed copy of a good IR. A compressed weight (u8/u4 codes, zero point, scale) is perturbed
through its effective values (codes re-encoded with the same scale and zero point) or through its
scale / zero point directly. ``NAMED`` are the faults of the layer-wise fidelity issue as fixed draws.

Used by ``tests/integration/test_verify_random_faults.py`` (a sample in pytest) and
``scripts/bench_faults.py`` (the benchmark over hundreds of draws).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.support import ir_edit, ir_roles

# role -> (operations, how often the role is drawn relative to the others)
ROLE_OPS: dict[str, tuple[tuple[str, ...], float]] = {
    "matmul_weight": (("noise", "scale_all", "scale_row", "zero_slice", "sign_row", "swap_rows"), 4.0),
    "head": (("noise", "scale_all", "scale_row"), 0.5),
    "quant_scale": (("scale_all", "scale_row"), 2.0),
    "quant_zero_point": (("shift_all", "shift_row"), 1.0),
    "bias": (("noise", "scale_all", "zero"), 1.0),
    "norm_weight": (("scale_all", "noise", "ones"), 1.0),
    "norm_bias": (("noise", "zero"), 0.5),
    "rms_eps": (("set_eps",), 0.5),
    "mvn_eps": (("set_eps",), 0.5),
    "rotary": (("scale_all", "scale_one"), 1.0),
    "position_table": (("noise_from", "shift_rows", "scale_all"), 1.0),
    "embedding": (("noise", "scale_all"), 0.5),
    "type_table": (("noise",), 0.25),
}
STRUCTURAL = frozenset({"zero_slice", "sign_row", "swap_rows", "zero", "ones", "shift_rows"})


@dataclass
class Draw:
    """One random fault: which tensor, which operation, how large."""
    role: str
    tensor: str
    layer: list | None
    op: str
    magnitude: float
    params: dict = field(default_factory=dict)

    def label(self) -> str:
        where = f"{self.layer[0]}[{self.layer[1]}]" if self.layer else "-"
        return f"{self.role}:{self.op}({self.magnitude:.3g}) @{where} {self.tensor[-48:]}"

    def to_dict(self) -> dict:
        return asdict(self)


def _log_uniform(rng, lo: float, hi: float) -> float:
    import numpy as np
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def draw(rng, cat: list, roles: dict | None = None) -> Draw:
    """A random fault over the roles present in ``cat`` (weighted by ``ROLE_OPS``)."""
    import numpy as np

    roles = roles or ROLE_OPS
    present = [r for r in roles if any(t.role == r for t in cat)]
    weights = np.array([roles[r][1] for r in present])
    role = present[int(rng.choice(len(present), p=weights / weights.sum()))]
    candidates = [t for t in cat if t.role == role]
    t = candidates[int(rng.integers(len(candidates)))]
    ops = roles[role][0]
    op = ops[int(rng.integers(len(ops)))]
    sign = 1 if rng.random() < 0.5 else -1
    params = {"seed": int(rng.integers(1 << 30))}
    if op in ("noise", "noise_from"):
        magnitude = _log_uniform(rng, 1e-3, 0.5)          # sigma relative to the tensor's RMS
    elif op in ("scale_all", "scale_row", "scale_one"):
        magnitude = sign * _log_uniform(rng, 1e-3, 0.5)   # factor 1 + magnitude
    elif op in ("shift_all", "shift_row"):
        magnitude = float(sign * rng.integers(1, 5))      # zero-point codes
    elif op == "set_eps":
        magnitude = _log_uniform(rng, 1e-4, 1.0)
    else:
        magnitude = 1.0
    return Draw(role, t.name, list(t.layer) if t.layer else None, op, magnitude, params)


class EffectiveValues:
    """Read / write a Constant as the model uses it: a compressed weight as (codes - zero point) x scale."""

    def __init__(self, ir: Path, cat: list, name: str):
        self.ir = Path(ir)
        refs = ir_edit.consts(self.ir)
        self.const = refs[name]
        self.scale = self.zero_point = None
        if self.const.element_type in ir_roles.INT_TYPES:
            scale, zero = ir_roles.scales_of(cat).get(name, (None, None))
            self.scale = refs[scale.name] if scale else None
            self.zero_point = refs[zero.name] if zero else None

    def get(self):
        import numpy as np
        values = ir_edit.read_const(self.ir, self.const).astype(np.float64)
        if self.scale is None:
            return values
        zp = ir_edit.read_const(self.ir, self.zero_point).astype(np.float64) if self.zero_point else 0.0
        return (values - zp) * ir_edit.read_const(self.ir, self.scale).astype(np.float64)

    def set(self, values) -> None:
        import numpy as np
        if self.scale is None:
            ir_edit.write_const(self.ir, self.const, values)
            return
        zp = ir_edit.read_const(self.ir, self.zero_point).astype(np.float64) if self.zero_point else 0.0
        s = ir_edit.read_const(self.ir, self.scale).astype(np.float64)
        ir_edit.write_const(self.ir, self.const, np.rint(values / np.where(s == 0, 1, s) + zp))


def _as_2d(v):
    return v.reshape(v.shape[0], -1) if v.ndim >= 2 else v.reshape(1, -1)


def apply(d: Draw, good_ir: str | Path, dst: str | Path, cat: list, head_dim: int = 16) -> Path:
    """Write ``good_ir`` with fault ``d`` applied to ``dst``; ``d.params`` records what was chosen."""
    import numpy as np

    ir = ir_edit.copy_ir(good_ir, dst)
    rng = np.random.default_rng(d.params.get("seed", 0))
    if d.role == "mvn_eps":
        ir_edit.set_mvn_eps(ir, d.tensor, d.magnitude)
        return ir
    ev = EffectiveValues(ir, cat, d.tensor)
    v = ev.get()
    w = _as_2d(v).copy()
    rows, cols = w.shape
    rms = float(np.sqrt((w ** 2).mean())) or 1.0
    op, m = d.op, d.magnitude
    if op == "noise":
        w = w + rng.normal(0, m * rms, w.shape)
    elif op == "noise_from":  # rows from a drawn position on: a fault only deep positions see
        start = int(rng.integers(rows // 8, rows))
        d.params["from_row"] = start
        w[start:] += rng.normal(0, m * rms, w[start:].shape)
    elif op == "scale_all":
        w = w * (1 + m)
    elif op == "scale_row":
        r = int(rng.integers(rows))
        d.params["row"] = r
        w[r] *= 1 + m
    elif op == "scale_one":
        k = int(rng.integers(w.size))
        d.params["element"] = k
        w.reshape(-1)[k] *= 1 + m
    elif op == "zero_slice":  # one head's block of rows or columns
        axis = int(rng.integers(2))
        n = rows if axis == 0 else cols
        size = head_dim if n % head_dim == 0 and n > head_dim else max(1, n // 4)
        block = int(rng.integers(n // size))
        d.params.update(axis=axis, block=block, size=size)
        if axis == 0:
            w[block * size:(block + 1) * size] = 0
        else:
            w[:, block * size:(block + 1) * size] = 0
    elif op == "sign_row":
        r = int(rng.integers(rows))
        d.params["row"] = r
        w[r] = -w[r]
    elif op == "swap_rows":
        a, b = rng.choice(rows, 2, replace=False)
        d.params["rows"] = [int(a), int(b)]
        w[[a, b]] = w[[b, a]]
    elif op == "shift_rows":  # positions off by one
        w[1:] = w[:-1].copy()
    elif op == "zero":
        w[:] = 0
    elif op == "ones":
        w[:] = 1
    elif op == "set_eps":
        w[:] = m
    elif op == "shift_all":
        w = w + m
    elif op == "shift_row":
        r = int(rng.integers(rows))
        d.params["row"] = r
        w[r] += m
    else:
        raise KeyError(f"unknown perturbation {op!r}")
    ev.set(w.reshape(v.shape))
    return ir


# --------------------------------------------------------------------------- the named faults

MLP_IN = ("mlp.up_proj", "mlp.c_fc", "intermediate.dense", "mlp.fc1")
ATTENTION_OUT = ("self_attn.o_proj", "attn.c_proj", "attention.output.dense", "self_attn.dense")
ATTENTION_NORM = ("attention.output.LayerNorm", "ln_2", "post_attention_layernorm")


def _find(cat: list, role: str, layer: int | None, parts: tuple[str, ...] | None = None):
    for t in cat:
        if t.role != role or (layer is not None and (t.layer is None or t.layer[1] != layer)):
            continue
        if parts and not any(p in f"{t.consumer} {t.name}" for p in parts):
            continue
        return t
    raise LookupError(f"no {role} tensor in layer {layer} matching {parts}")


def named(name: str, cat: list, layer: int = 1) -> Draw:
    """A fault of the issue's table as a fixed draw on block ``layer``."""
    if name == "rotary_x1.5":
        t = _find(cat, "rotary", None)
        return Draw("rotary", t.name, None, "scale_all", 0.5)
    if name == "rotary_lowest_x1.5":
        t = _find(cat, "rotary", None)
        return Draw("rotary", t.name, None, "scale_last", 0.5)
    if name == "scale_x1.25":
        t = _find(cat, "quant_scale", layer, MLP_IN)
        return Draw("quant_scale", t.name, list(t.layer), "scale_all", 0.25)
    if name == "mlp_noise":
        t = _find(cat, "matmul_weight", layer, MLP_IN)
        return Draw("matmul_weight", t.name, list(t.layer), "noise", 0.1, {"seed": 1})
    if name == "head_zeroed":
        t = _find(cat, "matmul_weight", layer, ATTENTION_OUT)
        return Draw("matmul_weight", t.name, list(t.layer), "zero_head_inputs", 1.0, {"block": 1})
    if name == "eps_1.0":
        t = next(x for x in cat if x.role in ("mvn_eps", "rms_eps") and x.layer and x.layer[1] == layer
                 and any(p in x.consumer for p in ATTENTION_NORM))
        return Draw(t.role, t.name, list(t.layer), "set_eps", 1.0)
    raise KeyError(name)


NAMED = ("rotary_x1.5", "rotary_lowest_x1.5", "scale_x1.25", "mlp_noise", "head_zeroed", "eps_1.0")


def apply_named(d: Draw, good_ir: str | Path, dst: str | Path, cat: list, head_dim: int) -> Path:
    """``apply`` plus the two fixed operations of the named faults."""
    if d.op not in ("scale_last", "zero_head_inputs"):
        return apply(d, good_ir, dst, cat, head_dim)
    ir = ir_edit.copy_ir(good_ir, dst)
    ev = EffectiveValues(ir, cat, d.tensor)
    v = ev.get()
    if d.op == "scale_last":  # the lowest rotary frequency: invisible on short prompts
        w = v.reshape(-1).copy()
        w[-1] *= 1 + d.magnitude
        ev.set(w.reshape(v.shape))
        return ir
    w = _as_2d(v).copy()
    h = d.params["block"]
    entry = next(t for t in cat if t.name == d.tensor)
    # an attention head is a block of the output projection's input features: columns of W[out, in]
    # when the MatMul transposes its weight, rows of W[in, out] otherwise
    if entry.extra.get("transpose_b", True):
        w[:, h * head_dim:(h + 1) * head_dim] = 0
    else:
        w[h * head_dim:(h + 1) * head_dim] = 0
    ev.set(w.reshape(v.shape))
    return ir


def catalog_of(ir: str | Path) -> list:
    """The role catalog of an IR folder."""
    import openvino as ov
    return ir_roles.catalog(ov.Core().read_model(str(Path(ir) / ir_edit.XML)))


def structural(d: Draw) -> bool:
    return d.op in STRUCTURAL
