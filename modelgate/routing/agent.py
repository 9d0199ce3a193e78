"""Agent backend: ask a real agent CLI each query, one at a time, and read which skill it loaded.

The command comes from ``--agent-cmd`` or the environment variable ``MODELGATE_AGENT_CMD``
(for example ``claude -p --output-format stream-json --verbose``). It is split into an argv list
(never run through a shell); the query is appended as the last argument, or replaces a ``{query}``
placeholder argument. When no command is configured or its executable is not on PATH, the backend
is *skipped* with the reason, never simulated.

Which skill the agent loaded is read from its output: a ``Skill`` tool call naming the skill
(stream-json), a read of ``skills/<name>/SKILL.md`` (or ``.claude/skills/<name>/SKILL.md``), or an
explicit ``MODELGATE_SKILL: <name>`` line. The first skill seen wins; none seen means ``none``.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path

from modelgate.routing.cases import NONE

ENV_VAR = "MODELGATE_AGENT_CMD"
PLACEHOLDER = "{query}"
_SKILL_TOOL_NAMES = {"Skill", "skill", "load_skill"}
_SKILL_INPUT_KEYS = ("skill", "command", "name")


def agent_argv(agent_cmd: str | None) -> tuple[list[str] | None, str]:
    """(argv prefix, reason): argv is None when there is no usable agent CLI; reason says why."""
    cmd = agent_cmd if agent_cmd is not None else os.environ.get(ENV_VAR, "")
    if not cmd.strip():
        return None, f"no agent CLI configured (pass --agent-cmd or set {ENV_VAR})"
    try:
        argv = shlex.split(cmd)
    except ValueError as exc:
        return None, f"agent command does not parse: {exc}"
    if shutil.which(argv[0]) is None:
        return None, f"agent CLI {argv[0]!r} not found on PATH"
    return argv, "ok"


def build_argv(prefix: Sequence[str], query: str) -> list[str]:
    """The argv for one query: replace a ``{query}`` argument, else append the query."""
    if PLACEHOLDER in prefix:
        return [query if a == PLACEHOLDER else a for a in prefix]
    return list(prefix) + [query]


def _skill_from_path(text: str, skills: Sequence[str]) -> tuple[int, str] | None:
    best = None
    for name in skills:
        m = re.search(rf"(?:^|[/\\\s\"'])skills[/\\]{re.escape(name)}[/\\]SKILL\.md", text)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), name)
    return best


def _walk_tool_calls(obj):
    """Yield (tool name, input dict) for every tool_use block in a parsed stream-json event."""
    if isinstance(obj, dict):
        if obj.get("type") == "tool_use" and isinstance(obj.get("input"), dict):
            yield obj.get("name"), obj["input"]
        for v in obj.values():
            yield from _walk_tool_calls(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk_tool_calls(v)


def parse_loaded_skill(output: str, skills: Sequence[str]) -> tuple[str, str]:
    """(skill or NONE, evidence line) from an agent's output."""
    known = set(skills)
    for line in output.splitlines():
        line = line.strip()
        if not line:
            continue
        explicit = re.match(r"^MODELGATE_SKILL:\s*([a-z0-9-]+)\s*$", line)
        if explicit and explicit.group(1) in known:
            return explicit.group(1), line[:300]
        if line.startswith("{"):
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            for name, inp in _walk_tool_calls(event):
                if name in _SKILL_TOOL_NAMES:
                    for key in _SKILL_INPUT_KEYS:
                        val = str(inp.get(key, "")).strip().lstrip("/")
                        if val in known:
                            return val, f"{name} tool call: {val}"
                for val in inp.values():
                    hit = _skill_from_path(str(val), skills) if isinstance(val, str) else None
                    if hit:
                        return hit[1], f"{name} tool call on {val}"[:300]
            if event is not None:
                continue
        hit = _skill_from_path(line, skills)
        if hit:
            return hit[1], line[:300]
    return NONE, "no skill load seen in the agent output"


def route_with_agent(prefix: Sequence[str], queries: Sequence[str], skills: Sequence[str], *,
                     timeout: float, cwd: Path, log_dir: Path) -> list[dict]:
    """Run the agent once per query; returns [{predicted, evidence, error, seconds, log}] in order.

    The full output of each run is kept in ``log_dir`` (the skill load is usually near the start,
    beyond what a log tail would hold).
    """
    from modelgate import childproc

    out = []
    log_dir.mkdir(parents=True, exist_ok=True)
    for i, q in enumerate(queries):
        log = log_dir / f"agent-{i:03d}.log"
        res = childproc.run_command(build_argv(prefix, q), timeout=timeout, cwd=str(cwd),
                                    error_class="INFRA_TRANSIENT", log_path=log)
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else (res.log_tail or "")
        predicted, evidence = parse_loaded_skill(text, skills)
        error = None if res.ok else f"{res.failure_class}: {res.detail}"
        out.append({"predicted": predicted, "evidence": evidence, "error": error, "seconds": res.seconds,
                    "log": str(log)})
    return out
