"""The model-certification references stay true to the schemas and the code."""
from __future__ import annotations

import re
from pathlib import Path

from modelgate.certify.registry import COLUMNS, KNOWN_STATUSES
from modelgate.contract import failure_classes
from modelgate.gates import mqs

REFS = Path(__file__).resolve().parents[2] / "skills" / "model-certification" / "references"


def _sections(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in
            re.finditer(r"^## ([A-Z_]+)\n\nEmitted by: .*?\n\n(.+?)\n", text, flags=re.M | re.S)}


def test_failure_classes_reference_matches_the_envelope_schema():
    sections = _sections((REFS / "failure-classes.md").read_text())
    assert sections
    for name, text in sections.items():
        assert text == failure_classes().get(name), name


def test_failure_classes_reference_covers_every_class_the_scoring_tools_emit():
    emitted = {mqs.failure_class_for(s) for s in (
        {"status": "PENDING"}, {"status": "BLOCKED", "gateways_pass": False},
        {"status": "BLOCKED", "gateways_pass": True})} | {"INTEGRITY_MISMATCH", "USER_CONFIG_ERROR", "UNKNOWN"}
    assert emitted <= set(_sections((REFS / "failure-classes.md").read_text()))


def test_registry_reference_lists_the_pinned_columns_and_statuses():
    text = (REFS / "registry.md").read_text()
    for col in COLUMNS:
        if not col.startswith("tps_"):
            assert re.search(rf"\b{col}\b", text), col
    for status in KNOWN_STATUSES:
        assert status in text


def test_mqs_reference_states_the_constants_the_code_uses():
    text = (REFS / "mqs.md").read_text()
    for cat, points in mqs.CATEGORY_MAX.items():
        assert f"{cat} {points:g}" in text
    for floor, grade in mqs.GRADE_FLOORS:
        assert f"≥ {floor:g} {grade}" in text
    assert "−20 per Crashed" in text and "−10 per Timeout" in text
    assert "raw ≥ 850" in text and "raw < 700" in text
