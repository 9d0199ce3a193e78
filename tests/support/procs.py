"""Process facts from /proc (Linux), for tests that check no process outlives its run."""
from __future__ import annotations

import os
from pathlib import Path


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def session(pid: int) -> int | None:
    """The session id of a process (kept when it is re-parented after its parent died)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])
    except (OSError, ValueError, IndexError):
        return None


def in_session(sid: int) -> list[int]:
    """Live processes of session ``sid``."""
    return [p for p in all_pids() if session(p) == sid and alive(p)]


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def children(pid: int) -> list[int]:
    return [p for p in all_pids() if parent(p) == pid]


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``."""
    by_parent: dict[int, list[int]] = {}
    for p in all_pids():
        by_parent.setdefault(parent(p) or 0, []).append(p)
    out, todo = [], [pid]
    while todo:
        for c in by_parent.get(todo.pop(), []):
            if alive(c):
                out.append(c)
                todo.append(c)
    return out


def ray_processes(root: int | None = None) -> list[int]:
    """Ray's daemons and workers among the descendants of ``root`` (default: this process)."""
    marks = ("raylet", "gcs_server", "ray::", "default_worker.py", "dashboard", "log_monitor", "runtime_env")
    return [p for p in descendants(root or os.getpid()) if any(m in cmdline(p) for m in marks)]
