"""Run work that can crash or hang (export, compile, infer) in a child process with a timeout.

A segfault in the OpenVINO plugin or an exporter that never returns must still yield a
written verdict, so the parent only ever sees a ``ChildResult``.

A child never outlives the process that started it: it asks the kernel for SIGKILL when its
parent dies (``PR_SET_PDEATHSIG`` on Linux), so a killed run, Ray worker or node leaves no cell
running, daemonic or not (``daemon=False``: a child that starts children of its own, such as a
release chain's stages). ``new_session=True`` (children of Ray workers) puts the child in its own
session: Ray kills a worker's whole process group, and a cell killed with it would be reported by
the still-living worker as the cell's own SIGKILL; in its own session it dies only with its parent.
"""
from __future__ import annotations

import contextlib
import ctypes
import importlib
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# Exception type names (from the child) mapped to failure classes. Data, not if-chains.
EXCEPTION_CLASSES = {
    "MemoryError": "RESOURCE_EXHAUSTED",
    "OutOfMemoryError": "RESOURCE_EXHAUSTED",
    "TimeoutError": "TIMEOUT",
    "FileNotFoundError": "USER_CONFIG_ERROR",
    "OfflineModeIsEnabled": "SOURCE_UNAVAILABLE",
    "LocalEntryNotFoundError": "SOURCE_UNAVAILABLE",
    "RepositoryNotFoundError": "SOURCE_UNAVAILABLE",
    "GatedRepoError": "SOURCE_UNAVAILABLE",
}

# Text markers in an exporter's log mapped to failure classes, checked in order.
LOG_MARKERS = (
    ("out of memory", "RESOURCE_EXHAUSTED"),
    ("cannot allocate memory", "RESOURCE_EXHAUSTED"),
    ("no space left on device", "RESOURCE_EXHAUSTED"),
    ("std::bad_alloc", "RESOURCE_EXHAUSTED"),
    ("trust_remote_code", "MODEL_UNSUPPORTED"),
    ("contains custom code", "MODEL_UNSUPPORTED"),
    ("is not supported", "MODEL_UNSUPPORTED"),
    ("unrecognized configuration class", "MODEL_UNSUPPORTED"),
    ("does not appear to have a file named", "SOURCE_UNAVAILABLE"),
    ("we couldn't connect", "SOURCE_UNAVAILABLE"),
    ("offline mode", "SOURCE_UNAVAILABLE"),
    ("is not a local folder and is not a valid model identifier", "SOURCE_UNAVAILABLE"),
)


@dataclass
class ChildResult:
    ok: bool
    value: Any = None
    failure_class: str | None = None
    detail: str = ""
    log_tail: str = ""
    returncode: int | None = None
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def classify_text(text: str, default: str) -> str:
    low = text.lower()
    for marker, cls in LOG_MARKERS:
        if marker in low:
            return cls
    return default


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(new_session: bool) -> None:
    """Child side: SIGKILL when the parent dies; with ``new_session``, leave the parent's session first."""
    parent = os.getppid()
    if new_session:
        os.setsid()
    # A child forked by a fork server inherits the requesting process's end of the server's "alive"
    # pipe; holding it keeps the server alive after the requester died, and the server is the
    # parent whose death kills this child. Let it go, so that requester -> server -> child all end.
    from multiprocessing import forkserver

    alive_fd = getattr(forkserver._forkserver, "_forkserver_alive_fd", None)
    if alive_fd is not None:
        with contextlib.suppress(OSError):
            os.close(alive_fd)
        forkserver._forkserver._forkserver_alive_fd = None
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _child_entry(conn, target: str, kwargs: dict, new_session: bool = False):
    try:
        _die_with_parent(new_session)
        module, _, name = target.partition(":")
        fn = getattr(importlib.import_module(module), name)
        conn.send(("ok", fn(**kwargs)))
    except BaseException as exc:  # report everything to the parent, which decides
        cls = getattr(exc, "failure_class", None) or EXCEPTION_CLASSES.get(type(exc).__name__)
        conn.send(("error", {"type": type(exc).__name__, "message": str(exc)[:4000],
                             "failure_class": cls, "traceback": traceback.format_exc()[-4000:]}))
    finally:
        conn.close()


def run_function(target: str, kwargs: dict | None = None, *, timeout: float,
                 crash_class: str = "PLUGIN_CRASH", error_class: str = "INFERENCE_FAILED",
                 context=None, new_session: bool = False, daemon: bool = True) -> ChildResult:
    """Call ``module:function(**kwargs)`` in a child process; its return value must pickle.

    Timeout -> TIMEOUT (child killed); death by signal -> ``crash_class``; an exception
    -> its own ``failure_class`` attribute, a mapped class, or ``error_class``. ``context`` is a
    multiprocessing context (default: a fresh ``spawn``ed interpreter per call). ``new_session`` and
    ``daemon``: see the module docstring. The timeout counts from the child's start,
    so a fork server's first start-up (its preloaded imports) is not charged to the call.
    """
    ctx = context or mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_entry, args=(child, target, kwargs or {}, new_session), daemon=daemon)
    proc.start()
    t0 = time.monotonic()
    child.close()
    msg = None
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        if parent.poll(0.05):
            try:
                msg = parent.recv()
            except EOFError:
                # the pipe closed without a message: the child is dying; let it finish so its
                # exit code (signal) is known instead of mistaking it for a hang
                proc.join(max(0.0, min(10.0, deadline - time.monotonic())))
            break
        if not proc.is_alive() and not parent.poll(0):
            break
    elapsed = time.monotonic() - t0
    if msg is None and proc.is_alive():
        _kill(proc)
        return ChildResult(False, failure_class="TIMEOUT", seconds=elapsed,
                           detail=f"{target} exceeded {timeout * 1000:.0f} ms and was killed")
    proc.join(5)
    if proc.is_alive():
        _kill(proc)
    if msg is None:
        code = proc.exitcode
        sig = -code if code is not None and code < 0 else None
        what = f"signal {signal.Signals(sig).name}" if sig else f"exit code {code}"
        cls = "RESOURCE_EXHAUSTED" if sig == signal.SIGKILL else crash_class
        return ChildResult(False, failure_class=cls, returncode=code, seconds=elapsed,
                           detail=f"child process died ({what}) in {target}")
    kind, payload = msg
    if kind == "ok":
        return ChildResult(True, value=payload, returncode=0, seconds=elapsed)
    cls = payload.get("failure_class") or classify_text(payload["message"], error_class)
    return ChildResult(False, failure_class=cls, seconds=elapsed,
                       detail=f"{payload['type']}: {payload['message']}", log_tail=payload["traceback"])


def _kill(proc):
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.join(5)


def run_command(argv: Sequence[str], *, timeout: float, env: dict | None = None, cwd: str | None = None,
                error_class: str = "CONVERSION_FAILED", log_path: str | os.PathLike | None = None) -> ChildResult:
    """Run an argv list (never a shell string) with a timeout; kill its whole process group on expiry."""
    t0 = time.monotonic()
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=full_env, cwd=cwd, start_new_session=True, stdin=subprocess.DEVNULL)
    except FileNotFoundError as exc:
        return ChildResult(False, failure_class="USER_CONFIG_ERROR", detail=f"command not found: {exc}")
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        tail = (out or "")[-4000:]
        _save_log(log_path, out)
        return ChildResult(False, failure_class="TIMEOUT", log_tail=tail, seconds=time.monotonic() - t0,
                           detail=f"{os.path.basename(argv[0])} exceeded {timeout * 1000:.0f} ms and was killed")
    elapsed = time.monotonic() - t0
    _save_log(log_path, out)
    tail = (out or "")[-4000:]
    if proc.returncode == 0:
        return ChildResult(True, returncode=0, log_tail=tail, seconds=elapsed)
    code = proc.returncode
    if code < 0:
        cls = "RESOURCE_EXHAUSTED" if -code == signal.SIGKILL else "PLUGIN_CRASH"
    else:
        cls = classify_text(out or "", error_class)
    last = [ln for ln in (out or "").strip().splitlines() if ln.strip()][-1:] or [""]
    return ChildResult(False, failure_class=cls, returncode=code, log_tail=tail, seconds=elapsed,
                       detail=f"{os.path.basename(argv[0])} failed (exit {code}): {last[0][:500]}")


def _save_log(path, text):
    if path:
        from modelgate.contract import atomic_write_text
        atomic_write_text(path, text or "")
