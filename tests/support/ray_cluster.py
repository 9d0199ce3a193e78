"""A small real Ray for tests: one local instance or a two-node ``ray.cluster_utils.Cluster``, kept lean
(2 CPUs a node, a minimal object store, no dashboard, Ray's OOM killer off) and always shut down."""
from __future__ import annotations

import os
import time
from pathlib import Path

from modelgate.executor import RAY_SYSTEM_CONFIG
from tests.support import procs

ROOT = Path(__file__).resolve().parents[2]
NODE_STORE_BYTES = 80 * 1024 * 1024  # per node (Ray's minimum is ~75 MiB)
# a silent node is declared dead after period x threshold (Ray's default: 3 s x 5); a lost node's
# running tasks fail within a second either way, this only shortens "no node left for GPU"
FAST_HEALTH = {"health_check_period_ms": 1000, "health_check_failure_threshold": 3}
SMALL_RAY = {"num_cpus": 2, "object_store_memory": NODE_STORE_BYTES, "include_dashboard": False}


def ship_this_checkout() -> None:
    """Ray workers inherit the driver's environment when it starts the instance: put this checkout (the
    engine and ``tests.support``) on their path, whatever folder pytest runs from."""
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(ROOT) not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *parts])


def wait_no_ray_processes(timeout_s: float = 30.0) -> list[int]:
    """After a shutdown: wait until no Ray process started by this process is left; returns survivors."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = procs.ray_processes()
        if not left:
            return []
        time.sleep(0.2)
    return [f"{p}: {procs.cmdline(p)[:80]}" for p in procs.ray_processes()]


def start_cluster():
    """(cluster, node_b): head node-a (2 CPUs, openvino_CPU 2) and node-b (2 CPUs, openvino_CPU 2,
    openvino_GPU 1), with this process connected as the driver."""
    import ray
    from ray.cluster_utils import Cluster

    ship_this_checkout()
    cluster = Cluster(initialize_head=True, head_node_args=dict(
        num_cpus=2, resources={"openvino_CPU": 2}, labels={"modelgate-node": "node-a"},
        object_store_memory=NODE_STORE_BYTES, include_dashboard=False,
        _system_config={**FAST_HEALTH, **RAY_SYSTEM_CONFIG}))
    node_b = cluster.add_node(num_cpus=2, resources={"openvino_CPU": 2, "openvino_GPU": 1},
                              labels={"modelgate-node": "node-b"}, object_store_memory=NODE_STORE_BYTES)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    return cluster, node_b


def stop_cluster(cluster) -> None:
    import ray

    ray.shutdown()
    cluster.shutdown()
