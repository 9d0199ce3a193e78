#!/usr/bin/env python3
"""Validate every skill: frontmatter, line budget, references, scripts' --help, evals.json, .claude links.

Thin entry point over ``modelgate.routing.validate``; prints the JSON report; exit 1 on any problem.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modelgate.routing.validate import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
