"""A build cache addressed by recipe: build a folder once, atomically, under a file lock.

``cached_build(name, recipe, build)`` returns ``<cache>/<name>-<hash>``, where the hash covers the
recipe, ``BUILDER_VERSION`` and the installed transformers version; a build runs in a temporary
folder and is renamed into place, so concurrent processes (pytest workers, parallel cells) share
one copy safely. The tiny model fixtures (``modelgate.fixtures``), the OpenVINO export cache
(``modelgate.openvino.convert.export_cached``) and the routing embeddings use it. The cache lives
under ``~/.cache/modelgate/fixtures`` (``MODELGATE_FIXTURE_CACHE`` moves it).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

BUILDER_VERSION = "3"


def cache_root() -> Path:
    root = os.environ.get("MODELGATE_FIXTURE_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "modelgate" / "fixtures"


def recipe_hash(recipe: dict) -> str:
    from importlib import metadata
    key = dict(recipe, _builder=BUILDER_VERSION, _transformers=metadata.version("transformers"))
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cached_build(name: str, recipe: dict, build: Callable[[Path], None], root: str | os.PathLike | None = None) -> Path:
    """Return ``<cache>/<name>-<hash>``, building it once (atomically, under a lock). ``root`` replaces the
    cache folder (a shared artifact folder: it needs a filesystem whose ``flock`` works across machines)."""
    base = Path(root) if root else cache_root()
    target = base / f"{name}-{recipe_hash(recipe)}"
    if (target / ".complete").exists():
        return target
    with _locked(base / f".{target.name}.lock"):
        if (target / ".complete").exists():
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=base))
        try:
            build(tmp)
            (tmp / ".complete").write_text(json.dumps(recipe, sort_keys=True))
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target
