"""The command line: one spine (``spine``) that every ``modelgate`` command and every skill script runs
through, and one module per command family. Nothing outside this package imports it."""
