"""Resolve a Hugging Face hub id to a local snapshot folder: the local cache first, a download when
the hub answers, ``SOURCE_UNAVAILABLE`` within seconds when neither works.

The resolved folder is then verified exactly like a local one; the verdict records the id, the
revision (commit hash of the snapshot) and where it came from (``cache`` or ``hub``).

Bounded in time: the cache lookup touches no network (``local_files_only``); the hub is asked
first with a metadata call that has its own timeout, run in a daemon thread joined with a
deadline (a hub that accepts the connection and never answers would otherwise hang
``snapshot_download`` for minutes); only when the hub has answered is the snapshot downloaded,
pinned to the commit the hub named.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from modelgate.contract import GateInputError

HUB_ANSWER_SECONDS = 5.0   # how long the hub may take to answer the metadata call
OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
# weights of other frameworks are never needed to verify a transformers/diffusers source
IGNORE_PATTERNS = ("*.onnx", "*.onnx_data", "*.h5", "*.msgpack", "*.ot", "*.gguf", "*.tflite", "*.mlmodel",
                   "onnx/*", "openvino/*", "coreml/*", "flax_model*", "tf_model*")


@dataclass(frozen=True)
class Resolved:
    path: str           # the snapshot folder (models--org--name/snapshots/<revision>)
    hub_id: str
    revision: str       # commit hash of the snapshot
    resolved_from: str  # "cache" | "hub"

    def record(self) -> dict:
        return {"hub_id": self.hub_id, "revision": self.revision, "resolved_from": self.resolved_from}


def offline() -> bool:
    """True when the environment forbids the hub (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE set and not 0)."""
    return any(os.environ.get(v, "").strip().lower() not in ("", "0", "false", "no") for v in OFFLINE_VARS)


def cache_dir() -> str:
    """The hub cache as the environment names it now (HF_HUB_CACHE, else HF_HOME/hub, else the default).

    huggingface_hub reads these variables once, when it is first imported; a process that sets them
    later (a test, an embedding application) would otherwise look in the cache of the first setting."""
    env = os.environ
    if env.get("HF_HUB_CACHE"):
        return env["HF_HUB_CACHE"]
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                                              "huggingface")
    return os.path.join(home, "hub")


def _revision_of(path: str) -> str:
    """The commit hash of a snapshot folder (its name, by the hub cache's layout)."""
    return Path(path).name


def _unavailable(hub_id: str, why: str) -> GateInputError:
    return GateInputError("SOURCE_UNAVAILABLE", f"{hub_id} looks like a Hugging Face hub id but {why}. Download it "
                          "where the hub is reachable (it lands in the local cache) or pass a local folder.")


def from_cache(hub_id: str, revision: str | None = None) -> Resolved | None:
    """The cached snapshot of ``hub_id`` (``revision``: a branch, tag or commit; default main), or None."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError
    try:
        path = snapshot_download(hub_id, revision=revision, local_files_only=True, cache_dir=cache_dir())
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        return None
    if not (Path(path) / "config.json").is_file() and not (Path(path) / "model_index.json").is_file():
        return None  # a cached snapshot without a config (e.g. only a README) is not a model
    return Resolved(path, hub_id, _revision_of(path), "cache")


def _bounded(fn, seconds: float):
    """fn() in a daemon thread: (value, None), or (None, error text) on an exception or the deadline."""
    box: dict = {}

    def body():
        try:
            box["value"] = fn()
        except Exception as exc:  # reported to the caller as the reason
            box["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        return None, f"no answer within {seconds:g} s"
    return box.get("value"), box.get("error")


def resolve(hub_id: str, revision: str | None = None, *, answer_seconds: float = HUB_ANSWER_SECONDS,
            download_seconds: float = 900.0) -> Resolved:
    """Cache first, then the hub (metadata within ``answer_seconds``, then the pinned download); raise
    GateInputError(SOURCE_UNAVAILABLE) when neither has the model."""
    hit = from_cache(hub_id, revision)
    if hit is not None:
        return hit
    if offline():
        raise _unavailable(hub_id, "it is not in the local Hugging Face cache and the hub is disabled "
                           "(HF_HUB_OFFLINE)")
    from huggingface_hub import HfApi, snapshot_download
    info, err = _bounded(lambda: HfApi().model_info(hub_id, revision=revision, timeout=answer_seconds),
                         answer_seconds + 1.0)
    if info is None:
        raise _unavailable(hub_id, f"it is not in the local cache and the hub did not answer ({err})")
    sha = getattr(info, "sha", None) or revision
    path, err = _bounded(lambda: snapshot_download(hub_id, revision=sha, ignore_patterns=list(IGNORE_PATTERNS),
                                                   etag_timeout=answer_seconds, cache_dir=cache_dir()),
                         download_seconds)
    if path is None:
        raise _unavailable(hub_id, f"the download from the hub failed ({err})")
    return Resolved(path, hub_id, _revision_of(path), "hub")
