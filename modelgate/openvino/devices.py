"""OpenVINO devices present on this host, and how a Ray node advertises them.

A certification cell on a device this host does not have is Skipped with the reason. On a Ray
cluster each node advertises its devices as custom resources named after the device family
(``openvino_CPU``, ``openvino_GPU``, ``openvino_NPU``), so a cell that asks for ``openvino_GPU``
only lands on a node that has a GPU (``modelgate node-resources`` prints the value for
``ray start --resources``).
"""
from __future__ import annotations

import functools

KNOWN_DEVICES = ("CPU", "GPU", "NPU")
RESOURCE_PREFIX = "openvino_"


@functools.cache
def available_devices() -> list[str]:
    """Device families OpenVINO reports (``GPU.0`` counts as ``GPU``)."""
    import openvino as ov

    return device_families(ov.Core().available_devices)


def device_families(devices: list[str]) -> list[str]:
    """``["CPU", "GPU.0", "GPU.1"]`` -> ``["CPU", "GPU"]`` (first-seen order)."""
    found: list[str] = []
    for d in devices:
        family = d.split(".")[0]
        if family not in found:
            found.append(family)
    return found


def device_resource(device: str) -> str:
    """The Ray custom resource of an OpenVINO device: ``GPU.1`` -> ``openvino_GPU``."""
    return RESOURCE_PREFIX + device.split(".")[0]


def openvino_resources(num_cpus: int, devices: list[str]) -> dict[str, float]:
    """What a node advertises: ``openvino_CPU`` = its CPU slots (a CPU cell takes one), and one
    unit of ``openvino_<FAMILY>`` per enumerated accelerator (``GPU.0`` and ``GPU.1`` ->
    ``openvino_GPU: 2``), so two cells never share one GPU or NPU. Pure."""
    res: dict[str, float] = {}
    for d in devices:
        name = device_resource(d)
        if name == RESOURCE_PREFIX + "CPU":
            res[name] = float(num_cpus)
        else:
            res[name] = res.get(name, 0.0) + 1.0
    return res


def node_devices() -> list[str]:
    """Every device OpenVINO enumerates on this node (``GPU.0``, ``GPU.1`` counted separately)."""
    import openvino as ov

    return list(ov.Core().available_devices)
