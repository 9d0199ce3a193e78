"""The CLI spine: every command parses, runs and emits one way; errors are verdicts; people at a terminal
get a short summary on stderr while stdout stays one JSON verdict."""
import argparse
import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from modelgate import contract as c
from modelgate.cli import spine
from modelgate.cli.main import COMMANDS, ROOT
from modelgate.cli.spine import Command, Outcome, run_command, run_gate
from tests.support.source_scan import imported_modules

REPO = Path(__file__).resolve().parents[2]


G = Command("g", "a test gate", schema="envelope")


def test_run_gate_turns_an_unexpected_exception_into_an_unknown_verdict(capsys):
    def body():
        raise ZeroDivisionError("boom")
    code = run_gate(G, body)
    out = json.loads(capsys.readouterr().out)
    assert code == 2 and out["failure_class"] == "UNKNOWN" and "ZeroDivisionError: boom" in out["detail"]


def test_argument_errors_become_a_user_config_verdict(capsys):
    parser = spine.GateArgumentParser(prog="g")
    parser.add_argument("--n", type=int, required=True)

    def body():
        parser.parse_args(["--n", "x"])
        return Outcome(c.make_verdict("g", passed=True, detail="ok"))
    code = run_gate(G, body)
    out = json.loads(capsys.readouterr().out)
    assert code == 2 and out["failure_class"] == "USER_CONFIG_ERROR"


@pytest.mark.parametrize("error,code", [(c.GateInputError("USER_CONFIG_ERROR", "bad"), 2),
                                        (c.GateFailure("INTEGRITY_MISMATCH", "broken"), 1),
                                        (c.GateError("SOURCE_UNAVAILABLE", "gone"), 2),
                                        (c.GateError("TIMEOUT", "slow", exit_code=1), 1)])
def test_a_gate_error_carries_its_exit_code_into_the_verdict(capsys, error, code):
    def body():
        raise error
    assert run_gate(G, body) == code
    out = json.loads(capsys.readouterr().out)
    assert out["exit_code"] == code and out["failure_class"] == error.failure_class and out["detail"] == error.detail


def test_a_missing_module_is_an_install_verdict_not_a_traceback(capsys):
    def body():
        import modelgate_no_such_module  # noqa: F401
    assert run_gate(G, body) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["failure_class"] == "USER_CONFIG_ERROR" and "pip install" in out["detail"]
    assert "modelgate_no_such_module" in out["detail"]


def test_the_body_returns_the_verdict_and_where_to_write_it(tmp_path, capsys):
    verdict = c.make_verdict("g", passed=True, detail="ok")
    assert run_gate(G, lambda: Outcome(verdict, output=tmp_path / "v.json")) == 0
    written = json.loads((tmp_path / "v.json").read_text())
    assert written == json.loads(capsys.readouterr().out)
    # the emitted verdict is stamped with the run's facts the pure verdict left out
    assert written["versions"] and written["next_action"] == "none"


def test_an_error_verdict_goes_where_the_command_says_errors_go(tmp_path, capsys):
    def body():
        raise c.GateInputError("USER_CONFIG_ERROR", "no model")
    cmd = Command("g", "g", schema="envelope", error_output=lambda args: tmp_path / "err.json")
    assert run_gate(cmd, body, argparse.Namespace()) == 2
    assert json.loads((tmp_path / "err.json").read_text())["detail"] == "no model"


def test_make_verdict_is_pure_and_emit_stamps_versions_and_the_triage_next_action():
    v = c.make_verdict("g", passed=False, failure_class="FIDELITY_REGRESSION", detail="x")
    assert v["versions"] == {} and v["next_action"] == ""
    out = io.StringIO()
    c.emit(v, "envelope", stream=out)
    emitted = json.loads(out.getvalue())
    assert emitted["versions"] == c.versions()
    assert emitted["next_action"] == c.triage_hint("FIDELITY_REGRESSION") != ""


def test_a_reader_that_closed_stdout_ends_the_command_without_a_traceback(capsys):
    def body():
        raise BrokenPipeError(32, "Broken pipe")
    assert run_gate(G, body) == 1
    out = capsys.readouterr()
    assert out.out == "" and "Traceback" not in out.err


def test_a_tool_body_that_returns_an_int_prints_its_own_report(capsys):
    assert run_gate(G, lambda: 3) == 3
    assert capsys.readouterr().out == ""


# --------------------------------------------------------------------------- the error path's design

# a gate whose schema requires fields beyond the envelope (as every day0 gate's does)
RUN = Command("gate-run", "r", schema="run-verdict", error_fields=lambda args, cls, detail: {"tasks": {}})


def test_every_command_declares_the_schema_of_its_verdicts():
    with pytest.raises(TypeError, match="declares no verdict schema"):
        Command("x", "x", run=lambda args: 0)

    def walk(cmd):
        yield cmd
        for child in cmd.children:
            yield from walk(child)
    for cmd in walk(ROOT):
        c.load_schema(cmd.schema)  # it exists


def test_an_error_verdict_is_built_from_the_gates_error_fields_and_valid_against_its_schema(capsys):
    def body():
        raise c.GateInputError("USER_CONFIG_ERROR", "run summary not found")
    assert run_gate(RUN, body) == 2
    v = json.loads(capsys.readouterr().out)
    assert v["tasks"] == {} and v["detail"] == "run summary not found"
    assert c.schema_errors("run-verdict", v) == []


def test_regression_seed_an_error_verdict_that_breaks_its_schema_is_an_internal_bug_not_an_envelope(
        capsys, monkeypatch):
    # before: error verdicts that lacked the gate's fields were quietly validated against the envelope
    monkeypatch.delenv(c.STRICT_VERDICTS_ENV, raising=False)
    bare = Command("gate-run", "r", schema="run-verdict")  # no error fields: its error verdict lacks "tasks"

    def body():
        raise c.GateInputError("USER_CONFIG_ERROR", "run summary not found")
    assert run_gate(bare, body) == 2
    v = json.loads(capsys.readouterr().out)
    assert v["failure_class"] == "UNKNOWN" and v["detail"].startswith("internal error")
    assert "'tasks' is a required property" in v["detail"]


def test_in_strict_mode_a_verdict_that_breaks_its_schema_fails_the_test_that_made_it(capsys, monkeypatch):
    monkeypatch.setenv(c.STRICT_VERDICTS_ENV, "1")
    with pytest.raises(c.VerdictSchemaError, match="tasks"):
        run_gate(RUN, lambda: Outcome(c.make_verdict("gate-run", passed=True, detail="no tasks field")))
    # it was still printed, as an UNKNOWN verdict valid against the gate's schema
    v = json.loads(capsys.readouterr().out)
    assert v["failure_class"] == "UNKNOWN" and c.schema_errors("run-verdict", v) == []


def test_an_error_template_that_raises_is_reported_not_raised(capsys, monkeypatch):
    monkeypatch.delenv(c.STRICT_VERDICTS_ENV, raising=False)

    def broken(args, cls, detail):
        raise KeyError("x")
    cmd = Command("gate-run", "r", schema="run-verdict", error_fields=broken)
    assert run_gate(cmd, _raiser(c.GateInputError("USER_CONFIG_ERROR", "bad"))) == 2
    v = json.loads(capsys.readouterr().out)
    assert v["failure_class"] == "UNKNOWN" and "internal error" in v["detail"]


def _raiser(exc):
    def body():
        raise exc
    return body


@pytest.mark.parametrize("kind", ["text_file", "folder_named_json"])
def test_regression_seed_output_at_an_existing_file_or_folder_is_a_verdict_not_a_traceback(tmp_path, capsys, kind):
    ran = []
    if kind == "text_file":
        target = tmp_path / "notes.txt"
        target.write_text("my notes")
    else:
        target = tmp_path / "v.json"
        target.mkdir()
    cmd = Command("gate-run", "r", lambda p: p.add_argument("--output"),
                  lambda a: ran.append(1) or Outcome(c.make_verdict("gate-run", passed=True, detail="ok", tasks={}),
                                                     output=a.output),
                  schema="run-verdict", error_fields=lambda args, cls, detail: {"tasks": {}})
    code = run_command(cmd, ["--output", str(target)])
    v = json.loads(capsys.readouterr().out)
    if kind == "text_file":  # refused before any work, the file untouched
        assert code == 2 and v["failure_class"] == "USER_CONFIG_ERROR" and not ran
        assert "existing file" in v["detail"] and target.read_text() == "my notes"
    else:  # a folder takes the verdict under the gate's name
        assert code == 0 and ran and json.loads((target / "gate_run_result.json").read_text())["pass"] is True
    assert c.schema_errors("run-verdict", v) == []


def test_a_verdict_that_cannot_be_written_is_printed_as_an_error_saying_so(tmp_path, capsys, monkeypatch):
    def refuse(path, obj):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(c, "atomic_write_json", refuse)
    code = run_gate(RUN, lambda: Outcome(c.make_verdict("gate-run", passed=True, detail="ok", tasks={}),
                                         output=tmp_path / "v.json"))
    v = json.loads(capsys.readouterr().out)
    assert code == 2 and v["failure_class"] == "USER_CONFIG_ERROR" and "No space left" in v["detail"]
    assert "(PASS)" in v["detail"] and c.schema_errors("run-verdict", v) == []


# --------------------------------------------------------------------------- the root command

def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_unknown_command_is_a_json_verdict_with_exit_2(capsys):
    assert run_command(ROOT, ["no-such-command"]) == 2
    v = _json(capsys)
    assert v["gate"] == "modelgate" and v["failure_class"] == "USER_CONFIG_ERROR" and "invalid choice" in v["detail"]


def test_unknown_certify_tool_is_a_json_verdict_of_certify(capsys):
    assert run_command(ROOT, ["certify", "scroe", "e.json"]) == 2
    assert _json(capsys)["gate"] == "certify-run"


def test_bad_arguments_of_a_subcommand_name_that_subcommand(capsys):
    assert run_command(ROOT, ["gate-run"]) == 2
    v = _json(capsys)
    assert v["gate"] == "gate-run" and "--run" in v["detail"]


@pytest.mark.parametrize("argv", [[], ["--help"], *[[cmd.name, "--help"] for cmd in COMMANDS],
                                  *[["certify", t.name, "--help"] for t in COMMANDS[6].children]])
def test_help_of_the_root_and_of_every_command_exits_0(argv, capsys):
    assert run_command(ROOT, argv, prog="modelgate") == 0
    assert "usage" in capsys.readouterr().out.lower()


def test_every_command_of_the_root_is_one_of_the_documented_set():
    assert [cmd.name for cmd in COMMANDS] == ["verify", "demo", "release", "gate-ptq", "gate-run", "gate-compare",
                                             "certify", "routing-evals", "node-resources"]
    assert [t.name for t in COMMANDS[6].children] == ["score", "report", "export-csv", "sync-readme", "tickets",
                                                      "lock-playbooks", "check-lock"]


def test_a_command_declared_once_runs_the_same_as_a_subcommand_and_as_a_script(tmp_path, capsys):
    seen = []

    def body(args):
        seen.append(args.word)
        return Outcome(c.make_verdict("echo", passed=True, detail=f"said {args.word}"))
    echo = Command("echo", "say a word", lambda p: p.add_argument("--word", required=True), body, schema="envelope")
    root = Command("root", "r", children=(echo,), schema="envelope")
    assert run_command(root, ["echo", "--word", "a"]) == 0
    assert run_command(echo, ["--word", "b"], prog="echo.py") == 0
    assert seen == ["a", "b"]


def test_defaults_given_by_a_script_fill_an_option_the_user_did_not_give():
    got = []
    cmd = Command("x", "x", lambda p: p.add_argument("--skill-dir"),
                  lambda a: got.append(a.skill_dir) or Outcome(c.make_verdict("x", passed=True, detail="ok")),
                  schema="envelope")
    run_command(cmd, [], defaults={"skill_dir": "/from/script"}, tty=False)
    run_command(cmd, ["--skill-dir", "/from/user"], defaults={"skill_dir": "/from/script"}, tty=False)
    assert got == ["/from/script", "/from/user"]


def test_no_module_below_the_cli_imports_the_cli():
    below = [p for p in sorted((REPO / "modelgate").rglob("*.py"))
             if p.relative_to(REPO / "modelgate").parts[0] not in ("cli", "__main__.py")]
    offenders = {str(p.relative_to(REPO)): sorted(m for m in imported_modules(p) if m.startswith("modelgate.cli"))
                 for p in below}
    assert {k: v for k, v in offenders.items() if v} == {}
    assert len(below) > 50  # the scan saw the engine


# --------------------------------------------------------------------------- people at a terminal

def _failing_verdict() -> dict:
    return c.stamp(c.make_verdict(
        "gate-compare", passed=False, failure_class="ACCURACY_REGRESSION", decision="REGRESSION",
        detail="digits dropped 3 points", next_action="Try a less aggressive recipe.",
        checks=[c.check("ok_task", True, 0.9, 0.89), c.check("digits_drop", False, 0.03, 0.01)]))


def test_the_summary_names_the_verdict_the_first_failing_check_and_the_next_step():
    lines = spine.summary_lines(_failing_verdict())
    assert lines[0].startswith("gate-compare: FAIL (REGRESSION) [ACCURACY_REGRESSION]")
    assert any("first failing check: digits_drop" in ln and "0.03" in ln for ln in lines)
    assert lines[-1] == "  next: Try a less aggressive recipe."


def test_the_summary_is_printed_only_for_a_terminal_unless_forced():
    err = io.StringIO()  # not a terminal
    assert spine.summarize(_failing_verdict(), stream=err) is False and err.getvalue() == ""
    assert spine.summarize(_failing_verdict(), stream=err, tty=True) is True
    assert "digits_drop" in err.getvalue() and "Try a less aggressive recipe." in err.getvalue()


def test_with_a_terminal_on_stderr_stdout_is_still_exactly_one_json_verdict(tmp_path):
    summary = tmp_path / "missing.json"
    main_fd, child_fd = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "modelgate.cli", "gate-run", "--run", str(summary)],
                              stdout=subprocess.PIPE, stderr=child_fd, cwd=REPO, timeout=120,
                              env=dict(os.environ, PYTHONPATH=str(REPO)))
        os.close(child_fd)
        child_fd = None
        err = b""
        while True:
            try:
                chunk = os.read(main_fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
    finally:
        if child_fd is not None:
            os.close(child_fd)
        os.close(main_fd)
    verdict = json.loads(proc.stdout)  # one JSON object, nothing else
    assert proc.returncode == 2 and verdict["failure_class"] == "USER_CONFIG_ERROR"
    text = err.decode("utf-8", "replace")
    assert "gate-run: FAIL [USER_CONFIG_ERROR]" in text and "not found" in text
