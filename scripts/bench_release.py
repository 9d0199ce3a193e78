#!/usr/bin/env python3
"""Benchmark the day-0 conductor: wall time per stage (digits and tiny-LLM chains) and the resume ratio.

Each chain runs twice in a fresh workspace, as a user would run it (the CLI in a subprocess): the
first run does every stage, the second must skip them all. Prints one table and the ratios;
``--json FILE`` also writes them. Target: resume ratio (second / first wall time) <= 0.1.

Note: the fp32 baseline export of a Hugging Face folder is cached by content outside the workspace
(modelgate.openvino.convert.export_cached), so the first run's baseline-export time is a copy when
that cache is warm.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SCRIPT = ROOT / "skills" / "day0-release" / "scripts" / "day0_release.py"


def _chains():
    from modelgate import fixtures

    return {
        "digits static_int8": ["--model", str(fixtures.digits_cnn() / "digits_cnn.onnx"), "--recipe", "static_int8"],
        "trained-llama int8_asym": ["--model", str(fixtures.hf_model("trained-llama")), "--recipe", "int8_asym",
                                    "--threshold", "0.1", "--relative"],
    }


def _run(args: list[str], ws: Path) -> tuple[float, dict, int]:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(SCRIPT), *args, "--workspace", str(ws), "--quiet"],
                          capture_output=True, text=True, timeout=1800)
    wall = time.monotonic() - t0
    return wall, json.loads(proc.stdout), proc.returncode


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--only", choices=["digits", "llm"], help="run one chain")
    args = p.parse_args(argv)
    results = {}
    for name, chain_args in _chains().items():
        if args.only and not name.startswith({"digits": "digits", "llm": "trained"}[args.only]):
            continue
        with tempfile.TemporaryDirectory(prefix="bench-release-") as tmp:
            first_s, first, code1 = _run(chain_args, Path(tmp))
            second_s, second, code2 = _run(chain_args, Path(tmp))
        stages = {k.split(":", 1)[1]: v for k, v in first["timings"].items() if k.startswith("stage:")}
        results[name] = {"decision": first["decision"], "exit_codes": [code1, code2], "stages_s": stages,
                         "first_wall_s": round(first_s, 3), "second_wall_s": round(second_s, 3),
                         "resume_ratio": round(second_s / first_s, 4),
                         "second_run_skipped": second["resume"]["skipped"], "second_run_ran": second["resume"]["ran"]}
    for name, r in results.items():
        print(f"\n{name}: decision {r['decision']}")
        print(f"  {'stage':38s} {'seconds':>8s}")
        for stage, secs in r["stages_s"].items():
            print(f"  {stage:38s} {secs:8.2f}")
        print(f"  first run wall {r['first_wall_s']:.2f}s, resumed run wall {r['second_wall_s']:.2f}s "
              f"(ran again: {r['second_run_ran'] or 'nothing'})")
        met = "met" if r["resume_ratio"] <= 0.1 else "MISSED"
        print(f"  resume ratio {r['resume_ratio']:.3f} (target <= 0.1: {met})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
