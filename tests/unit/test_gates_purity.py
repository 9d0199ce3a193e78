"""The house rule of modelgate/gates/: pure decision functions, stdlib + jsonschema + the contract core;
and every threshold comparison of the engine lives there."""
import ast
import re
import sys
from pathlib import Path

from tests.support.source_scan import imported_modules

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "modelgate"
ALLOWED_PREFIXES = ("modelgate.gates", "modelgate.contract")


def test_gates_import_only_the_standard_library_jsonschema_and_the_contract_core():
    allowed = set(sys.stdlib_module_names) | {"jsonschema", "referencing", "__future__"}
    bad = {}
    for path in sorted((ENGINE / "gates").glob("*.py")):
        mods = [m for m in imported_modules(path)
                if m.split(".")[0] not in allowed and not m.startswith(ALLOWED_PREFIXES)]
        if mods:
            bad[path.name] = mods
    assert bad == {}


def test_the_contract_core_imports_only_the_standard_library_and_jsonschema():
    allowed = set(sys.stdlib_module_names) | {"jsonschema", "referencing", "__future__"}
    assert {m for m in imported_modules(ENGINE / "contract.py") if m.split(".")[0] not in allowed} == set()


# --------------------------------------------------------------------------- threshold comparisons

# an operand whose name says it is a bar a measurement must clear
THRESHOLD_NAME = re.compile(r"threshold|tolerance|limit|floor|ceiling|margin|minimum|maximum|(^|_)(min|max)(_|$)",
                            re.IGNORECASE)
# Comparisons outside gates/ that are not decisions: loop and size bounds, truncation, argument checks.
# A new entry needs the same kind of reason; a decision goes to modelgate/gates/.
NOT_DECISIONS = {
    ("certify/dequant.py", "hops > MAX_CHAIN"): "graph walk bound",
    ("certify/dequant.py", "hops < MAX_CHAIN"): "graph walk bound",
    ("openvino/ir.py", "hops < MAX_CHAIN"): "graph walk bound",
    ("openvino/ir.py", "len(shape) < min_rank"): "selects weight constants by rank",
    ("certify/evidence.py", "len(text) <= OUTPUT_LIMIT"): "truncates stored output",
    ("cli/spine.py", "len(text) <= limit"): "clips a line of the terminal summary",
    ("release/ptq_observe.py", "len(out) > MAX_DIFFS"): "truncates a diff list",
    ("release/records.py", "len(line) > MAX_RECORD_BYTES"): "refuses an oversized input line",
    ("contract.py", "p.stat().st_size > MAX_JSON_BYTES"): "refuses an oversized input file",
    ("certify/runner.py", "1 <= value <= MAX_OVERRIDE"): "validates the --workers / --timeout-ms arguments",
    ("contract.py", "abs(value) > _MAX_FLOAT_INT"): "refuses a JSON integer that overflows a float",
    ("strict_yaml.py", "abs(value) > _MAX_FLOAT_INT"): "refuses a YAML integer that overflows a float",
    ("openvino/integrity.py", "len(out['constants']) < limit"): "caps how many offenders are listed",
    ("openvino/infer.py", "k + 1 < max_new_tokens"): "generation loop bound",
    ("openvino/evaluate.py", "limit < 2"): "validates the --limit argument",
    ("release/eval_data.py", "lineno > MAX_LINES"): "refuses an oversized --eval-data file",
    ("release/eval_data.py", "len(raw) > MAX_LINE_BYTES"): "refuses an oversized --eval-data line",
    ("release/eval_data.py", "1 <= mnt <= MAX_NEW_TOKENS"): "validates a max_new_tokens field of --eval-data",
    ("cli/release.py", "args.limit < 2"): "validates the --limit argument",
    ("cli/cluster.py", "low <= value <= MAX_OVERRIDE"): "validates the executor's count arguments",
    ("cli/verify.py", "new_tokens < MIN_NEW_TOKENS"): "validates the --new-tokens argument",
    ("cli/verify.py", "positions < MIN_POSITIONS"): "validates the --positions argument",
    ("routing/classifier.py", "len(rounds) >= MIN_ROUNDS"): "chooses the calibration scheme",
    ("routing/router.py", "len(p.split()) < _MIN_CLAUSE_WORDS"): "splits a description into clauses",
    ("verify/observe.py", "integ['expected_min_bytes'] > integ['bin_bytes']"):
        "never hands a truncated IR to the runtime (the gate judges it)",
    ("verify/family_observe.py", "r['expected_min_bytes'] > r['bin_bytes']"):
        "never hands a truncated sub-model IR to the runtime (the gate judges it)",
}


def _names(node: ast.AST) -> list[str]:
    out = []
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            out.append(n.id)
        elif isinstance(n, ast.Attribute):
            out.append(n.attr)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            out.append(n.value)
    return out


def threshold_comparisons(path: Path) -> list[str]:
    """Ordering comparisons (<, <=, >, >=) in ``path`` with an operand named like a threshold."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare) and any(isinstance(o, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)) for o in node.ops):
            operands = [node.left, *node.comparators]
            if any(THRESHOLD_NAME.search(name) for op in operands for name in _names(op)
                   if not (isinstance(op, ast.Call) and getattr(op.func, "id", "") in ("min", "max"))):
                found.append(ast.unparse(node))
    return found


def test_no_threshold_comparison_outside_gates():
    found = {}
    for path in sorted(ENGINE.rglob("*.py")):
        rel = path.relative_to(ENGINE).as_posix()
        if rel.startswith("gates/"):
            continue
        hits = [c for c in threshold_comparisons(path) if (rel, c) not in NOT_DECISIONS]
        if hits:
            found[rel] = hits
    assert found == {}, "decisions belong in modelgate/gates/ (compare with gates.values' tolerance helpers)"


def test_the_scan_finds_a_threshold_comparison_where_there_is_one(tmp_path):
    code = tmp_path / "x.py"
    code.write_text("def ok(score, cfg):\n    return score >= cfg['min_score'] and score <= threshold\n")
    assert threshold_comparisons(code) == ["score >= cfg['min_score']", "score <= threshold"]


def test_every_listed_exception_still_exists():
    for (rel, comparison), _why in NOT_DECISIONS.items():
        assert comparison in threshold_comparisons(ENGINE / rel), (rel, comparison)
