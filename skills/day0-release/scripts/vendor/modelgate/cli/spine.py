"""The CLI spine: how every ``modelgate`` command and every skill script parses, runs and emits.

A command is declared once, as a ``Command``: its name, one line of help, a function that adds its
arguments to an argparse parser, and a body. The same declaration becomes ``modelgate <name>``
(a subparser of the root, see ``modelgate.cli.main``) and a skill script (``run_command`` with the
script's own program name). A command with ``children`` has sub-subcommands (``certify score``).

A gate body takes the parsed arguments and returns an ``Outcome``: the verdict, the name of the
schema it must satisfy and the path to write it to (or None). Anything that stops the body is
turned into a verdict too: a ``GateError`` carries its failure class and exit code; bad arguments
are USER_CONFIG_ERROR (exit 2); a missing module means the engine is not installed (exit 2, with
how to install it); any other exception is UNKNOWN with the exception text. stdout carries exactly
one JSON verdict; when stderr is a terminal, a short human summary goes there.

Standard library only (rich is used for the summary when it is installed), so the vendored copy of
the engine in a skill folder runs it with nothing but jsonschema.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from modelgate import contract
from modelgate.contract import GateError, GateInputError

INSTALL = ("install the modelgate engine: `pip install <modelgate repository path or URL>` "
           "(or `bash scripts/setup.sh` in a checkout of the repository)")


class Outcome(NamedTuple):
    """What a gate body returns: the verdict, the schema it must satisfy, where to write it."""
    verdict: dict
    schema: str = "envelope"
    output: str | os.PathLike | None = None


class GateArgumentParser(argparse.ArgumentParser):
    """argparse that raises GateInputError (exit 2, USER_CONFIG_ERROR) instead of printing usage
    and exiting; ``gate`` names the verdict of such an error."""

    def __init__(self, *args: Any, gate: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.gate = gate

    def error(self, message: str):  # noqa: D401 - argparse API
        exc = GateInputError("USER_CONFIG_ERROR", f"bad arguments: {message}")
        exc.gate = self.gate
        raise exc


def _output_argument(args: argparse.Namespace) -> Any:
    return getattr(args, "output", None)


@dataclass(frozen=True)
class Command:
    """One command: ``modelgate <name>`` and, with ``prog``, a skill script.

    ``run(args)`` returns an ``Outcome`` (a gate: the spine emits the verdict) or an int (a tool
    that prints its own report: the spine returns it as the exit code). ``error_output(args)``
    is where a verdict goes when the body fails before returning one (default: ``--output``).
    """
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    run: Callable[[argparse.Namespace], Outcome | int] | None = None
    gate: str | None = None
    description: str | None = None
    epilog: str | None = None
    raw_help: bool = False
    error_output: Callable[[argparse.Namespace], Any] = _output_argument
    children: tuple[Command, ...] = field(default=())

    @property
    def verdict_gate(self) -> str:
        return self.gate or self.name


def build_parser(cmd: Command, prog: str | None = None,
                 parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The argparse parser of ``cmd`` (and of its children, as subparsers)."""
    if parser is None:
        parser = GateArgumentParser(prog=prog or cmd.name, gate=cmd.verdict_gate, **_parser_texts(cmd))
    cmd.configure(parser)
    parser.set_defaults(_command=cmd)
    if cmd.children:
        sub = parser.add_subparsers(title="commands", metavar="<command>")
        for child in cmd.children:
            build_parser(child, parser=sub.add_parser(child.name, help=child.help, gate=child.verdict_gate,
                                                      **_parser_texts(child)))
    return parser


def _parser_texts(cmd: Command) -> dict:
    out: dict = {"description": cmd.description or cmd.help, "epilog": cmd.epilog}
    if cmd.raw_help:
        out["formatter_class"] = argparse.RawDescriptionHelpFormatter
    return out


def run_command(cmd: Command, argv: list[str] | None = None, *, prog: str | None = None,
                defaults: dict | None = None, tty: bool | None = None) -> int:
    """Parse ``argv`` for ``cmd`` and run the chosen (sub)command; return the exit code.

    ``defaults`` override argument defaults of ``cmd``'s own parser (a skill script passes its
    skill folder this way). ``--help`` prints help and returns 0; a command with children and
    none chosen prints its help too.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(cmd, prog)
    if defaults:
        parser.set_defaults(**defaults)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help
        return int(exc.code or 0) if isinstance(exc.code, int) else 0
    except GateError as exc:
        gate = getattr(exc, "gate", None) or cmd.verdict_gate
        return run_gate(gate, _raise(exc), tty=tty)
    leaf: Command = args._command
    if leaf.run is None:
        parser.print_help()
        return contract.EXIT_PASS
    return run_gate(leaf.verdict_gate, lambda: leaf.run(args), error_output=lambda: leaf.error_output(args),
                    tty=tty)


def _raise(exc: BaseException) -> Callable[[], Outcome]:
    def body() -> Outcome:
        raise exc
    return body


def run_gate(gate: str, body: Callable[[], Outcome | int], *, error_output: Callable[[], Any] | None = None,
             tty: bool | None = None) -> int:
    """Run a gate body, emit its verdict (or the verdict of what stopped it); return the exit code.

    Never lets a traceback out as output: GateError -> its class and exit code; ImportError -> the
    engine is missing (USER_CONFIG_ERROR, with how to install it); KeyboardInterrupt ->
    INFRA_TRANSIENT; anything else -> UNKNOWN (the traceback goes to stderr for humans).
    """
    t0 = time.monotonic()
    output = None
    schema = "envelope"
    try:
        result = body()
        if isinstance(result, int):
            return result  # a tool that printed its own report
        verdict, schema, output = result
    except SystemExit as exc:  # --help of a nested parser
        return int(exc.code or 0) if isinstance(exc.code, int) else 0
    except BrokenPipeError:  # whoever read stdout has gone: nobody to tell
        return _reader_gone()
    except GateError as exc:
        verdict = _error(gate, exc.failure_class, exc.detail, t0, exit_code=exc.exit_code,
                         evidence=_str_evidence(exc.evidence))
        output = _safe_output(error_output)
    except ImportError as exc:
        verdict = _error(gate, "USER_CONFIG_ERROR", f"this command needs the full modelgate engine and its "
                         f"dependencies ({type(exc).__name__}: {exc}); {INSTALL}", t0)
        output = _safe_output(error_output)
    except KeyboardInterrupt:
        verdict = _error(gate, "INFRA_TRANSIENT", "interrupted by user", t0)
        output = _safe_output(error_output)
    except Exception as exc:  # the contract: unexpected errors become a verdict, not a traceback
        traceback.print_exc(file=sys.stderr)
        verdict = _error(gate, "UNKNOWN", f"{type(exc).__name__}: {exc}", t0)
        output = _safe_output(error_output)
    if verdict.get("failure_class") and schema != "envelope" and contract.schema_errors(schema, verdict):
        schema = "envelope"  # error verdicts may lack gate-specific fields; the envelope still holds
    try:
        code = contract.emit(verdict, schema, output)
    except BrokenPipeError:
        return _reader_gone()
    summarize(verdict, tty=tty)
    return code


def _reader_gone() -> int:
    """stdout's reader closed the pipe (``... | head``): point stdout at /dev/null so that the
    interpreter's final flush raises nothing, and exit 1 without a traceback."""
    # stdout may not be a file descriptor (a test's buffer): then there is nothing to redirect
    with contextlib.suppress(OSError, ValueError, AttributeError, io.UnsupportedOperation):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return contract.EXIT_FAIL


def _error(gate: str, failure_class: str, detail: str, t0: float, **extra: Any) -> dict:
    return contract.error_verdict(gate, failure_class, detail, timings={"total_s": time.monotonic() - t0}, **extra)


def _safe_output(error_output: Callable[[], Any] | None) -> Any:
    """Where an error verdict goes; an output path that cannot itself be worked out is no output."""
    if error_output is None:
        return None
    try:
        return error_output()
    except GateError:
        return None


def _str_evidence(ev: dict) -> dict:
    return {k: (str(v) if v is not None and not isinstance(v, (str, list)) else v) for k, v in ev.items()}


@contextlib.contextmanager
def stdout_to_stderr():
    """Point file descriptor 1 at stderr for the duration, so that exporters, NNCF progress and child
    processes (which inherit the descriptor) never mix their chatter with the one JSON verdict."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


# --------------------------------------------------------------------------- the human summary

def summary_lines(verdict: dict) -> list[str]:
    """A verdict in three short lines for a person: the outcome, the first failing check, the next step."""
    outcome = "PASS" if verdict.get("pass") else "FAIL"
    decision = verdict.get("decision")
    cls = verdict.get("failure_class")
    head = f"{verdict.get('gate')}: {outcome}" + (f" ({decision})" if decision and decision != outcome else "")
    head += f" [{cls}]" if cls else ""
    lines = [head, f"  {_clip(verdict.get('detail', ''))}"]
    failing = next((c for c in verdict.get("checks") or [] if isinstance(c, dict) and c.get("pass") is False), None)
    if failing is not None:
        lines.append(f"  first failing check: {failing.get('name')} (measured {_clip(failing.get('measured'), 60)}, "
                     f"threshold {_clip(failing.get('threshold'), 60)})")
    nxt = verdict.get("next_action")
    if nxt and nxt != "none":
        lines.append(f"  next: {_clip(nxt)}")
    return lines


def _clip(value: Any, limit: int = 200) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def summarize(verdict: dict, stream=None, tty: bool | None = None) -> bool:
    """Print ``summary_lines`` on ``stream`` (stderr) when it is a terminal, or when ``tty`` forces it.

    With rich installed the outcome is coloured; without it the same lines are printed plain.
    Returns whether anything was printed. stdout is never touched.
    """
    stream = stream or sys.stderr
    if tty is None:
        tty = bool(getattr(stream, "isatty", lambda: False)())
    if not tty or not isinstance(verdict, dict):
        return False
    lines = summary_lines(verdict)
    try:
        from rich.console import Console
        from rich.text import Text
    except ImportError:
        stream.write("\n".join(lines) + "\n")
        stream.flush()
        return True
    console = Console(file=stream, force_terminal=tty, highlight=False, soft_wrap=True)
    style = "bold green" if verdict.get("pass") else "bold red"
    console.print(Text(lines[0], style=style))
    for line in lines[1:]:
        console.print(Text(line))
    return True
