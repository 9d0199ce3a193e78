"""scripts/vendor_engine.py: the pure copies of the engine in the skill folders are generated, never edited,
and cannot drift from their sources."""
import shutil
import sys
from pathlib import Path

import pytest
import vendor_engine as V

from tests.support.source_scan import imported_modules

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("skill", sorted(V.ENTRY_MODULES))
def test_every_vendored_file_is_its_source_byte_for_byte(skill):
    assert V.differences(skill) == [], "run: python scripts/vendor_engine.py"


def test_every_skill_carries_a_vendored_engine():
    skills = sorted(p.name for p in (ROOT / "skills").iterdir() if (p / "SKILL.md").is_file())
    assert sorted(V.ENTRY_MODULES) == skills


def test_a_copy_that_differs_from_its_source_is_found(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "modelgate", tmp_path / "modelgate", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "skills" / "day0-release" / "scripts" / "vendor",
                    tmp_path / "skills" / "day0-release" / "scripts" / "vendor")
    monkeypatch.setattr(V, "ROOT", tmp_path)
    monkeypatch.setattr(V, "PACKAGE", tmp_path / "modelgate")
    assert V.differences("day0-release") == []
    with open(tmp_path / "modelgate" / "gates" / "values.py", "a") as fh:
        fh.write("# edited\n")
    (tmp_path / "skills" / "day0-release" / "scripts" / "vendor" / "stray.py").write_text("")
    diffs = V.differences("day0-release")
    assert any("differs from its source modelgate/gates/values.py" in d for d in diffs)
    assert any("not generated (remove it) stray.py" in d for d in diffs)


@pytest.mark.parametrize("skill", sorted(V.ENTRY_MODULES))
def test_vendored_modules_import_only_the_standard_library_jsonschema_and_each_other(skill):
    base = ROOT / "skills" / skill / "scripts" / "vendor"
    vendored = {".".join(p.relative_to(base).with_suffix("").parts).removesuffix(".__init__")
                for p in base.rglob("*.py")}
    allowed = set(sys.stdlib_module_names) | {"jsonschema", "referencing", "__future__"}
    for path in base.rglob("*.py"):
        for mod in imported_modules(path, module_level_only=True):
            top = mod.split(".")[0]
            # ``from modelgate.x import name`` names a module or an attribute of one
            assert top in allowed or mod in vendored or mod.rsplit(".", 1)[0] in vendored, \
                f"{path.relative_to(base)} imports {mod}"
