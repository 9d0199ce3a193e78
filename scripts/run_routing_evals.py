#!/usr/bin/env python3
"""Run the skills' routing evals (embedding backend + lexical baseline, or a real agent CLI).

Thin entry point: the ``modelgate routing-evals`` command (``modelgate.cli.routing``); ``--help``
lists the options and exit codes.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modelgate.cli.routing import ROUTING_EVALS  # noqa: E402
from modelgate.cli.spine import run_command  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_command(ROUTING_EVALS, sys.argv[1:], prog="run_routing_evals.py"))
