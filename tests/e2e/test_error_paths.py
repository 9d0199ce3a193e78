"""Every error path of every command gives one JSON verdict valid against the schema its command names.

Three walks: (1) every command of the tree x every way the spine can stop a body (bad input, missing engine,
interrupt, unexpected exception, each failure class a body of that command raises), with no arguments and with
hostile ones; (2) a table of real bad invocations per command (missing, corrupt and duplicate-key files, bad
numbers, bad --output), in process; (3) a sample of them through the skill scripts as subprocesses, where a
traceback and an exit code are real. The suite runs in strict mode (tests/conftest.py): a verdict that breaks
its schema raises, so it cannot pass unnoticed.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelgate import contract as c
from modelgate.cli.main import ROOT
from modelgate.cli.spine import Command, run_command, run_gate
from tests.support.runs import write_run

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def commands(cmd: Command = ROOT, prefix: tuple[str, ...] = ()):
    """(argv prefix, command) of every command in the tree."""
    yield prefix, cmd
    for child in cmd.children:
        yield from commands(child, (*prefix, child.name) if cmd is not ROOT or prefix else (child.name,))


ALL = list(commands())
BY_GATE = {cmd.verdict_gate: cmd for _, cmd in ALL}
# failure classes a body of each command raises as a GateError besides USER_CONFIG_ERROR (observers, locks)
BODY_CLASSES = {
    "gate-ptq": ("SOURCE_UNAVAILABLE", "INTEGRITY_MISMATCH", "MODEL_UNSUPPORTED", "TIMEOUT", "RESOURCE_EXHAUSTED"),
    "verify-conversion": ("SOURCE_UNAVAILABLE", "MODEL_UNSUPPORTED", "CONVERSION_FAILED", "TIMEOUT"),
    "certify-run": ("INTEGRITY_MISMATCH",),
}
HOSTILE = argparse.Namespace(threshold=float("nan"), relative="yes", implausible_gain=-1.0, z=float("inf"),
                             recipe=123, weight_format="fp8", task=5, output=None)


def verdict_of(capsys) -> dict:
    out = capsys.readouterr().out
    verdict = json.loads(out)  # exactly one JSON document
    return verdict


def assert_valid(cmd: Command, verdict: dict, code: int) -> None:
    assert c.schema_errors(cmd.schema, verdict) == [], (cmd.name, verdict["detail"])
    assert not verdict["detail"].startswith("internal error"), verdict["detail"]
    assert verdict["exit_code"] == code and verdict["pass"] is False and code in (1, 2)


def _raising(exc: BaseException):
    def body():
        raise exc
    return body


@pytest.mark.parametrize("prefix,cmd", ALL, ids=[" ".join(p) or "modelgate" for p, _ in ALL])
def test_every_way_the_spine_stops_a_body_is_a_verdict_of_the_commands_schema(prefix, cmd, capsys):
    stops = [c.GateInputError("USER_CONFIG_ERROR", "bad input"), ImportError("No module named 'openvino'"),
             KeyboardInterrupt(), RuntimeError("unexpected"),
             *[c.GateFailure(cls, f"{cls} from the body") for cls in BODY_CLASSES.get(cmd.verdict_gate, ())]]
    for exc in stops:
        for args in (None, argparse.Namespace(), HOSTILE):
            code = run_gate(cmd, _raising(exc), args)
            verdict = verdict_of(capsys)
            assert verdict["gate"] == cmd.verdict_gate
            assert_valid(cmd, verdict, code)


# --------------------------------------------------------------------------- real bad invocations, in process

@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("bad")
    good = write_run(d / "run", "baseline", [1.0] * 9 + [0.0])
    cand = write_run(d / "cand", "candidate", [1.0] * 9 + [0.0])
    (d / "notes.txt").write_text("my notes")
    (d / "corrupt.json").write_text("{not json")
    (d / "nan.json").write_text('{"a": NaN}')
    (d / "dup.json").write_text('{"a": 1, "a": 2}')
    (d / "list.json").write_text("[1, 2]")
    (d / "big.json").write_text('{"a": ' + "9" * 400 + "}")
    (d / "folder").mkdir()
    (d / "bad.yaml").write_text("name: [unclosed\n")
    (d / "scalar.yaml").write_text("just a string\n")
    (d / "state.json").write_text(json.dumps({"model_id": 7}))
    return {"d": d, "run": good, "cand": cand, **{p.stem if p.suffix else p.name: p for p in d.iterdir()}}


BAD_FILES = ("missing", "corrupt", "nan", "dup", "list", "big", "folder")


def _bad(files, kind) -> str:
    return str(files["d"] / "nope.json") if kind == "missing" else str(files[kind])


def invocations(files) -> list[list[str]]:
    """Bad invocations of every command (argv of the modelgate root)."""
    run, cand, notes = str(files["run"]), str(files["cand"]), str(files["notes"])
    out = [["no-such-command"], ["--no-such-flag"]]
    for kind in BAD_FILES:
        bad = _bad(files, kind)
        out += [["gate-run", "--run", bad], ["gate-compare", "--baseline", bad, "--candidate", cand],
                ["gate-compare", "--baseline", run, "--candidate", bad],
                ["gate-ptq", "--recipe", "int8_asym", "--summary", bad],
                ["verify", "--pipeline-state", bad, "--agent", "a"],
                ["certify", "score", bad], ["certify", "report", bad, "--output", str(files["d"] / "rep")],
                ["certify", "tickets", bad, "--output", str(files["d"] / "tk")],
                ["certify", "export-csv", "--evidence", bad, "--csv", str(files["d"] / "m.csv")],
                ["certify", "--playbook", bad], ["certify", "check-lock", bad],
                ["routing-evals", "--cases", bad, "--output", str(files["d"] / "r.json")],
                ["routing-evals", "--config", bad, "--output", str(files["d"] / "r.json")]]
    for value in ("nan", "inf", "-1", "1", "1e400", "x"):
        out += [["gate-compare", "--baseline", run, "--candidate", cand, "--threshold", value],
                ["gate-compare", "--baseline", run, "--candidate", cand, "--z", value],
                ["gate-compare", "--baseline", run, "--candidate", cand, "--implausible-gain", value],
                ["gate-ptq", "--recipe", "int8_asym", "--checkpoint", run, "--source", run, "--timeout", value],
                ["release", "--model", run, "--recipe", "int8_asym", "--workspace", str(files["d"] / "ws"),
                 "--threshold", value],
                ["release", "--model", run, "--recipe", "int8_asym", "--workspace", str(files["d"] / "ws"),
                 "--timeout", value],
                ["verify", "--model", run, "--timeout", value], ["verify", "--model", run, "--new-tokens", value],
                ["verify", "--model", run, "--cosine-min", value],
                ["certify", "--playbook", str(files["bad"]), "--workers", value]]
    out += [["gate-run"], ["gate-compare", "--baseline", run], ["gate-ptq"], ["gate-ptq", "--recipe", "int8_asym"],
            ["gate-ptq", "--recipe", "no_such_recipe", "--summary", run],
            ["gate-ptq", "--recipe", "int8_asym", "--summary", run],  # a run summary is not an observation
            ["gate-ptq", "--recipe", "int8_asym", "--checkpoint", str(files["d"] / "nope"), "--source", run],
            ["gate-ptq", "--recipe", "int8_asym", "--recipes", str(files["bad"]), "--summary", run],
            ["gate-run", "--run", run, "--output", notes], ["gate-run", "--run", run, "--output", "a\x00b.json"],
            ["gate-compare", "--baseline", run, "--candidate", cand, "--output", notes],
            ["gate-ptq", "--recipe", "int8_asym", "--summary", run, "--output", notes],
            ["release"], ["release", "--model", run, "--recipe", "int8_asym", "--recipes", "a,b",
                          "--workspace", str(files["d"])],
            ["release", "--model", str(files["d"] / "nope"), "--recipe", "int8_asym", "--workspace", str(files["d"])],
            ["release", "--model", run, "--recipe", "no_such", "--workspace", str(files["d"] / "ws")],
            ["release", "--model", run, "--recipes", "int8_asym,int8_asym", "--workspace", str(files["d"] / "ws")],
            ["release", "--model", run, "--recipe", "int8_asym", "--tasks", "no_such_task",
             "--workspace", str(files["d"] / "ws")],
            ["release", "--model", run, "--recipe", "int8_asym", "--run-id", "../up", "--workspace", str(files["d"])],
            ["release", "--model", run, "--recipe", "int8_asym", "--workspace", notes],
            ["release", "--model", run, "--recipe", "int8_asym", "--workspace", str(files["d"] / "ws"),
             "--output", str(files["folder"])],
            ["release", "--model", run, "--recipe", "int8_asym", "--workspace", str(files["d"] / "ws"),
             "--limit", "1"],
            ["release", "--model", run, "--recipe", "int8_asym", "--workspace", str(files["d"] / "ws"),
             "--recipes-file", str(files["scalar"])],
            ["verify"], ["verify", "--model", str(files["d"] / "nope")], ["verify", "--model", run, "--output", notes],
            ["verify", "--pipeline-state", str(files["state"]), "--agent", "a"],
            ["verify", "--pipeline-state", str(files["state"]), "--agent", "../x"],
            ["verify", "--model", run, "--weight-format", "fp8"],
            ["certify"], ["certify", "scroe", run], ["certify", "--playbook", str(files["bad"])],
            ["certify", "--playbook", str(files["scalar"])], ["certify", "score"],
            ["certify", "sync-readme", "--csv", str(files["d"] / "nope.csv"), "--readme", notes],
            ["certify", "lock-playbooks", str(files["d"] / "nope")],
            ["routing-evals", "--root", str(files["d"] / "nope"), "--output", str(files["d"] / "r.json")],
            ["routing-evals", "--backend", "no_such"]]
    return out


def test_every_bad_invocation_of_every_command_is_a_verdict_of_its_schema(files, capsys):
    seen = set()
    for argv in invocations(files):
        code = run_command(ROOT, argv, prog="modelgate")
        verdict = verdict_of(capsys)
        cmd = BY_GATE[verdict["gate"]]
        seen.add(cmd.verdict_gate)
        # exit 2, or 1 where the command judged the input (a playbook with no lock is not verified)
        assert code == 2 or verdict["failure_class"] not in c.INPUT_CLASSES, (argv, verdict["detail"])
        assert_valid(cmd, verdict, code)
    assert seen >= {"gate-run", "gate-compare", "gate-ptq", "release-decision", "verify-conversion", "certify-run",
                    "certify-score", "certify-report", "certify-tickets", "certify-export-csv", "certify-sync-readme",
                    "certify-lock-playbooks", "certify-check-lock", "routing-evals", "modelgate"}
    assert not (files["d"] / "ws").exists()  # no release stage ever started


def test_a_verify_pipeline_error_is_written_where_the_pipeline_reads_it_and_valid(tmp_path, capsys):
    state = tmp_path / "agent-results" / "pipeline_state.json"
    state.parent.mkdir()
    state.write_text('{"model_id": "m", "model_id": "n"}')
    assert run_command(ROOT, ["verify", "--pipeline-state", str(state), "--agent", "a"]) == 2
    printed = verdict_of(capsys)
    written = json.loads((tmp_path / "agent-results" / "a" / "verify_result.json").read_text())
    assert written == printed and "duplicate key 'model_id'" in written["detail"]
    assert c.schema_errors("verify-result", written) == []
    assert (written["verify_passed"], written["decision"], written["error"]) == (False, "NOT_JUDGED", written["detail"])


# --------------------------------------------------------------------------- through the skill scripts

SCRIPTS = {"gate_run.py": "day0-release", "gate_compare.py": "day0-release", "gate_ptq.py": "day0-release",
           "day0_release.py": "day0-release", "verify_conversion.py": "verify-conversion",
           "certify.py": "model-certification"}


def script(name: str, *argv, env=None) -> tuple[int, dict, str]:
    path = REPO / "skills" / SCRIPTS[name] / "scripts" / name
    p = subprocess.run([sys.executable, str(path), *map(str, argv)], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=str(REPO), **(env or {})), cwd=REPO)
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout, p.stderr[-2000:]
    return p.returncode, json.loads(p.stdout), p.stderr


@pytest.mark.parametrize("name,argv", [
    ("gate_run.py", ["--run", "{dup}"]), ("gate_run.py", ["--run", "{run}", "--output", "{notes}"]),
    ("gate_run.py", ["--run", "{big}"]),
    ("gate_compare.py", ["--baseline", "{run}", "--candidate", "{cand}", "--threshold", "nan"]),
    ("gate_compare.py", ["--baseline", "{corrupt}", "--candidate", "{cand}"]),
    ("gate_ptq.py", ["--recipe", "int8_asym", "--summary", "{list}"]),
    ("day0_release.py", ["--model", "{run}", "--recipe", "int8_asym", "--threshold", "1", "--workspace", "{ws}"]),
    ("verify_conversion.py", ["--pipeline-state", "{dup}", "--agent", "a"]),
    ("certify.py", ["score", "{nan}"]), ("certify.py", ["--playbook", "{bad}"]),
])
def test_the_skill_scripts_answer_bad_input_with_a_verdict_of_their_schema(files, name, argv):
    fmt = {k: str(v) for k, v in files.items()} | {"ws": str(files["d"] / "ws")}
    code, verdict, _ = script(name, *[a.format(**fmt) for a in argv])
    cmd = BY_GATE[verdict["gate"]]
    assert code == 2
    assert_valid(cmd, verdict, code)


def test_modelgate_root_help_still_exits_0(capsys):
    with contextlib.redirect_stdout(io.StringIO()):
        assert run_command(ROOT, ["--help"]) == 0
