"""Playbook integrity lock: the SHA-256 of the CONTENT of everything a certification run reads
(schemas/playbook-lock.schema.json): each playbook, every tier template, the playbook schema and
the data files scenarios draw from.

Hashes are over file bytes; no path enters them, so moving or renaming the lock changes nothing
and editing one byte of any input is detected. Playbook keys are the playbook's path below the
folder that was locked, prefixed by that folder's name (``models/trained-llama-smoke.yaml``); a
run finds its entry by the longest key that ends its own path. Inputs are keyed by logical name
(``templates/smoke.yaml``, ``playbook.schema.json``, ``data/color_facts.json``).

A run looks for the lock in this order: ``--lock``; ``<output>/playbooks.lock.json``; the nearest
``playbooks.lock.json`` in the playbook's folder or above (the pack ships one beside its own
playbooks). ``lock-playbooks`` writes into the output or a folder the user names, never into the
skill pack.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from modelgate.contract import GateFailure, GateInputError, atomic_write_json, read_json, schema_errors

LOCK_NAME = "playbooks.lock.json"
LOCK_VERSION = "2.0"
PLAYBOOK_SUFFIXES = (".yaml", ".yml")


def playbook_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a playbook file's content."""
    p = Path(path)
    if not p.is_file():
        raise GateInputError("USER_CONFIG_ERROR", f"playbook not found: {p}")
    return hashlib.sha256(p.read_bytes()).hexdigest()


def pack_inputs(skill_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """Every non-playbook file a run of the skill folder can read, by logical name: the five tier
    templates, the playbook schema and each pairs_from data file."""
    from modelgate.certify import playbook as P

    skill = P.skill_folder(skill_dir)
    out = {f"templates/{t}.yaml": skill / P.TEMPLATES / f"{t}.yaml" for t in P.TIERS}
    out[P.SCHEMA_KEY] = skill / P.SCHEMA_FILE
    for name, fname in P.PAIRS_FROM_FILES.items():
        out[f"data/{fname}"] = P.data_file(name)
    return out


def build_lock(directory: str | os.PathLike, skill_dir: str | os.PathLike | None = None) -> dict:
    """The lock document of every *.yaml / *.yml under ``directory`` and of the pack's inputs."""
    root = Path(directory)
    if not root.is_dir():
        raise GateInputError("USER_CONFIG_ERROR", f"playbook folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in PLAYBOOK_SUFFIXES)
    if not files:
        raise GateInputError("USER_CONFIG_ERROR", f"no playbooks (*.yaml, *.yml) under {root}")
    prefix = root.resolve().name
    playbooks = {f"{prefix}/{p.resolve().relative_to(root.resolve()).as_posix()}": playbook_sha256(p) for p in files}
    inputs = {}
    for key, p in pack_inputs(skill_dir).items():
        if not p.is_file():
            raise GateInputError("USER_CONFIG_ERROR", f"cannot lock {key}: {p} does not exist")
        inputs[key] = hashlib.sha256(p.read_bytes()).hexdigest()
    doc = {"schema_version": LOCK_VERSION, "algorithm": "sha256", "playbooks": playbooks, "inputs": inputs}
    errors = schema_errors("playbook-lock", doc)
    if errors:
        raise GateInputError("USER_CONFIG_ERROR", "lock would be invalid: " + "; ".join(errors[:3]))
    return doc


def lock_playbooks(directory: str | os.PathLike, lock_path: str | os.PathLike,
                   skill_dir: str | os.PathLike | None = None) -> Path:
    """Hash the playbooks under ``directory`` and the pack's inputs; write the lock to ``lock_path``."""
    return atomic_write_json(Path(lock_path), build_lock(directory, skill_dir))


def find_lock(playbook_path: str | os.PathLike) -> Path | None:
    """The nearest playbooks.lock.json in the playbook's folder or any parent folder."""
    for folder in Path(playbook_path).resolve().parents:
        candidate = folder / LOCK_NAME
        if candidate.is_file():
            return candidate
    return None


def read_lock(lock_path: str | os.PathLike) -> dict:
    """Read and validate a lock file (GateInputError if missing or invalid)."""
    doc = read_json(lock_path, "playbook lock")
    errors = schema_errors("playbook-lock", doc)
    if errors:
        raise GateInputError("USER_CONFIG_ERROR", f"playbook lock {lock_path} is invalid: " + "; ".join(errors[:3]))
    return doc


def entry_key(playbook: Path, entries: dict) -> str | None:
    """The lock key of a playbook: the longest key whose path components end the playbook's path."""
    parts = playbook.resolve().parts
    best = None
    for key in entries:
        kparts = tuple(key.split("/"))
        if len(kparts) <= len(parts) and parts[-len(kparts):] == kparts and (best is None or len(kparts) >
                                                                               len(best.split("/"))):
            best = key
    return best


def candidate_locks(playbook_path: str | os.PathLike, lock_path: str | os.PathLike | None = None,
                    output: str | os.PathLike | None = None) -> list[Path]:
    """Where to look for the lock: ``lock_path`` alone when given; else ``<output>/playbooks.lock.json``
    (when it exists), then the nearest one above the playbook."""
    if lock_path:
        return [Path(lock_path)]
    found = []
    if output is not None and (Path(output) / LOCK_NAME).is_file():
        found.append(Path(output) / LOCK_NAME)
    near = find_lock(playbook_path)
    if near is not None and near.resolve() not in [f.resolve() for f in found]:
        found.append(near)
    return found


def lock_state(playbook_path: str | os.PathLike, lock_path: str | os.PathLike | None = None, *,
               inputs: dict[str, str] | None = None, output: str | os.PathLike | None = None) -> tuple[str, str]:
    """(state, detail): 'verified' when the playbook and every input the run reads (``inputs``:
    logical name -> sha256) match the lock; 'mismatch' names the file that changed; 'missing' when
    there is no lock, no entry, or the lock does not cover an input."""
    playbook = Path(playbook_path)
    actual = playbook_sha256(playbook)
    locks = candidate_locks(playbook, lock_path, output)
    if not locks:
        return "missing", f"no {LOCK_NAME} found for {playbook.name}"
    for lock in locks:
        doc = read_lock(lock)
        key = entry_key(playbook, doc["playbooks"])
        if key is None:
            continue
        if doc["playbooks"][key] != actual:
            return "mismatch", (f"{key} changed since it was locked in {lock}: content sha256 {actual[:12]}... != "
                                f"locked {doc['playbooks'][key][:12]}...")
        if doc["schema_version"] != LOCK_VERSION:
            return "missing", (f"{lock} is a lock of schema {doc['schema_version']}: it covers the playbook "
                               f"but not the tier templates and data a run reads")
        changed, unlocked = [], []
        for name, sha in sorted((inputs or {}).items()):
            locked = doc["inputs"].get(name)
            if locked is None:
                unlocked.append(name)
            elif locked != sha:
                changed.append(f"{name} (sha256 {sha[:12]}... != locked {locked[:12]}...)")
        if changed:
            return "mismatch", f"changed since they were locked in {lock}: " + "; ".join(changed)
        if unlocked:
            return "missing", f"{lock} does not cover {', '.join(unlocked)}"
        covered = f" and {len(inputs)} input(s) it reads" if inputs else ""
        return "verified", f"{key}{covered} match the lock {lock} (sha256 {actual[:12]}...)"
    return "missing", f"{playbook.name} has no entry in {', '.join(str(p) for p in locks)}"


def check_lock(playbook_path: str | os.PathLike, lock_path: str | os.PathLike | None = None, *,
               inputs: dict[str, str] | None = None) -> tuple[bool, str]:
    """(ok, detail): do the playbook and its inputs match the lock?"""
    state, detail = lock_state(playbook_path, lock_path, inputs=inputs)
    return state == "verified", detail


def enforce_lock(playbook_path: str | os.PathLike, lock_path: str | os.PathLike | None = None, *,
                 allow_unlocked: bool = False, inputs: dict[str, str] | None = None,
                 output: str | os.PathLike | None = None) -> str:
    """For a run, the value of evidence.playbook_lock: 'verified' when the playbook and its inputs match
    the lock; with ``allow_unlocked``, 'overridden' (something differs) or 'unlocked' (not covered).
    Without it anything not verified is refused: GateFailure INTEGRITY_MISMATCH (exit 1)."""
    state, detail = lock_state(playbook_path, lock_path, inputs=inputs, output=output)
    if state == "verified":
        return "verified"
    if allow_unlocked:
        return "overridden" if state == "mismatch" else "unlocked"
    raise GateFailure("INTEGRITY_MISMATCH", f"refusing playbook: {detail}", lock_state=state)
