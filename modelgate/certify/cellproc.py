"""One child process per certification cell, forked from a server that has already imported
the heavy libraries.

``childproc.run_function`` spawns a fresh interpreter per call, which costs ~10 s of
transformers/torch imports per safetensors cell on 2 cores. Cells here fork from a
multiprocessing *forkserver* that preloaded those modules once, so a cell still runs isolated
in its own process (a crash or hang kills only that cell) but starts in a fraction of the
time. The child protocol and the result type are ``childproc``'s own.
"""
from __future__ import annotations

import multiprocessing as mp
import signal
import time
import threading

from modelgate import childproc

# imported once by the fork server; importing must not start threads or open devices
PRELOAD = ["numpy", "torch", "transformers", "transformers.models.auto.modeling_auto",
           "transformers.models.auto.tokenization_auto", "openvino", "openvino_genai", "openvino_tokenizers",
           "modelgate.certify.cells", "modelgate.certify.invariants", "modelgate.openvino.infer",
           "modelgate.openvino.tokenizer_parity"]

_lock = threading.Lock()
_ctx = None


def context():
    """The shared forkserver context (started lazily, preloading PRELOAD)."""
    global _ctx
    with _lock:
        if _ctx is None:
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(PRELOAD)
            _ctx = ctx
        return _ctx


def run_cell_function(target: str, kwargs: dict, *, timeout: float, crash_class: str = "PLUGIN_CRASH",
                      error_class: str = "INFERENCE_FAILED") -> childproc.ChildResult:
    """``childproc.run_function`` semantics (timeout -> TIMEOUT and kill, signal death -> crash
    class, exception -> its class) in a process forked from the preloaded server."""
    ctx = context()
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=childproc._child_entry, args=(child, target, kwargs), daemon=True)
    t0 = time.monotonic()
    proc.start()
    child.close()
    msg = None
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        if parent.poll(0.05):
            try:
                msg = parent.recv()
            except EOFError:
                msg = None
            break
        if not proc.is_alive() and not parent.poll(0):
            break
    if msg is None and proc.is_alive() and time.monotonic() < deadline:
        # the pipe closed early: the child is dying (e.g. writing a core dump), not hanging
        proc.join(max(0.0, min(30.0, deadline - time.monotonic())))
    elapsed = time.monotonic() - t0
    if msg is None and proc.is_alive():
        proc.kill()
        proc.join(5)
        return childproc.ChildResult(False, failure_class="TIMEOUT", seconds=elapsed,
                                     detail=f"{target} exceeded {timeout:.1f}s and was killed")
    proc.join(5)
    if proc.is_alive():
        proc.kill()
        proc.join(5)
    if msg is None:
        code = proc.exitcode
        sig = -code if code is not None and code < 0 else None
        what = f"signal {signal.Signals(sig).name}" if sig else f"exit code {code}"
        cls = "RESOURCE_EXHAUSTED" if sig == signal.SIGKILL else crash_class
        return childproc.ChildResult(False, failure_class=cls, returncode=code, seconds=elapsed,
                                     detail=f"child process died ({what}) in {target}")
    kind, payload = msg
    if kind == "ok":
        return childproc.ChildResult(True, value=payload, returncode=0, seconds=elapsed)
    cls = payload.get("failure_class") or childproc.classify_text(payload["message"], error_class)
    return childproc.ChildResult(False, failure_class=cls, seconds=elapsed,
                                 detail=f"{payload['type']}: {payload['message']}", log_tail=payload["traceback"])
