#!/usr/bin/env python3
"""Regenerate the lock the model-certification skill ships for its own playbooks:
``skills/model-certification/playbooks/playbooks.lock.json`` (every playbook under
``playbooks/models`` plus the tier templates, the playbook schema and the data files a run reads).

The pack's Quick start runs a shipped playbook against this lock, so it must be current: run this
script after editing a shipped playbook, template, the playbook schema or a data file; ``--check``
(and a unit test) fails when the shipped lock is stale. Users lock their own playbooks with
``certify.py lock-playbooks`` into their run's output, never into the pack.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modelgate.certify.lock import LOCK_NAME, build_lock  # noqa: E402

SKILL = ROOT / "skills" / "model-certification"
SHIPPED = SKILL / "playbooks" / LOCK_NAME
MODELS = SKILL / "playbooks" / "models"


def expected() -> str:
    return json.dumps(build_lock(MODELS, SKILL), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 when the shipped lock is stale; write nothing")
    args = ap.parse_args(argv)
    text = expected()
    if args.check:
        current = SHIPPED.read_text(encoding="utf-8") if SHIPPED.is_file() else ""
        if current != text:
            print(f"{SHIPPED.relative_to(ROOT)} is stale: run scripts/lock_playbooks.py", file=sys.stderr)
            return 1
        print(f"{SHIPPED.relative_to(ROOT)} is current")
        return 0
    SHIPPED.write_text(text, encoding="utf-8")
    print(f"wrote {SHIPPED.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
