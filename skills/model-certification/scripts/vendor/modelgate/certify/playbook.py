"""Certification playbooks: load, merge over the tier template, validate, expand into cells.

A model playbook names a tier; the tier's template (``playbooks/templates/<tier>.yaml``) gives
the defaults, the playbook overrides them (mappings merge, scenarios merge by name, other
lists replace). The merged document must satisfy ``playbooks/playbook.schema.json``, whose
every field is read here, in ``runner`` or in ``cells``.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from modelgate.contract import GateInputError
from modelgate.gates.oracles import parse_arithmetic

SKILL = "model-certification"
# inside a skill folder: the playbook schema and the tier templates
SCHEMA_FILE = Path("playbooks") / "playbook.schema.json"
TEMPLATES = Path("playbooks") / "templates"
# the repository's skill folder (tests, benchmarks); a run reads the folder it is given
PLAYBOOK_DIR = Path(__file__).resolve().parents[2] / "skills" / SKILL / "playbooks"
TIERS = ("smoke", "mvp", "quick", "standard", "deep")
POLICIES = ("stop-on-first", "stop-on-p0", "collect-all", "fail-fast")
DEFAULTS = {"seed": 0, "timeout_ms": 60000, "workers": 1, "failure_policy": "stop-on-p0", "max_new_tokens": 8,
            "gates": {}, "oracles": {}, "description": ""}
# pseudo-scenarios of cells that belong to no playbook scenario
CONTRACT_SCENARIO = "contract"
CONVERSION_SCENARIO = "conversion"
# scenario kind -> modalities it can run in (contract cells are per format, not per scenario)
KIND_MODALITIES = {"prompts": ("run", "chat", "serve"), "arithmetic": ("run", "chat", "serve"),
                   "exact": ("run", "chat", "serve"), "edge": ("run", "serve"), "determinism": ("run",),
                   "selftest": ("run", "chat", "serve")}


@dataclass
class CellSpec:
    """One cell of the matrix: what runs where, with which prompts and timeout."""
    id: str
    format: str
    device: str
    modality: str
    scenario: str
    kind: str
    timeout_ms: int
    items: list = field(default_factory=list)  # prompts (str) or {"prompt", "answer"}
    repeats: int = 1
    fault: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _skill(skill_dir: str | Path | None) -> Path:
    from modelgate.skillpack import skill_dir as find_skill

    return find_skill(SKILL, skill_dir)


@functools.cache
def _validator(schema_path: str):
    from jsonschema import Draft202012Validator

    schema = json.loads(Path(schema_path).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_errors(doc, skill_dir: str | Path | None = None) -> list[str]:
    """Every reason ``doc`` is not a valid (merged) playbook, by the skill folder's playbook schema."""
    path = _skill(skill_dir) / SCHEMA_FILE
    if not path.is_file():
        raise GateInputError("USER_CONFIG_ERROR", f"the skill folder has no playbook schema: {path}")
    errs = sorted(_validator(str(path.resolve())).iter_errors(doc), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errs]


def _read_yaml(path: Path, what: str) -> dict:
    import yaml

    if not path.is_file():
        raise GateInputError("USER_CONFIG_ERROR", f"{what} not found: {path}")
    from modelgate import strict_yaml

    try:  # a key written twice is refused, not read as its last value
        doc = strict_yaml.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise GateInputError("USER_CONFIG_ERROR", f"{what} {path} is not readable YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise GateInputError("USER_CONFIG_ERROR", f"{what} {path} is not a mapping")
    return doc


def merge(template: dict, playbook: dict) -> dict:
    """Playbook over template: mappings merge, scenarios merge by name, other values replace."""
    out = copy.deepcopy(template)
    for key, value in playbook.items():
        if key == "scenarios" and isinstance(value, list) and isinstance(out.get(key), list):
            merged = {s.get("name"): s for s in out[key] if isinstance(s, dict)}
            order = [s.get("name") for s in out[key] if isinstance(s, dict)]
            for s in value:
                name = s.get("name") if isinstance(s, dict) else None
                if name not in merged:
                    order.append(name)
                merged[name] = copy.deepcopy(s)
            out[key] = [merged[n] for n in order]
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_template(tier: str, skill_dir: str | Path | None = None) -> dict:
    """The tier template as written in the skill folder's ``playbooks/templates`` (validated when merged)."""
    if tier not in TIERS:
        raise GateInputError("USER_CONFIG_ERROR", f"unknown tier {tier!r}; one of {TIERS}")
    return _read_yaml(_skill(skill_dir) / TEMPLATES / f"{tier}.yaml", "tier template")


def load_playbook(path: str | Path, tier: str | None = None, *, skill_dir: str | Path | None = None) -> dict:
    """Read, merge over the tier template of the skill folder (``skill_dir``, else the repository's),
    fill defaults and validate. Bad input -> GateInputError."""
    path = Path(path)
    raw = _read_yaml(path, "playbook")
    scenarios = raw.get("scenarios")
    own = [s.get("name") for s in scenarios if isinstance(s, dict)] if isinstance(scenarios, list) else []
    if len(set(map(str, own))) != len(own):  # merging by name would silently keep only the last of them
        raise GateInputError("USER_CONFIG_ERROR", f"playbook {path}: scenario names are not unique: {own}")
    # unknown fields in the playbook itself are rejected before merging hides them
    pre = merge({"name": "x", "model": {"fixture": "llama"}, "model_family": "x", "tier": "smoke",
                 "matrix": {"formats": ["safetensors"], "devices": ["CPU"], "modalities": ["run"]},
                 "scenarios": [{"name": "x", "kind": "prompts", "prompts": ["x"]}]}, raw)
    errs = [e for e in schema_errors(pre, skill_dir) if "Additional properties" in e or "additional properties" in e]
    if errs:
        raise GateInputError("USER_CONFIG_ERROR", f"playbook {path}: " + "; ".join(errs[:5]))
    chosen = tier or raw.get("tier")
    if chosen is None:
        raise GateInputError("USER_CONFIG_ERROR", f"playbook {path} names no tier and --tier was not given")
    doc = merge(DEFAULTS, merge(load_template(chosen, skill_dir), raw))
    doc["tier"] = chosen
    if "name" not in raw:
        doc["name"] = path.stem
    errs = schema_errors(doc, skill_dir)
    if errs:
        raise GateInputError("USER_CONFIG_ERROR", f"playbook {path} (tier {chosen}): " + "; ".join(errs[:5]))
    _check_semantics(doc, path)
    doc["_path"] = str(path.resolve())
    doc["_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return doc


def _check_semantics(doc: dict, path: Path) -> None:
    names = [s["name"] for s in doc["scenarios"]]
    if len(set(names)) != len(names):
        raise GateInputError("USER_CONFIG_ERROR", f"playbook {path}: duplicate scenario names {names}")
    for s in doc["scenarios"]:
        if s["kind"] == "arithmetic":
            for q in s["prompts"]:
                try:
                    parse_arithmetic(q)
                except ValueError as exc:  # never skip an unparseable question: refuse the playbook
                    raise GateInputError("USER_CONFIG_ERROR", f"scenario {s['name']}: {exc}") from exc
    ir = doc["model"].get("ir", {})
    for fmt in ir:
        if fmt not in doc["matrix"]["formats"]:
            raise GateInputError("USER_CONFIG_ERROR", f"model.ir names {fmt}, which is not in matrix.formats")


def scenario_items(scenario: dict, seed: int) -> list:
    """The scenario's prompts or pairs, shuffled by ``seed`` and cut to ``samples``."""
    if scenario["kind"] == "exact":
        if "pairs_from" in scenario:
            from modelgate import data
            items = [{"prompt": p, "answer": a} for p, a in data.color_facts()]
        else:
            items = [dict(p) for p in scenario["pairs"]]
    else:
        items = list(scenario.get("prompts", ["the color of sky is"]))
    rng = random.Random(f"{seed}:{scenario['name']}")
    rng.shuffle(items)
    n = scenario.get("samples")
    return items[:n] if n else items


def expand(doc: dict, timeout_ms: int | None = None) -> list[CellSpec]:
    """The matrix as cells: formats x devices x modalities x scenarios, plus one contract cell per
    (OpenVINO format, device). Order is deterministic; ``timeout_ms`` (CLI) overrides the playbook's."""
    m = doc["matrix"]
    base_timeout = timeout_ms or doc["timeout_ms"]
    cells: list[CellSpec] = []
    for fmt in m["formats"]:
        for dev in m["devices"]:
            for mod in m["modalities"]:
                if mod == "contract":
                    if fmt != "safetensors":
                        cells.append(CellSpec(f"{fmt}/{dev}/contract/{CONTRACT_SCENARIO}", fmt, dev, "contract",
                                              CONTRACT_SCENARIO, "contract", base_timeout))
                    continue
                for s in doc["scenarios"]:
                    allowed = s.get("modalities") or KIND_MODALITIES[s["kind"]]
                    if mod not in allowed or mod not in KIND_MODALITIES[s["kind"]]:
                        continue
                    cells.append(CellSpec(f"{fmt}/{dev}/{mod}/{s['name']}", fmt, dev, mod, s["name"], s["kind"],
                                          s.get("timeout_ms", base_timeout), scenario_items(s, doc["seed"]),
                                          s.get("repeats", 1), s.get("fault")))
    return cells


def resolve_model(doc: dict) -> tuple[Path, dict]:
    """(source folder, {format: existing IR folder}) of the playbook's model. Paths are relative to the playbook."""
    model = doc["model"]
    base = Path(doc.get("_path", ".")).parent
    if "fixture" in model:
        from modelgate import fixtures
        src = fixtures.hf_model(model["fixture"])
    elif "path" in model:
        src = (base / model["path"]).resolve()
    else:
        from huggingface_hub import snapshot_download
        try:
            src = Path(snapshot_download(model["hf_id"], local_files_only=True))
        except Exception as exc:  # not cached: the run cannot be judged
            raise GateInputError("SOURCE_UNAVAILABLE",
                                 f"{model['hf_id']} is not in the local hub cache: {exc}") from exc
    if not (src / "config.json").is_file() or not list(src.glob("*.safetensors")):
        raise GateInputError("USER_CONFIG_ERROR", f"{src} is not a Hugging Face folder with safetensors")
    irs = {fmt: (base / p).resolve() for fmt, p in model.get("ir", {}).items()}
    for fmt, p in irs.items():
        if not (p / "openvino_model.xml").is_file():
            raise GateInputError("USER_CONFIG_ERROR", f"model.ir.{fmt}: no openvino_model.xml in {p}")
    return src, irs


def model_label(doc: dict) -> str:
    """How the evidence names the model."""
    m = doc["model"]
    return m.get("hf_id") or (f"fixture:{m['fixture']}" if "fixture" in m else m["path"])
