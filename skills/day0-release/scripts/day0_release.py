#!/usr/bin/env python3
"""day0_release.py: the day-0 release conductor, PTQ -> deploy canary -> eval -> compare, a gate after
each stage (run with --help).

Runs on the installed modelgate engine; without one, on the pure copy in vendor/ (what that copy
cannot run answers with a JSON verdict that says how to install the engine).
"""
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent / "vendor"))  # an installed engine is found first
from modelgate.cli.entry import run_script  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_script("modelgate.cli.release:RELEASE", __file__, gate="release-decision"))
