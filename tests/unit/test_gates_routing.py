"""The runner's threshold checks (pure)."""
from modelgate.gates.routing import gate_checks

CONFIG = {"min_accuracy": {"heldout": 0.95, "train": 0.9}, "max_false_triggers": 0}


def _m(cases, correct, ft=0):
    return {"cases": cases, "correct": correct, "accuracy": correct / cases if cases else None,
            "false_triggers": ft}


def _by_name(checks):
    return {c["name"]: c for c in checks}


def test_heldout_accuracy_exactly_at_the_minimum_passes_despite_float_rounding():
    checks = _by_name(gate_checks({"heldout": _m(20, 19), "train": _m(10, 9), "all": _m(30, 28)}, CONFIG))
    assert checks["heldout_accuracy"]["pass"] and checks["train_accuracy"]["pass"]


def test_one_false_trigger_fails_even_with_high_accuracy():
    checks = _by_name(gate_checks({"heldout": _m(100, 99, ft=1), "all": _m(100, 99, ft=1)}, CONFIG))
    assert checks["heldout_accuracy"]["pass"] and not checks["heldout_false_triggers"]["pass"]


def test_accuracy_below_minimum_fails():
    checks = _by_name(gate_checks({"heldout": _m(20, 18), "all": _m(20, 18)}, CONFIG))
    assert not checks["heldout_accuracy"]["pass"]


def test_a_target_split_without_cases_fails_and_extra_split_gets_its_false_trigger_check():
    # The acceptance target names held-out and train accuracy: a run without those cases cannot meet it.
    checks = _by_name(gate_checks({"extra": _m(5, 5), "all": _m(5, 5)}, CONFIG))
    assert set(checks) == {"extra_false_triggers", "heldout_accuracy", "train_accuracy"}
    assert checks["extra_false_triggers"]["pass"]
    for name in ("heldout_accuracy", "train_accuracy"):
        assert checks[name]["pass"] is False and checks[name]["measured"] is None


def test_an_extra_split_threshold_is_only_judged_when_extra_cases_are_given():
    config = dict(CONFIG, min_accuracy={"extra": 0.9})
    assert "extra_accuracy" not in _by_name(gate_checks({"train": _m(5, 5), "all": _m(5, 5)}, config))
    assert not _by_name(gate_checks({"extra": _m(10, 8), "all": _m(10, 8)}, config))["extra_accuracy"]["pass"]
