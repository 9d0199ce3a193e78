"""OpenVINO devices present on this host. An absent device's cells are Skipped with a reason."""
from __future__ import annotations

import functools

KNOWN_DEVICES = ("CPU", "GPU", "NPU")


@functools.cache
def available_devices() -> list[str]:
    """Device families OpenVINO reports (``GPU.0`` counts as ``GPU``)."""
    import openvino as ov

    found = []
    for d in ov.Core().available_devices:
        family = d.split(".")[0]
        if family not in found:
            found.append(family)
    return found
