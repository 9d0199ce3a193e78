"""Load routing-eval cases and skill descriptions.

Splits: ``train`` is ``skills/<name>/evals.json`` (used while writing descriptions and to
calibrate the router), ``heldout`` is ``evals/heldout/*.json`` (never used for either),
``extra`` is any file given with ``--cases``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelgate import contract
from modelgate.gates.routing import NONE  # noqa: F401  (re-exported: the routers' label for no skill)
from modelgate.skillpack import frontmatter


@dataclass(frozen=True)
class Case:
    """One routing case with the label a correct router gives it."""
    name: str
    query: str
    skill: str
    should_trigger: bool
    expected: str  # a skill name, or NONE
    split: str
    source: str


def expected_label(case: dict) -> str:
    """The correct route: the skill for a positive; routes_to (or none) for a negative."""
    if case["should_trigger"]:
        return case["skill"]
    return case.get("routes_to") or NONE


def load_file(path: str | Path, split: str) -> list[Case]:
    """Read and schema-check one evals file; raises GateInputError on anything invalid."""
    data = contract.read_json(path, what="evals file")
    errors = contract.schema_errors("evals", data)
    if errors:
        raise contract.GateInputError("USER_CONFIG_ERROR", f"{path}: not a valid evals file: " + "; ".join(errors[:5]))
    names = [c["name"] for c in data]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise contract.GateInputError("USER_CONFIG_ERROR", f"{path}: duplicate case names: {', '.join(dupes)}")
    return [Case(c["name"], c["query"], c["skill"], c["should_trigger"], expected_label(c), split, str(path))
            for c in data]


def skill_names(root: Path) -> list[str]:
    """Folders under ``skills/`` that hold a SKILL.md, sorted."""
    return sorted(p.parent.name for p in (root / "skills").glob("*/SKILL.md"))


def descriptions(root: Path) -> dict[str, str]:
    """name -> frontmatter description of every skill; raises GateInputError if one cannot be read."""
    out = {}
    for name in skill_names(root):
        try:
            fields, _ = frontmatter.read(root / "skills" / name / "SKILL.md")
        except (OSError, frontmatter.FrontmatterError) as exc:
            raise contract.GateInputError("USER_CONFIG_ERROR", f"skills/{name}/SKILL.md: {exc}") from exc
        desc = fields.get("description")
        if not isinstance(desc, str) or not desc.strip():
            raise contract.GateInputError("USER_CONFIG_ERROR", f"skills/{name}/SKILL.md: no description")
        out[name] = desc.strip()
    if not out:
        raise contract.GateInputError("USER_CONFIG_ERROR", f"no skills found under {root / 'skills'}")
    return out


def load_splits(root: Path, extra: list[str] = ()) -> list[Case]:
    """All cases: train (skills/*/evals.json), heldout (evals/heldout/*.json), extra (--cases)."""
    out: list[Case] = []
    for name in skill_names(root):
        f = root / "skills" / name / "evals.json"
        if f.is_file():
            out += load_file(f, "train")
    for f in sorted((root / "evals" / "heldout").glob("*.json")):
        out += load_file(f, "heldout")
    for f in extra:
        out += load_file(f, "extra")
    return out
