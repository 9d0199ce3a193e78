"""The CLI spine: how every ``modelgate`` command and every skill script parses, runs and emits.

A command is declared once, as a ``Command``: its name, one line of help, a function that adds its
arguments to an argparse parser, and a body. The same declaration becomes ``modelgate <name>``
(a subparser of the root, see ``modelgate.cli.main``) and a skill script (``run_command`` with the
script's own program name). A command with ``children`` has sub-subcommands (``certify score``).

Every command declares the schema its verdicts satisfy (``schema``) and the gate-specific fields
of its error verdicts (``error_fields(args, failure_class, detail)``: the fields that schema requires, as the nulls
and empties it allows). A gate body takes the parsed arguments and returns an ``Outcome``: the
verdict and the path to write it to (or None). Anything that stops the body is turned into a
verdict of the same command, built from its error fields and validated against the same schema:
a ``GateError`` carries its failure class and exit code; bad arguments and an unusable
``--output`` are USER_CONFIG_ERROR (exit 2); a missing module means the engine is not installed
(exit 2, with how to install it); any other exception is UNKNOWN with the exception text. There is
no fallback to a looser schema: a verdict that breaks its command's schema is an internal bug,
reported as UNKNOWN (and raised in strict mode, so a test fails). stdout carries exactly one JSON
verdict; when stderr is a terminal, a short human summary goes there.

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
    """What a gate body returns: the verdict, the schema it must satisfy (None: the command's own),
    where to write it."""
    verdict: dict
    schema: str | None = None
    output: str | os.PathLike | None = None


class GateArgumentParser(argparse.ArgumentParser):
    """argparse that raises GateInputError (exit 2, USER_CONFIG_ERROR) instead of printing usage
    and exiting; ``command`` is the command whose verdict reports such an error."""

    def __init__(self, *args: Any, command: Command | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.command = command

    def error(self, message: str):  # noqa: D401 - argparse API
        exc = GateInputError("USER_CONFIG_ERROR", f"bad arguments: {message}")
        exc.command = self.command
        raise exc


def _output_argument(args: argparse.Namespace) -> Any:
    return getattr(args, "output", None)


def no_error_fields(args: argparse.Namespace | None, failure_class: str, detail: str) -> dict:
    """The error fields of a command whose schema requires nothing beyond the envelope."""
    return {}


@dataclass(frozen=True)
class Command:
    """One command: ``modelgate <name>`` and, with ``prog``, a skill script.

    ``run(args)`` returns an ``Outcome`` (a gate: the spine emits the verdict) or an int (a tool
    that prints its own report: the spine returns it as the exit code). ``schema`` names the schema
    every verdict of the command satisfies, error verdicts included (required: there is no default).
    ``error_fields(args, failure_class, detail)`` returns the gate-specific fields of an error verdict
    (``args`` is None when the arguments could not be parsed; it must not raise). ``error_output(args)`` is where
    a verdict goes when the body fails before returning one (default: ``--output``).
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
    schema: str = ""
    error_fields: Callable[[argparse.Namespace | None, str, str], dict] = no_error_fields

    def __post_init__(self):
        if not self.schema:
            raise TypeError(f"command {self.name!r} declares no verdict schema (Command(..., schema=...))")

    @property
    def verdict_gate(self) -> str:
        return self.gate or self.name

    def error_verdict(self, args: argparse.Namespace | None, failure_class: str, detail: str, **extra: Any) -> dict:
        """A failing verdict of this command: the envelope, its error fields, ``extra``."""
        return contract.error_verdict(self.verdict_gate, failure_class, detail,
                                      **{**self.template(args, failure_class, detail), **extra})

    def template(self, args: argparse.Namespace | None, failure_class: str, detail: str) -> dict:
        """``error_fields`` for ``args``; with arguments it cannot use (a half-parsed or hostile
        namespace), those of no arguments. Never raises: a template that fails gives no fields, and
        the verdict that lacks them fails its schema (an internal bug, reported as such)."""
        for given in ((args, None) if args is not None else (None,)):
            try:
                return dict(self.error_fields(given, failure_class, detail))
            except Exception:  # the next candidate; the schema check reports a template that fails
                continue
        return {}


def build_parser(cmd: Command, prog: str | None = None,
                 parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The argparse parser of ``cmd`` (and of its children, as subparsers)."""
    if parser is None:
        parser = GateArgumentParser(prog=prog or cmd.name, command=cmd, **_parser_texts(cmd))
    cmd.configure(parser)
    parser.set_defaults(_command=cmd)
    if cmd.children:
        sub = parser.add_subparsers(title="commands", metavar="<command>")
        for child in cmd.children:
            build_parser(child, parser=sub.add_parser(child.name, help=child.help, command=child,
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
        return run_gate(getattr(exc, "command", None) or cmd, _raise(exc), None, tty=tty)
    leaf: Command = args._command
    if leaf.run is None:
        parser.print_help()
        return contract.EXIT_PASS
    return run_gate(leaf, lambda: leaf.run(args), args, tty=tty)


def _raise(exc: BaseException) -> Callable[[], Outcome]:
    def body() -> Outcome:
        raise exc
    return body


def run_gate(cmd: Command, body: Callable[[], Outcome | int], args: argparse.Namespace | None = None, *,
             tty: bool | None = None) -> int:
    """Run a body of ``cmd``, emit its verdict (or the verdict of what stopped it); return the exit code.

    Before the body runs, the place an error verdict goes (``cmd.error_output(args)``) is checked:
    an unusable ``--output`` stops the command with exit 2 before any work. Never lets a traceback
    out as output: GateError -> its class and exit code; ImportError -> the engine is missing
    (USER_CONFIG_ERROR, with how to install it); KeyboardInterrupt -> INFRA_TRANSIENT; anything
    else -> UNKNOWN (the traceback goes to stderr for humans). Every verdict, error verdicts
    included, is validated against ``cmd.schema`` (or the schema the Outcome names).
    """
    t0 = time.monotonic()
    output = error_output = None
    schema = cmd.schema
    gate = cmd.verdict_gate
    try:
        error_output = _safe_output(cmd, args)
        problem = contract.output_problem(error_output, gate)
        if problem:
            error_output = None  # an output that cannot be written is not written to
            raise GateInputError("USER_CONFIG_ERROR", problem)
        result = body()
        if isinstance(result, int):
            return result  # a tool that printed its own report
        verdict, outcome_schema, output = result
        schema = outcome_schema or cmd.schema
    except SystemExit as exc:  # --help of a nested parser
        return int(exc.code or 0) if isinstance(exc.code, int) else 0
    except BrokenPipeError:  # whoever read stdout has gone: nobody to tell
        return _reader_gone()
    except GateError as exc:
        verdict = _error(cmd, args, exc.failure_class, exc.detail, t0, exit_code=exc.exit_code,
                         evidence=_str_evidence(exc.evidence))
        output = error_output
    except ImportError as exc:
        verdict = _error(cmd, args, "USER_CONFIG_ERROR", f"this command needs the full modelgate engine and its "
                         f"dependencies ({type(exc).__name__}: {exc}); {INSTALL}", t0)
        output = error_output
    except KeyboardInterrupt:
        verdict = _error(cmd, args, "INFRA_TRANSIENT", "interrupted by user", t0)
        output = error_output
    except Exception as exc:  # the contract: unexpected errors become a verdict, not a traceback
        traceback.print_exc(file=sys.stderr)
        verdict = _error(cmd, args, "UNKNOWN", f"{type(exc).__name__}: {exc}", t0)
        output = error_output
    try:
        code, printed = contract.emit_verdict(verdict, schema, output,
                                              error_fields=lambda cls, detail: cmd.template(args, cls, detail))
    except BrokenPipeError:
        return _reader_gone()
    summarize(printed, tty=tty)
    return code


def _reader_gone() -> int:
    """stdout's reader closed the pipe (``... | head``): point stdout at /dev/null so that the
    interpreter's final flush raises nothing, and exit 1 without a traceback."""
    # stdout may not be a file descriptor (a test's buffer): then there is nothing to redirect
    with contextlib.suppress(OSError, ValueError, AttributeError, io.UnsupportedOperation):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return contract.EXIT_FAIL


def _error(cmd: Command, args: argparse.Namespace | None, failure_class: str, detail: str, t0: float,
           **extra: Any) -> dict:
    return cmd.error_verdict(args, failure_class, detail, timings={"total_s": time.monotonic() - t0}, **extra)


def _safe_output(cmd: Command, args: argparse.Namespace | None) -> Any:
    """Where an error verdict goes; an output path that cannot itself be worked out (bad or half-parsed
    arguments) is no output."""
    if args is None:
        return None
    try:
        return cmd.error_output(args)
    except Exception:  # the verdict says what is wrong with the arguments; it is printed, not written
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
