"""Bodies of executor units in tests (importable by name in a spawned child and in a Ray worker).

Stand-ins for a cell's body where the test is about the executor, not the model: they fail the
ways a plugin or a model fails, or report where they ran.
"""
from __future__ import annotations

import os
import signal
import time

FAULTS = ("ok", "raise", "exit", "segv", "abort", "kill", "hang")


def fault(kind: str) -> dict:
    """Return, or fail as ``kind`` says: raise, exit (os._exit), segv, abort, kill (SIGKILL), hang."""
    if kind == "ok":
        return {"ok": True, "pid": os.getpid()}
    if kind == "raise":
        raise ValueError("bad value in the unit")
    if kind == "exit":
        os._exit(3)
    if kind == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if kind == "abort":
        os.abort()
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "hang":
        time.sleep(10 ** 6)
    raise ValueError(f"unknown fault {kind}")


def sleep_and_report(seconds: float, pid_dir: str | None = None, tag: str = "") -> dict:
    """Leave this process's pid in ``pid_dir`` (so a test can check it does not outlive its worker), sleep."""
    if pid_dir:
        with open(os.path.join(pid_dir, f"{os.getpid()}.pid"), "w") as fh:
            fh.write(tag)
    time.sleep(seconds)
    return {"pid": os.getpid(), "tag": tag}
