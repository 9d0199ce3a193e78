"""Functions the child-process tests run in a spawned child (must be importable by name)."""
import time


def square(x):
    return x * x


def sleep_for(seconds):
    time.sleep(seconds)
    return "woke"
