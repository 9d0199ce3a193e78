"""``modelgate demo``: build the tiny llama offline, convert it (fp16), verify it, print the verdict.

The verdict is written to ``./demo-output/verify_result.json`` (the IR to ``./demo-output/ir``);
the exit code is the verdict's. Nothing is downloaded.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="modelgate demo", description=__doc__.split("\n")[0])
    p.add_argument("--output", default="demo-output", help="folder for the IR and the verdict (default ./demo-output)")
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    from modelgate import fixtures
    from modelgate.verify import cli

    out = Path(args.output)
    # the demo owns its output folder: a previous run's IR would make the converter refuse
    if (out / "ir").exists():
        shutil.rmtree(out / "ir")
    model = fixtures.hf_model("llama")
    return cli.main(["--model", str(model), "--weight-format", "fp16", "--output", str(out)])


if __name__ == "__main__":
    sys.exit(main())
