"""The skill folders of the pack: finding them, reading their frontmatter, validating them.

A command that reads files from a skill folder (the certification tier templates, the day-0
recipes) takes them from the folder it was given (``--skill-dir``; a skill script passes the
folder it runs from), else from the repository's ``skills/<name>`` when the engine runs from a
checkout. A copied skill folder therefore runs with its own, possibly edited, files.
"""
from __future__ import annotations

import os
from pathlib import Path

from modelgate.contract import GateInputError

SKILL_NAMES = ("day0-release", "model-certification", "verify-conversion")
# skills/ of the repository this engine belongs to (present in a checkout or an editable install)
REPO_SKILLS = Path(__file__).resolve().parents[2] / "skills"


def skill_dir(name: str, explicit: str | os.PathLike | None = None) -> Path:
    """The folder of skill ``name``: ``explicit`` when given, else the repository's ``skills/<name>``.

    Raises GateInputError (USER_CONFIG_ERROR) when the folder is not a skill folder or cannot be found.
    """
    if explicit is not None:
        p = Path(explicit)
        if not (p / "SKILL.md").is_file():
            raise GateInputError("USER_CONFIG_ERROR", f"--skill-dir {p} is not a skill folder (it has no SKILL.md)")
        return p
    p = REPO_SKILLS / name
    if not (p / "SKILL.md").is_file():
        raise GateInputError("USER_CONFIG_ERROR", f"cannot find the {name} skill folder (the engine is not running "
                             f"from a repository checkout); pass --skill-dir <folder of the {name} skill>")
    return p
