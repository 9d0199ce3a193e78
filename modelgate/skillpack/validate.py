"""The skill validator: every skill must load, route, and run as its SKILL.md says.

This module reads the skill folders and runs their scripts; the judgements on what it finds are
the pure functions of ``modelgate.gates.skills``.

Checks (each problem names the skill, the check and the path):
- frontmatter: parses as YAML (a parse error makes agents load the skill with no fields at all,
  silently), only the open spec's fields, ``name`` = folder name (lowercase-hyphen, <= 64),
  ``description`` <= 1024 characters (a warning above 800), third person, says what the skill does, when to use it
  ("Use when") and when not ("Do NOT use"), no angle brackets;
- SKILL.md line budget (error above the spec's 500 lines, warning above the house's 300);
- every file SKILL.md references (markdown links, ``references/…``, ``scripts/…`` paths) exists;
- every script SKILL.md names runs with ``--help`` and exits 0, ``${CLAUDE_SKILL_DIR}`` expanded to
  the skill folder (as Claude Code does) and run from another folder; commands in code blocks name
  scripts as ``${CLAUDE_SKILL_DIR}/scripts/...``; every ``modelgate <command>`` it names exists
  and answers ``--help``;
- evals.json is valid against ``schemas/evals.schema.json``, names its own skill, and has enough
  should-trigger and should-not-trigger cases;
- every ``.claude/skills/<name>`` resolves to ``skills/<name>``, and every skill has one.
"""
from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from modelgate import contract
from modelgate.gates.skills import check_frontmatter, evals_problems, line_budget_problems, problem
from modelgate.skillpack import frontmatter

MD_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
LOCAL_PATH = re.compile(r"(?<![\w/.-])(?:\$\{CLAUDE_SKILL_DIR\}/|\./)?"
                        r"((?:references|scripts|playbooks|recipes|assets|templates)/[\w./-]*[\w-](?:\.\w+)?)")
SCRIPT = re.compile(r"(?<![\w/.-])(?:\$\{CLAUDE_SKILL_DIR\}/|\./)?(scripts/[\w./-]+\.py)\b")
# a script named in a command without the skill folder variable runs only from the skill root
BARE_SCRIPT = re.compile(r"(?<![\w/.{}-])(?<!\$\{CLAUDE_SKILL_DIR\}/)(?:\./)?(scripts/[\w./-]+\.py)\b")
FENCED = re.compile(r"```.*?```", re.DOTALL)
MODELGATE_CMD = re.compile(r"(?<![\w/.-])modelgate\s+([a-z][a-z0-9-]*)")
SKILL_DIR_VAR = "${CLAUDE_SKILL_DIR}"
HELP_TIMEOUT_S = 120.0


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
    """Scripts a SKILL.md body names (relative to the skill folder)."""
    return sorted({m.group(1) for m in SCRIPT.finditer(body)})


def bare_script_commands(body: str) -> list[str]:
    """Scripts named inside fenced code blocks without ``${CLAUDE_SKILL_DIR}/``: those commands only
    run from the skill root, not from wherever the agent is."""
    return sorted({m.group(1) for block in FENCED.finditer(body) for m in BARE_SCRIPT.finditer(block.group(0))})


CODE = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)


def named_modelgate_commands(body: str) -> list[str]:
    """``modelgate <command>`` invocations inside code (prose such as "the modelgate package" is not one)."""
    code = "\n".join(m.group(0) for m in CODE.finditer(body))
    return sorted({m.group(1) for m in MODELGATE_CMD.finditer(code)})


def _run_help(argv: list[str], cwd: Path, env: dict | None = None) -> tuple[bool, str, str]:
    """(exit 0, why not in one line, the whole output) of running ``argv``."""
    from modelgate import childproc

    res = childproc.run_command(argv, timeout=HELP_TIMEOUT_S, cwd=str(cwd), error_class="USER_CONFIG_ERROR",
                                env=env)
    if res.ok:
        return True, "", res.log_tail or ""
    tail = (res.log_tail or "")[-300:]
    return False, f"{res.detail} | {tail}" if res.detail and tail else (res.detail or tail), res.log_tail or ""


def check_skill(root: Path, name: str, run_scripts: bool = True) -> list[dict]:
    """Every check of one skill folder ``skills/<name>``."""
    sdir = root / "skills" / name
    md = sdir / "SKILL.md"
    if not md.is_file():
        return [problem(name, "skill_md.exists", "SKILL.md is missing", md)]
    text = md.read_text(encoding="utf-8")
    try:
        fields, body = frontmatter.parse(text)
    except frontmatter.FrontmatterError as exc:
        probs = [problem(name, "frontmatter.yaml", f"{exc} (agents would load this skill with no fields)", md)]
        body = text
        fields = None
    else:
        probs = [dict(p, path=str(md)) for p in check_frontmatter(name, fields)]
    probs += line_budget_problems(name, text.count("\n") + (0 if text.endswith("\n") else 1), md)
    for rel in referenced_paths(body):
        if not (sdir / rel).exists():
            probs.append(problem(name, "references.exist", f"SKILL.md references {rel}, which does not exist",
                                 sdir / rel))
    for rel in bare_script_commands(body):
        probs.append(problem(name, "scripts.skill_dir", f"a command runs {rel} without {SKILL_DIR_VAR}/: it works only "
                                                         f"from the skill root; write {SKILL_DIR_VAR}/{rel}", md))
    if run_scripts:
        probs += _run_named(name, sdir, body)
    probs += check_evals(sdir / "evals.json", name)
    return probs


def _run_named(name: str, sdir: Path, body: str) -> list[dict]:
    """Run ``--help`` of every script and ``modelgate`` command the body names."""
    probs = []
    env = dict(os.environ, CLAUDE_SKILL_DIR=str(sdir.resolve()))
    with tempfile.TemporaryDirectory(prefix="skill-help-") as elsewhere:
        for rel in named_scripts(body):
            script = sdir / rel
            if not script.is_file():
                continue  # already reported as a missing reference
            # as Claude Code runs it: ${CLAUDE_SKILL_DIR} expanded, from whatever folder the agent is in
            ok, why, _ = _run_help([sys.executable, str(script.resolve()), "--help"], Path(elsewhere), env)
            if not ok:
                probs.append(problem(name, "scripts.help", f"{rel} --help did not exit 0: {why}", script))
    for cmd in named_modelgate_commands(body):
        if cmd == "help":
            continue
        ok, why, output = _run_help([sys.executable, "-m", "modelgate.cli", cmd, "--help"], sdir)
        if not ok and "invalid choice" in output:  # the spine answers an unknown command with this verdict
            probs.append(problem(name, "commands.exist", f"SKILL.md names `modelgate {cmd}`, which is not a command"))
        elif not ok:
            probs.append(problem(name, "commands.help", f"modelgate {cmd} --help did not exit 0: {why}"))
    return probs


def check_evals(path: Path, name: str) -> list[dict]:
    """evals.json: schema-valid, about this skill, enough positive and negative cases, unique names."""
    if not path.is_file():
        return [problem(name, "evals.exists", "evals.json is missing", path)]
    try:
        data = contract.read_json(path, what="evals.json")
    except contract.GateInputError as exc:
        return [problem(name, "evals.json", exc.detail, path)]
    errors = contract.schema_errors("evals", data)
    if errors:
        return [problem(name, "evals.schema", "; ".join(errors[:5]), path)]
    return evals_problems(name, data, path)


def check_links(root: Path, skills: list[str]) -> list[dict]:
    """.claude/skills/<name> must resolve to skills/<name> for every skill, and point nowhere else."""
    probs = []
    link_dir = root / ".claude" / "skills"
    for name in skills:
        link = link_dir / name
        if not link.exists():
            kind = "is a broken symlink" if link.is_symlink() else "is missing"
            probs.append(problem(name, "claude_link", f".claude/skills/{name} {kind}", link))
        elif link.resolve() != (root / "skills" / name).resolve():
            probs.append(problem(name, "claude_link", f".claude/skills/{name} resolves to {link.resolve()}, "
                                                      f"not skills/{name}", link))
    if link_dir.is_dir():
        for entry in sorted(link_dir.iterdir()):
            if entry.name not in skills:
                target = entry.resolve() if entry.exists() else None
                probs.append(problem(entry.name, "claude_link",
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
        problems.append(problem("-", "skills.exist", f"no skill folders under {root / 'skills'}"))
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


def run(args) -> int:
    """Validate the skills under ``args.root``; print the JSON report; exit 0 valid, 1 problems, 2 no skills/."""
    root = Path(args.root)
    if not (root / "skills").is_dir():  # the spine prints it as a verdict, exit 2
        raise contract.GateInputError("USER_CONFIG_ERROR", f"no skills/ folder under {root}")
    report = validate(root.resolve(), run_scripts=not args.no_run)
    errors = contract.schema_errors("skill-validation", report)
    if errors:
        raise RuntimeError("validation report violates its schema: " + "; ".join(errors[:5]))
    if args.output:
        contract.atomic_write_json(args.output, report)
    print(json.dumps(report, indent=2))
    return int(report["exit_code"])
