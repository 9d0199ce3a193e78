"""The gate contract core: vocabulary, errors, verdict envelope, schemas, strict JSON, atomic writes.

Every gate follows observe -> decide -> emit. This module is what both halves share: the
failure-class vocabulary and exit codes, the ``GateError`` family, ``check`` and
``make_verdict`` (pure: no package metadata, no file read), and ``emit``, which stamps the
run's facts (package versions, the default next action from the triage text) onto a verdict,
validates it against its schema, prints it and writes it atomically.

Standard library and jsonschema only: the pure gates, the vendored copies of the engine in the
skill folders and their tests import it without OpenVINO, torch or numpy.
"""
from __future__ import annotations

import functools
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "1.0"

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_INPUT = 2

# The pack's JSON schemas ship inside the package (and inside every vendored copy of it).
SCHEMA_DIR = Path(os.environ.get("MODELGATE_SCHEMA_DIR", Path(__file__).resolve().parent / "schemas"))

# Classes that mean "the input could not be judged" -> exit 2. Everything else that fails is exit 1.
INPUT_CLASSES = frozenset({"USER_CONFIG_ERROR", "SOURCE_UNAVAILABLE", "UNKNOWN"})

VERSIONED_PACKAGES = ("openvino", "optimum-intel", "transformers", "torch", "nncf",
                      "openvino-genai", "openvino-tokenizers")


# --------------------------------------------------------------------------- errors

class GateError(Exception):
    """A gate cannot go on: its failure class, one human sentence, evidence, and the exit code.

    The exit code follows the failure class (2 for the classes in ``INPUT_CLASSES``, else 1)
    unless given. The CLI spine turns any GateError into a verdict in the envelope.
    """

    def __init__(self, failure_class: str, detail: str, *, exit_code: int | None = None, **evidence: Any):
        super().__init__(detail)
        self.failure_class = failure_class
        self.detail = detail
        self.evidence = evidence
        self.exit_code = exit_code if exit_code is not None else exit_code_for(False, failure_class)


class GateInputError(GateError):
    """The input cannot be judged (missing, corrupt, out of range): raised by reading and observing code."""


class GateFailure(GateError):
    """Observing code has already established a failing verdict (e.g. an IR OpenVINO cannot read)."""


# --------------------------------------------------------------------------- schemas

@functools.cache
def load_schema(name: str) -> dict:
    """Load ``modelgate/schemas/<name>.schema.json`` (name without suffix)."""
    path = SCHEMA_DIR / f"{name}.schema.json"
    return json.loads(path.read_text(encoding="utf-8"))


@functools.cache
def _registry():
    from referencing import Registry, Resource

    resources = []
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if "$id" in doc:
            resources.append((doc["$id"], Resource.from_contents(doc)))
    return Registry().with_resources(resources)


@functools.cache
def validator(name: str):
    """A Draft 2020-12 validator for the named schema, resolving refs between pack schemas."""
    from jsonschema import Draft202012Validator

    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=_registry())


def schema_errors(name: str, obj: Any) -> list[str]:
    """All validation errors of ``obj`` against schema ``name`` as readable strings."""
    errs = sorted(validator(name).iter_errors(obj), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errs]


@functools.cache
def failure_classes() -> dict[str, str]:
    """The pack's failure-class vocabulary: name -> triage text (from the envelope schema)."""
    return {item["const"]: item["description"]
            for item in load_schema("envelope")["$defs"]["failure_class"]["oneOf"]}


# --------------------------------------------------------------------------- verdicts

def check(name: str, passed: bool | None, measured: Any, threshold: Any,
          failure_class: str | None = None, detail: str | None = None,
          not_judged_because: str | None = None) -> dict:
    """One named check: pass (True not refuted, False refuted, None not judged), what was
    measured, the threshold. A check that is not judged carries ``not_judged_because`` (taken
    from ``detail`` when not given): a null check is never a silent pass."""
    out = {"name": name, "pass": passed, "measured": json_safe(measured),
           "threshold": json_safe(threshold)}
    if failure_class is not None:
        out["failure_class"] = failure_class
    if detail is not None:
        out["detail"] = detail
    if passed is None:
        reason = not_judged_because or detail
        if not reason:
            raise ValueError(f"check {name!r} is not judged but gives no reason")
        out["not_judged_because"] = reason
    return out


def coverage(summary: str, exercised: Mapping | None = None, not_exercised: Iterable[str] = ()) -> dict:
    """What a verdict covers: one sentence to repeat to a user, what the run exercised (counts,
    positions, precisions, formats, devices, modalities, samples) and what it did not."""
    return {"summary": summary, "exercised": json_safe(dict(exercised or {})),
            "not_exercised": [str(x) for x in not_exercised]}


def default_coverage(passed: bool, detail: str) -> dict:
    """The coverage of a verdict whose gate reported none: on a failure, that nothing is vouched
    for; on a pass, that the gate did not say (never a claim of more than was checked)."""
    if passed:
        return coverage("passed; this gate did not report what it exercised", {},
                        ["coverage not reported: claim only what the checks name"])
    return coverage(f"nothing is vouched for: the gate failed or could not judge the input ({detail})"[:500],
                    {}, ["everything: the verdict is a failure"])


def exit_code_for(passed: bool, failure_class: str | None) -> int:
    """0 on pass; 2 when a failure means the input could not be judged; 1 otherwise."""
    if passed:
        return EXIT_PASS
    return EXIT_INPUT if failure_class in INPUT_CLASSES else EXIT_FAIL


def make_verdict(gate: str, *, passed: bool, detail: str, failure_class: str | None = None,
                 checks: Iterable[dict] = (), metrics: Mapping | None = None,
                 evidence: Mapping | None = None, next_action: str = "",
                 timings: Mapping | None = None, decision: str | None = None,
                 exit_code: int | None = None, coverage: Mapping | None = None, **extra: Any) -> dict:
    """Build a verdict in the common envelope; pure. ``extra`` carries gate-specific fields.

    ``versions`` stays empty and an empty ``next_action`` stays empty: ``stamp`` (called by
    ``emit``) fills them in from the running installation and the documented triage.
    """
    if passed:
        failure_class = None
    elif failure_class is None:
        failure_class = "UNKNOWN"
    verdict = {
        "schema_version": SCHEMA_VERSION,
        "gate": gate,
        "pass": bool(passed),
        "exit_code": exit_code if exit_code is not None else exit_code_for(passed, failure_class),
        "decision": decision,
        "failure_class": failure_class,
        "detail": detail or ("passed" if passed else "failed"),
        "checks": list(checks),
        "metrics": json_safe(dict(metrics or {})),
        "evidence": {k: (str(v) if isinstance(v, Path) else v) for k, v in (evidence or {}).items()},
        "versions": {},
        "next_action": next_action,
        "timings": {k: round(float(v), 4) for k, v in (timings or {}).items()},
        "coverage": json_safe(dict(coverage)) if coverage else default_coverage(bool(passed), detail),
    }
    verdict.update(json_safe(extra))
    return verdict


def error_verdict(gate: str, failure_class: str, detail: str, **extra: Any) -> dict:
    """A failing verdict for a gate that could not proceed (input error, crash, unexpected)."""
    return make_verdict(gate, passed=False, failure_class=failure_class, detail=detail, **extra)


def triage_hint(failure_class: str | None) -> str:
    """The last sentence of the documented triage for a failure class (what to do next)."""
    text = failure_classes().get(failure_class or "", "")
    return text.split(". ")[-1] if text else "Inspect detail and evidence."


def versions() -> dict[str, str | None]:
    """Installed versions of the packages whose behaviour a verdict depends on."""
    return dict(_versions())


@functools.lru_cache(maxsize=1)
def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for pkg in VERSIONED_PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def stamp(verdict: dict) -> dict:
    """The facts of this run a pure verdict leaves out: package versions (when empty) and the
    default next action (``none`` on pass, the failure class's triage otherwise). Returns ``verdict``."""
    if isinstance(verdict, dict):
        if not verdict.get("versions"):
            verdict["versions"] = versions()
        if not verdict.get("next_action"):
            verdict["next_action"] = "none" if verdict.get("pass") else triage_hint(verdict.get("failure_class"))
    return verdict


def json_safe(obj: Any) -> Any:
    """Convert numpy scalars/arrays, paths, tuples and non-finite floats to strict JSON values.

    Non-finite floats become the strings "NaN"/"Infinity"/"-Infinity": strict JSON has no
    NaN, and a verdict must still say what was measured.
    """
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        if math.isnan(obj):
            return "NaN"
        if math.isinf(obj):
            return "Infinity" if obj > 0 else "-Infinity"
        return obj
    # numpy without importing numpy
    if hasattr(obj, "tolist") and callable(obj.tolist):
        return json_safe(obj.tolist())
    if hasattr(obj, "item") and callable(obj.item):
        return json_safe(obj.item())
    return str(obj)


# --------------------------------------------------------------------------- files

def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write text so that readers see either the old file or the complete new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(json_safe(obj), indent=2, sort_keys=False) + "\n")


# A JSON input larger than this is refused before it is read (a verdict, never an exhausted machine).
MAX_JSON_BYTES = 512 * 1024 * 1024


def _reject_constant(name: str):
    raise ValueError(f"non-standard JSON constant {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses to inf in Python: refuse it like the NaN literal
        raise ValueError(f"number {text[:40]} does not fit a 64-bit float")
    return value


def _float_sized_int(text: str) -> int:
    value = int(text)  # beyond 4300 digits Python itself refuses (ValueError)
    if abs(value) > _MAX_FLOAT_INT:  # a 400-digit integer would overflow the first float operation
        raise ValueError(f"integer of {len(text.lstrip('-'))} digits does not fit a 64-bit float")
    return value


_MAX_FLOAT_INT = int(sys.float_info.max)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    obj: dict = {}
    for key, value in pairs:
        if key in obj:  # json.loads would silently keep the last one
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def loads_strict(text: str) -> Any:
    """Parse JSON as every reader of the pack must: no NaN/Infinity literals, no number that overflows
    a float (1e400, or an integer of 400 digits), no duplicate keys in an object. Raises ValueError
    (RecursionError is turned into one)."""
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float,
                          parse_int=_float_sized_int, object_pairs_hook=_unique_keys)
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc


def read_json(path: str | os.PathLike, what: str = "input") -> Any:
    """Read a JSON file or raise GateInputError (missing, unreadable, corrupt, NaN literals, numbers that
    overflow, duplicate keys: see ``loads_strict``)."""
    p = Path(path)
    try:
        exists, is_file = p.exists(), p.is_file()
    except (OSError, ValueError) as exc:  # embedded NUL, name too long
        raise GateInputError("USER_CONFIG_ERROR", f"{what} is not a usable path: {str(path)[:200]!r}: {exc}") from exc
    if not exists:
        raise GateInputError("USER_CONFIG_ERROR", f"{what} not found: {p}")
    if not is_file:
        raise GateInputError("USER_CONFIG_ERROR", f"{what} is not a file: {p}")
    try:
        if p.stat().st_size > MAX_JSON_BYTES:
            raise GateInputError("USER_CONFIG_ERROR", f"{what} is larger than {MAX_JSON_BYTES} bytes: {p}")
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GateInputError("USER_CONFIG_ERROR", f"{what} unreadable: {p}: {exc}") from exc
    try:
        return loads_strict(text)
    except ValueError as exc:
        raise GateInputError("USER_CONFIG_ERROR", f"{what} is not valid JSON: {p}: {exc}") from exc


# --------------------------------------------------------------------------- emit

def verdict_path(verdict: dict | str, output: str | os.PathLike) -> Path:
    """Where ``--output`` puts a verdict (``verdict`` or its gate name): the path itself if it ends in
    .json and is not a folder, else ``<folder>/<gate>_result.json``."""
    gate = verdict if isinstance(verdict, str) else verdict["gate"]
    out = Path(output)
    if out.suffix.lower() != ".json" or out.is_dir():
        out = out / f"{gate.replace('-', '_')}_result.json"
    return out


def output_problem(output: str | os.PathLike | None, gate: str) -> str | None:
    """Why a verdict of ``gate`` could not be written to ``output`` (None when it can, or when there is
    no output): a target that is a folder, an existing file where a folder must be (``--output
    notes.txt``), a path the system refuses. Checked before a gate runs, so a bad ``--output`` is an
    exit-2 verdict on stdout, never a traceback after the work is done."""
    if output is None:
        return None
    if "\x00" in str(output):
        return f"--output {str(output)[:200]!r} is not a usable path: embedded NUL"
    try:
        target = verdict_path(gate, output)
    except (OSError, ValueError) as exc:  # embedded NUL, name too long, loops
        return f"--output {str(output)[:200]!r} is not a usable path: {exc}"
    problem = file_problem(target)
    return f"--output {output}: {problem}" if problem else None


def file_problem(target: str | os.PathLike) -> str | None:
    """Why a file could not be written at ``target`` (None when it can): it is a folder, an existing
    file stands where one of its folders must be, that folder is not writable, or the path is unusable."""
    if "\x00" in str(target):
        return f"{str(target)[:200]!r} is not a usable path: embedded NUL"
    target = Path(target)
    try:
        if target.is_dir():
            return f"{target} is a folder"
        for parent in target.parents:  # the nearest existing ancestor must be a writable folder
            if parent.exists() or parent.is_symlink():
                if not parent.is_dir():
                    return f"{parent} is an existing file, not a folder (give a .json file or a folder)"
                if not os.access(parent, os.W_OK | os.X_OK):
                    return f"folder {parent} is not writable"
                break
    except (OSError, ValueError) as exc:  # embedded NUL, name too long, loops
        return f"{str(target)[:200]!r} is not a usable path: {exc}"
    return None


# Set to 1 (the test suite does) to make a verdict that violates its schema raise after it is printed:
# such a verdict is an internal bug, and a test that produces one must fail.
STRICT_VERDICTS_ENV = "MODELGATE_STRICT_VERDICTS"


class VerdictSchemaError(AssertionError):
    """A verdict violated the schema its gate names (an internal bug); raised only in strict mode."""


def emit(verdict: dict, schema: str, output: str | os.PathLike | None = None, stream=None, *,
         error_fields: Callable[[str, str], Mapping] | None = None) -> int:
    """``emit_verdict``; returns only the exit code."""
    return emit_verdict(verdict, schema, output, stream, error_fields=error_fields)[0]


def emit_verdict(verdict: dict, schema: str, output: str | os.PathLike | None = None, stream=None, *,
                 error_fields: Callable[[str, str], Mapping] | None = None) -> tuple[int, dict]:
    """Stamp, validate, print (one JSON object on stdout) and optionally write a verdict; return its exit
    code and the verdict printed.

    ``schema`` is the schema the gate names; there is no default and no fallback. A verdict that
    violates it is a bug: it is replaced by an UNKNOWN verdict saying so (``error_fields(failure_class,
    detail)`` gives the gate-specific fields its schema requires of an error verdict), so nothing invalid is
    ever written, and in strict mode (``MODELGATE_STRICT_VERDICTS=1``) ``VerdictSchemaError`` is
    raised after printing. A verdict that cannot be written to ``output`` is replaced by a
    USER_CONFIG_ERROR verdict that says so (printed, not written).
    """
    stream = stream or sys.stdout
    stamp(verdict)
    violation = None
    errors = schema_errors(schema, verdict)
    if errors:
        violation = f"verdict violates schema {schema}: " + "; ".join(errors[:5])
        verdict, extra = _replacement(verdict, schema, "UNKNOWN", "internal error: " + violation, error_fields)
        violation = "; ".join(filter(None, [violation, extra]))
    if output is not None:
        try:
            problem = output_problem(output, verdict["gate"])
            if problem:
                raise OSError(problem)
            atomic_write_json(verdict_path(verdict, output), verdict)
        except (OSError, ValueError) as exc:
            was = f"{verdict.get('decision') or ('PASS' if verdict.get('pass') else verdict.get('failure_class'))}"
            verdict, extra = _replacement(verdict, schema, "USER_CONFIG_ERROR",
                                          f"the verdict ({was}) could not be written to --output {output}: {exc}; "
                                          "it is printed here only", error_fields)
            violation = "; ".join(filter(None, [violation, extra])) or None
    stream.write(json.dumps(verdict, indent=2) + "\n")
    stream.flush()
    if violation and os.environ.get(STRICT_VERDICTS_ENV) == "1":
        raise VerdictSchemaError(violation)
    return int(verdict["exit_code"]), verdict


def _replacement(verdict: Any, schema: str, failure_class: str, detail: str,
                 error_fields: Callable[[str, str], Mapping] | None) -> tuple[dict, str | None]:
    """An error verdict of the same gate in place of ``verdict``, valid against ``schema`` when the
    gate's error fields make it so; else a bare envelope and the reason (an internal bug)."""
    gate = verdict.get("gate") if isinstance(verdict, dict) and isinstance(verdict.get("gate"), str) else "unknown"
    try:
        fields = dict(error_fields(failure_class, detail)) if error_fields else {}
    except Exception as exc:  # the gate's error template itself is broken
        fields, broken = {}, f"error fields of {gate} raised {type(exc).__name__}: {exc}"
    else:
        broken = None
    out = stamp(error_verdict(gate, failure_class, detail[:2000], **fields))
    errors = schema_errors(schema, out)
    if not errors and broken is None:
        return out, None
    bare = stamp(error_verdict(gate, "UNKNOWN", ("internal error: " + (broken or f"the error verdict of {gate} "
                                                f"violates schema {schema}: " + "; ".join(errors[:5]))
                                                + f" (while reporting: {detail[:1000]})")))
    return bare, bare["detail"]
