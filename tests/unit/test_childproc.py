"""Work that can crash or hang runs in a child; the parent always gets a classified result."""
import sys

from modelgate import childproc


def test_child_return_value_comes_back():
    r = childproc.run_function("childproc_targets:square", {"x": 4.0}, timeout=60)
    assert r.ok and r.value == 16.0


def test_a_hanging_child_is_killed_and_reported_as_timeout():
    r = childproc.run_function("childproc_targets:sleep_for", {"seconds": 30}, timeout=2)
    assert not r.ok and r.failure_class == "TIMEOUT" and r.seconds < 15
    assert "exceeded 2000 ms" in r.detail


def test_a_sub_second_timeout_is_reported_in_milliseconds_not_as_zero_seconds():
    r = childproc.run_function("childproc_targets:sleep_for", {"seconds": 30}, timeout=0.05)
    assert r.failure_class == "TIMEOUT" and "exceeded 50 ms" in r.detail and "0s" not in r.detail
    r = childproc.run_command([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.05)
    assert r.failure_class == "TIMEOUT" and "exceeded 50 ms" in r.detail


def test_a_child_that_aborts_is_a_plugin_crash_not_a_hang():
    r = childproc.run_function("os:abort", {}, timeout=60)
    assert not r.ok and r.failure_class == "PLUGIN_CRASH" and "SIGABRT" in r.detail


def test_exceptions_in_the_child_are_classified_by_type():
    r = childproc.run_function("builtins:open", {"file": "/nonexistent/for/sure"}, timeout=60)
    assert not r.ok and r.failure_class == "USER_CONFIG_ERROR" and "FileNotFoundError" in r.detail


def test_command_timeout_kills_the_process_group():
    r = childproc.run_command([sys.executable, "-c", "import time; time.sleep(30)"], timeout=2)
    assert not r.ok and r.failure_class == "TIMEOUT"


def test_command_failure_is_classified_from_its_log():
    r = childproc.run_command([sys.executable, "-c", "raise SystemExit('CUDA out of memory')"], timeout=60)
    assert not r.ok and r.failure_class == "RESOURCE_EXHAUSTED" and r.returncode == 1
