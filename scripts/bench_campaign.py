#!/usr/bin/env python3
"""Benchmark a certification campaign on the local executor and on a local Ray instance, in one run.

The same campaign (by default the pack's two smoke playbooks: a model that certifies and one that
is blocked) runs on ``--executor local`` (``--workers`` child processes at a time) and on Ray
(one task per unit, as many CPU slots as workers), interleaved round by round so that the load of
a shared machine hits both alike. Both must decide the same. Printed (JSON on stdout, a summary on
stderr):

- wall time of the campaign on each executor (median over rounds) and their ratio, without and
  with Ray's start-up (``ray.init`` plus the warm-up of each worker's fork server; the local
  executor's fork-server warm-up is counted likewise). Target: Ray <= 1.15x local.
- the per-unit scheduling overhead of each executor: from each unit's placement in the evidence,
  (returned_at - submitted_at) - (ended_at - started_at), i.e. the driver's turnaround minus what
  the worker spent on the unit; and what Ray adds over local.
- an estimate of a 50-model x 5-format x 3-device campaign (the standard tier) on N nodes, from
  that overhead and per-unit times (``--cell-seconds``), see ``estimate()``.

    python scripts/bench_campaign.py [--rounds 2] [--workers 2] [--nodes 1,2,4,8,16]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from modelgate.certify import playbook as P  # noqa: E402

DEFAULT_PLAYBOOKS = ("trained-llama-smoke.yaml", "llama-smoke.yaml")
TARGET_RATIO = 1.15
# per-unit seconds of a 1-8 B model for the estimate (assumptions, not measurements: pass your own
# with --cell-seconds, e.g. the duration_ms of a real run's @cell records by device)
ASSUMED_SECONDS = {"cpu_cell": 30.0, "gpu_cell": 10.0, "npu_cell": 15.0, "conversion": 120.0, "ground_truth": 60.0}


def _t(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def unit_placements(out_dir: Path) -> list[dict]:
    """One placement per unit (the records of a unit share it) over every evidence file under out_dir."""
    seen, out = set(), []
    for path in sorted(out_dir.rglob("evidence.json")):
        for rec in json.loads(path.read_text())["records"]:
            p = rec.get("placement")
            if not p:
                continue
            key = (path, p["submitted_at"], p["started_at"], p["ended_at"])
            if key not in seen:
                seen.add(key)
                out.append(p)
    return out


def overhead_ms(placements: list[dict]) -> dict:
    """Per-unit scheduling overhead: driver turnaround minus the worker's span, in ms."""
    values = [1000.0 * ((_t(p["returned_at"]) - _t(p["submitted_at"])) - (_t(p["ended_at"]) - _t(p["started_at"])))
              for p in placements]
    return {"units": len(values), "mean_ms": round(statistics.mean(values), 2),
            "median_ms": round(statistics.median(values), 2), "max_ms": round(max(values), 2)}


def child_start_s(out_dir: Path) -> float:
    """Median per-cell cost of starting the cell (preparing its inputs, forking its child, collecting
    the result): the worker's span of the unit minus the child's own duration (``@cell`` records)."""
    values = []
    for path in sorted(out_dir.rglob("evidence.json")):
        for rec in json.loads(path.read_text())["records"]:
            p, dur = rec.get("placement"), rec["metrics"].get("duration_ms")
            if p and rec["id"].endswith("@cell") and isinstance(dur, (int, float)):
                values.append((_t(p["ended_at"]) - _t(p["started_at"])) - dur / 1000.0)
    return statistics.median(values)


def run_once(executor, docs, out: Path) -> dict:
    from modelgate.certify.campaign import run_campaign

    t0 = time.monotonic()
    result = run_campaign(docs, out, executor, campaign=True, allow_unlocked=True, progress=False)
    wall = time.monotonic() - t0
    decisions = {m["playbook"]: (m["score"]["status"], round(m["score"]["raw"], 3)) for m in result["models"]}
    return {"wall_s": wall, "decisions": decisions, "overhead": overhead_ms(unit_placements(out)),
            "child_start_s": child_start_s(out)}


def standard_units_per_model() -> dict:
    """Runnable units of one model of the standard tier (5 formats x 3 devices): cells by device, conversions."""
    doc = P.load_playbook(P.PLAYBOOK_DIR / "models" / "trained-llama-smoke.yaml", "standard")
    cells = [c for c in P.expand(doc) if c.modality != "serve"  # serve cells need an endpoint
             and not (c.format == "safetensors" and c.device != "CPU")]  # the ground truth runs on CPU
    by_device = {d: sum(1 for c in cells if c.device == d) for d in ("CPU", "GPU", "NPU")}
    return {"cells": by_device, "conversions": len([f for f in doc["matrix"]["formats"] if f != "safetensors"]),
            "ground_truth": 1}


def estimate(*, models: int, nodes: int, units: dict, seconds: dict, overhead_s: float, child_start_s: float,
             cpu_slots_per_node: int, start_s: float) -> dict:
    """Wall time of a campaign on ``nodes`` nodes, each with ``cpu_slots_per_node`` CPU slots, one GPU and one NPU.

    T(N) = start + first + max over device classes d of W_d / S_d(N), where W_d is the slot-seconds of
    every unit placed on d (its own time + child start + scheduling overhead), S_d(N) the slots of d on
    N nodes, and ``first`` the first model's ground truth or conversion (its cells wait for them). With
    one conversion per format on a shared --artifact-dir (or on the node that runs the model's cells).
    """
    per = child_start_s + overhead_s
    c = units["cells"]
    work = {"CPU": models * (c["CPU"] * (seconds["cpu_cell"] + per)
                             + units["conversions"] * (seconds["conversion"] + per)
                             + units["ground_truth"] * (seconds["ground_truth"] + per)),
            "GPU": models * c["GPU"] * (seconds["gpu_cell"] + per),
            "NPU": models * c["NPU"] * (seconds["npu_cell"] + per)}
    slots = {"CPU": nodes * cpu_slots_per_node, "GPU": nodes, "NPU": nodes}
    per_class = {d: work[d] / slots[d] for d in work}
    total = start_s + max(seconds["ground_truth"], seconds["conversion"]) + max(per_class.values())
    n_units = models * (sum(c.values()) + units["conversions"] + units["ground_truth"])
    return {"nodes": nodes, "hours": round(total / 3600.0, 2), "bound_by": max(per_class, key=per_class.get),
            "per_class_hours": {d: round(v / 3600.0, 2) for d, v in per_class.items()}, "units": n_units,
            "scheduling_overhead_s_per_slot": round(n_units * overhead_s / sum(slots.values()), 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--playbooks", nargs="+", default=[str(P.PLAYBOOK_DIR / "models" / n) for n in DEFAULT_PLAYBOOKS])
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds per executor; medians are reported")
    ap.add_argument("--workers", type=int, default=2, help="local workers = Ray CPU slots")
    ap.add_argument("--nodes", default="1,2,4,8,16", help="node counts of the estimate")
    ap.add_argument("--models", type=int, default=50)
    ap.add_argument("--cpu-slots-per-node", type=int, default=4)
    ap.add_argument("--cell-seconds", type=json.loads, default={},
                    help=f"per-unit seconds for the estimate (JSON, keys {sorted(ASSUMED_SECONDS)})")
    args = ap.parse_args(argv)

    from modelgate.certify.cellproc import PRELOAD
    from modelgate.cli.spine import stdout_to_stderr
    from modelgate.executor import LocalExecutor, RayExecutor

    docs = [P.load_playbook(p) for p in args.playbooks]
    out: dict = {"playbooks": [d["name"] for d in docs], "workers": args.workers, "rounds": args.rounds,
                 "cpu_count": os.cpu_count(), "load_avg_at_start": os.getloadavg()[0]}
    rows: dict[str, list[dict]] = {"local": [], "ray": []}
    with stdout_to_stderr(), tempfile.TemporaryDirectory(prefix="bench-campaign-") as tmp:
        t0 = time.monotonic()
        local = LocalExecutor(args.workers)
        local.warm("forkserver", PRELOAD)
        out["local_warmup_s"] = round(time.monotonic() - t0, 2)
        t0 = time.monotonic()
        ray_ex = RayExecutor(init_kwargs={"num_cpus": args.workers})
        out["ray_init_s"] = round(time.monotonic() - t0, 2)
        t0 = time.monotonic()
        ray_ex.warm("forkserver", PRELOAD)
        out["ray_warmup_s"] = round(time.monotonic() - t0, 2)
        try:
            for i in range(args.rounds):
                for name, ex in (("local", local), ("ray", ray_ex)):
                    r = run_once(ex, docs, Path(tmp) / f"{name}-{i}")
                    rows[name].append(r)
                    print(f"round {i + 1} {name:5s} {r['wall_s']:7.1f} s  overhead/unit "
                          f"{r['overhead']['mean_ms']:.1f} ms  {r['decisions']}", file=sys.stderr, flush=True)
        finally:
            local.close()
            ray_ex.close()
    decisions = {name: [r["decisions"] for r in rs] for name, rs in rows.items()}
    same = all(d == decisions["local"][0] for rs in decisions.values() for d in rs)
    wall = {name: round(statistics.median(r["wall_s"] for r in rs), 2) for name, rs in rows.items()}
    ovh = {name: round(statistics.median(r["overhead"]["mean_ms"] for r in rs), 2) for name, rs in rows.items()}
    ray_start = out["ray_init_s"] + out["ray_warmup_s"]
    out.update({
        "same_decisions": same, "decisions": decisions["local"][0],
        "wall_s": wall,
        "ray_over_local": round(wall["ray"] / wall["local"], 3),
        "ray_over_local_with_startup": round((wall["ray"] + ray_start) / (wall["local"] + out["local_warmup_s"]), 3),
        "target_ratio": TARGET_RATIO,
        "overhead_ms_per_unit": ovh,
        "ray_adds_ms_per_unit": round(ovh["ray"] - ovh["local"], 2),
        "units_per_round": rows["ray"][0]["overhead"]["units"],
        "child_start_s": {name: round(statistics.median(r["child_start_s"] for r in rs), 3)
                          for name, rs in rows.items()},
    })
    seconds = dict(ASSUMED_SECONDS, **args.cell_seconds)
    units = standard_units_per_model()
    out["estimate"] = {"models": args.models, "units_per_model": units, "unit_seconds": seconds,
                       "overhead_s": ovh["ray"] / 1000.0, "child_start_s": out["child_start_s"]["ray"],
                       "cpu_slots_per_node": args.cpu_slots_per_node,
                       "table": [estimate(models=args.models, nodes=int(n), units=units, seconds=seconds,
                                          overhead_s=ovh["ray"] / 1000.0, child_start_s=out["child_start_s"]["ray"],
                                          cpu_slots_per_node=args.cpu_slots_per_node, start_s=ray_start)
                                 for n in args.nodes.split(",")]}
    print(f"campaign wall: local {wall['local']:.1f} s, ray {wall['ray']:.1f} s -> ratio {out['ray_over_local']:.3f} "
          f"(with start-up {out['ray_over_local_with_startup']:.3f}; target <= {TARGET_RATIO}); "
          f"ray start {out['ray_init_s']:.1f} s + warm-up {out['ray_warmup_s']:.1f} s; overhead/unit local "
          f"{ovh['local']:.1f} ms, ray {ovh['ray']:.1f} ms; cell start local {out['child_start_s']['local']:.2f} s, "
          f"ray {out['child_start_s']['ray']:.2f} s; same decisions: {same}", file=sys.stderr)
    for row in out["estimate"]["table"]:
        print(f"  {args.models} models x 5 formats x 3 devices on {row['nodes']:>2} node(s): {row['hours']:6.2f} h "
              f"(bound by {row['bound_by']})", file=sys.stderr)
    print(json.dumps(out, indent=1))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
