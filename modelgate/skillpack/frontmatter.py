"""Read a SKILL.md's YAML frontmatter strictly.

Agent runtimes load a skill whose frontmatter fails to parse with no fields at all, silently;
so here a parse error is an error the caller sees, never an empty dict.
"""
from __future__ import annotations

from pathlib import Path


class FrontmatterError(ValueError):
    """The SKILL.md has no frontmatter block, or its YAML does not parse to a mapping."""


def split(text: str) -> tuple[str, str]:
    """(frontmatter YAML text, body) of a SKILL.md; raises FrontmatterError without a leading block."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise FrontmatterError("SKILL.md does not start with a '---' frontmatter block")
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            return "".join(lines[1:i]), "".join(lines[i + 1:])
    raise FrontmatterError("frontmatter block is not closed with '---'")


def parse(text: str) -> tuple[dict, str]:
    """(fields, body); raises FrontmatterError on YAML errors or a non-mapping block."""
    import yaml

    head, body = split(text)
    try:
        data = yaml.safe_load(head)
    except yaml.YAMLError as exc:
        raise FrontmatterError(f"frontmatter YAML does not parse: {exc}".replace("\n", " ")) from exc
    if not isinstance(data, dict):
        raise FrontmatterError(f"frontmatter is not a mapping (got {type(data).__name__})")
    return data, body


def read(skill_md: str | Path) -> tuple[dict, str]:
    """Parse a SKILL.md file (UTF-8)."""
    return parse(Path(skill_md).read_text(encoding="utf-8"))
