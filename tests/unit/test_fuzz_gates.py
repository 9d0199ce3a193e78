"""A smaller run of scripts/fuzz_gates.py (the figures of a full run are in docs/fuzzing.md): every
target's generated inputs, valid-shaped, boundary and hostile, give no traceback, no output that breaks its
schema and no ACCEPT the generator knows is unjustified; one input per target also runs as a subprocess."""
from __future__ import annotations

import json

import fuzz_gates
import pytest

from modelgate.contract import make_verdict, stamp

INPUTS = 60


@pytest.mark.parametrize("name", list(fuzz_gates.TARGETS))
def test_fuzzed_inputs_give_no_traceback_no_invalid_verdict_and_no_unjustified_accept(name):
    tally = fuzz_gates.fuzz(fuzz_gates.TARGETS[name], INPUTS, subprocesses=1, seed=12)
    assert tally.inputs == INPUTS and tally.subprocess_inputs <= 1
    assert (tally.tracebacks, tally.invalid, tally.unjustified) == (0, 0, 0), tally.examples
    # the generator's valid inputs are judged, not all refused: some are accepted
    assert tally.justified_inputs == 0 or tally.justified_accepted > 0


def test_the_harness_counts_what_it_is_shown():
    """A gate that accepted everything would be caught: the unjustified count is real."""
    target = fuzz_gates.TARGETS["gate-run"]
    tally = fuzz_gates.Tally()
    case = fuzz_gates.Case(argv=["--run", "x"], hostile=["poison_field"], accept_ok=False, label="hostile:test")
    fuzz_gates.judge(target, case, tally, '{"gate": "gate-run"}', "", 0, None)
    assert tally.invalid == 1  # not valid against run-verdict
    fuzz_gates.judge(target, case, tally, "not json", "", 2, None)
    fuzz_gates.judge(target, case, tally, "", "Traceback (most recent call last):\n", 1, None)
    assert (tally.invalid, tally.tracebacks) == (2, 1)
    ok = stamp(make_verdict("gate-run", passed=True, detail="ok", tasks={}))
    fuzz_gates.judge(target, case, tally, json.dumps(ok), "", 0, None)
    assert tally.unjustified == 1
