#!/usr/bin/env python3
"""Benchmark verify-conversion on the tiny llama fixture; prints one JSON object of times and ratios.

- cold verify: convert (fp16) + verify, as `modelgate verify --model <llama>` runs it
- raw export: the bare `optimum-cli export openvino` of the same model, measured in the same run
- overhead ratio: (cold verify - its own export time) / raw export   (target <= 0.25)
- warm verify: verify of the existing IR (`--converted`)              (target < 15 s)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OVERHEAD_TARGET = 0.25
WARM_TARGET_S = 15.0


def _timed(argv: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT)
    return time.monotonic() - t0, p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=1, help="runs of each measurement (median reported)")
    args = ap.parse_args(argv)
    from modelgate import fixtures
    from modelgate.openvino.convert import _optimum_cli

    model = str(fixtures.hf_model("llama"))
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    verify = [sys.executable, "-m", "modelgate.cli", "verify", "--model", model]
    cold, raw, export_in_verify, warm = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        for i in range(args.repeats):
            out = Path(tmp) / f"cold{i}"
            s, p = _timed(verify + ["--weight-format", "fp16", "--output", str(out)], env)
            v = json.loads(p.stdout)
            if not v["pass"]:
                print(json.dumps({"error": "cold verify failed", "detail": v["detail"]}))
                return 1
            cold.append(s)
            export_in_verify.append(v["timings"]["convert_s"])
            s, p = _timed(_optimum_cli() + ["export", "openvino", "--model", model, "--task",
                                            "text-generation-with-past", "--weight-format", "fp16",
                                            str(Path(tmp) / f"raw{i}")], env)
            if p.returncode != 0:
                print(json.dumps({"error": "raw export failed", "log": p.stdout[-500:]}))
                return 1
            raw.append(s)
            s, p = _timed(verify + ["--converted", str(out / "ir")], env)
            if json.loads(p.stdout)["pass"] is not True:
                print(json.dumps({"error": "warm verify failed"}))
                return 1
            warm.append(s)

    def med(xs):
        return sorted(xs)[len(xs) // 2]

    overhead = (med(cold) - med(export_in_verify)) / med(raw)
    print(json.dumps({
        "model": "fixtures.hf_model('llama') (2 layers, hidden 64)", "repeats": args.repeats,
        "cold_verify_s": round(med(cold), 2), "export_inside_verify_s": round(med(export_in_verify), 2),
        "raw_optimum_export_s": round(med(raw), 2), "cold_over_raw": round(med(cold) / med(raw), 3),
        "gate_overhead_ratio": round(overhead, 3), "overhead_target": OVERHEAD_TARGET,
        "overhead_ok": overhead <= OVERHEAD_TARGET,
        "warm_verify_s": round(med(warm), 2), "warm_target_s": WARM_TARGET_S, "warm_ok": med(warm) < WARM_TARGET_S,
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
