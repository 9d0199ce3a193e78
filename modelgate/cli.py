"""The ``modelgate`` console script: one subcommand per skill entry point.

Each subcommand is a thin dispatcher to the skill's own ``main(argv)`` so that
``modelgate verify ...`` and ``skills/verify-conversion/scripts/verify_conversion.py ...``
are the same code path.
"""
from __future__ import annotations

import importlib
import sys

# subcommand -> (module:function, one-line help). Data, not if-chains.
COMMANDS = {
    "verify": ("modelgate.verify.cli:main", "convert (optionally) and verify a model on OpenVINO"),
    "demo": ("modelgate.verify.demo:main", "build a tiny model offline, convert it, verify it, print the verdict"),
    "release": ("modelgate.release.cli:main", "day-0 release conductor: PTQ -> canary -> eval -> compare"),
    "gate-ptq": ("modelgate.release.gate_cli:main_ptq", "PTQ gate on a quantized IR"),
    "gate-run": ("modelgate.release.gate_cli:main_run", "completeness gate on an eval run summary"),
    "gate-compare": ("modelgate.release.gate_cli:main_compare", "baseline vs candidate comparison gate"),
    "certify": ("modelgate.certify.cli:main", "run a certification playbook (MQS, G0-G4, registry, reports)"),
    "routing-evals": ("modelgate.routing.cli:main", "run the skills' routing evals"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: modelgate <command> [args...]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"modelgate: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module, _, func = COMMANDS[name][0].partition(":")
    return int(getattr(importlib.import_module(module), func)(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
