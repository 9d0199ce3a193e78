#!/usr/bin/env python3
"""Run the skills' routing evals (embedding backend + lexical baseline, or a real agent CLI).

Thin entry point over ``modelgate.routing.cli``; ``--help`` lists the options and exit codes.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modelgate.routing.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
