"""Named, versioned quantization recipes of the day0-release skill (recipes.yaml).

The file is validated against ``schemas/recipe.schema.json`` and then against the
cross-field rules a schema cannot say (band order, the precision a mode produces,
AWQ needing data), so a recipe that cannot mean what it says never reaches NNCF.
"""
from __future__ import annotations

import copy
import functools
import math
import os
from pathlib import Path

from modelgate.contract import GateInputError, schema_errors

# where a skill folder keeps its recipes; the repository's day0-release skill is the default
RECIPES_FILE = Path("recipes") / "recipes.yaml"
RECIPES_PATH = Path(__file__).resolve().parents[2] / "skills" / "day0-release" / RECIPES_FILE

# The bulk weight precision each NNCF mode produces (what `primary_precisions` must say).
MODE_PRIMARY_PRECISION = {
    "int8_asym": "u8",
    "int8_sym": "i8",
    "int4_asym": "u4",
    "int4_sym": "i4",
}
# static_int8 (nncf.quantize) stores weights as signed 8-bit.
STATIC_PRIMARY_PRECISION = "i8"
# recipe kind -> the model kind it applies to (a recipe saying otherwise is a mistake).
KIND_APPLIES_TO = {"weight_compression": "llm", "static_int8": "non-llm"}


def _read_file(path: Path) -> dict:
    import yaml  # a dependency of the pack; imported late to keep gate imports light

    if not path.is_file():
        raise GateInputError("USER_CONFIG_ERROR", f"recipes file not found: {path}")
    from modelgate import strict_yaml
    from modelgate.contract import loads_strict

    try:
        text = path.read_text(encoding="utf-8")
        # duplicate keys, NaN literals and overflowing numbers are refused in either format
        doc = strict_yaml.loads(text) if path.suffix.lower() in (".yaml", ".yml") else loads_strict(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise GateInputError("USER_CONFIG_ERROR", f"recipes file unreadable: {path}: {exc}") from exc
    return doc


def recipe_problems(name: str, recipe: dict) -> list[str]:
    """Cross-field rules of one schema-valid recipe (empty list = consistent)."""
    problems = []
    promises, nncf = recipe["promises"], recipe["nncf"]
    lo, hi = promises["size_ratio"]
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        problems.append(f"{name}: size_ratio band {promises['size_ratio']} is not [low, high]")
    if not set(promises["primary_precisions"]) <= set(promises["weight_precisions"]):
        problems.append(f"{name}: primary_precisions must be a subset of weight_precisions")
    expected = (MODE_PRIMARY_PRECISION.get(nncf.get("mode")) if recipe["kind"] == "weight_compression"
                else STATIC_PRIMARY_PRECISION)
    if promises["primary_precisions"] != [expected]:
        problems.append(f"{name}: kind/mode produces {expected} weights, primary_precisions says "
                        f"{promises['primary_precisions']}")
    if KIND_APPLIES_TO[recipe["kind"]] != recipe["applies_to"]:
        problems.append(f"{name}: kind {recipe['kind']} applies to {KIND_APPLIES_TO[recipe['kind']]}, "
                        f"not {recipe['applies_to']}")
    if (nncf.get("awq") or nncf.get("scale_estimation")) and nncf.get("dataset") is None:
        problems.append(f"{name}: awq/scale_estimation need dataset: calibration")
    return problems


@functools.lru_cache(maxsize=8)
def _load_cached(path_str: str, mtime_ns: int) -> dict:
    path = Path(path_str)
    doc = _read_file(path)
    errors = schema_errors("recipe", doc)
    if errors:
        raise GateInputError("USER_CONFIG_ERROR", f"recipes file {path} violates recipe schema: "
                             + "; ".join(errors[:5]))
    problems = [p for name, r in doc["recipes"].items() for p in recipe_problems(name, r)]
    if problems:
        raise GateInputError("USER_CONFIG_ERROR", f"recipes file {path} is inconsistent: " + "; ".join(problems[:5]))
    return doc


def recipes_path(path: str | os.PathLike | None = None, skill_dir: str | os.PathLike | None = None) -> Path:
    """The recipes file to read: ``path`` when given, else ``<skill folder>/recipes/recipes.yaml`` of
    the day0-release skill folder given (or found, see ``modelgate.skillpack.skill_dir``)."""
    if path is not None:
        return Path(path)
    from modelgate.skillpack import skill_dir as find_skill

    return find_skill("day0-release", skill_dir) / RECIPES_FILE


def load_recipes(path: str | os.PathLike | None = None) -> dict:
    """The validated recipes document (``{"schema_version", "recipes": {name: recipe}}``).

    Raises GateInputError(USER_CONFIG_ERROR) for a missing, unparsable, schema-invalid or
    inconsistent file.
    """
    p = recipes_path(path)
    mtime = p.stat().st_mtime_ns if p.is_file() else -1
    return copy.deepcopy(_load_cached(str(p.resolve()), mtime))


def get_recipe(name: str, path: str | os.PathLike | None = None) -> dict:
    """One recipe by name, with its ``name`` added; unknown name -> GateInputError(USER_CONFIG_ERROR)."""
    recipes = load_recipes(path)["recipes"]
    if not isinstance(name, str) or name not in recipes:
        raise GateInputError("USER_CONFIG_ERROR", f"unknown recipe {name!r}; known: {', '.join(sorted(recipes))}")
    return dict(recipes[name], name=name)


def recipe_names(path: str | os.PathLike | None = None) -> list[str]:
    """Names of all recipes, in file order."""
    return list(load_recipes(path)["recipes"])
