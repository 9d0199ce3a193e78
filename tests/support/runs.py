"""Run summaries with per-sample records on disk, as an evaluation writes them (for the gate tests)."""
from __future__ import annotations

import json
from pathlib import Path

from modelgate.contract import schema_errors
from modelgate.gates.run import eval_config_sha256


def write_run(folder: Path, variant: str, scores: list[float], *, task="digits", config=None) -> Path:
    """A run summary with per-sample records (unit-scale 0/1 scores) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "records").mkdir(exist_ok=True)
    with open(folder / "records" / f"{task}.jsonl", "w") as fh:
        for i, s in enumerate(scores):
            fh.write(json.dumps({"id": f"s{i}", "score": s, "prediction": str(s), "reference": "1"}) + "\n")
    cfg = config or {"tasks": [task], "seed": 0, "limit": None}
    mean = sum(scores) / len(scores)
    se = (mean * (1 - mean) / (len(scores) - 1)) ** 0.5
    doc = {"schema_version": "1.0", "run_id": f"{variant}-1", "variant": variant, "model": "ir",
           "artifact_sha256": "ab" * 32, "eval_config": cfg, "eval_config_sha256": eval_config_sha256(cfg),
           "status": "COMPLETED",
           "tasks": {task: {"status": "COMPLETED", "metric": "top1", "scale": "unit", "higher_is_better": True,
                            "expected_samples": len(scores), "scored_samples": len(scores), "score": mean,
                            "stderr": se, "records_path": f"records/{task}.jsonl", "errors": []}},
           "timings": {"seconds": 1.0}}
    assert schema_errors("run-summary", doc) == []
    (folder / "run_summary.json").write_text(json.dumps(doc))
    return folder / "run_summary.json"
