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
import threading

from modelgate import childproc

# imported once by the fork server; importing must not start threads or open devices
PRELOAD = ["numpy", "torch", "transformers", "transformers.models.auto.modeling_auto",
           "transformers.models.auto.tokenization_auto", "openvino", "openvino_genai", "openvino_tokenizers",
           "modelgate.certify.cells", "modelgate.certify.invariants_observe", "modelgate.openvino.infer",
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
    """``childproc.run_function`` in a process forked from the preloaded server."""
    return childproc.run_function(target, kwargs, timeout=timeout, crash_class=crash_class,
                                  error_class=error_class, context=context())
