#!/usr/bin/env python3
"""gate_compare: thin entry point; the gate lives in modelgate.release.gate_cli (run with --help)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # repo root, when not pip-installed

from modelgate.release.gate_cli import main_compare  # noqa: E402

if __name__ == "__main__":
    sys.exit(main_compare(sys.argv[1:]))
