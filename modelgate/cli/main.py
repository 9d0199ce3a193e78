"""The ``modelgate`` console script: the root of the command spine.

Every command is a ``modelgate.cli.spine.Command`` declared in its own module; this table makes each
one a subparser of ``modelgate``. The skills' scripts run the same declarations, so
``modelgate verify ...`` and ``skills/verify-conversion/scripts/verify_conversion.py ...`` are one
code path. An unknown command is a JSON verdict with exit 2.
"""
from __future__ import annotations

import sys

from modelgate.cli.certify import CERTIFY
from modelgate.cli.cluster import NODE_RESOURCES
from modelgate.cli.day0 import GATE_COMPARE, GATE_PTQ, GATE_RUN
from modelgate.cli.release import RELEASE
from modelgate.cli.routing import ROUTING_EVALS
from modelgate.cli.spine import Command, run_command
from modelgate.cli.verify import DEMO, VERIFY

COMMANDS: tuple[Command, ...] = (VERIFY, DEMO, RELEASE, GATE_PTQ, GATE_RUN, GATE_COMPARE, CERTIFY, ROUTING_EVALS,
                                 NODE_RESOURCES)

ROOT = Command("modelgate", "decide whether a converted, quantized or released model can be trusted on OpenVINO",
               children=COMMANDS, schema="envelope",  # only an unknown command reports as the root
               description="modelgate: decide whether a converted, quantized or released model can be trusted on "
                           "OpenVINO. Every command prints one JSON verdict; exit 0 pass, 1 the gate failed, 2 the "
                           "input could not be judged. `modelgate <command> --help` for each command.")


def main(argv: list[str] | None = None) -> int:
    """Run ``modelgate <command> ...``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["help"]:
        argv = ["--help", *argv[1:]]
    return run_command(ROOT, argv, prog="modelgate")


if __name__ == "__main__":
    sys.exit(main())
