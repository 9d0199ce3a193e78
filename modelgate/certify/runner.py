"""Run a certification playbook: conversions and ground truth, then the matrix on a pool of workers.

Each cell runs in its own child process (``cellproc.run_cell_function``) with the cell's
timeout; ``workers`` cells run at once. A child that dies becomes a Crashed record, one that
exceeds its timeout is killed and becomes a Timeout record. Records go through the evidence
writer (validated, written atomically after each one) as cells finish. The failure policy
decides whether to keep scheduling after a failure; cells not run are recorded as Skipped,
which never counts as a pass.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from modelgate import childproc
from modelgate.certify import devices as D
from modelgate.certify.cellproc import run_cell_function
from modelgate.certify.playbook import CONVERSION_SCENARIO, CellSpec, expand, model_identity, resolve_model
from modelgate.contract import GateInputError, atomic_write_json
from modelgate.gates import cell_records as C

FAILED = ("Falsified", "Crashed", "Timeout")
GROUND_TRUTH_SCENARIO = "ground-truth"
REFERENCE_TIMEOUT_FLOOR_S = 120.0
CONVERSION_TIMEOUT_S = 900.0


def policy_stops(policy: str, rec: dict) -> bool:
    """Does this record stop the run under ``policy``? (pure)"""
    if rec["outcome"] not in FAILED:
        return False
    if policy in ("stop-on-first", "fail-fast"):
        return True
    if policy == "stop-on-p0":
        return rec.get("gateway") is not None
    return False  # collect-all


def plan(doc: dict, timeout_ms: int | None = None) -> dict:
    """The dry-run plan: every cell with its prompts and timeout, nothing executed."""
    cells = expand(doc, timeout_ms)
    return {"playbook": doc["name"], "description": doc["description"], "tier": doc["tier"], "seed": doc["seed"],
            "workers": doc["workers"], "failure_policy": doc["failure_policy"], "cells": [c.to_dict() for c in cells],
            "count": len(cells), "matrix": doc["matrix"], "scenarios": [s["name"] for s in doc["scenarios"]]}


class _Progress:
    """A rich progress bar on stderr (stdout carries the JSON verdict)."""

    def __init__(self, total: int, enabled: bool):
        self.bar = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
            self.bar = Progress(TextColumn("[bold]certify"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                TextColumn("{task.description}"), console=Console(stderr=True), transient=False)
            self.bar.start()
            self.task = self.bar.add_task("", total=total)

    def advance(self, label: str):
        if self.bar:
            self.bar.update(self.task, advance=1, description=label[:60])

    def close(self):
        if self.bar:
            self.bar.stop()


def _skip(cell: CellSpec | dict, reason: str, key: str = "cell") -> dict:
    c = cell.to_dict() if isinstance(cell, CellSpec) else cell
    return C.record(f"{c['id']}@{key}", c, key, "Skipped", reason)


def _crash_record(cell: dict, res: childproc.ChildResult) -> dict:
    outcome = "Timeout" if res.failure_class == "TIMEOUT" else "Crashed"
    if outcome == "Timeout":  # in the unit the playbook set it in, whatever its size
        reason = (f"TIMEOUT: the cell exceeded its timeout of {cell['timeout_ms']} ms and was killed after "
                  f"{res.seconds * 1000.0:.0f} ms")
    else:
        reason = f"{res.failure_class}: {res.detail}" + (f" | {res.log_tail.strip().splitlines()[-1]}"
                                                         if res.log_tail.strip() else "")
    return C.record(f"{cell['id']}@cell", cell, "cell", outcome, reason, metrics={"duration_ms": res.seconds * 1000.0})


def run_playbook(doc: dict, out_dir: str | Path, *, workers: int | None = None, timeout_ms: int | None = None,
                 failure_policy: str | None = None, allow_unlocked: bool = False, progress: bool | None = None,
                 registry: str | Path | None = None, readme: str | Path | None = None,
                 lock_path: str | Path | None = None) -> dict:
    """Run the whole certification; return a summary (paths, score, counts). Bad input -> GateInputError;
    a playbook or input that differs from its lock -> GateFailure INTEGRITY_MISMATCH (unless allowed)."""
    from modelgate.certify import evidence as E
    from modelgate.certify import lock

    t_start = time.monotonic()
    # refuse before writing anything: the playbook and every template and data file the run reads
    lock_state = lock.enforce_lock(doc["_path"], lock_path, allow_unlocked=allow_unlocked,
                                   inputs=doc.get("_inputs"), output=out_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    workers = workers or doc["workers"]
    policy = failure_policy or doc["failure_policy"]
    source, given_irs = resolve_model(doc)
    identity = model_identity(doc, source, given_irs)
    cells = expand(doc, timeout_ms)
    threads = max(1, (os.cpu_count() or 1) // workers)
    available = D.available_devices()

    used = {"formats": [], "devices": [], "modalities": [], "scenarios": []}
    for c in cells:
        for axis, v in (("formats", c.format), ("devices", c.device), ("modalities", c.modality),
                        ("scenarios", c.scenario)):
            if v not in used[axis]:
                used[axis].append(v)
    ov_formats = [f for f in doc["matrix"]["formats"] if f != "safetensors"]
    for axis, v in (("formats", "safetensors"), ("devices", "CPU"), ("modalities", "run"),
                    ("scenarios", GROUND_TRUTH_SCENARIO)):
        if v not in used[axis]:
            used[axis].append(v)
    if ov_formats:
        for axis, v in (("modalities", "contract"), ("scenarios", CONVERSION_SCENARIO)):
            if v not in used[axis]:
                used[axis].append(v)
    header = E.make_header(playbook=doc["name"], playbook_sha256=doc["_sha256"], model=identity["id"],
                           model_family=doc["model_family"], tier=doc["tier"], matrix=used,
                           playbook_lock=lock_state, model_parameters=_param_count(source), model_source=identity,
                           inputs=doc.get("_inputs"))
    writer = E.EvidenceWriter(out / "evidence.json", header)
    lock_records = threading.Lock()
    stop = {"by": None}
    diagnostics: list[dict] = []

    def add(rec: dict) -> None:
        with lock_records:
            writer.add(rec)
            if stop["by"] is None and policy_stops(policy, rec):
                stop["by"] = rec["id"]

    prog = _Progress(len(cells) + 1 + len(ov_formats), sys.stderr.isatty() if progress is None else progress)
    irs: dict[str, Path | None] = {}
    ref: dict = {}
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            # phase 1: ground truth and conversions, in parallel
            ref_future = pool.submit(_ground_truth, doc, cells, source, threads)
            conv_futures = {f: pool.submit(_convert, source, f, given_irs.get(f)) for f in ov_formats}
            ref_res = ref_future.result()
            prog.advance("ground truth")
            gt_cell = {"id": f"safetensors/CPU/run/{GROUND_TRUTH_SCENARIO}", "format": "safetensors",
                       "device": "CPU", "modality": "run", "scenario": GROUND_TRUTH_SCENARIO}
            if ref_res.ok:
                ref = ref_res.value
            add(C.integrity_record(gt_cell, ref.get("loading_info", {}) if ref_res.ok else None,
                                   None if ref_res.ok else f"{ref_res.failure_class}: {ref_res.detail}",
                                   timed_out=ref_res.failure_class == "TIMEOUT"))
            for fmt, fut in conv_futures.items():
                ir, detail = fut.result()
                irs[fmt] = ir
                ccell = {"id": f"{fmt}/CPU/contract/{CONVERSION_SCENARIO}", "format": fmt, "device": "CPU",
                         "modality": "contract", "scenario": CONVERSION_SCENARIO}
                add(C.record(f"{ccell['id']}@conversion", ccell, "conversion", C.outcome(ir is not None), detail))
                prog.advance(f"convert {fmt}")
            # phase 2: the matrix
            pending = list(cells)
            running: dict = {}
            while pending or running:
                while pending and len(running) < workers and stop["by"] is None:
                    cell = pending.pop(0)
                    why = _skip_reason(cell, doc, available, irs, ref_res.ok)
                    if why:
                        add(_skip(cell, why))
                        prog.advance(cell.id)
                        continue
                    running[pool.submit(_run_cell, cell, doc, source, irs.get(cell.format), threads,
                                        ref.get("contract_ids"))] = cell
                if stop["by"] is not None and pending:
                    for cell in pending:
                        add(_skip(cell, f"not run: failure policy {policy} stopped the run after {stop['by']}"))
                        prog.advance(cell.id)
                    pending = []
                if not running:
                    continue
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in done:
                    cell = running.pop(fut)
                    res = fut.result()
                    if res.ok:
                        recs = C.cell_records(cell.to_dict(), res.value, ref, doc, res.seconds * 1000.0)
                    else:
                        recs = [_crash_record(cell.to_dict(), res)]
                    for rec in recs:
                        add(rec)
                    if policy == "fail-fast" and any(r["outcome"] in FAILED for r in recs):
                        diagnostics.append({"cell": cell.to_dict(), "records": recs,
                                            "failure_class": None if res.ok else res.failure_class,
                                            "detail": res.detail, "log_tail": res.log_tail})
                    prog.advance(cell.id)
    finally:
        prog.close()
    evidence = writer.close()
    if diagnostics:
        atomic_write_json(out / "diagnostics.json", {"policy": policy, "stopped_by": stop["by"],
                                                     "failures": diagnostics})
    summary = _finish(evidence, out, registry, readme)
    summary.update({"cells": len(cells), "workers": workers, "failure_policy": policy, "stopped_by": stop["by"],
                    "playbook_lock": lock_state, "wall_s": time.monotonic() - t_start,
                    "ir": {k: str(v) if v else None for k, v in irs.items()}})
    return summary


def _param_count(source: Path) -> int | None:
    try:
        from safetensors import safe_open
        n = 0
        for f in sorted(source.glob("*.safetensors")):
            with safe_open(str(f), "np") as fh:
                for k in fh.keys():  # noqa: SIM118 - a safetensors handle, not a dict
                    shape = fh.get_slice(k).get_shape()
                    size = 1
                    for d in shape:
                        size *= int(d)
                    n += size
        return n or None
    except Exception:  # a count is informative only; integrity is judged elsewhere
        return None


def _ground_truth(doc: dict, cells: list[CellSpec], source: Path, threads: int) -> childproc.ChildResult:
    run_prompts = sorted({C.prompt_of(i) for c in cells if c.modality == "run" for i in c.items})
    chats = {}
    for c in cells:
        if c.modality == "chat" and c.scenario not in chats:
            chats[c.scenario] = [C.prompt_of(i) for i in c.items]
    timeout = max(REFERENCE_TIMEOUT_FLOOR_S, doc["timeout_ms"] / 1000.0)
    return run_cell_function("modelgate.certify.cells:reference_body",
                                  {"source_dir": str(source), "run_prompts": run_prompts, "chats": chats,
                                   "max_new_tokens": doc["max_new_tokens"], "threads": threads}, timeout=timeout)


def _convert(source: Path, fmt: str, given: Path | None) -> tuple[Path | None, str]:
    if given is not None:
        return given, f"existing IR supplied by the playbook: {given.name}"
    from modelgate.openvino.convert import export_cached
    wf = fmt.split("-", 1)[1]
    t0 = time.monotonic()
    try:
        ir = export_cached(source, wf, timeout=CONVERSION_TIMEOUT_S)
    except Exception as exc:  # a failed export is G1 evidence for this format
        return None, f"export failed: {type(exc).__name__}: {exc}"[:1500]
    return ir, f"exported ({wf}, cached) in {time.monotonic() - t0:.1f} s"


def _skip_reason(cell: CellSpec, doc: dict, available: list[str], irs: dict, ref_ok: bool) -> str | None:
    if cell.modality == "serve" and not doc.get("serve"):
        return "no serving endpoint configured in the playbook (serve: {endpoint, model})"
    if cell.modality != "serve" and cell.device not in available:
        return f"device {cell.device} not present on this host (available: {', '.join(available) or 'none'})"
    if cell.format == "safetensors" and cell.device != "CPU" and cell.modality != "serve":
        return "the safetensors ground truth runs on CPU (torch CPU build)"
    if cell.format != "safetensors" and cell.modality != "serve" and irs.get(cell.format) is None:
        return f"no {cell.format} IR: its conversion failed (see F-CONV-001)"
    if not ref_ok and cell.modality in ("contract",):
        return "no ground truth: the safetensors reference failed"
    return None


def _run_cell(cell: CellSpec, doc: dict, source: Path, ir: Path | None, threads: int,
              contract_ids: list | None = None) -> childproc.ChildResult:
    return run_cell_function("modelgate.certify.cells:cell_body",
                                  {"cell": cell.to_dict(), "source_dir": str(source),
                                   "ir_dir": str(ir) if ir else None, "max_new_tokens": doc["max_new_tokens"],
                                   "threads": threads, "serve": doc.get("serve"), "contract_ids": contract_ids},
                                  timeout=cell.timeout_ms / 1000.0)


def _finish(evidence: dict, out: Path, registry, readme) -> dict:
    """Score, registry row, README table and the three reports (the scoring engineer's functions)."""
    from modelgate.certify import readme_table, reports
    from modelgate.certify import registry as reg
    from modelgate.gates.mqs import score

    result = score(evidence)
    atomic_write_json(out / "score.json", result)
    csv_path = Path(registry) if registry else out / "certifications" / "models.csv"
    row = reg.evidence_row(evidence, result)
    registry_update = reg.update_registry(csv_path, row, reg.legacy_key(evidence))
    readme_path = Path(readme) if readme else out / "README.md"
    if not readme_path.exists():
        readme_path.write_text(f"# Certified models\n\n{readme_table.START}\n{readme_table.END}\n", encoding="utf-8")
    readme_table.sync_readme(readme_path, csv_path)
    paths = reports.write_reports(evidence, result, out)
    counts: dict[str, int] = {}
    for r in evidence["records"]:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    return {"score": result, "document": evidence, "evidence": str((out / "evidence.json").resolve()),
            "registry": str(csv_path.resolve()),
            "readme": str(readme_path.resolve()), "reports": {k: str(Path(v).resolve()) for k, v in paths.items()},
            "outcomes": counts, "records": len(evidence["records"]), "legacy_rows": registry_update["legacy_rows"]}


# a CLI override above this is not a worker count or a timeout anyone means (a 400-digit --timeout-ms
# would overflow the first float division)
MAX_OVERRIDE = 10**9


def check_input(value, name: str) -> None:
    """Reject non-positive (or absurdly large) CLI overrides before they reach the pool."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                              or not 1 <= value <= MAX_OVERRIDE):
        raise GateInputError("USER_CONFIG_ERROR", f"{name} must be a positive integer up to {MAX_OVERRIDE}, "
                             f"got {str(value)[:40]!r}")
