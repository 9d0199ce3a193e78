"""Pure decision functions: observations (plain dicts) in, verdicts out.

Nothing in this package does I/O or imports OpenVINO/torch; every function is
deterministic so it can be tested as a pure function thousands of times.
"""
