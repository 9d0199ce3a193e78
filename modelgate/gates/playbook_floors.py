"""What a certification playbook may say, and the tier floors it may not go below. Pure.

A model playbook is merged over its tier template. It may *add* evidence (scenarios, formats,
modalities, an endpoint, stricter thresholds) but never *weaken* the evidence the tier's G0-G4
gateways rest on: switching off an oracle, lowering an agreement floor, dropping a format, a
modality, a scenario's prompts or repeats, or shortening generations. ``floor_violations``
compares every gate-relevant setting of the merged playbook with the template's; every setting the
playbook schema knows is classified in ``FLOORS`` or ``NOT_FLOORS`` (a unit test walks the schema),
so a setting added later cannot slip past unclassified. A run refuses a playbook with violations
(exit 2): references/playbook-anatomy.md, "Tier floors".
"""
from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping

from modelgate.gates.oracles import DEGENERATE_DEFAULTS, REFERENCE_TOLERANCE

# scenario kind -> modalities it can run in (contract cells are per format, not per scenario)
KIND_MODALITIES = {"prompts": ("run", "chat", "serve"), "arithmetic": ("run", "chat", "serve"),
                   "exact": ("run", "chat", "serve"), "edge": ("run", "serve"), "determinism": ("run",),
                   "selftest": ("run", "chat", "serve")}
# scenario kind -> the fields that mean something for it (besides SCENARIO_COMMON); any other field
# would be read by nothing, so the playbook is refused rather than silently ignoring it
SCENARIO_COMMON = frozenset({"name", "kind", "timeout_ms", "modalities"})
KIND_FIELDS = {"prompts": frozenset({"prompts", "samples"}), "arithmetic": frozenset({"prompts", "samples"}),
               "exact": frozenset({"pairs", "pairs_from", "samples"}), "edge": frozenset({"prompts", "samples"}),
               "determinism": frozenset({"prompts", "samples", "repeats"}), "selftest": frozenset({"fault"})}

AT_LEAST, AT_MOST, STAYS_ON, SUPERSET = "at least", "at most", "stays on", "keeps every value of"
# setting path (fnmatch pattern over dotted paths) -> how the playbook's value must compare with the tier's
FLOORS = {
    "max_new_tokens": AT_LEAST,                  # shorter generations hide loops and late divergence
    "gates.min_tokens_per_s": AT_LEAST,
    "gates.max_ttft_ms": AT_MOST,
    "gates.reference_agreement.*": AT_LEAST,     # G4: agreement with the ground truth
    "oracles.*.enabled": STAYS_ON,               # G4 oracles (and the score-only arithmetic one)
    "oracles.degenerate.max_char_run": AT_MOST,
    "oracles.degenerate.min_period_reps": AT_MOST,
    "matrix.formats": SUPERSET,
    "matrix.modalities": SUPERSET,
}
# settings that do not weaken the evidence, and why (documented in playbook-anatomy.md)
NOT_FLOORS = {
    "name": "names the run", "description": "text", "model": "what is certified, not how strictly",
    "model_family": "registry text", "tier": "selects the template the floors come from",
    "seed": "which prompts are sampled; every seed samples as many",
    "timeout_ms": "a hang still ends as Timeout (G3); real model sizes need longer budgets",
    "workers": "parallelism only",
    "failure_policy": "stopping early skips cells, and a Skipped record is never a pass; the coverage says so",
    "matrix.devices": "a device the host lacks is Skipped and reported in coverage; the matrix says where to run, "
                      "not how strictly",
    "serve": "adds serve evidence",
}
# scenario settings judged per scenario of the template (same name): kind, prompts, repeats, modalities
SCENARIO_FLOORS = {"kind": "the same kind (the kind decides which oracles judge it)",
                   "items": AT_LEAST, "repeats": AT_LEAST, "modalities": SUPERSET}
SCENARIO_NOT_FLOORS = {"name": "matches the template's scenario", "prompts": "counted as items",
                       "pairs": "counted as items", "pairs_from": "counted as items", "samples": "counted as items",
                       "timeout_ms": "as timeout_ms", "fault": "selftest only"}


def _flatten(doc: Mapping, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and path not in ("model", "serve"):
            out.update(_flatten(value, path + "."))
        else:
            out[path] = value
    return out


def classify(path: str) -> str | None:
    """The floor rule of a dotted setting path, or None when it is not a floor. KeyError when the
    path is not classified at all (a setting nobody decided about)."""
    if path.startswith("scenarios"):
        return "scenarios"
    for pattern, rule in FLOORS.items():
        if fnmatch.fnmatchcase(path, pattern):
            return rule
    for key in NOT_FLOORS:
        if path == key or path.startswith(key + "."):
            return None
    raise KeyError(f"playbook setting {path!r} is neither a tier floor nor declared harmless")


def _default(path: str):
    parts = path.split(".")
    if path.startswith("oracles.") and path.endswith(".enabled"):
        return True
    if path.startswith("oracles.degenerate."):
        return DEGENERATE_DEFAULTS.get(parts[-1])
    if path.startswith("gates.reference_agreement."):
        return REFERENCE_TOLERANCE.get(parts[-1])
    return None


def _weaker(rule: str, tier, mine) -> bool:
    if tier is None:
        return False  # the tier sets no floor here: anything the playbook sets adds a check
    if mine is None:
        return True
    if rule == AT_LEAST:
        return mine < tier
    if rule == AT_MOST:
        return mine > tier
    if rule == STAYS_ON:
        return bool(tier) and not mine
    if rule == SUPERSET:
        return not set(tier) <= set(mine)
    raise ValueError(rule)


def effective_modalities(scenario: Mapping, matrix_modalities) -> set[str]:
    """The modalities a scenario runs in: its own list (or all its kind allows), within the matrix."""
    allowed = set(KIND_MODALITIES[scenario["kind"]])
    return set(scenario.get("modalities") or allowed) & allowed & set(matrix_modalities)


def scenario_item_count(scenario: Mapping, pairs_from_counts: Mapping[str, int]) -> int:
    """How many prompts (or pairs) a scenario's cells run: its list cut to ``samples``."""
    if scenario["kind"] == "exact":
        n = pairs_from_counts.get(scenario["pairs_from"], 0) if "pairs_from" in scenario else \
            len(scenario.get("pairs") or [])
    elif scenario["kind"] == "selftest":
        n = 1
    else:
        n = len(scenario.get("prompts") or [])
    return min(n, scenario["samples"]) if scenario.get("samples") else n


def _violation(setting: str, rule: str, tier, mine) -> dict:
    return {"setting": setting, "rule": rule, "tier": tier, "playbook": mine}


def floor_violations(template: Mapping, playbook: Mapping,
                     item_count: Callable[[Mapping], int] | None = None) -> list[dict]:
    """Every way the merged ``playbook`` weakens the tier ``template``'s evidence, as
    ``{"setting", "rule", "tier", "playbook"}`` (empty: it only adds). Both documents are complete
    (defaults filled in). ``item_count(scenario)`` counts a scenario's items (default: its own lists)."""
    count = item_count or (lambda s: scenario_item_count(s, {}))
    tier_flat, mine_flat = _flatten(template), _flatten(playbook)
    out = []
    for path in sorted(set(tier_flat) | set(mine_flat)):
        rule = classify(path)
        if rule is None or rule == "scenarios":
            continue
        tier = tier_flat.get(path, _default(path))
        mine = mine_flat.get(path, _default(path))
        if _weaker(rule, tier, mine):
            out.append(_violation(path, rule, tier, mine))
    mine_scenarios = {s["name"]: s for s in playbook.get("scenarios", [])}
    for t in template.get("scenarios", []):
        name = t["name"]
        s = mine_scenarios.get(name)
        where = f"scenarios.{name}"
        if s is None:
            out.append(_violation(where, "present", "present", None))
            continue
        if s["kind"] != t["kind"]:
            out.append(_violation(f"{where}.kind", "the same kind", t["kind"], s["kind"]))
            continue
        if count(s) < count(t):
            out.append(_violation(f"{where}.items", AT_LEAST, count(t), count(s)))
        if t["kind"] == "determinism" and s.get("repeats", 2) < t.get("repeats", 2):
            out.append(_violation(f"{where}.repeats", AT_LEAST, t.get("repeats", 2), s.get("repeats", 2)))
        tm = effective_modalities(t, template["matrix"]["modalities"])
        sm = effective_modalities(s, playbook["matrix"]["modalities"])
        if not tm <= sm:
            out.append(_violation(f"{where}.modalities", SUPERSET, sorted(tm), sorted(sm)))
    return out


RULE_TEXT = {AT_LEAST: "may not be lower than the tier's", AT_MOST: "may not be higher than the tier's",
             STAYS_ON: "may not be switched off", SUPERSET: "may not drop what the tier's has",
             "the same kind": "may not change kind", "present": "may not be removed"}


def describe(violations: list[dict]) -> str:
    """The violations in one line: "oracles.degenerate.enabled may not be switched off (tier True, playbook False)"."""
    return "; ".join(f"{v['setting']} {RULE_TEXT[v['rule']]} (tier {v['tier']!r}, playbook {v['playbook']!r})"
                     for v in violations)
