"""The reference outputs on disk: written by one child process, read by another one input at a time.

The source child writes, per input (a token sequence or an encoder batch), the embedding output,
every block's output and the logits as one uncompressed ``.npz``; the OpenVINO child reads them
back one input at a time while it runs the same input, so neither process ever holds the hidden
states of both models, and the source's memory is gone before the IR is compiled. A long prompt's
entry keeps only its sampled positions.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

META = "meta.json"


class ReferenceStore:
    """A folder of ``<name>.npz`` entries plus ``meta.json``."""

    def __init__(self, root):
        self.root = Path(root)

    def create(self) -> ReferenceStore:
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        return self

    def write(self, name: str, arrays: dict) -> None:
        import numpy as np
        self.root.mkdir(parents=True, exist_ok=True)
        np.savez(self.root / f"{name}.npz", **{k: np.ascontiguousarray(v) for k, v in arrays.items()})

    def read(self, name: str) -> dict:
        """The arrays of one entry (loaded now: an entry is one input's worth)."""
        import numpy as np
        with np.load(self.root / f"{name}.npz") as data:
            return {k: data[k] for k in data.files}

    def has(self, name: str) -> bool:
        return (self.root / f"{name}.npz").is_file()

    def write_meta(self, meta: dict) -> None:
        (self.root / META).write_text(json.dumps(meta), encoding="utf-8")

    def meta(self) -> dict:
        """The entry list and stack the writer recorded ({} for a store that was never written)."""
        path = self.root / META
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def block_key(index: int) -> str:
    """The array name of a tensor in an entry: ``emb`` for the embedding output, ``b<i>`` for block i."""
    return "emb" if index < 0 else f"b{index}"
