#!/usr/bin/env python3
"""day0_release.py: the day-0 release conductor, PTQ -> deploy canary -> eval -> compare, a gate after
each stage (run with --help).

Runs on the installed modelgate engine; without one, on the pure copy in vendor/ (what that copy
cannot run answers with a JSON verdict that says how to install the engine).
"""
import importlib.util
import sys
from pathlib import Path

# The installed engine when there is one (an editable install is found only through its import hook,
# so vendor/ must not be put on sys.path first); otherwise the pure copy beside this script.
if importlib.util.find_spec("modelgate") is None:
    sys.path.append(str(Path(__file__).resolve().parent / "vendor"))
from modelgate.cli.entry import run_script  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_script("modelgate.cli.release:RELEASE", __file__, gate="release-decision"))
