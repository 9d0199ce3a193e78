"""Reading Python sources as syntax trees, for the tests that hold the house rules (layering, purity)."""
from __future__ import annotations

import ast
from pathlib import Path


def imported_modules(path: Path, *, module_level_only: bool = False) -> set[str]:
    """Every module ``path`` imports: ``import a.b`` gives a.b; ``from a import b`` gives a and a.b.

    Lazy imports inside functions count unless ``module_level_only``; relative imports are skipped.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level_only else ast.walk(tree)
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names
