"""How a skill's script starts: run one command of the engine, or say as JSON how to install it.

A script in ``skills/<skill>/scripts/`` appends its own ``vendor/`` folder to ``sys.path`` (so an
installed engine is found first) and calls ``run_script``. The vendored copy holds only the pure
part of the engine (this spine, the contract, ``modelgate.gates`` and what they need); a command that
needs more (OpenVINO, NNCF, transformers) fails to import and ``run_script`` prints a
USER_CONFIG_ERROR verdict (exit 2) that says how to install the engine, never a traceback.

The script's skill folder is passed to the command as the default of ``--skill-dir``, so a copied
skill folder reads its own templates and recipes.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path

from modelgate.cli.spine import INSTALL, Command, run_command, run_gate


def run_script(target: str, script: str, *, gate: str, argv: list[str] | None = None) -> int:
    """Run command ``target`` ("module:ATTRIBUTE", a ``Command``) as the skill script ``script`` (its
    ``__file__``); ``gate`` names the verdict if the engine cannot be imported. Returns the exit code."""
    path = Path(script).resolve()
    if importlib.util.find_spec("jsonschema") is None:  # not even the contract can run: plain JSON
        print(json.dumps({"gate": gate, "pass": False, "exit_code": 2, "failure_class": "USER_CONFIG_ERROR",
                          "detail": f"{path.name} needs the jsonschema package; {INSTALL}",
                          "next_action": "pip install jsonschema, or install the modelgate engine"}, indent=2))
        return 2
    module_name, _, attribute = target.partition(":")
    try:
        command = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        # The command itself cannot be loaded, so neither can the schema it declares: the verdict says
        # how to install the engine in the bare envelope. (Every skill script's command module is in
        # the vendored copy, so this happens only with a broken or outdated installed engine.)
        error = exc if isinstance(exc, ImportError) else ImportError(str(exc))
        unloadable = Command(gate, "the command could not be loaded", gate=gate, schema="envelope")
        return run_gate(unloadable, lambda: _raise(error))
    return run_command(command, argv, prog=path.name, defaults={"skill_dir": str(path.parent.parent)})


def _raise(exc: BaseException):
    raise exc
