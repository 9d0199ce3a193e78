"""The README certification table, regenerated from models.csv between two markers.

Only the text between ``<!-- CERTIFICATION_TABLE_START -->`` and
``<!-- CERTIFICATION_TABLE_END -->`` changes. Missing, duplicated or reversed markers are an
input error: the README is never edited at a guessed place.
"""
from __future__ import annotations

import os
from pathlib import Path

from modelgate.certify.markdown import cell
from modelgate.certify.registry import GATEWAY_COLUMNS, TPS_COLUMNS, read_registry
from modelgate.contract import GateInputError, atomic_write_text

START = "<!-- CERTIFICATION_TABLE_START -->"
END = "<!-- CERTIFICATION_TABLE_END -->"
# table heading -> registry column
TABLE_COLUMNS = (("Model", "model_id"), ("Family", "family"), ("Size", "size_category"), ("Status", "status"),
                 ("MQS", "mqs_score"), ("Grade", "grade"), ("Tier", "certified_tier"))
FLAG_TEXT = {"true": "pass", "false": "FAIL", "": "-"}


def _mqs(value: str) -> str:
    """The MQS column on its one scale: "882.5/1000" (a value that is not a number is shown as it is)."""
    try:
        return f"{round(float(value), 1):g}/1000"
    except ValueError:
        return value


def _best_tps(row: dict) -> str:
    best = None
    for col in TPS_COLUMNS:
        try:
            value = float(row.get(col, ""))
        except ValueError:
            continue
        if best is None or value > best[0]:
            best = (value, col[len("tps_"):])
    return f"{best[0]:.1f} ({best[1]})" if best else "-"


def render_table(rows: list[dict]) -> str:
    """The Markdown table for registry rows (every model string escaped)."""
    heads = [h for h, _ in TABLE_COLUMNS] + [g.upper() for g in GATEWAY_COLUMNS] + ["Best tok/s", "Last certified"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for row in rows:
        values = [cell(_mqs(row.get(col, "")) if col == "mqs_score" and row.get(col) else row.get(col, ""))
                  for _, col in TABLE_COLUMNS]
        values += [cell(FLAG_TEXT.get(row.get(g, ""), row.get(g, ""))) for g in GATEWAY_COLUMNS]
        values += [cell(_best_tps(row)), cell(row.get("last_certified", ""))]
        lines.append("| " + " | ".join(values) + " |")
    if not rows:
        lines.append("| " + " | ".join(["(no certified models yet)"] + [""] * (len(heads) - 1)) + " |")
    return "\n".join(lines)


def replace_between_markers(text: str, table: str) -> str:
    """``text`` with everything between the markers replaced by ``table``; GateInputError on bad markers."""
    n_start, n_end = text.count(START), text.count(END)
    if n_start != 1 or n_end != 1:
        raise GateInputError("USER_CONFIG_ERROR", f"README must contain {START} and {END} exactly once each "
                             f"(found {n_start} and {n_end}); add them where the table belongs")
    i, j = text.index(START), text.index(END)
    if j < i:
        raise GateInputError("USER_CONFIG_ERROR", f"README has {END} before {START}")
    return text[:i + len(START)] + "\n" + table + "\n" + text[j:]


def sync_readme(readme_path: str | os.PathLike, csv_path: str | os.PathLike) -> dict:
    """Regenerate the README table from the registry; returns {"rows", "changed", "path"}."""
    readme = Path(readme_path)
    if not readme.is_file():
        raise GateInputError("USER_CONFIG_ERROR", f"README not found: {readme}")
    if not Path(csv_path).is_file():
        raise GateInputError("USER_CONFIG_ERROR", f"registry not found: {csv_path}")
    try:
        text = readme.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GateInputError("USER_CONFIG_ERROR", f"README unreadable: {readme}: {exc}") from exc
    _, rows = read_registry(csv_path)
    new = replace_between_markers(text, render_table(rows))
    changed = new != text
    if changed:
        atomic_write_text(readme, new)
    return {"rows": len(rows), "changed": changed, "path": str(readme)}
