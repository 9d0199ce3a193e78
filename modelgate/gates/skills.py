"""The skill validator's decisions: pure, parsed SKILL.md facts in, problems out.

``modelgate.skillpack.validate`` reads the skill folders, parses the frontmatter, runs the scripts'
``--help`` and hands what it found to these functions. Each problem is
``{"skill", "check", "severity", "detail"[, "path"]}`` (schemas/skill-validation.schema.json).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ALLOWED_FIELDS = frozenset({"name", "description", "license", "compatibility", "metadata", "allowed-tools"})
NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
MAX_NAME = 64
MAX_DESCRIPTION = 1024
LONG_DESCRIPTION = 800   # a warning above it: a router reads a short description best (the house aims at 500-700)
MAX_COMPATIBILITY = 500
MAX_LINES = 500          # the open spec's recommendation: an error above it
HOUSE_LINES = 300        # the house plan: a warning above it
MIN_POSITIVE = 12
MIN_NEGATIVE = 12
FIRST_PERSON = re.compile(r"^(i|i'm|we|you|your|use this)\b", re.IGNORECASE)
WHEN = re.compile(r"\buse (it |this skill )?when\b", re.IGNORECASE)
WHEN_NOT = re.compile(r"\b(do not use|don't use|not for)\b", re.IGNORECASE)


def problem(skill: str, check: str, detail: str, path: str | Path | None = None, severity: str = "error") -> dict:
    """One problem of one skill."""
    out = {"skill": skill, "check": check, "severity": severity, "detail": detail}
    if path is not None:
        out["path"] = str(path)
    return out


def check_frontmatter(name: str, fields: dict) -> list[dict]:
    """Pure checks of parsed frontmatter fields for the skill in folder ``name``."""
    probs = []
    extra = sorted(set(fields) - ALLOWED_FIELDS)
    if extra:
        probs.append(problem(name, "frontmatter.fields", f"fields outside the open spec: {', '.join(extra)}"))
    sk = fields.get("name")
    if not isinstance(sk, str) or not sk:
        probs.append(problem(name, "frontmatter.name", "name is missing or not a string"))
    else:
        if sk != name:
            probs.append(problem(name, "frontmatter.name", f"name {sk!r} differs from the folder name {name!r}"))
        if len(sk) > MAX_NAME or not NAME_RE.match(sk):
            probs.append(problem(name, "frontmatter.name",
                                  f"name {sk!r} must be lowercase letters, digits and single hyphens, <= {MAX_NAME}"))
    desc = fields.get("description")
    if not isinstance(desc, str) or not desc.strip():
        probs.append(problem(name, "frontmatter.description", "description is missing or empty"))
    else:
        if len(desc) > MAX_DESCRIPTION:
            probs.append(problem(name, "frontmatter.description",
                                  f"description is {len(desc)} characters (max {MAX_DESCRIPTION})"))
        elif len(desc) > LONG_DESCRIPTION:
            probs.append(problem(name, "frontmatter.description",
                                 f"description is {len(desc)} characters (above {LONG_DESCRIPTION}: move detail "
                                 "into the body, e.g. a 'When not to use' section)", severity="warning"))
        if "<" in desc or ">" in desc:
            probs.append(problem(name, "frontmatter.description", "description contains angle brackets"))
        if FIRST_PERSON.match(desc.strip()):
            probs.append(problem(name, "frontmatter.description", "description is not in the third person"))
        when = WHEN.search(desc)
        if not when:
            probs.append(problem(name, "frontmatter.description",
                                 "description does not say when to use it ('Use when ...')"))
        elif not desc[:when.start()].strip():
            probs.append(problem(name, "frontmatter.description",
                                 "description does not say what the skill does before 'Use when'"))
        if not WHEN_NOT.search(desc):
            probs.append(problem(name, "frontmatter.description",
                                 "description does not say when not to use it ('Do NOT use ...')"))
    comp = fields.get("compatibility")
    if comp is not None and (not isinstance(comp, str) or len(comp) > MAX_COMPATIBILITY):
        probs.append(problem(name, "frontmatter.compatibility",
                             f"compatibility must be a string <= {MAX_COMPATIBILITY}"))
    meta = fields.get("metadata")
    if meta is not None and not (isinstance(meta, dict)
                                 and all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())):
        probs.append(problem(name, "frontmatter.metadata", "metadata must map strings to strings"))
    for key in ("license", "allowed-tools"):
        if key in fields and not isinstance(fields[key], str):
            probs.append(problem(name, f"frontmatter.{key}", f"{key} must be a string"))
    return probs


def line_budget_problems(name: str, lines: int, path: str | Path | None = None) -> list[dict]:
    """SKILL.md length: an error above the open spec's MAX_LINES, a warning above the house's HOUSE_LINES."""
    if lines > MAX_LINES:
        return [problem(name, "skill_md.lines", f"SKILL.md has {lines} lines (max {MAX_LINES})", path)]
    if lines > HOUSE_LINES:
        return [problem(name, "skill_md.lines", f"SKILL.md has {lines} lines (house budget {HOUSE_LINES})", path,
                        severity="warning")]
    return []


def evals_problems(name: str, cases: list[dict[str, Any]], path: str | Path | None = None) -> list[dict]:
    """A schema-valid evals.json: about this skill, enough positive and negative cases, unique names."""
    probs = []
    others = sorted({c["skill"] for c in cases} - {name})
    if others:
        probs.append(problem(name, "evals.skill", f"cases name other skills: {', '.join(others)}", path))
    pos = sum(c["should_trigger"] for c in cases)
    neg = len(cases) - pos
    if pos < MIN_POSITIVE or neg < MIN_NEGATIVE:
        probs.append(problem(name, "evals.counts", f"{pos} should-trigger and {neg} should-not-trigger cases "
                                                   f"(need >= {MIN_POSITIVE} and >= {MIN_NEGATIVE})", path))
    names = [c["name"] for c in cases]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        probs.append(problem(name, "evals.names", f"duplicate case names: {', '.join(dupes)}", path))
    return probs
