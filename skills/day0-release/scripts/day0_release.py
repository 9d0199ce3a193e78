#!/usr/bin/env python3
"""Day-0 release conductor: PTQ -> deploy canary -> eval -> compare, a gate after each stage.

Thin entry point; the work is in modelgate.release.cli (also `modelgate release ...`).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from modelgate.release.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
