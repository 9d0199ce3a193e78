"""The certification driver: one or many playbooks (a campaign) on one executor.

Per model: one ground-truth unit and one conversion unit per OpenVINO format; once they are all
back, the model's cells (``executor.Unit``), each in its own child process with its timeout,
locally or as Ray tasks. Records come back to this process as units finish, and only this
process writes: each model's evidence (validated, rewritten atomically after every record), then,
when the model's last record is in, its score, its registry row (under the registry's lock), the
README table and the reports. Executors return observations, never files, so a lost worker or
node cannot leave a half-written file.

The failure policy is per model: a model that stops skips its own remaining cells (Skipped, with
the reason), never another model's. A cell whose worker or node was lost on every attempt is
Crashed with failure class INFRA_TRANSIENT (see ``modelgate.gates.campaign`` for how its verdict
reads); one no live node can run is Skipped with the reason.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from modelgate import childproc
from modelgate.certify.cellproc import PRELOAD
from modelgate.certify.playbook import CONVERSION_SCENARIO, CellSpec, expand, model_identity, resolve_model
from modelgate.contract import GateFailure, GateInputError, atomic_write_json, failure_classes, versions
from modelgate.executor import Executor, Unit, UnitRecord
from modelgate.gates import cell_records as C
from modelgate.gates.campaign import infrastructure_losses

FAILED = ("Falsified", "Crashed", "Timeout")
GROUND_TRUTH_SCENARIO = "ground-truth"
REFERENCE_TIMEOUT_FLOOR_S = 120.0
CONVERSION_TIMEOUT_S = 900.0
# a conversion unit also hashes the source (its cache key) before the exporter's own timeout starts
CONVERSION_UNIT_MARGIN_S = 300.0
CELLS = "modelgate.certify.cells"
PLACEMENT_FIELDS = ("executor", "node", "node_label", "hostname", "submitted_at", "started_at", "ended_at",
                    "returned_at", "attempts", "attempt_errors")


def policy_stops(policy: str, rec: dict) -> bool:
    """Does this record stop the run under ``policy``? (pure)"""
    if rec["outcome"] not in FAILED:
        return False
    if policy in ("stop-on-first", "fail-fast"):
        return True
    if policy == "stop-on-p0":
        return rec.get("gateway") is not None
    return False  # collect-all


class Progress:
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


def crash_record(cell: dict, res: childproc.ChildResult, key: str = "cell") -> dict:
    """The record of a unit that did not return an observation: Timeout, or Crashed with its class."""
    outcome = "Timeout" if res.failure_class == "TIMEOUT" else "Crashed"
    if outcome == "Timeout" and "timeout_ms" in cell:  # in the unit the playbook set it in, whatever its size
        reason = (f"TIMEOUT: the cell exceeded its timeout of {cell['timeout_ms']} ms and was killed after "
                  f"{res.seconds * 1000.0:.0f} ms")
    else:
        last = res.log_tail.strip().splitlines()[-1] if res.log_tail.strip() else ""
        reason = f"{res.failure_class}: {res.detail}" + (f" | {last}" if last else "")
    rec = C.record(f"{cell['id']}@{key}", cell, key, outcome, reason, metrics={"duration_ms": res.seconds * 1000.0})
    rec["failure_class"] = res.failure_class if res.failure_class in failure_classes() else "UNKNOWN"
    return rec


def skip_record(cell: CellSpec | dict, reason: str, key: str = "cell") -> dict:
    c = cell.to_dict() if isinstance(cell, CellSpec) else cell
    return C.record(f"{c['id']}@{key}", c, key, "Skipped", reason)


def _placement(rec: UnitRecord, driver_versions: dict) -> dict | None:
    if rec.placement is None:
        return None
    out = {k: rec.placement.get(k) for k in PLACEMENT_FIELDS}
    if rec.versions and rec.versions != driver_versions:  # this node ran other package versions than the header's
        out["versions"] = rec.versions
    return out


class ModelRun:
    """One playbook's certification inside a campaign: its units in, its evidence and outputs out."""

    def __init__(self, index: int, doc: dict, out_dir: Path, lock_state: str, executor: Executor, *,
                 timeout_ms: int | None, failure_policy: str | None, artifact_dir: str | None):
        self.index, self.doc, self.out, self.lock_state = index, doc, Path(out_dir), lock_state
        self.policy = failure_policy or doc["failure_policy"]
        self.source, self.given_irs = resolve_model(doc)
        self.identity = model_identity(doc, self.source, self.given_irs)
        self.cells = expand(doc, timeout_ms)
        self.ov_formats = [f for f in doc["matrix"]["formats"] if f != "safetensors"]
        self.threads = executor.unit_threads
        self.executor = executor
        self.artifact_dir = artifact_dir
        self.irs: dict[str, Path | None] = {}
        self.ref: dict = {}
        self.ref_ok = False
        self.stopped_by: str | None = None
        self.diagnostics: list[dict] = []
        self.pending_first = 0        # ground truth and conversions not back yet
        self.outstanding = 0          # units whose record is not in yet
        self.by_key: dict[str, CellSpec | str] = {}
        self.writer = None
        self.summary: dict | None = None
        self.t0 = time.monotonic()
        self.driver_versions = versions()

    # ------------------------------------------------------------------ units
    def key(self, what: str) -> str:
        return f"{self.index}|{what}"

    def _unit(self, what: str, target: str, kwargs: dict, timeout_s: float, kind: str, device: str | None,
              ir: dict | None = None, **extra) -> Unit:
        key = self.key(what)
        return Unit(key=key, target=f"{CELLS}:{target}", kwargs=kwargs, timeout_s=timeout_s, kind=kind, device=device,
                    num_cpus=self.threads, start="forkserver", preload=tuple(PRELOAD),
                    prepare=f"{CELLS}:prepare_inputs", prepare_kwargs={"source_dir": str(self.source), "ir": ir},
                    **extra)

    def start(self, used_matrix: dict, executor_info: dict) -> list[Unit]:
        """Open the evidence and return the first units (ground truth, conversions)."""
        from modelgate.certify import evidence as E

        self.out.mkdir(parents=True, exist_ok=True)
        header = E.make_header(playbook=self.doc["name"], playbook_sha256=self.doc["_sha256"],
                               model=self.identity["id"], model_family=self.doc["model_family"],
                               tier=self.doc["tier"], matrix=used_matrix, playbook_lock=self.lock_state,
                               model_parameters=_param_count(self.source), model_source=self.identity,
                               inputs=self.doc.get("_inputs"), executor=executor_info)
        self.writer = E.EvidenceWriter(self.out / "evidence.json", header)
        run_prompts = sorted({C.prompt_of(i) for c in self.cells if c.modality == "run" for i in c.items})
        chats: dict[str, list[str]] = {}
        for c in self.cells:
            if c.modality == "chat" and c.scenario not in chats:
                chats[c.scenario] = [C.prompt_of(i) for i in c.items]
        units = [self._unit(GROUND_TRUTH_SCENARIO, "reference_body",
                            {"source_dir": str(self.source), "run_prompts": run_prompts, "chats": chats,
                             "max_new_tokens": self.doc["max_new_tokens"], "threads": self.threads},
                            max(REFERENCE_TIMEOUT_FLOOR_S, self.doc["timeout_ms"] / 1000.0), "ground-truth", "CPU")]
        self.by_key[units[0].key] = GROUND_TRUTH_SCENARIO
        for fmt in self.ov_formats:
            if fmt in self.given_irs:
                self.irs[fmt] = self.given_irs[fmt]
                self.add(C.record(f"{self._conversion_cell(fmt)['id']}@conversion", self._conversion_cell(fmt),
                                  "conversion", "Corroborated",
                                  f"existing IR supplied by the playbook: {self.given_irs[fmt].name}"))
                continue
            unit = self._unit(f"conversion/{fmt}", "convert_body",
                              {"source_dir": str(self.source), "weight_format": fmt.split("-", 1)[1],
                               "timeout_s": CONVERSION_TIMEOUT_S, "cache_dir": self.artifact_dir},
                              CONVERSION_TIMEOUT_S + CONVERSION_UNIT_MARGIN_S, "conversion", "CPU",
                              error_class="CONVERSION_FAILED")
            self.by_key[unit.key] = fmt
            units.append(unit)
        self.pending_first = self.outstanding = len(units)
        return units

    def _cell_unit(self, cell: CellSpec) -> Unit:
        ir = None
        if cell.format != "safetensors" and cell.modality != "serve":
            path = self.irs.get(cell.format)
            ir = {"ir_dir": str(path) if path else None, "timeout_s": CONVERSION_TIMEOUT_S,
                  "weight_format": None if cell.format in self.given_irs else cell.format.split("-", 1)[1],
                  "cache_dir": self.artifact_dir}
        unit = self._unit(cell.id, "cell_body",
                          {"cell": cell.to_dict(), "source_dir": str(self.source), "ir_dir": None,
                           "max_new_tokens": self.doc["max_new_tokens"], "threads": self.threads,
                           "serve": self.doc.get("serve"), "contract_ids": self.ref.get("contract_ids")},
                          cell.timeout_ms / 1000.0, "cell", None if cell.modality == "serve" else cell.device, ir=ir)
        self.by_key[unit.key] = cell
        return unit

    @staticmethod
    def _conversion_cell(fmt: str) -> dict:
        return {"id": f"{fmt}/CPU/contract/{CONVERSION_SCENARIO}", "format": fmt, "device": "CPU",
                "modality": "contract", "scenario": CONVERSION_SCENARIO}

    @staticmethod
    def _ground_truth_cell() -> dict:
        return {"id": f"safetensors/CPU/run/{GROUND_TRUTH_SCENARIO}", "format": "safetensors", "device": "CPU",
                "modality": "run", "scenario": GROUND_TRUTH_SCENARIO}

    # ------------------------------------------------------------------ records
    def add(self, rec: dict, placement: dict | None = None) -> None:
        if placement is not None:
            rec["placement"] = placement
        self.writer.add(rec)
        if self.stopped_by is None and policy_stops(self.policy, rec):
            self.stopped_by = rec["id"]

    def skip_reason(self, unit: Unit) -> str | None:
        """Why a cell must not start now (asked just before it would); None for the first units."""
        cell = self.by_key[unit.key]
        if not isinstance(cell, CellSpec):
            return None
        if self.stopped_by is not None:
            return f"not run: failure policy {self.policy} stopped the run after {self.stopped_by}"
        if cell.modality == "serve" and not self.doc.get("serve"):
            return "no serving endpoint configured in the playbook (serve: {endpoint, model})"
        if cell.format == "safetensors" and cell.device != "CPU" and cell.modality != "serve":
            return "the safetensors ground truth runs on CPU (torch CPU build)"
        if cell.format != "safetensors" and cell.modality != "serve" and self.irs.get(cell.format) is None:
            return f"no {cell.format} IR: its conversion failed (see F-CONV-001)"
        if not self.ref_ok and cell.modality == "contract":
            return "no ground truth: the safetensors reference failed"
        return None

    def on_record(self, rec: UnitRecord) -> list[Unit]:
        """Turn one unit's record into evidence; returns the cells once the first units are all back."""
        what = self.by_key[rec.unit.key]
        place = _placement(rec, self.driver_versions)
        self.outstanding -= 1
        if isinstance(what, CellSpec):
            self._cell_records(what, rec, place)
        elif what == GROUND_TRUTH_SCENARIO:
            self._ground_truth_record(rec, place)
        else:
            self._conversion_record(what, rec, place)
        new: list[Unit] = []
        if not isinstance(what, CellSpec):
            self.pending_first -= 1
            if self.pending_first == 0:
                new = [self._cell_unit(c) for c in self.cells]
                self.outstanding += len(new)
        return new

    def _ground_truth_record(self, rec: UnitRecord, place: dict | None) -> None:
        cell = self._ground_truth_cell()
        if not rec.ran:
            self.add(skip_record(cell, f"ground truth not run: {rec.not_run}", "integrity"))
            return
        res = rec.result
        self.ref_ok = res.ok
        if res.ok:
            self.ref = res.value
            self.add(C.integrity_record(cell, self.ref.get("loading_info", {})), place)
            return
        r = C.integrity_record(cell, None, f"{res.failure_class}: {res.detail}",
                               timed_out=res.failure_class == "TIMEOUT")
        if r["outcome"] == "Crashed" and res.failure_class in failure_classes():
            r["failure_class"] = res.failure_class
        self.add(r, place)

    def _conversion_record(self, fmt: str, rec: UnitRecord, place: dict | None) -> None:
        cell = self._conversion_cell(fmt)
        self.irs[fmt] = None
        if not rec.ran:
            self.add(skip_record(cell, f"conversion not run: {rec.not_run}", "conversion"))
        elif rec.result.ok:
            ir = rec.result.value["ir_dir"]
            self.irs[fmt] = Path(ir) if ir else None
            self.add(C.record(f"{cell['id']}@conversion", cell, "conversion", C.outcome(ir is not None),
                              rec.result.value["detail"]), place)
        else:
            self.add(crash_record(cell, rec.result, "conversion"), place)

    def _cell_records(self, cell: CellSpec, rec: UnitRecord, place: dict | None) -> None:
        c = cell.to_dict()
        if not rec.ran:
            self.add(skip_record(cell, rec.not_run))
            return
        res = rec.result
        recs = C.cell_records(c, res.value, self.ref, self.doc, res.seconds * 1000.0) if res.ok \
            else [crash_record(c, res)]
        for r in recs:
            self.add(r, place)
        if self.policy == "fail-fast" and any(r["outcome"] in FAILED for r in recs):
            self.diagnostics.append({"cell": c, "records": recs, "failure_class": None if res.ok else res.failure_class,
                                     "detail": res.detail, "log_tail": res.log_tail})

    @property
    def done(self) -> bool:
        return self.outstanding == 0 and self.pending_first == 0 and self.summary is None

    def finish(self, registry: str | Path | None, readme: str | Path | None) -> dict:
        """Close the evidence; write score, registry row, README table and reports (driver only)."""
        evidence = self.writer.close()
        if self.diagnostics:
            atomic_write_json(self.out / "diagnostics.json", {"policy": self.policy, "stopped_by": self.stopped_by,
                                                              "failures": self.diagnostics})
        summary = finish_outputs(evidence, self.out, registry, readme)
        summary.update({"playbook": self.doc["name"], "model": self.identity["id"], "cells": len(self.cells),
                        "failure_policy": self.policy, "stopped_by": self.stopped_by,
                        "playbook_lock": self.lock_state, "wall_s": time.monotonic() - self.t0,
                        "ir": {k: str(v) if v else None for k, v in self.irs.items()},
                        "infrastructure_losses": infrastructure_losses(evidence["records"])})
        self.summary = summary
        return summary


def used_matrix(run: ModelRun) -> dict:
    """The matrix the evidence declares: every axis value a cell or a first unit uses."""
    used: dict[str, list] = {"formats": [], "devices": [], "modalities": [], "scenarios": []}
    for c in run.cells:
        for axis, v in (("formats", c.format), ("devices", c.device), ("modalities", c.modality),
                        ("scenarios", c.scenario)):
            if v not in used[axis]:
                used[axis].append(v)
    extra = [("formats", "safetensors"), ("devices", "CPU"), ("modalities", "run"),
             ("scenarios", GROUND_TRUTH_SCENARIO)]
    if run.ov_formats:
        extra += [("modalities", "contract"), ("scenarios", CONVERSION_SCENARIO)]
    for axis, v in extra:
        if v not in used[axis]:
            used[axis].append(v)
    return used


def finish_outputs(evidence: dict, out: Path, registry, readme) -> dict:
    """Score, registry row, README table and the three reports of one model's evidence."""
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
        readme_path.parent.mkdir(parents=True, exist_ok=True)
        readme_path.write_text(f"# Certified models\n\n{readme_table.START}\n{readme_table.END}\n", encoding="utf-8")
    readme_table.sync_readme(readme_path, csv_path)
    paths = reports.write_reports(evidence, result, out)
    counts: dict[str, int] = {}
    for r in evidence["records"]:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    return {"score": result, "document": evidence, "evidence": str((out / "evidence.json").resolve()),
            "score_path": str((out / "score.json").resolve()), "registry": str(csv_path.resolve()),
            "readme": str(readme_path.resolve()), "reports": {k: str(Path(v).resolve()) for k, v in paths.items()},
            "outcomes": counts, "records": len(evidence["records"]), "legacy_rows": registry_update["legacy_rows"]}


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


def _check_outputs_writable(registry: Path, readme: Path) -> None:
    """Refuse a registry or README the run could not update, before any unit runs."""
    from modelgate.certify import readme_table
    from modelgate.certify.registry import read_registry

    read_registry(registry)
    if readme.exists():
        try:
            text = readme.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise GateInputError("USER_CONFIG_ERROR", f"README unreadable: {readme}: {exc}") from exc
        readme_table.replace_between_markers(text, "")


def run_campaign(docs: list[dict], out_dir: str | Path, executor: Executor, *, campaign: bool = True,
                 timeout_ms: int | None = None, failure_policy: str | None = None, allow_unlocked: bool = False,
                 progress: bool | None = None, registry: str | Path | None = None, readme: str | Path | None = None,
                 artifact_dir: str | Path | None = None, lock_path: str | Path | None = None) -> dict:
    """Certify every playbook in ``docs`` on ``executor``; return {"models": [summary...], "wall_s", "executor"}.

    ``campaign``: each model writes into ``<out_dir>/<playbook name>/`` and the registry and README
    default to ``<out_dir>/certifications/models.csv`` and ``<out_dir>/README.md``, shared; otherwise
    the one model writes into ``out_dir`` itself. Every playbook's lock is checked (the playbook and
    every template and data file its run reads; ``lock_path``, else ``<out_dir>/playbooks.lock.json``,
    else the nearest lock above the playbook) and every model resolved before anything is written;
    bad input raises GateInputError (exit 2), a playbook or input that differs from its lock
    GateFailure INTEGRITY_MISMATCH (unless ``allow_unlocked``) naming the playbook.
    """
    from modelgate.certify import lock

    t0 = time.monotonic()
    names = [d["name"] for d in docs]
    if not docs:
        raise GateInputError("USER_CONFIG_ERROR", "no playbook to run")
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise GateInputError("USER_CONFIG_ERROR", f"playbook names must be unique in a campaign: {dupes}")
    out = Path(out_dir)
    states = []
    for d in docs:  # refuse before writing anything
        try:
            states.append(lock.enforce_lock(d["_path"], lock_path, allow_unlocked=allow_unlocked,
                                            inputs=d.get("_inputs"), output=out))
        except GateFailure as exc:
            if exc.failure_class != "INTEGRITY_MISMATCH":
                raise
            raise GateFailure(exc.failure_class, exc.detail, **exc.evidence, playbook=str(d["_path"])) from exc
    if artifact_dir is not None:
        artifact_dir = str(Path(artifact_dir).resolve())
    folders = [out / d["name"] if campaign else out for d in docs]
    runs = [ModelRun(i, d, folder, state, executor, timeout_ms=timeout_ms, failure_policy=failure_policy,
                     artifact_dir=artifact_dir) for i, (d, folder, state) in enumerate(zip(docs, folders, states))]
    if campaign:
        registry = Path(registry) if registry else out / "certifications" / "models.csv"
        readme = Path(readme) if readme else out / "README.md"
        _check_outputs_writable(registry, readme)
    elif registry or readme:
        _check_outputs_writable(Path(registry) if registry else out / "certifications" / "models.csv",
                                Path(readme) if readme else out / "README.md")
    info = executor.describe()
    owner: dict[str, ModelRun] = {}
    first: list[Unit] = []
    for run in runs:
        for unit in run.start(used_matrix(run), info):
            owner[unit.key] = run
            first.append(unit)
    prog = Progress(len(first) + sum(len(r.cells) for r in runs),
                    sys.stderr.isatty() if progress is None else progress)
    try:
        def handle(rec: UnitRecord) -> list[Unit]:
            run = owner[rec.unit.key]
            new = run.on_record(rec)
            for unit in new:
                owner[unit.key] = run
            prog.advance(f"{run.doc['name']}: {rec.unit.key.split('|', 1)[1]}")
            if run.done:
                run.finish(registry, readme)
            return new

        executor.run(first, handle=handle, skip=lambda unit: owner[unit.key].skip_reason(unit))
    finally:
        prog.close()
    unfinished = [r.doc["name"] for r in runs if r.summary is None]
    if unfinished:  # a defect: every unit yields one record
        raise RuntimeError(f"the executor returned without every record of {unfinished}")
    return {"models": [r.summary for r in runs], "wall_s": time.monotonic() - t0, "executor": info}
