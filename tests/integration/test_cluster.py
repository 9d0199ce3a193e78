"""Certification on a simulated two-node Ray cluster (``ray.cluster_utils.Cluster``, one machine, no mock).

node-a (head, this driver's node) advertises openvino_CPU; node-b advertises openvino_CPU and
openvino_GPU. Cells spread over both nodes and their evidence names the node; a unit that needs the
GPU runs only on node-b; node-b removed in the middle of a run loses no record: its CPU cells are
retried on node-a, its GPU cell has nowhere to go and is Crashed with the reason (INFRA_TRANSIENT),
and no cell process outlives the node. The removal runs last (it changes the module's cluster).
"""
import threading
import time

import pytest
import yaml

from modelgate.certify import playbook as P
from modelgate.certify.runner import run_playbook
from modelgate.executor import RayExecutor, Unit
from modelgate.gates.campaign import model_failure_class, model_next_action
from tests.support import procs
from tests.support.ray_cluster import start_cluster, stop_cluster, wait_no_ray_processes

pytestmark = pytest.mark.integration

HANG_S = 20.0


@pytest.fixture(scope="module")
def cluster():
    cl, node_b = start_cluster()
    try:
        yield {"cluster": cl, "node_b": node_b}
    finally:
        stop_cluster(cl)
        assert wait_no_ray_processes() == []


@pytest.fixture(scope="module")
def nodes(cluster):
    import ray

    return {n["Labels"]["modelgate-node"]: n["NodeID"] for n in ray.nodes() if n["Alive"]}


@pytest.fixture(scope="module")
def executor(cluster):
    ex = RayExecutor(strategy="SPREAD")  # joins the cluster this process is connected to
    yield ex
    ex.close()


def _playbook(tmp_path, name, **over):
    """The pack's trained-llama smoke playbook (prompts the fixture answers), on the fp32 IR only."""
    doc = yaml.safe_load((P.PLAYBOOK_DIR / "models" / "trained-llama-smoke.yaml").read_text())
    doc.update(name=name, matrix={"formats": ["openvino-fp32"], "devices": ["CPU"], "modalities": ["run", "contract"]})
    doc.update(over)
    if "scenarios" in over:
        doc["scenarios"] = [s for s in doc["scenarios"] if s["name"] == "prompts"] + over["scenarios"]
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    # a test of placement, not of evidence: the smaller matrix is below the smoke tier's floors on purpose
    return P.load_playbook(path, enforce_floors=False)


def _records(summary):
    import json

    return json.loads(open(summary["evidence"]).read())["records"]


def test_cells_spread_over_both_nodes_and_each_record_names_its_node(executor, nodes, tmp_path):
    s = run_playbook(_playbook(tmp_path, "spread"), tmp_path / "out", executor=executor, allow_unlocked=True,
                     progress=False)
    assert s["score"]["status"] == "CERTIFIED", s["score"]["gateways"]
    ran = [r for r in _records(s) if r["outcome"] != "Skipped"]
    cells = {r["id"].split("@")[0]: r["placement"]["node"] for r in ran if r["cell"]["scenario"] != "conversion"}
    assert set(cells.values()) == set(nodes.values()), cells  # both nodes ran cells
    assert all(r["placement"]["node_label"] in nodes for r in ran)
    assert s["executor"]["name"] == "ray" and len(s["executor"]["nodes"]) == 2


def test_a_unit_that_needs_a_device_only_one_node_advertises_runs_only_there(executor, nodes):
    units = [Unit(key=f"gpu-{i}", target="tests.support.unit_bodies:sleep_and_report", kwargs={"seconds": 0.5},
                  device="GPU") for i in range(3)]
    units += [Unit(key=f"cpu-{i}", target="tests.support.unit_bodies:sleep_and_report", kwargs={"seconds": 1.0},
                   device="CPU") for i in range(4)]
    recs = {}
    executor.run(units, handle=lambda rec: recs.__setitem__(rec.unit.key, rec))
    assert all(r.ran and r.result.ok for r in recs.values())
    assert {recs[f"gpu-{i}"].placement["node"] for i in range(3)} == {nodes["node-b"]}
    assert {recs[f"cpu-{i}"].placement["node"] for i in range(4)} == set(nodes.values())


def _remove_when_running(cluster, key: str, box: dict, give_up_s: float = 300.0) -> threading.Thread:
    """Remove node-b as soon as the unit ``key`` (a GPU cell: only node-b can run it) has its cell process."""
    title = f"ray::{key}"

    def go():
        deadline = time.monotonic() + give_up_s
        while time.monotonic() < deadline:
            workers = [p for p in procs.all_pids() if procs.cmdline(p).startswith(title)]
            # the cell is forked by the worker's fork server: a grandchild of the worker
            cells = [g for w in workers for c in procs.children(w) for g in procs.children(c)]
            if cells:
                box["cell_pids"] = cells
                time.sleep(0.5)
                cluster["cluster"].remove_node(cluster["node_b"], allow_graceful=False)
                box["removed"] = True
                return
            time.sleep(0.1)

    th = threading.Thread(target=go, daemon=True)
    th.start()
    return th


def test_a_node_lost_mid_run_loses_no_record(executor, cluster, nodes, tmp_path):
    """Runs last: node-b goes away while the GPU cell (a selftest that hangs) runs there."""
    doc = _playbook(tmp_path, "node-loss", matrix={"formats": ["openvino-fp32"], "devices": ["CPU", "GPU"],
                                                   "modalities": ["run"]},
                    scenarios=[{"name": "hang", "kind": "selftest", "fault": "hang", "timeout_ms": int(HANG_S * 1000)}])
    box: dict = {}
    th = _remove_when_running(cluster, "0|openvino-fp32/GPU/run/hang", box)
    s = run_playbook(doc, tmp_path / "out", executor=executor, allow_unlocked=True, progress=False)
    th.join(timeout=5)
    assert box.get("removed"), "node-b was never removed: the GPU cell never ran"
    recs = _records(s)
    by_id = {r["id"]: r for r in recs}
    assert len(by_id) == len(recs)  # no duplicate
    for cell in P.expand(doc):  # no lost record: every planned cell has its one cell record
        assert f"{cell.id}@cell" in by_id, cell.id
    assert "safetensors/CPU/run/ground-truth@integrity" in by_id
    assert "openvino-fp32/CPU/contract/conversion@conversion" in by_id
    lost = by_id["openvino-fp32/GPU/run/hang@cell"]
    assert lost["outcome"] == "Crashed" and lost["failure_class"] == "INFRA_TRANSIENT", lost["reason"]
    assert "Ray worker or node lost" in lost["reason"] and lost["placement"]["attempt_errors"]
    assert by_id["openvino-fp32/CPU/run/hang@cell"]["outcome"] == "Timeout"  # a timeout is still a timeout
    for r in recs:
        p = r.get("placement")
        if p and p["node"] and r["cell"]["device"] == "GPU":
            assert p["node"] == nodes["node-b"], r["id"]  # a GPU cell only ever ran on node-b
        if p and p["attempts"] > 1 and p["node"]:
            assert p["node"] == nodes["node-a"] and p["attempt_errors"], r["id"]  # retried on the live node
    assert s["infrastructure_losses"] and "openvino-fp32/GPU/run/hang@cell" in s["infrastructure_losses"]
    cls = model_failure_class(s["score"], s["infrastructure_losses"])
    assert "rerun" in model_next_action(cls, s["infrastructure_losses"])
    deadline = time.monotonic() + 30
    while any(procs.alive(p) for p in box["cell_pids"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    survivors = [p for p in box["cell_pids"] if procs.alive(p)]
    def chain(p):
        out = []
        while p and p > 1 and len(out) < 6:
            out.append((p, procs.cmdline(p)[:60], procs.alive(p)))
            p = procs.parent(p)
        return out
    assert not survivors, [chain(p) for p in survivors] + [box]  # the cell died with its node
