#!/usr/bin/env python3
"""Validate every skill: frontmatter, line budget, references, scripts' --help, evals.json, .claude links.

Thin entry point: the validate-skills command (``modelgate.cli.validate_skills``); prints the JSON
report; exit 1 on any problem.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modelgate.cli.spine import run_command  # noqa: E402
from modelgate.cli.validate_skills import VALIDATE_SKILLS  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_command(VALIDATE_SKILLS, sys.argv[1:], prog="validate_skills.py"))
