"""``python -m modelgate``: the ``modelgate`` console script."""
import sys

from modelgate.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
