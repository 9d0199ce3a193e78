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
from modelgate.gates.playbook_floors import (
    KIND_FIELDS,
    KIND_MODALITIES,
    SCENARIO_COMMON,
    describe,
    effective_modalities,
    floor_violations,
    scenario_item_count,
)

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
# pairs_from source -> its data file in modelgate/data (a run reads it; the lock covers it)
PAIRS_FROM_FILES = {"color-facts": "color_facts.json"}
# the logical names under which the lock and the evidence record what a run read
SCHEMA_KEY = "playbook.schema.json"


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


def skill_folder(skill_dir: str | Path | None = None) -> Path:
    """The model-certification skill folder a run reads (``skill_dir``, else the repository's)."""
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
    path = skill_folder(skill_dir) / SCHEMA_FILE
    if not path.is_file():
        raise GateInputError("USER_CONFIG_ERROR", f"the skill folder has no playbook schema: {path}")
    errs = sorted(_validator(str(path.resolve())).iter_errors(doc), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errs]


@functools.cache
def load_yaml_text(text: str):
    """Parse YAML safely and strictly (duplicate keys, overflowing integers, deep nesting: yaml.YAMLError)."""
    from modelgate import strict_yaml

    return strict_yaml.loads(text)


def _read_yaml(path: Path, what: str) -> dict:
    import yaml

    if not path.is_file():
        raise GateInputError("USER_CONFIG_ERROR", f"{what} not found: {path}")
    try:
        doc = load_yaml_text(path.read_text(encoding="utf-8"))
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
    return _read_yaml(skill_folder(skill_dir) / TEMPLATES / f"{tier}.yaml", "tier template")


def template_path(tier: str, skill_dir: str | Path | None = None) -> Path:
    """Where the tier template of the skill folder is."""
    return skill_folder(skill_dir) / TEMPLATES / f"{tier}.yaml"


def data_file(pairs_from: str) -> Path:
    """The data file a ``pairs_from`` source reads."""
    from modelgate import data

    return Path(data.__file__).resolve().parent / PAIRS_FROM_FILES[pairs_from]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_inputs(doc: dict, skill_dir: str | Path | None = None) -> dict[str, Path]:
    """Every file besides the playbook that a run of ``doc`` reads, by the logical name the lock and the
    evidence use: the tier template, the playbook schema, the data files of its scenarios."""
    skill = skill_folder(skill_dir)
    out = {f"templates/{doc['tier']}.yaml": skill / TEMPLATES / f"{doc['tier']}.yaml",
           SCHEMA_KEY: skill / SCHEMA_FILE}
    for s in doc["scenarios"]:
        if "pairs_from" in s:
            out[f"data/{PAIRS_FROM_FILES[s['pairs_from']]}"] = data_file(s["pairs_from"])
    return out


def _pairs_from_counts() -> dict[str, int]:
    from modelgate import data

    return {"color-facts": len(data.color_facts())}


def load_playbook(path: str | Path, tier: str | None = None, *, skill_dir: str | Path | None = None,
                  enforce_floors: bool = True) -> dict:
    """Read, merge over the tier template of the skill folder (``skill_dir``, else the repository's),
    fill defaults and validate; refuse what would silently do nothing and whatever weakens the tier
    (``enforce_floors``; only tests of the runner's mechanics turn it off). Bad input -> GateInputError."""
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
    template = load_template(chosen, skill_dir)
    doc = merge(DEFAULTS, merge(template, raw))
    doc["tier"] = chosen
    if "name" not in raw:
        doc["name"] = path.stem
    errs = schema_errors(doc, skill_dir)
    if errs:
        raise GateInputError("USER_CONFIG_ERROR", f"playbook {path} (tier {chosen}): " + "; ".join(errs[:5]))
    _check_semantics(doc, path)
    if enforce_floors:
        counts = _pairs_from_counts()
        weaker = floor_violations(merge(DEFAULTS, template), doc,
                                  item_count=lambda sc: scenario_item_count(sc, counts))
        if weaker:
            raise GateInputError("USER_CONFIG_ERROR", f"playbook {path} weakens the {chosen} tier's evidence: "
                                 f"{describe(weaker)}. A model playbook may add checks, never weaken the tier's "
                                 "(references/playbook-anatomy.md, Tier floors)", weakened=weaker)
    doc["_path"] = str(path.resolve())
    doc["_sha256"] = _sha256(path)
    doc["_inputs"] = {key: _sha256(p) for key, p in run_inputs(doc, skill_dir).items()}
    return doc


def _check_semantics(doc: dict, path: Path) -> None:
    names = [s["name"] for s in doc["scenarios"]]
    if len(set(names)) != len(names):
        raise GateInputError("USER_CONFIG_ERROR", f"playbook {path}: duplicate scenario names {names}")
    for s in doc["scenarios"]:
        idle = sorted(set(s) - SCENARIO_COMMON - KIND_FIELDS[s["kind"]])
        if idle:  # a field nothing reads for this kind would be silently ignored
            users = {f: sorted(k for k, fs in KIND_FIELDS.items() if f in fs) for f in idle}
            raise GateInputError("USER_CONFIG_ERROR", f"playbook {path}: scenario {s['name']} (kind {s['kind']}): "
                                 + "; ".join(f"{f} means nothing for this kind (it applies to: "
                                             f"{', '.join(users[f]) or 'no kind'})" for f in idle))
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
    _check_every_part_runs(doc, path)


def _check_every_part_runs(doc: dict, path: Path) -> None:
    """Refuse a scenario or a matrix value that would expand to no cell (it would silently test nothing)."""
    m = doc["matrix"]
    problems = []
    for s in doc["scenarios"]:
        if not effective_modalities(s, m["modalities"]):
            problems.append(f"scenario {s['name']} (kind {s['kind']}) runs in no modality: its modalities "
                            f"{s.get('modalities') or list(KIND_MODALITIES[s['kind']])} x kind {s['kind']} "
                            f"{list(KIND_MODALITIES[s['kind']])} x matrix {m['modalities']} is empty")
    for mod in m["modalities"]:
        if mod == "contract":
            if not [f for f in m["formats"] if f != "safetensors"]:
                problems.append("matrix.modalities has contract, but contract cells need an OpenVINO format and "
                                "matrix.formats has none")
        elif not any(mod in effective_modalities(s, m["modalities"]) for s in doc["scenarios"]):
            problems.append(f"matrix modality {mod} gets no cell: no scenario runs in it")
    if problems:
        raise GateInputError("USER_CONFIG_ERROR", f"playbook {path}: " + "; ".join(problems))


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
                    if mod not in effective_modalities(s, m["modalities"]):
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
    """How the playbook names the model (as written; not an identity: see ``model_identity``)."""
    m = doc["model"]
    return m.get("hf_id") or (f"fixture:{m['fixture']}" if "fixture" in m else m["path"])


HASH_CHUNK = 8 << 20


def _file_digest(h, path: Path) -> None:
    """Feed a file's name, size and content into ``h`` (streamed: constant memory at any size)."""
    h.update(f"{path.name}\0{path.stat().st_size}\0".encode())
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(HASH_CHUNK), b""):
            h.update(chunk)


def folder_digest(folder: Path, patterns: tuple[str, ...]) -> str:
    """SHA-256 over the files of ``folder`` matching ``patterns`` (sorted by name): names, sizes, content."""
    h = hashlib.sha256()
    files = sorted({p for pat in patterns for p in folder.glob(pat) if p.is_file()}, key=lambda p: p.name)
    for p in files:
        _file_digest(h, p)
    return h.hexdigest()


# what identifies a model folder: its config, its weights index and the weights themselves
SOURCE_IDENTITY_FILES = ("config.json", "*.safetensors.index.json", "*.safetensors")
IR_IDENTITY_FILES = ("openvino_model.xml", "openvino_model.bin")


def model_identity(doc: dict, source: Path, irs: dict[str, Path] | None = None) -> dict:
    """The stable identity the evidence and the registry key a model by: the hub id, ``fixture:<name>``,
    or for a ``path:`` model ``path:<folder name>@<16 hex of the SHA-256 of its config, weights index
    and weights>``; IRs given by the playbook are part of what is certified, so they join the id
    (``+<format>@<hash>``). Two different models never get the same id; the same model moved or
    renamed keeps its hash."""
    m = doc["model"]
    if "hf_id" in m:
        out = {"id": m["hf_id"], "kind": "hf_id", "ref": m["hf_id"]}
    elif "fixture" in m:
        out = {"id": f"fixture:{m['fixture']}", "kind": "fixture", "ref": m["fixture"]}
    else:
        digest = folder_digest(source, SOURCE_IDENTITY_FILES)
        out = {"id": f"path:{source.name}@{digest[:16]}", "kind": "path", "ref": m["path"], "sha256": digest}
    for fmt, ir in sorted((irs or {}).items()):
        digest = folder_digest(ir, IR_IDENTITY_FILES)
        out["id"] += f"+{fmt}@{digest[:16]}"
        out.setdefault("ir_sha256", {})[fmt] = digest
    return out


def declared_inputs(path: str | Path, tier: str | None = None, skill_dir: str | Path | None = None) -> dict[str, str]:
    """What a run of the playbook would read besides the playbook, hashed, without validating anything
    (check-lock must name a changed template even when that template no longer parses)."""
    raw = _read_yaml(Path(path), "playbook")
    chosen = tier or raw.get("tier")
    if chosen not in TIERS:
        raise GateInputError("USER_CONFIG_ERROR", f"playbook {path}: unknown or missing tier {chosen!r}")
    scenarios = list(raw.get("scenarios") or [])
    try:
        template = load_template(chosen, skill_dir)
    except GateInputError:
        template = {}  # an unreadable template is still hashed below: its hash names it
    scenarios += list(template.get("scenarios") or [])
    doc = {"tier": chosen, "scenarios": [s for s in scenarios
                                         if isinstance(s, dict) and s.get("pairs_from") in PAIRS_FROM_FILES]}
    return {key: _sha256(p) for key, p in run_inputs(doc, skill_dir).items() if p.is_file()}
