"""Run a model on both sides of a conversion: the OpenVINO IR and its source.

Every public ``ov_*`` / ``source_*`` function is a child-process body (``childproc.run_function``):
it takes plain arguments, returns plain dicts of numpy arrays, and imports its heavy
dependencies itself. Both sides see the same token ids / input arrays, chosen by the caller.

Greedy generation (``greedy_tokens`` / ``ov_causal_lm`` / ``source_causal_lm``) returns the new
token ids and the logits of every position whose context was fed, so two runs can be compared
position by position up to the point where their greedy paths diverge.
"""
from __future__ import annotations

import time
from pathlib import Path

# The f32 hint alone, as other gates read it to name the precision of an exact run; verify's own
# compiles add the f32 KV cache and no dynamic quantization (``runtime_config("f32")`` below).
EXACT_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}


def _compile(xml: str, device: str, exact: bool = True):
    """Compile for an exactness check: f32 arithmetic, and (where the plugin knows them) an f32 KV cache
    and no dynamic activation quantization, which an f32 hint alone leaves on (``FAITHFUL_CONFIG``)."""
    import openvino as ov

    from modelgate.openvino.precision import runtime_config
    core = ov.Core()
    return core.compile_model(str(xml), device, runtime_config("f32", device, core) if exact else {})


def _port_name(port, i: int) -> str:
    names = sorted(port.get_names())
    return names[0] if names else f"output_{i}"


def _out_meta(compiled) -> list[dict]:
    return [{"name": _port_name(o, i), "element_type": o.get_element_type().get_type_name()}
            for i, o in enumerate(compiled.outputs)]


# --------------------------------------------------------------------------- causal LM

def ov_causal_lm(xml: str, prompts_ids: list[list[int]], max_new_tokens: int = 8, device: str = "CPU",
                 exact: bool = True) -> dict:
    """Greedy-generate ``max_new_tokens`` for each prompt on an optimum-exported (stateful) decoder IR.

    Uses the KV-cache path a deployment uses: the prompt in one call, then one token per call.
    Returns ``{"runs": [{prompt_ids, generated, logits [P+N-1, V]}], "outputs": [...], "seconds"}``.
    """
    import numpy as np

    t0 = time.monotonic()
    compiled = _compile(xml, device, exact)
    names = {n for p in compiled.inputs for n in p.get_names()}
    unknown = names - {"input_ids", "attention_mask", "position_ids", "beam_idx"}
    if "input_ids" not in names or unknown:
        raise RuntimeError(f"not a stateful decoder IR (inputs {sorted(names)}); export with optimum-intel "
                           "text-generation-with-past")
    req = compiled.create_infer_request()
    logits_port = next((o for o in compiled.outputs if "logits" in o.get_names()), compiled.outputs[0])

    def step(new_ids: list[int], past: int):
        total = past + len(new_ids)
        feed = {"input_ids": np.asarray([new_ids], dtype=np.int64)}
        if "attention_mask" in names:
            feed["attention_mask"] = np.ones((1, total), dtype=np.int64)
        if "position_ids" in names:
            feed["position_ids"] = np.arange(past, total, dtype=np.int64)[None, :]
        if "beam_idx" in names:
            feed["beam_idx"] = np.zeros((1,), dtype=np.int32)
        req.infer(feed)
        return np.array(req.get_tensor(logits_port).data, dtype=np.float32, copy=True)[0]

    runs = []
    for prompt in prompts_ids:
        req.reset_state()
        rows = [step(list(prompt), 0)]
        generated: list[int] = []
        for k in range(max_new_tokens):
            generated.append(int(np.argmax(rows[-1][-1])) if np.isfinite(rows[-1][-1]).any() else 0)
            if k + 1 < max_new_tokens:
                rows.append(step([generated[-1]], len(prompt) + k))
        runs.append({"prompt_ids": list(prompt), "generated": generated, "logits": np.concatenate(rows, axis=0)})
    return {"runs": runs, "outputs": _out_meta(compiled), "seconds": time.monotonic() - t0}


def source_causal_lm(model_dir: str, prompts_ids: list[list[int]], max_new_tokens: int = 8,
                     trust_remote_code: bool = False) -> dict:
    """The same greedy run on the transformers source model (f32, full recompute: the reference)."""
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    t0 = time.monotonic()
    torch.set_num_threads(1)  # the OpenVINO child runs at the same time on the other core
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                 trust_remote_code=trust_remote_code)
    model.eval()
    runs = []
    with torch.no_grad():
        for prompt in prompts_ids:
            ids = list(prompt)
            generated: list[int] = []
            logits = None
            for _ in range(max_new_tokens):
                logits = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0].float().numpy()
                generated.append(int(np.argmax(logits[-1])))
                ids.append(generated[-1])
            runs.append({"prompt_ids": list(prompt), "generated": generated, "logits": logits.astype(np.float32)})
    return {"runs": runs, "seconds": time.monotonic() - t0}


def greedy_tokens(xml: str, prompts_ids: list[list[int]], max_new_tokens: int = 8,
                  device: str = "CPU") -> list[list[int]]:
    """Greedy new-token ids per prompt from an OpenVINO decoder IR (run it in a child process)."""
    return [r["generated"] for r in ov_causal_lm(xml, prompts_ids, max_new_tokens, device)["runs"]]


def source_greedy_tokens(model_dir: str, prompts_ids: list[list[int]], max_new_tokens: int = 8) -> list[list[int]]:
    """Greedy new-token ids per prompt from the transformers source model."""
    return [r["generated"] for r in source_causal_lm(model_dir, prompts_ids, max_new_tokens)["runs"]]


# --------------------------------------------------------------------------- single forward pass

def ov_ports(xml: str) -> list[dict]:
    """Input ports of an IR: name, shape (None for dynamic dims), numpy dtype name."""
    import openvino as ov
    model = ov.Core().read_model(str(xml))
    out = []
    for i, p in enumerate(model.inputs):
        shape = [d.get_length() if d.is_static else None for d in p.get_partial_shape()]
        out.append({"name": _port_name(p, i), "shape": shape, "dtype": str(p.get_element_type().to_dtype())})
    return out


def ov_forward(xml: str, inputs: dict, device: str = "CPU", exact: bool = True) -> dict:
    """One inference on the IR. Feeds the inputs the model declares (by name, else by position)."""
    import numpy as np

    t0 = time.monotonic()
    compiled = _compile(xml, device, exact)
    feed = {}
    for i, port in enumerate(compiled.inputs):
        name = next((n for n in port.get_names() if n in inputs), None)
        if name is None and len(inputs) == len(compiled.inputs):
            name = list(inputs)[i]  # converters rename inputs (TorchScript: "input.2"); same arity -> by position
        if name is None:
            raise RuntimeError(f"no value for model input {sorted(port.get_names()) or i}; have {sorted(inputs)}")
        feed[port] = np.asarray(inputs[name]).astype(port.get_element_type().to_dtype(), copy=False)
    res = compiled.create_infer_request().infer(feed)
    outputs = {_port_name(o, i): np.array(res[o], copy=True) for i, o in enumerate(compiled.outputs)}
    return {"outputs": outputs, "output_meta": _out_meta(compiled), "seconds": time.monotonic() - t0}


def source_hf_forward(model_dir: str, task: str, inputs: dict, trust_remote_code: bool = False) -> dict:
    """One forward pass of the transformers model for ``task``; outputs by the IR's usual names."""
    import numpy as np
    import torch
    import transformers

    from modelgate.openvino.tasks import TASK_HF_CLASS

    t0 = time.monotonic()
    torch.set_num_threads(1)
    cls = getattr(transformers, TASK_HF_CLASS[task])
    model = cls.from_pretrained(model_dir, dtype=torch.float32, trust_remote_code=trust_remote_code).eval()
    with torch.no_grad():
        res = model(**{k: torch.from_numpy(np.asarray(v)) for k, v in inputs.items()})
    outputs = {k: v.float().numpy() for k, v in res.items() if isinstance(v, torch.Tensor)}
    return {"outputs": outputs, "seconds": time.monotonic() - t0}


def source_onnx_forward(onnx_path: str, inputs: dict) -> dict:
    """One forward pass with onnxruntime (CPU); outputs by ONNX output name."""
    import numpy as np
    import onnxruntime as ort

    t0 = time.monotonic()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    feed = {n: np.asarray(inputs[n] if n in inputs else list(inputs.values())[k]) for k, n in enumerate(names)}
    outs = sess.run(None, feed)
    return {"outputs": {o.name: np.asarray(v) for o, v in zip(sess.get_outputs(), outs)},
            "seconds": time.monotonic() - t0}


def source_torch_forward(pt_path: str, inputs: dict, trust_remote_code: bool = False) -> dict:
    """One forward pass of a TorchScript (or, when trusted, pickled) PyTorch model."""
    import numpy as np
    import torch

    t0 = time.monotonic()
    try:
        module = torch.jit.load(str(pt_path), map_location="cpu")
    except Exception:
        if not trust_remote_code:
            raise
        module = torch.load(str(pt_path), map_location="cpu", weights_only=False)
    module.eval()
    with torch.no_grad():
        res = module(*[torch.from_numpy(np.asarray(v)) for v in inputs.values()])
    tensors = res if isinstance(res, (tuple, list)) else [res]
    names = ["logits"] if len(tensors) == 1 else [f"output_{i}" for i in range(len(tensors))]
    return {"outputs": {n: t.float().numpy() for n, t in zip(names, tensors)}, "seconds": time.monotonic() - t0}


def ir_dir_of(xml: str | Path) -> Path:
    return Path(xml).parent
