"""The executor seam on this machine: units, records, placement, device resources (real child processes).

The same seam on Ray is tests/integration/test_executor_ray.py.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelgate.contract import GateInputError
from modelgate.executor import LocalExecutor, Unit, make_executor
from modelgate.openvino.devices import device_families, device_resource, openvino_resources
from tests.support.unit_bodies import FAULTS

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "skills" / "model-certification" / "playbooks" / "models" / "trained-llama-smoke.yaml"
# what the child-process runner reports for each fault (the records both executors must give)
EXPECTED = {"ok": (True, None, 0), "raise": (False, "INFERENCE_FAILED", None), "exit": (False, "PLUGIN_CRASH", 3),
            "segv": (False, "PLUGIN_CRASH", -11), "abort": (False, "PLUGIN_CRASH", -6),
            "kill": (False, "RESOURCE_EXHAUSTED", -9), "hang": (False, "TIMEOUT", None)}


def fault_units(timeout_s=3.0):
    return [Unit(key=f"f-{k}", target="tests.support.unit_bodies:fault", kwargs={"kind": k}, timeout_s=timeout_s)
            for k in FAULTS]


def collect(ex, units, skip=None, more=None):
    recs = []

    def handle(rec):
        recs.append(rec)
        return more(rec) if more else []

    ex.run(units, handle=handle, skip=skip)
    return recs


@pytest.fixture(scope="module")
def local():
    ex = LocalExecutor(2, devices=["CPU"])
    yield ex
    ex.close()


def test_device_resources_are_named_after_the_openvino_device_family():
    assert device_resource("GPU.1") == "openvino_GPU" and device_resource("NPU") == "openvino_NPU"
    assert device_families(["CPU", "GPU.0", "GPU.1", "NPU"]) == ["CPU", "GPU", "NPU"]
    # one unit per enumerated accelerator, so two cells never share a GPU; CPU = the node's slots
    assert openvino_resources(8, ["CPU", "GPU.0", "GPU.1", "NPU"]) == {"openvino_CPU": 8.0, "openvino_GPU": 2.0,
                                                                       "openvino_NPU": 1.0}
    assert openvino_resources(2, ["CPU"]) == {"openvino_CPU": 2.0}
    assert openvino_resources(2, []) == {}


@pytest.mark.parametrize("bad", [{"kind": "job"}, {"start": "fork"}, {"target": "no_colon"}])
def test_a_unit_with_an_unknown_kind_start_method_or_target_is_refused(bad):
    with pytest.raises(ValueError):
        Unit(**{"key": "k", "target": "m:f", **bad})


def test_an_unknown_executor_is_a_user_config_error():
    with pytest.raises(GateInputError) as err:
        make_executor("slurm")
    assert err.value.failure_class == "USER_CONFIG_ERROR" and err.value.exit_code == 2


def test_each_fault_of_a_unit_becomes_the_child_process_runners_record(local):
    recs = {r.unit.key: r for r in collect(local, fault_units())}
    assert set(recs) == {f"f-{k}" for k in FAULTS}
    for kind, (ok, cls, code) in EXPECTED.items():
        res = recs[f"f-{kind}"].result
        assert (res.ok, res.failure_class, res.returncode) == (ok, cls, code), (kind, res.detail)
    assert "SIGSEGV" in recs["f-segv"].result.detail and "unit_bodies:fault" in recs["f-segv"].result.detail


def test_a_record_says_where_and_when_its_unit_ran(local):
    (rec,) = collect(local, [Unit(key="u", target="tests.support.unit_bodies:fault", kwargs={"kind": "ok"})])
    p = rec.placement
    assert p["executor"] == "local" and p["node"].startswith("local:") and p["attempts"] == 1
    assert p["submitted_at"] <= p["started_at"] <= p["ended_at"] <= p["returned_at"]
    assert rec.versions and "openvino" in rec.versions


def test_a_unit_on_a_device_this_host_lacks_is_never_started(local):
    (rec,) = collect(local, [Unit(key="npu", target="tests.support.unit_bodies:fault", kwargs={"kind": "ok"},
                                  device="NPU")])
    assert not rec.ran and rec.result is None and rec.placement is None
    assert "device NPU not present on this host" in rec.not_run


def test_skip_stops_what_has_not_started_and_every_unit_still_has_one_record(local):
    """A failure policy that stops the run: units in flight finish, the rest come back not run."""
    units = [Unit(key=f"s-{i}", target="tests.support.unit_bodies:fault", kwargs={"kind": "raise" if i == 0 else "ok"})
             for i in range(6)]
    seen = []

    def handle(rec):
        seen.append(rec)

    local.run(units, handle=handle, skip=lambda u: "stopped" if any(r.ran and not r.result.ok for r in seen) else None)
    assert sorted(r.unit.key for r in seen) == sorted(u.key for u in units)
    assert [r.not_run for r in seen if not r.ran] and all(r.not_run == "stopped" for r in seen if not r.ran)


def test_units_a_record_releases_run_after_it(local):
    first = [Unit(key="a", target="tests.support.unit_bodies:fault", kwargs={"kind": "ok"})]
    later = Unit(key="b", target="tests.support.unit_bodies:fault", kwargs={"kind": "ok"})
    recs = collect(local, first, more=lambda rec: [later] if rec.unit.key == "a" else [])
    assert [r.unit.key for r in recs] == ["a", "b"] and all(r.result.ok for r in recs)


def test_a_failed_preparation_is_a_failed_record_with_its_failure_class(local, tmp_path):
    unit = Unit(key="cell", target="tests.support.unit_bodies:fault", kwargs={"kind": "ok"},
                prepare="modelgate.certify.cells:prepare_inputs", prepare_kwargs={"source_dir": str(tmp_path / "gone")})
    (rec,) = collect(local, [unit])
    assert rec.ran and not rec.result.ok and rec.result.failure_class == "SOURCE_UNAVAILABLE"
    assert "not on this node" in rec.result.detail


HIDE_RAY = "import sys; sys.modules['ray'] = None; from modelgate.cli.main import main; sys.exit(main(sys.argv[1:]))"


@pytest.mark.parametrize("argv", [
    ["certify", "--playbook", str(PLAYBOOK), "--executor", "ray", "--allow-unlocked", "--no-progress"],
    ["release", "--model", str(PLAYBOOK.parent), "--recipes", "int8_asym,int4_asym_g128", "--executor", "ray",
     "--quiet"],
])
def test_the_ray_executor_without_ray_installed_is_a_clear_exit_2(argv, tmp_path):
    out = ["--output", str(tmp_path / "o")] if argv[0] == "certify" else ["--workspace", str(tmp_path / "ws")]
    p = subprocess.run([sys.executable, "-c", HIDE_RAY, *argv, *out], capture_output=True, text=True, timeout=300,
                       cwd=ROOT)
    v = json.loads(p.stdout)
    assert p.returncode == 2 and v["failure_class"] == "USER_CONFIG_ERROR", v["detail"]
    assert "modelgate[cluster]" in v["detail"]
    assert not (tmp_path / "o" / "evidence.json").exists()


def test_a_ray_address_without_the_ray_executor_is_refused(tmp_path):
    p = subprocess.run([sys.executable, "-m", "modelgate.cli", "certify", "--playbook", str(PLAYBOOK),
                        "--ray-address", "10.0.0.1:6379", "--output", str(tmp_path)], capture_output=True, text=True,
                       timeout=300, cwd=ROOT)
    v = json.loads(p.stdout)
    assert p.returncode == 2 and "--ray-address needs --executor ray" in v["detail"]


def test_node_resources_prints_the_ray_start_value():
    p = subprocess.run([sys.executable, "-m", "modelgate.cli", "node-resources", "--num-cpus", "8", "--devices",
                        "CPU,GPU.0,GPU.1"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert p.returncode == 0 and json.loads(p.stdout) == {"openvino_CPU": 8.0, "openvino_GPU": 2.0}
