"""The run workspace: one folder per run, stage records, input hashing and resume.

Layout: ``<root>/<run-id>/run.json`` (the request), ``<root>/<run-id>/<variant>/...`` (every
stage's outputs: ``baseline/``, ``candidate-<recipe>/``) and ``<root>/<run-id>/stages/<stage>.json``
(one record per finished stage: its input hash, output hashes and result).

A stage is skipped when its record exists, its ``inputs_sha256`` equals the hash of the
inputs it would run with now, and every output still has the hash the record names. A
record is written atomically *after* the outputs, so a killed stage leaves no record and
runs again; its partial outputs are cleared first. A stage runs under an exclusive lock on
``stages/.<stage>.lock``: chains that run at once in one run folder (a recipe search on an
executor) run a stage they share once, and the others find it fresh.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelgate.contract import GateInputError, atomic_write_json, json_safe

RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
STAGE_RECORD_VERSION = 1


def inputs_sha256(inputs: Any) -> str:
    """Canonical hash of a stage's inputs (sorted compact JSON)."""
    text = json.dumps(json_safe(inputs), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_sha256(path: str | Path) -> str:
    """Hash of a file, or of a folder's files (relative names + contents, sorted)."""
    p = Path(path)
    if p.is_file():
        return file_sha256(p)
    if not p.is_dir():
        raise FileNotFoundError(p)
    h = hashlib.sha256()
    for f in sorted(x for x in p.rglob("*") if x.is_file() and not x.name.startswith(".")):
        h.update(str(f.relative_to(p)).encode())
        h.update(file_sha256(f).encode())
    return h.hexdigest()


def default_run_id(request: dict) -> str:
    """A run id derived from the request, so re-running the same command resumes the same run."""
    return "run-" + inputs_sha256(request)[:12]


class Workspace:
    """One run's folder. Every path it hands out is checked to stay inside it."""

    def __init__(self, root: str | Path, run_id: str):
        if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id) or run_id in (".", ".."):
            raise GateInputError("USER_CONFIG_ERROR", f"run id {run_id!r} must match {RUN_ID_PATTERN.pattern} "
                                 "(no path separators)")
        self.root = Path(root).resolve()
        if self.root.exists() and not self.root.is_dir():
            raise GateInputError("USER_CONFIG_ERROR", f"workspace {self.root} is not a folder")
        self.run_id = run_id
        self.dir = self.root / run_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.skipped: list[str] = []
        self.ran: list[str] = []
        self.seconds: dict[str, float] = {}
        self.hashes: dict[str, str] = {}  # output path (relative) -> sha256, from the last stage that made it

    def path(self, *parts: str) -> Path:
        """``<run>/<parts...>``; refuses anything that resolves outside the run folder."""
        p = self.dir.joinpath(*parts).resolve()
        if not p.is_relative_to(self.dir):
            raise GateInputError("USER_CONFIG_ERROR", f"path {'/'.join(parts)!r} escapes the workspace {self.dir}")
        return p

    def rel(self, path: str | Path) -> str:
        """A path inside the run folder, relative to it (what reports name)."""
        p = Path(path).resolve()
        if not p.is_relative_to(self.dir):
            raise GateInputError("USER_CONFIG_ERROR", f"{p} is outside the workspace {self.dir}")
        return str(p.relative_to(self.dir))

    def record_path(self, stage: str) -> Path:
        return self.path("stages", f"{stage}.json")

    def load_record(self, stage: str) -> dict | None:
        p = self.record_path(stage)
        if not p.is_file():
            return None
        try:
            rec = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # a damaged record means the stage runs again
        return rec if isinstance(rec, dict) else None

    def is_fresh(self, stage: str, in_sha: str) -> dict | None:
        """The stage's record if it can be reused for inputs hashing to ``in_sha``, else None."""
        rec = self.load_record(stage)
        if not rec or rec.get("version") != STAGE_RECORD_VERSION or rec.get("inputs_sha256") != in_sha:
            return None
        for rel, sha in (rec.get("outputs") or {}).items():
            try:
                p = self.path(rel)
                if tree_sha256(p) != sha:
                    return None
            except (FileNotFoundError, GateInputError):
                return None
        return rec

    def stage(self, stage: str, inputs: dict, outputs: list[str], body: Callable[[], dict],
              keep: Callable[[dict], bool] = lambda result: True) -> dict:
        """Run ``body`` unless a fresh record exists; return the record's ``result``.

        ``outputs``: paths (relative to the run folder) the body writes; cleared before a
        re-run, hashed into the record after it. ``keep(result)`` False (e.g. a timeout)
        writes no record, so the next run tries the stage again.
        """
        with self._locked(stage):
            return self._stage(stage, inputs, outputs, body, keep)

    @contextlib.contextmanager
    def _locked(self, stage: str):
        lock = self.path("stages", f".{stage}.lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        with open(lock, "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _stage(self, stage: str, inputs: dict, outputs: list[str], body: Callable[[], dict],
               keep: Callable[[dict], bool]) -> dict:
        in_sha = inputs_sha256({"stage": stage, "inputs": inputs})
        rec = self.is_fresh(stage, in_sha)
        if rec is not None:
            self.skipped.append(stage)
            self.seconds[stage] = 0.0
            self.hashes.update(rec.get("outputs") or {})
            return rec["result"]
        for rel in outputs:
            p = self.path(rel)
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
        rp = self.record_path(stage)
        if rp.exists():
            rp.unlink()
        t0 = time.monotonic()
        result = body()
        secs = time.monotonic() - t0
        hashes = {rel: tree_sha256(self.path(rel)) for rel in outputs if self.path(rel).exists()}
        self.hashes.update(hashes)
        self.ran.append(stage)
        self.seconds[stage] = secs
        if not keep(result):
            return json_safe(result)
        atomic_write_json(rp, {"version": STAGE_RECORD_VERSION, "stage": stage, "inputs_sha256": in_sha,
                               "inputs": json_safe(inputs), "outputs": hashes, "seconds": round(secs, 4),
                               "result": json_safe(result)})
        return json_safe(result)
