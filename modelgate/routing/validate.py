"""The skill validator: every skill must load, route, and run as its SKILL.md says.

Checks (each problem names the skill, the check and the path):
- frontmatter: parses as YAML (a parse error makes agents load the skill with no fields at all,
  silently), only the open spec's fields, ``name`` = folder name (lowercase-hyphen, <= 64),
  ``description`` <= 1024 characters (a warning above 800), third person, says what the skill does, when to use it
  ("Use when") and when not ("Do NOT use"), no angle brackets;
- SKILL.md line budget (error above the spec's 500 lines, warning above the house's 300);
- every file SKILL.md references (markdown links, ``references/…``, ``scripts/…`` paths) exists;
- every script SKILL.md names runs with ``--help`` from the skill root and exits 0; every
  ``modelgate <command>`` it names exists and answers ``--help``;
- evals.json is valid against ``schemas/evals.schema.json``, names its own skill, and has enough
  should-trigger and should-not-trigger cases;
- every ``.claude/skills/<name>`` resolves to ``skills/<name>``, and every skill has one.
"""
from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

from modelgate import contract
from modelgate.routing import frontmatter

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
HELP_TIMEOUT_S = 120.0
FIRST_PERSON = re.compile(r"^(i|i'm|we|you|your|use this)\b", re.IGNORECASE)
WHEN = re.compile(r"\buse (it |this skill )?when\b", re.IGNORECASE)
WHEN_NOT = re.compile(r"\b(do not use|don't use|not for)\b", re.IGNORECASE)
MD_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
LOCAL_PATH = re.compile(r"(?<![\w/.-])(?:\$\{CLAUDE_SKILL_DIR\}/|\./)?"
                        r"((?:references|scripts|playbooks|recipes|assets|templates)/[\w./-]*[\w-](?:\.\w+)?)")
SCRIPT = re.compile(r"(?<![\w/.-])(?:\$\{CLAUDE_SKILL_DIR\}/|\./)?(scripts/[\w./-]+\.py)\b")
MODELGATE_CMD = re.compile(r"(?<![\w/.-])modelgate\s+([a-z][a-z0-9-]*)")


def _problem(skill: str, check: str, detail: str, path: str | Path | None = None, severity: str = "error") -> dict:
    out = {"skill": skill, "check": check, "severity": severity, "detail": detail}
    if path is not None:
        out["path"] = str(path)
    return out


def check_frontmatter(name: str, fields: dict) -> list[dict]:
    """Pure checks of parsed frontmatter fields for the skill in folder ``name``."""
    probs = []
    extra = sorted(set(fields) - ALLOWED_FIELDS)
    if extra:
        probs.append(_problem(name, "frontmatter.fields", f"fields outside the open spec: {', '.join(extra)}"))
    sk = fields.get("name")
    if not isinstance(sk, str) or not sk:
        probs.append(_problem(name, "frontmatter.name", "name is missing or not a string"))
    else:
        if sk != name:
            probs.append(_problem(name, "frontmatter.name", f"name {sk!r} differs from the folder name {name!r}"))
        if len(sk) > MAX_NAME or not NAME_RE.match(sk):
            probs.append(_problem(name, "frontmatter.name",
                                  f"name {sk!r} must be lowercase letters, digits and single hyphens, <= {MAX_NAME}"))
    desc = fields.get("description")
    if not isinstance(desc, str) or not desc.strip():
        probs.append(_problem(name, "frontmatter.description", "description is missing or empty"))
    else:
        if len(desc) > MAX_DESCRIPTION:
            probs.append(_problem(name, "frontmatter.description",
                                  f"description is {len(desc)} characters (max {MAX_DESCRIPTION})"))
        elif len(desc) > LONG_DESCRIPTION:
            probs.append(_problem(name, "frontmatter.description",
                                  f"description is {len(desc)} characters (above {LONG_DESCRIPTION}: move detail "
                                  "into the body, e.g. a 'When not to use' section)", severity="warning"))
        if "<" in desc or ">" in desc:
            probs.append(_problem(name, "frontmatter.description", "description contains angle brackets"))
        if FIRST_PERSON.match(desc.strip()):
            probs.append(_problem(name, "frontmatter.description", "description is not in the third person"))
        when = WHEN.search(desc)
        if not when:
            probs.append(_problem(name, "frontmatter.description", "description does not say when to use it ('Use when ...')"))
        elif not desc[:when.start()].strip():
            probs.append(_problem(name, "frontmatter.description", "description does not say what the skill does before 'Use when'"))
        if not WHEN_NOT.search(desc):
            probs.append(_problem(name, "frontmatter.description", "description does not say when not to use it ('Do NOT use ...')"))
    comp = fields.get("compatibility")
    if comp is not None and (not isinstance(comp, str) or len(comp) > MAX_COMPATIBILITY):
        probs.append(_problem(name, "frontmatter.compatibility", f"compatibility must be a string <= {MAX_COMPATIBILITY}"))
    meta = fields.get("metadata")
    if meta is not None and not (isinstance(meta, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())):
        probs.append(_problem(name, "frontmatter.metadata", "metadata must map strings to strings"))
    for key in ("license", "allowed-tools"):
        if key in fields and not isinstance(fields[key], str):
            probs.append(_problem(name, f"frontmatter.{key}", f"{key} must be a string"))
    return probs


def referenced_paths(body: str) -> list[str]:
    """Local files a SKILL.md body refers to (markdown links and references/, scripts/, ... paths)."""
    found = []
    for m in MD_LINK.finditer(body):
        target = m.group(1).split("#", 1)[0]
        if target and not re.match(r"^[a-z]+:", target) and not target.startswith("/"):
            found.append(target.removeprefix("./").replace("${CLAUDE_SKILL_DIR}/", ""))
    for m in LOCAL_PATH.finditer(body):
        found.append(m.group(1).rstrip("."))
    # placeholders (<model>, *.py, {name}) are patterns, not files
    return sorted({p for p in found if not re.search(r"[<>*{}]", p)})


def named_scripts(body: str) -> list[str]:
    return sorted({m.group(1) for m in SCRIPT.finditer(body)})


CODE = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)


def named_modelgate_commands(body: str) -> list[str]:
    """``modelgate <command>`` invocations inside code (prose such as "the modelgate package" is not one)."""
    code = "\n".join(m.group(0) for m in CODE.finditer(body))
    return sorted({m.group(1) for m in MODELGATE_CMD.finditer(code)})


def _run_help(argv: list[str], cwd: Path) -> tuple[bool, str]:
    from modelgate import childproc

    res = childproc.run_command(argv, timeout=HELP_TIMEOUT_S, cwd=str(cwd), error_class="USER_CONFIG_ERROR")
    if res.ok:
        return True, ""
    return False, res.detail or (res.log_tail or "")[-300:]


def check_skill(root: Path, name: str, run_scripts: bool = True) -> list[dict]:
    """Every check of one skill folder ``skills/<name>``."""
    sdir = root / "skills" / name
    md = sdir / "SKILL.md"
    if not md.is_file():
        return [_problem(name, "skill_md.exists", "SKILL.md is missing", md)]
    text = md.read_text(encoding="utf-8")
    try:
        fields, body = frontmatter.parse(text)
    except frontmatter.FrontmatterError as exc:
        probs = [_problem(name, "frontmatter.yaml", f"{exc} (agents would load this skill with no fields)", md)]
        body = text
        fields = None
    else:
        probs = [dict(p, path=str(md)) for p in check_frontmatter(name, fields)]
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    if lines > MAX_LINES:
        probs.append(_problem(name, "skill_md.lines", f"SKILL.md has {lines} lines (max {MAX_LINES})", md))
    elif lines > HOUSE_LINES:
        probs.append(_problem(name, "skill_md.lines", f"SKILL.md has {lines} lines (house budget {HOUSE_LINES})", md,
                              severity="warning"))
    for rel in referenced_paths(body):
        if not (sdir / rel).exists():
            probs.append(_problem(name, "references.exist", f"SKILL.md references {rel}, which does not exist", sdir / rel))
    if run_scripts:
        for rel in named_scripts(body):
            script = sdir / rel
            if not script.is_file():
                continue  # already reported as a missing reference
            ok, why = _run_help([sys.executable, rel, "--help"], sdir)
            if not ok:
                probs.append(_problem(name, "scripts.help", f"{rel} --help did not exit 0: {why}", script))
        from modelgate.cli import COMMANDS
        for cmd in named_modelgate_commands(body):
            if cmd not in COMMANDS and cmd not in ("help",):
                probs.append(_problem(name, "commands.exist", f"SKILL.md names `modelgate {cmd}`, which is not a command"))
                continue
            ok, why = _run_help([sys.executable, "-m", "modelgate.cli", cmd, "--help"], sdir)
            if not ok:
                probs.append(_problem(name, "commands.help", f"modelgate {cmd} --help did not exit 0: {why}"))
    probs += check_evals(sdir / "evals.json", name)
    return probs


def check_evals(path: Path, name: str) -> list[dict]:
    """evals.json: schema-valid, about this skill, enough positive and negative cases, unique names."""
    if not path.is_file():
        return [_problem(name, "evals.exists", "evals.json is missing", path)]
    try:
        data = contract.read_json(path, what="evals.json")
    except contract.GateInputError as exc:
        return [_problem(name, "evals.json", exc.detail, path)]
    errors = contract.schema_errors("evals", data)
    if errors:
        return [_problem(name, "evals.schema", "; ".join(errors[:5]), path)]
    probs = []
    others = sorted({c["skill"] for c in data} - {name})
    if others:
        probs.append(_problem(name, "evals.skill", f"cases name other skills: {', '.join(others)}", path))
    pos = sum(c["should_trigger"] for c in data)
    neg = len(data) - pos
    if pos < MIN_POSITIVE or neg < MIN_NEGATIVE:
        probs.append(_problem(name, "evals.counts", f"{pos} should-trigger and {neg} should-not-trigger cases "
                                                    f"(need >= {MIN_POSITIVE} and >= {MIN_NEGATIVE})", path))
    names = [c["name"] for c in data]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        probs.append(_problem(name, "evals.names", f"duplicate case names: {', '.join(dupes)}", path))
    return probs


def check_links(root: Path, skills: list[str]) -> list[dict]:
    """.claude/skills/<name> must resolve to skills/<name> for every skill, and point nowhere else."""
    probs = []
    link_dir = root / ".claude" / "skills"
    for name in skills:
        link = link_dir / name
        if not link.exists():
            kind = "is a broken symlink" if link.is_symlink() else "is missing"
            probs.append(_problem(name, "claude_link", f".claude/skills/{name} {kind}", link))
        elif link.resolve() != (root / "skills" / name).resolve():
            probs.append(_problem(name, "claude_link", f".claude/skills/{name} resolves to {link.resolve()}, "
                                                      f"not skills/{name}", link))
    if link_dir.is_dir():
        for entry in sorted(link_dir.iterdir()):
            if entry.name not in skills:
                target = entry.resolve() if entry.exists() else None
                probs.append(_problem(entry.name, "claude_link",
                                      f".claude/skills/{entry.name} has no skills/{entry.name}"
                                      + ("" if target else " (broken symlink)"), entry))
    return probs


def skill_folders(root: Path) -> list[str]:
    d = root / "skills"
    return sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))) if d.is_dir() else []


def validate(root: Path, run_scripts: bool = True) -> dict:
    """Validate every skill under ``root/skills``; returns the report (schema skill-validation)."""
    t0 = time.monotonic()
    skills = skill_folders(root)
    problems: list[dict] = []
    if not skills:
        problems.append(_problem("-", "skills.exist", f"no skill folders under {root / 'skills'}"))
    for name in skills:
        problems += check_skill(root, name, run_scripts=run_scripts)
    problems += check_links(root, skills)
    errors = [p for p in problems if p["severity"] == "error"]
    warnings = [p for p in problems if p["severity"] == "warning"]
    passed = not errors
    return {"schema_version": contract.SCHEMA_VERSION, "tool": "validate-skills", "pass": passed,
            "exit_code": contract.EXIT_PASS if passed else contract.EXIT_FAIL,
            "detail": (f"{len(skills)} skills valid" if passed else
                       f"{len(errors)} problems in {len({p['skill'] for p in errors})} skills"),
            "skills": skills, "problems": errors, "warnings": warnings,
            "timings": {"total_s": round(time.monotonic() - t0, 3)}}


def main(argv: list[str] | None = None) -> int:
    """Validate the skills; print the JSON report; exit 0 valid, 1 problems, 2 bad arguments."""
    import argparse

    p = argparse.ArgumentParser(prog="validate_skills.py", description=__doc__.split("\n\n")[0],
                                epilog="exit codes: 0 every skill is valid, 1 at least one problem (listed as JSON), "
                                       "2 bad arguments or no repository at --root",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=str(Path(__file__).resolve().parents[2]), help="repository root (holds skills/)")
    p.add_argument("--no-run", action="store_true", help="skip running --help of the named scripts")
    p.add_argument("--output", default=None, help="also write the JSON report here")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int) else contract.EXIT_INPUT
    root = Path(args.root)
    if not (root / "skills").is_dir():
        print(json.dumps({"tool": "validate-skills", "pass": False, "exit_code": 2,
                          "detail": f"no skills/ folder under {root}"}, indent=2))
        return contract.EXIT_INPUT
    report = validate(root.resolve(), run_scripts=not args.no_run)
    errors = contract.schema_errors("skill-validation", report)
    if errors:
        raise RuntimeError("validation report violates its schema: " + "; ".join(errors[:5]))
    if args.output:
        contract.atomic_write_json(args.output, report)
    print(json.dumps(report, indent=2))
    return int(report["exit_code"])
