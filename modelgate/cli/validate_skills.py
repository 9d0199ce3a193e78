"""``scripts/validate_skills.py``: the skill validator as a command of the spine (repository tooling).

The checks are ``modelgate.skillpack.validate`` (reading and running) and ``modelgate.gates.skills``
(the judgements); this module declares the command and its arguments.
"""
from __future__ import annotations

import argparse

from modelgate.cli.spine import Command
from modelgate.skillpack import REPO_SKILLS


def configure(p: argparse.ArgumentParser) -> None:
    """The validator's arguments."""
    p.add_argument("--root", default=str(REPO_SKILLS.parent), help="repository root (holds skills/)")
    p.add_argument("--no-run", action="store_true", help="skip running --help of the named scripts")
    p.add_argument("--output", default=None, help="also write the JSON report here")


def run(args: argparse.Namespace) -> int:
    from modelgate.skillpack import validate

    return validate.run(args)


VALIDATE_SKILLS = Command(
    "validate-skills", "validate every skill: frontmatter, line budget, references, scripts' --help, evals.json",
    configure, run, raw_help=True,
    # it prints a report (skill-validation), not a verdict; what stops it before the report is an envelope verdict
    schema="envelope", error_output=lambda args: None,  # --output is the report's file, never an error verdict's
    description="Validate every skill: frontmatter, line budget, references, scripts' --help, evals.json, "
                ".claude links. Prints the JSON report.",
    epilog="exit codes: 0 every skill is valid, 1 at least one problem (listed as JSON), "
           "2 bad arguments or no repository at --root")
