"""A Hugging Face cache in the hub's own layout, built from a local folder (no hub involved):
``<HF_HOME>/hub/models--org--name/blobs/<sha256>``, ``snapshots/<revision>/<file>`` -> ``../../blobs/...``
and ``refs/main`` holding the revision."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path


def add_model(hf_home: Path, repo_id: str, folder: Path, revision: str | None = None) -> str:
    """Put ``folder``'s files into the cache under ``repo_id``; returns the revision (commit hash)."""
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and not p.name.startswith("."))
    revision = revision or hashlib.sha1(b"".join(str(p.relative_to(folder)).encode() for p in files)).hexdigest()
    repo = Path(hf_home) / "hub" / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    for p in files:
        digest = hashlib.sha256(p.read_bytes()).hexdigest()
        blob = repo / "blobs" / digest
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            shutil.copy2(p, blob)
        link = repo / "snapshots" / revision / p.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    return revision
