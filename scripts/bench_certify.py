#!/usr/bin/env python3
"""Benchmark the certification runner on 2 cores: wall time of the smoke and mvp tiers on the
trained fixture LLM, and the speed-up of --workers 2 over --workers 1 on the same matrix.

Prints one JSON object. Targets (cold CLI runs, as a user types them): smoke < 60 s, mvp < 600 s. Exports
are cached, so run it once to warm the caches (fixtures, exports) before trusting the numbers; --repeat
takes the best.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modelgate.certify import playbook as P  # noqa: E402
from modelgate.certify.runner import run_playbook  # noqa: E402

TARGETS_S = {"smoke": 60.0, "mvp": 600.0}
CLI = Path(__file__).resolve().parent.parent / "skills" / "model-certification" / "scripts" / "certify.py"


def cold_cli(tier: str, workers: int) -> dict:
    """The command a user types, in a fresh interpreter: includes imports and the fork server's preload."""
    import subprocess
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, str(CLI), "--playbook",
                            str(P.PLAYBOOK_DIR / "models" / f"trained-llama-{tier}.yaml"), "--output", tmp,
                            "--workers", str(workers), "--no-progress"],  # the pack ships its lock
                           capture_output=True, text=True, timeout=1800)
        wall = time.monotonic() - t0
    v = json.loads(p.stdout)
    return {"tier": tier, "workers": workers, "wall_s": round(wall, 2), "status": v.get("decision"),
            "exit_code": p.returncode}


def timed(tier: str, workers: int) -> dict:
    doc = P.load_playbook(P.PLAYBOOK_DIR / "models" / f"trained-llama-{tier}.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        s = run_playbook(doc, tmp, workers=workers, allow_unlocked=True, progress=False)
        wall = time.monotonic() - t0
    return {"tier": tier, "workers": workers, "wall_s": round(wall, 2), "status": s["score"]["status"],
            "raw": s["score"]["raw"], "records": s["records"], "cells": s["cells"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement; the best is kept")
    ap.add_argument("--speedup-tier", default="mvp", choices=["smoke", "mvp"],
                    help="tier whose matrix measures the --workers 2 / --workers 1 speed-up")
    args = ap.parse_args(argv)
    best = lambda tier, w: min((timed(tier, w) for _ in range(args.repeat)), key=lambda r: r["wall_s"])  # noqa: E731
    timed("smoke", 2)  # warm-up: fixtures, exports and the OS file cache
    # in-process runs reuse one warm fork server; the cold CLI runs pay its start-up (~10 s of imports)
    runs = {"smoke_cli_cold": cold_cli("smoke", 2), "mvp_cli_cold": cold_cli("mvp", 2),
            "smoke_w2": best("smoke", 2), "mvp_w2": best("mvp", 2)}
    tier = args.speedup_tier
    runs[f"{tier}_w1"] = best(tier, 1)
    w2 = runs[f"{tier}_w2"]["wall_s"]
    out = {"runs": runs,
           "smoke_wall_s": runs["smoke_cli_cold"]["wall_s"], "smoke_target_s": TARGETS_S["smoke"],
           "smoke_within_target": runs["smoke_cli_cold"]["wall_s"] < TARGETS_S["smoke"],
           "mvp_wall_s": runs["mvp_cli_cold"]["wall_s"], "mvp_target_s": TARGETS_S["mvp"],
           "mvp_within_target": runs["mvp_cli_cold"]["wall_s"] < TARGETS_S["mvp"],
           "speedup_tier": tier, "speedup_workers2_over_workers1": round(runs[f"{tier}_w1"]["wall_s"] / w2, 3)}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
