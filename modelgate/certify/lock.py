"""Playbook integrity lock: the SHA-256 of each playbook's CONTENT (schemas/playbook-lock.schema.json).

The hash is over the playbook file's bytes; neither the lock file's path nor the playbook's
path enters it, so moving or renaming the lock changes nothing and editing one byte of a
playbook is always detected.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from modelgate.contract import GateFailure, GateInputError, atomic_write_json, read_json, schema_errors

LOCK_NAME = "playbooks.lock.json"
PLAYBOOK_SUFFIXES = (".yaml", ".yml")


def playbook_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a playbook file's content."""
    p = Path(path)
    if not p.is_file():
        raise GateInputError("USER_CONFIG_ERROR", f"playbook not found: {p}")
    return hashlib.sha256(p.read_bytes()).hexdigest()


def lock_playbooks(directory: str | os.PathLike, lock_path: str | os.PathLike | None = None) -> Path:
    """Hash every *.yaml / *.yml under ``directory`` and write the lock (default ``<directory>/playbooks.lock.json``).

    Keys are paths relative to the lock file's folder, so a run finds its playbook's entry
    wherever the tree is checked out.
    """
    root = Path(directory)
    if not root.is_dir():
        raise GateInputError("USER_CONFIG_ERROR", f"playbook folder not found: {root}")
    lock = Path(lock_path) if lock_path else root / LOCK_NAME
    base = lock.resolve().parent
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in PLAYBOOK_SUFFIXES)
    if not files:
        raise GateInputError("USER_CONFIG_ERROR", f"no playbooks (*.yaml, *.yml) under {root}")
    entries = {}
    for p in files:
        try:
            key = p.resolve().relative_to(base).as_posix()
        except ValueError as exc:
            raise GateInputError("USER_CONFIG_ERROR", f"playbook {p} is not under the lock's folder {base}") from exc
        entries[key] = playbook_sha256(p)
    doc = {"schema_version": "1.0", "algorithm": "sha256", "playbooks": entries}
    errors = schema_errors("playbook-lock", doc)
    if errors:
        raise GateInputError("USER_CONFIG_ERROR", "lock would be invalid: " + "; ".join(errors[:3]))
    return atomic_write_json(lock, doc)


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


def _entry_for(playbook: Path, lock: Path, entries: dict) -> tuple[str | None, str | None]:
    try:
        key = playbook.resolve().relative_to(lock.resolve().parent).as_posix()
    except ValueError:
        key = None
    if key is not None:
        # under the lock's folder the relative path is the only key that counts
        return (key, entries[key]) if key in entries else (None, None)
    # a lock kept elsewhere: match by file name, but only when that is unambiguous
    named = [k for k in entries if k.rsplit("/", 1)[-1] == playbook.name]
    if len(named) == 1:
        return named[0], entries[named[0]]
    return None, None


def lock_state(playbook_path: str | os.PathLike, lock_path: str | os.PathLike | None = None) -> tuple[str, str]:
    """(state, detail) with state 'verified', 'mismatch' (hash differs) or 'missing' (no lock or no entry)."""
    playbook = Path(playbook_path)
    actual = playbook_sha256(playbook)
    lock = Path(lock_path) if lock_path else find_lock(playbook)
    if lock is None:
        return "missing", f"no {LOCK_NAME} found for {playbook.name}; run lock-playbooks"
    entries = read_lock(lock)["playbooks"]
    key, locked = _entry_for(playbook, lock, entries)
    if locked is None:
        return "missing", f"{playbook.name} has no entry in {lock.name}; run lock-playbooks"
    if locked != actual:
        return "mismatch", (f"{key} changed since it was locked: content sha256 {actual[:12]}... != "
                            f"locked {locked[:12]}...")
    return "verified", f"{key} matches its lock (sha256 {actual[:12]}...)"


def check_lock(playbook_path: str | os.PathLike, lock_path: str | os.PathLike | None = None) -> tuple[bool, str]:
    """(ok, detail): does the playbook's content hash equal its lock entry?

    Not ok when there is no lock, no entry for the playbook, or the hash differs.
    """
    state, detail = lock_state(playbook_path, lock_path)
    return state == "verified", detail


def enforce_lock(playbook_path: str | os.PathLike, lock_path: str | os.PathLike | None = None, *,
                 allow_unlocked: bool = False) -> str:
    """For a run, the value of evidence.playbook_lock: 'verified' when the playbook matches its lock;
    with ``allow_unlocked``, 'overridden' (hash differs) or 'unlocked' (no entry). Without it a
    playbook that is not verified is refused: GateFailure INTEGRITY_MISMATCH (exit 1)."""
    state, detail = lock_state(playbook_path, lock_path)
    if state == "verified":
        return "verified"
    if allow_unlocked:
        return "overridden" if state == "mismatch" else "unlocked"
    raise GateFailure("INTEGRITY_MISMATCH", f"refusing playbook: {detail} (pass --allow-unlocked to run anyway)")
