"""The skill validator on the real repository: every skill loads, routes and runs as documented."""
from pathlib import Path

import pytest

from modelgate.skillpack import validate

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def test_every_skill_in_the_repository_is_valid():
    report = validate.validate(ROOT)
    assert report["skills"] == ["day0-release", "model-certification", "verify-conversion"]
    assert report["pass"], report["problems"]
