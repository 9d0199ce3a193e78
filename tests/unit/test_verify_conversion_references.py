"""The skill's references agree with the code: failure classes with the schema, tolerances with the table."""
import re
from pathlib import Path

from modelgate import contract
from modelgate.gates.verify import EMITTED_CLASSES, TOLERANCES

SKILL = Path(__file__).resolve().parents[2] / "skills" / "verify-conversion"
ROW = re.compile(r"^\| `([A-Z_]+)` \| ([12]) \| [^|]* \| (.+) \|$")


def test_failure_classes_reference_lists_exactly_the_classes_the_gate_can_emit_with_schema_text():
    rows = {m.group(1): (int(m.group(2)), m.group(3)) for line in
            (SKILL / "references" / "failure-classes.md").read_text().splitlines() if (m := ROW.match(line))}
    assert set(rows) == set(EMITTED_CLASSES)
    schema = contract.failure_classes()
    for cls, (code, text) in rows.items():
        assert text == schema[cls], cls
        assert code == contract.exit_code_for(False, cls), cls


def test_emitted_classes_are_all_in_the_pack_vocabulary():
    assert set(EMITTED_CLASSES) <= set(contract.failure_classes())


def test_tolerances_reference_shows_every_number_of_the_tolerance_table():
    text = (SKILL / "references" / "tolerances.md").read_text()
    for wf, row in TOLERANCES.items():
        line = next(ln for ln in text.splitlines() if ln.startswith(f"| {wf} "))
        for key, value in row.items():
            assert ("n/a" if value is None else f"{value:g}") in line, (wf, key)


def test_skill_md_names_only_real_failure_classes_and_stays_short():
    text = (SKILL / "SKILL.md").read_text()
    assert len(text.splitlines()) < 300
    triage = text[text.index("## Triage by failure class"):]
    named = set(re.findall(r"^\| `([A-Z_]+)`", triage, re.M)) | set(re.findall(r"/ `([A-Z_]+)`", triage))
    assert named == set(EMITTED_CLASSES)
