#!/usr/bin/env python3
"""Benchmark the day-0 conductor: the evaluation stage's cost per task kind as a ratio to the PTQ stage,
wall time per stage, and the resume ratio.

Each model's chain runs as a user would run it (the CLI in a subprocess), in one run folder: the first
run quantizes and evaluates (its ``quantize-<recipe>`` stage is the PTQ reference), and the same command
right after it must skip every stage (resume ratio = its wall time / the first run's, target <= 0.1);
every further run changes only ``--tasks`` (or ``--eval-data``), so PTQ, gate_ptq and the canary are
reused and only the evaluation stages run again (a run folder keeps one evaluation per variant). For
each task kind the table shows the evaluation stages (baseline + candidate) in seconds, their ratio to
the PTQ stage, and milliseconds per sample. Timings on a shared machine are noisy: compare the ratios
of one run. ``--json FILE`` also writes the results.

The tiny fixtures make both stages mostly fixed cost (process start, imports, model load); on a real
1-8 B model the evaluation grows with samples x forward cost while PTQ grows with weights only, so the
ratio is the number to watch as the model grows.
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


def _digits_images(root: Path) -> Path:
    from PIL import Image

    from modelgate import data

    _, _, x, y = data.digits_data()
    for i in range(len(y)):
        folder = root / str(int(y[i]))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((x[i, 0] * 255).round().astype("uint8"), mode="L").save(folder / f"{i:03d}.png")
    return root


def _qa_file(root: Path) -> Path:
    from modelgate import data

    path = root / "qa.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "prompt": p, "answer": a}) + "\n"
                            for i, (p, a) in enumerate(data.color_facts())))
    return path


def _plans(tmp: Path) -> dict:
    """model -> (base arguments, [(task kind, extra arguments)]); the first entry also measures PTQ."""
    from modelgate import fixtures
    from tests.support.lmeval_tasks import write_tasks

    include = str(write_tasks(tmp / "tasks"))
    lm = ["--lm-eval-include", include, "--threshold", "0.1"]
    return {
        "trained-llama int8_asym": (
            ["--model", str(fixtures.hf_model("trained-llama")), "--recipe", "int8_asym"],
            [("answer similarity (240 prompts)", []),
             ("lm-eval multiple choice (cf_mc)", ["--tasks", "lm-eval:cf_mc", *lm]),
             ("lm-eval generate_until (cf_gen)", ["--tasks", "lm-eval:cf_gen", *lm]),
             ("lm-eval rolling log-likelihood (cf_ppl)", ["--tasks", "lm-eval:cf_ppl", *lm]),
             ("--eval-data prompts with answers (qa)", ["--eval-data", str(_qa_file(tmp)), "--threshold", "0.1"]),
             ("fixture tasks (color facts + perplexity)", ["--tasks", "fixture:color-facts,fixture:grammar-ppl",
                                                           "--threshold", "0.1"])]),
        "digits-cnn static_int8": (
            ["--model", str(fixtures.digits_cnn() / "digits_cnn.onnx"), "--recipe", "static_int8"],
            [("--eval-data labelled image folder (450)", ["--eval-data", str(_digits_images(tmp / "digits"))]),
             ("fixture:digits (450)", ["--tasks", "fixture:digits"])]),
    }


def _run(args: list[str], ws: Path) -> tuple[float, dict, int]:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(SCRIPT), *args, "--workspace", str(ws), "--run-id", "bench",
                           "--quiet"], capture_output=True, text=True, timeout=3600)
    return time.monotonic() - t0, json.loads(proc.stdout), proc.returncode


def _stage(rep: dict, prefix: str) -> float:
    return sum(v for k, v in rep["timings"].items() if k.startswith(f"stage:{prefix}"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--only", choices=["digits", "llm"], help="run one model")
    args = p.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-release-") as tmp:
        for model, (base, kinds) in _plans(Path(tmp)).items():
            if args.only and not model.startswith({"digits": "digits", "llm": "trained"}[args.only]):
                continue
            ws = Path(tmp) / model.split()[0]
            rows, ptq = [], None
            first_wall = again_wall = again = None
            for i, (kind, extra) in enumerate(kinds):
                wall, rep, code = _run([*base, *extra], ws)
                if i == 0:
                    first_wall = wall
                    ptq = _stage(rep, "quantize-")
                    # the same command again, before another kind replaces the evaluation stages' records
                    again_wall, again, _ = _run([*base, *extra], ws)
                evals = _stage(rep, "eval-")
                samples = sum(t.get("samples") or 0 for t in rep["coverage"]["exercised"].get("tasks", {}).values())
                rows.append({"task_kind": kind, "decision": rep["decision"], "exit_code": code,
                             "eval_s": round(evals, 2), "ratio_to_ptq": round(evals / ptq, 3) if ptq else None,
                             "samples": samples, "ms_per_sample": round(1000 * evals / (2 * samples), 1)
                             if samples else None, "ran": rep["resume"]["ran"]})
            results[model] = {"ptq_s": round(ptq, 2), "kinds": rows, "first_wall_s": round(first_wall, 2),
                              "resume_wall_s": round(again_wall, 2), "resume_ratio": round(again_wall / first_wall, 4),
                              "resume_ran": again["resume"]["ran"]}
    for model, r in results.items():
        print(f"\n{model}: PTQ stage {r['ptq_s']:.1f}s (the reference, 1.00)")
        print(f"  {'evaluation (baseline + candidate)':44s} {'decision':>13s} {'eval s':>8s} {'x PTQ':>6s} "
              f"{'samples':>7s} {'ms/sample':>9s}")
        for row in r["kinds"]:
            ratio = f"{row['ratio_to_ptq']:.2f}" if row["ratio_to_ptq"] is not None else "-"
            ms = f"{row['ms_per_sample']:.1f}" if row["ms_per_sample"] is not None else "-"
            print(f"  {row['task_kind']:44s} {row['decision']:>13s} {row['eval_s']:8.1f} {ratio:>6s} "
                  f"{row['samples']:7d} {ms:>9s}")
        met = "met" if r["resume_ratio"] <= 0.1 else "MISSED"
        print(f"  resume: first run {r['first_wall_s']:.1f}s, same command again {r['resume_wall_s']:.1f}s "
              f"(ran again: {r['resume_ran'] or 'nothing'}); ratio {r['resume_ratio']:.3f} (target <= 0.1: {met})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
