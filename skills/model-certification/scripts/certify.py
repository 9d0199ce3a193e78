#!/usr/bin/env python3
"""Run a model-certification playbook (thin entry point; the engine is modelgate.certify)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from modelgate.certify.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
