"""The executor seam on a real local Ray instance (one per module, started by the executor itself):
the same records as the local executor for every way a unit can end, placement, never-started
units, the stop of a failure policy, and no cell process outliving a killed Ray worker."""
import os
import time

import pytest

from modelgate.executor import LocalExecutor, RayExecutor, Unit
from tests.support import procs
from tests.support.ray_cluster import SMALL_RAY, ship_this_checkout, wait_no_ray_processes
from tests.support.unit_bodies import FAULTS

pytestmark = pytest.mark.integration

BODY = "tests.support.unit_bodies"
COMPARED = ("ok", "failure_class", "returncode", "detail")


def fault_units(timeout_s=3.0, **kw):
    return [Unit(key=f"f-{k}", target=f"{BODY}:fault", kwargs={"kind": k}, timeout_s=timeout_s, **kw) for k in FAULTS]


def by_key(ex, units, skip=None):
    out = {}

    def handle(rec):
        assert rec.unit.key not in out, f"duplicate record {rec.unit.key}"
        out[rec.unit.key] = rec

    ex.run(units, handle=handle, skip=skip)
    return out


@pytest.fixture(scope="module")
def ray_ex():
    ship_this_checkout()
    ex = RayExecutor(init_kwargs=dict(SMALL_RAY))
    try:
        yield ex
    finally:
        ex.close()
        assert wait_no_ray_processes() == []


@pytest.fixture(scope="module")
def local_ex():
    ex = LocalExecutor(2, devices=["CPU"])
    yield ex
    ex.close()


def _fields(rec):
    return {f: getattr(rec.result, f) for f in COMPARED}


@pytest.mark.parametrize("start", ["spawn", "forkserver"])
def test_every_way_a_unit_ends_gives_the_same_record_on_ray_as_locally(local_ex, ray_ex, start):
    units = fault_units(start=start, preload=(BODY,) if start == "forkserver" else ())
    loc, ray_ = by_key(local_ex, units), by_key(ray_ex, units)
    assert set(loc) == set(ray_) == {u.key for u in units}
    for key in loc:
        assert _fields(loc[key]) == _fields(ray_[key]), key
    # the classes are the child-process runner's (signal and exit code kept), not Ray's
    assert ray_["f-segv"].result.returncode == -11 and "SIGSEGV" in ray_["f-segv"].result.detail
    assert ray_["f-kill"].result.failure_class == "RESOURCE_EXHAUSTED"
    assert ray_["f-hang"].result.failure_class == "TIMEOUT"
    assert all(r.placement["attempts"] == 1 and not r.placement["attempt_errors"] for r in ray_.values())


def test_a_ray_record_names_the_node_and_the_times_it_ran(ray_ex):
    import ray

    recs = by_key(ray_ex, [Unit(key="u", target=f"{BODY}:fault", kwargs={"kind": "ok"})])
    p = recs["u"].placement
    assert p["executor"] == "ray" and p["node"] in {n["NodeID"] for n in ray.nodes()}
    assert p["submitted_at"] <= p["started_at"] <= p["ended_at"] <= p["returned_at"]
    assert recs["u"].result.value["pid"] != os.getpid()
    assert {n["node"] for n in ray_ex.describe()["nodes"]} == {p["node"]}
    assert ray_ex.describe()["nodes"][0]["resources"]["openvino_CPU"] == 2.0  # this host's devices, advertised


def test_a_unit_for_a_device_no_node_advertises_is_never_submitted(ray_ex):
    t0 = time.monotonic()
    recs = by_key(ray_ex, [Unit(key="npu", target=f"{BODY}:fault", kwargs={"kind": "ok"}, device="NPU")])
    assert not recs["npu"].ran and "openvino_NPU" in recs["npu"].not_run
    assert time.monotonic() - t0 < 30  # Ray would have queued it for ever


def test_a_stopped_run_submits_nothing_more_on_ray(ray_ex):
    units = [Unit(key=f"s-{i}", target=f"{BODY}:fault", kwargs={"kind": "raise" if i == 0 else "ok"})
             for i in range(8)]
    seen = []

    def handle(rec):
        seen.append(rec)

    ray_ex.run(units, handle=handle, skip=lambda u: "stopped" if any(r.ran and not r.result.ok for r in seen) else None)
    assert sorted(r.unit.key for r in seen) == sorted(u.key for u in units)  # one record each, none twice
    assert any(r.not_run == "stopped" for r in seen)


def test_a_killed_ray_worker_takes_its_cell_process_with_it(ray_ex, tmp_path):
    """ray.cancel(force=True) kills the worker; the cell's child (own session) dies with it (PDEATHSIG)
    and the driver sees Ray's cancellation, never a false SIGKILL verdict of the cell."""
    import ray

    unit = Unit(key="sleeper", target=f"{BODY}:sleep_and_report", kwargs={"seconds": 600, "pid_dir": str(tmp_path)},
                timeout_s=900)
    ref = ray_ex._launch(unit)
    deadline = time.monotonic() + 120
    while not list(tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    (pidfile,) = list(tmp_path.iterdir())
    child = int(pidfile.stem)
    assert procs.alive(child)
    ray.cancel(ref, force=True)
    with pytest.raises((ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError)):
        ray.get(ref, timeout=60)
    deadline = time.monotonic() + 30
    while procs.alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not procs.alive(child)
