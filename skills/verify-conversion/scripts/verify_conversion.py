#!/usr/bin/env python3
"""verify-conversion: convert (optionally) and verify a model on OpenVINO against its source.

Thin entry point; the work is in modelgate.verify.cli (also `modelgate verify ...`). Run with --help.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # repo root, when not pip-installed

from modelgate.verify.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
