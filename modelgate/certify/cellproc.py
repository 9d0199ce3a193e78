"""How a certification unit's child process starts: forked from a server that has already imported
the heavy libraries.

``childproc.run_function`` with ``spawn`` starts a fresh interpreter per call, which costs ~10 s of
transformers/torch imports per safetensors cell on 2 cores. Certification units
(``modelgate.certify.campaign``) start with ``executor.Unit(start="forkserver", preload=PRELOAD)``:
each cell still runs isolated in its own process (a crash or hang kills only that cell), but forks
from a *forkserver* that imported these modules once per executor process (the driver on the local
executor, each Ray worker on Ray). Its start-up is not charged to any cell's timeout.
"""
from __future__ import annotations

# imported once by the fork server; importing must not start threads or open devices
PRELOAD = ("numpy", "torch", "transformers", "transformers.models.auto.modeling_auto",
           "transformers.models.auto.tokenization_auto", "openvino", "openvino_genai", "openvino_tokenizers",
           "modelgate.certify.cells", "modelgate.certify.invariants_observe", "modelgate.openvino.infer",
           "modelgate.openvino.tokenizer_parity")
