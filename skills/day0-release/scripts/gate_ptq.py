#!/usr/bin/env python3
"""gate_ptq.py: does a quantized OpenVINO IR keep its recipe's promises? (run with --help)

Runs on the installed modelgate engine; without one, on the pure copy in vendor/ (what that copy
cannot run answers with a JSON verdict that says how to install the engine).
"""
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent / "vendor"))  # an installed engine is found first
from modelgate.cli.entry import run_script  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_script("modelgate.cli.day0:GATE_PTQ", __file__, gate="gate-ptq"))
