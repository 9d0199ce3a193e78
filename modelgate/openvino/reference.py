"""The source side of a layer-wise verification: the transformers model on the verification inputs.

``record_reference`` runs the clean source once over every input and writes, per input, the
embedding output, each block's output and the logits to a ``ReferenceStore`` (forward hooks on
the block stack, never ``output_hidden_states``, which holds every layer at once and whose last
entry is after the final norm). ``expected_noise`` then rounds the model's own tensors the way the
IR stores them (``format_sim``) and measures, against the stored clean values, the error a good
export of that format has: per block accumulated (with position buckets), per block decoupled
(each block fed the clean previous hidden state), the head fed the clean last hidden state, and the
logits. The OpenVINO child later compares the IR with the same store and the gate judges the IR's
errors against a margin of these.

Everything is computed in f32 on the CPU; ``source_reference`` is the child-process body. A
checkpoint stored in 16 bits (bf16, f16) stays in 16 bits in memory and every module computes in
f32 on an f32 copy of its own parameters made for that call (``compute_in_f32``): the same numbers
as an f32 load (16-bit values widen exactly) at half the memory, which is what lets a 7-8 B source
run on a 32 GB machine.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

from modelgate.openvino.block_errors import ErrorTable
from modelgate.openvino.refstore import ReferenceStore, block_key

# the task's transformers class for each input kind (data, not if-chains)
LOADER = {"decoder": "AutoModelForCausalLM"}


def _torch():
    import torch
    return torch


def find_stack(model, num_layers: int | None = None) -> tuple[str, list] | None:
    """(module path, blocks) of the model's block stack: the longest ModuleList of one block class
    (of ``num_layers`` entries when the config says how many), e.g. ``model.layers``, ``transformer.h``."""
    torch = _torch()
    best = None
    for name, mod in model.named_modules():
        if not isinstance(mod, torch.nn.ModuleList) or len(mod) < 2 or len({type(m) for m in mod}) != 1:
            continue
        if num_layers and len(mod) != num_layers:
            continue
        if best is None or len(mod) > len(best[1]) or (len(mod) == len(best[1]) and len(name) < len(best[0])):
            best = (name, list(mod))
    return best


def _first_tensor(value):
    torch = _torch()
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    inner = getattr(value, "last_hidden_state", None)
    if isinstance(inner, torch.Tensor):
        return inner
    raise TypeError(f"cannot find the hidden state in a block output of type {type(value).__name__}")


def _with_first(value, tensor):
    """``value`` with its hidden state replaced by ``tensor`` (same structure)."""
    torch = _torch()
    if isinstance(value, torch.Tensor):
        return tensor
    if isinstance(value, tuple):
        return (tensor,) + tuple(value[1:])
    if isinstance(value, list):
        return [tensor] + list(value[1:])
    raise TypeError(f"cannot replace the hidden state in a block output of type {type(value).__name__}")


@contextmanager
def tap_blocks(blocks: list, on_tensor, block_inputs: dict | None = None, last_output=None):
    """Hooks on a block stack for the duration of the block.

    ``on_tensor(index, tensor)`` sees the embedding output (index -1, block 0's input as it arrives)
    and each block's output. ``block_inputs`` {index: tensor} replaces a block's input (decoupled
    runs); ``last_output`` replaces the last block's output, so what follows the stack (final norm,
    head) runs on it.
    """
    handles = []

    def pre(index):
        def hook(mod, args, kwargs):
            if index == 0:
                x = args[0] if args else kwargs.get("hidden_states")
                on_tensor(-1, x)
            if block_inputs is None or index not in block_inputs:
                return None
            new = block_inputs[index]
            if args:
                return (new,) + tuple(args[1:]), kwargs
            kwargs = dict(kwargs)
            kwargs["hidden_states"] = new
            return args, kwargs
        return hook

    def post(index):
        def hook(mod, args, kwargs, output):
            on_tensor(index, _first_tensor(output))
            if last_output is not None and index == len(blocks) - 1:
                return _with_first(output, last_output)
            return None
        return hook

    try:
        for i, block in enumerate(blocks):
            handles.append(block.register_forward_pre_hook(pre(i), with_kwargs=True))
            handles.append(block.register_forward_hook(post(i), with_kwargs=True))
        yield
    finally:
        for h in handles:
            h.remove()


def _logits(out):
    logits = getattr(out, "logits", None)
    return logits if logits is not None else out[0]


def _decoder_forward(model, ids: list[int], keep: list[int] | None = None):
    """One full forward (no cache) over ``ids``; logits of all positions or of ``keep`` only."""
    torch = _torch()
    x = torch.tensor([ids])
    if keep is not None:
        try:
            return model(input_ids=x, use_cache=False, logits_to_keep=torch.tensor(keep))
        except TypeError:  # a model without logits_to_keep: full logits, rows picked afterwards
            pass
    return model(input_ids=x, use_cache=False)


def _pad_rows(arrays: list, width: int):
    """[T_r, H] arrays as one [B, width, H] f32 tensor, zeros after each row's end."""
    import numpy as np
    torch = _torch()
    out = np.zeros((len(arrays), width, arrays[0].shape[-1]), np.float32)
    for r, a in enumerate(arrays):
        out[r, : a.shape[0]] = a
    return torch.from_numpy(out)


def batched_decoder_forward(model, blocks: list, items: list[dict], block_inputs: list[dict] | None = None,
                            last_outputs: list | None = None) -> list[tuple[dict, object]]:
    """One forward over several token sequences, right-padded: a causal model's real positions never
    attend to the padding after them, so each row is its sequence's own forward (to float rounding),
    at the cost of about one forward (a short sequence's forward costs a read of every weight).

    ``block_inputs``: per item {block index: [T, H] array} fed as that block's input (decoupled runs);
    ``last_outputs``: per item the last block's output. Returns per item ({index: [1, T, H] tensor}
    (index -1: the embedding output), logits [1, T, V]), both f32.
    """
    torch = _torch()
    lens = [len(it["ids"]) for it in items]
    width = max(lens)
    ids = torch.zeros((len(items), width), dtype=torch.long)
    for r, it in enumerate(items):
        ids[r, : lens[r]] = torch.tensor(it["ids"])
    got: dict = {}

    def on_tensor(index, tensor):
        got[index] = tensor.detach().float()

    inputs = None if block_inputs is None else {i: _pad_rows([b[i] for b in block_inputs], width)
                                                for i in block_inputs[0]}
    last = None if last_outputs is None else _pad_rows(last_outputs, width)
    with tap_blocks(blocks, on_tensor, block_inputs=inputs, last_output=last):
        out = model(input_ids=ids, use_cache=False)
    logits = _logits(out).detach().float()
    return [({i: t[r: r + 1, : lens[r]] for i, t in got.items()}, logits[r: r + 1, : lens[r]])
            for r in range(len(items))]


BATCH_ROWS = 4  # sequences per padded batch: most of the saving of one big batch (a short forward costs a
# read of every weight), a quarter of its activations and logits held at a time


class LazyBatches:
    """Outputs of padded batches by entry name: a batch runs when one of its entries is first taken, and
    each output is dropped when taken, so at most one batch's outputs are held."""

    def __init__(self, groups: list[list[str]], run):
        self._group = {name: list(group) for group in groups for name in group}
        self._run = run
        self._ready: dict = {}

    def __contains__(self, name) -> bool:
        return name in self._group

    def pop(self, name):
        if name not in self._ready:
            self._ready.update(self._run(self._group[name]))
        del self._group[name]
        return self._ready.pop(name)


def row_groups(names: list[str], rows: int = BATCH_ROWS) -> list[list[str]]:
    """``names`` in run order, cut into batches of at most ``rows`` (a lone entry runs alone)."""
    groups = [names[k: k + rows] for k in range(0, len(names), rows)]
    return [g for g in groups if len(g) > 1]


def _short_forwards(model, blocks: list, plan: dict, store: ReferenceStore | None = None) -> LazyBatches:
    """The decoder plan's teacher-forced sequences as padded batches (``batched_decoder_forward``); with
    ``store`` decoupled, each row's blocks fed that entry's clean hidden states. Encoders: nothing (their
    inputs already are batches)."""
    items = dict(entries(plan))
    names = [n for n in items if n != "long"] if plan["kind"] == "decoder" and blocks else []
    n = len(blocks)

    def run(group: list[str]) -> dict:
        kwargs = {}
        if store is not None:
            refs = [store.read(name) for name in group]
            kwargs = {"block_inputs": [{i: r[block_key(i - 1)] for i in range(n)} for r in refs],
                      "last_outputs": [r[block_key(n - 1)] for r in refs]}
        return dict(zip(group, batched_decoder_forward(model, blocks, [items[g] for g in group], **kwargs)))

    return LazyBatches(row_groups(names), run)


def _replay(precomputed: tuple, on_tensor):
    """Feed a batched forward's stored block tensors to ``on_tensor`` in run order; the logits as the
    model would return them."""
    tensors, logits = precomputed
    for index in sorted(tensors):
        on_tensor(index, tensors[index])
    return logits


def _encoder_forward(model, batch: dict, accepted: set[str]):
    torch = _torch()
    return model(**{k: torch.from_numpy(v) for k, v in batch.items() if k in accepted})


def _accepted_inputs(model) -> set[str]:
    import inspect
    return set(inspect.signature(model.forward).parameters)


# --------------------------------------------------------------------------- clean reference

def entries(plan: dict) -> list[tuple[str, dict]]:
    """(store entry name, input) for every input of a plan, in run order."""
    if plan["kind"] == "decoder":
        out = [(f"seq{k}", s) for k, s in enumerate(plan["sequences"])]
        if plan.get("long"):
            out.append(("long", plan["long"]))
        return out
    return [(f"batch{k}", b) for k, b in enumerate(plan["batches"])]


def record_reference(model, stack_path: str, blocks: list, plan: dict, store: ReferenceStore) -> dict:
    """Run the clean model over the plan's inputs and write the store (one entry per input)."""
    import numpy as np

    torch = _torch()
    t0 = time.monotonic()
    n = len(blocks)
    accepted = _accepted_inputs(model)
    equal_rows, rows, vocab = 0, 0, None
    from modelgate.openvino import fidelity
    with torch.no_grad():
        shorts = _short_forwards(model, blocks, plan)
        for name, item in entries(plan):
            got: dict[int, np.ndarray] = {}
            keep = item.get("keep") if plan["kind"] == "decoder" else None

            def on_tensor(index, tensor, got=got, keep=keep):
                a = tensor.detach().float()
                got[index] = (a[0, keep] if keep is not None else (a[0] if plan["kind"] == "decoder" else a)).numpy()

            if name in shorts:
                logits = _replay(shorts.pop(name), on_tensor).numpy()
            else:
                with tap_blocks(blocks, on_tensor):
                    out = (_decoder_forward(model, item["ids"], keep) if plan["kind"] == "decoder"
                           else _encoder_forward(model, item, accepted))
                logits = _logits(out).detach().float().numpy()
            arrays = {block_key(i): got[i] for i in range(-1, n) if i in got}
            if plan["kind"] == "decoder":
                logits = logits[0]
                if keep is not None and logits.shape[0] != len(keep):
                    logits = logits[keep]
                arrays["positions"] = np.asarray(keep if keep is not None else range(len(item["ids"])), np.int64)
            else:
                arrays["mask"] = item["attention_mask"].astype(bool) if "attention_mask" in item else np.ones(
                    item["input_ids"].shape, bool)
            arrays["logits"] = logits.astype(np.float32)
            vocab = logits.shape[-1]
            eq = fidelity.equal_logit_rows(logits)
            equal_rows += eq["equal_rows"]
            rows += eq["rows"]
            store.write(name, arrays)
    meta = {"stack": stack_path, "blocks": n, "hidden_size": int(arrays[block_key(0)].shape[-1]),
            "entries": [name for name, _ in entries(plan)], "vocab": vocab, "logit_rows": rows,
            "equal_logit_rows": equal_rows, "seconds": round(time.monotonic() - t0, 3)}
    return meta


def greedy_runs(model, prompts: list[list[int]], new_tokens: int) -> list[dict]:
    """Greedy continuations through the KV cache: generated ids and the logits along the path."""
    import numpy as np

    torch = _torch()
    runs = []
    with torch.no_grad():
        for prompt in prompts:
            out = model(input_ids=torch.tensor([prompt]), use_cache=True)
            rows = [_logits(out)[0].float().numpy()]
            past = out.past_key_values
            generated = [int(np.argmax(rows[-1][-1]))]
            while len(generated) < new_tokens:
                out = model(input_ids=torch.tensor([[generated[-1]]]), past_key_values=past, use_cache=True)
                past = out.past_key_values
                rows.append(_logits(out)[0].float().numpy())
                generated.append(int(np.argmax(rows[-1][-1])))
            runs.append({"prompt_ids": list(prompt), "generated": generated,
                         "logits": np.concatenate(rows, 0).astype(np.float32)})
    return runs


def greedy_runs_batched(model, prompts: list[list[int]], new_tokens: int) -> list[dict]:
    """``greedy_runs`` for every prompt at once: one left-padded batch with explicit attention mask and
    position ids, one forward per new token for all prompts. Falls back to one prompt at a time for a
    model whose forward takes no ``position_ids`` (left padding would shift its positions)."""
    import numpy as np

    torch = _torch()
    if len(prompts) < 2 or not {"position_ids", "attention_mask"} <= _accepted_inputs(model):
        return greedy_runs(model, prompts, new_tokens)
    b, width = len(prompts), max(len(p) for p in prompts)
    pad = [width - len(p) for p in prompts]
    ids, mask = torch.zeros((b, width), dtype=torch.long), torch.zeros((b, width), dtype=torch.long)
    for r, p in enumerate(prompts):
        ids[r, pad[r]:], mask[r, pad[r]:] = torch.tensor(p), 1
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0),
                    use_cache=True)
        logits = _logits(out).float().numpy()
        rows = [[logits[r, pad[r]:]] for r in range(b)]
        past = out.past_key_values
        generated: list[list[int]] = [[] for _ in range(b)]
        for k in range(new_tokens):
            for r in range(b):
                generated[r].append(int(np.argmax(rows[r][-1][-1])))
            if k + 1 < new_tokens:
                mask = torch.cat([mask, torch.ones((b, 1), dtype=torch.long)], 1)
                out = model(input_ids=torch.tensor([[g[-1]] for g in generated]), attention_mask=mask,
                            position_ids=torch.tensor([[len(p) + k] for p in prompts]), past_key_values=past,
                            use_cache=True)
                past = out.past_key_values
                logits = _logits(out).float().numpy()
                for r in range(b):
                    rows[r].append(logits[r, -1:])
    return [{"prompt_ids": list(p), "generated": g, "logits": np.concatenate(rw, 0).astype(np.float32)}
            for p, g, rw in zip(prompts, generated, rows)]


# --------------------------------------------------------------------------- expected noise of the format

def expected_noise(model, blocks: list, plan: dict, store: ReferenceStore, spec) -> dict:
    """Round the model as ``spec`` stores it, then measure its error against the clean store.

    Returns ``{"format": spec, "simulated": what was rounded, "accumulated": {index: summary},
    "decoupled": {index: summary} (index len(blocks) = the head), "logits": summary}``. Mutates the
    model (the caller is done with the clean one).
    """
    import numpy as np

    from modelgate.openvino import fidelity, format_sim

    torch = _torch()
    t0 = time.monotonic()
    done = format_sim.simulate(model, spec)
    n = len(blocks)
    accepted = _accepted_inputs(model)
    acc, dec = ErrorTable(), ErrorTable()
    logit_cmp = {"short": fidelity.LogitComparison(), "long": fidelity.LogitComparison()}
    with torch.no_grad():
        shorts = _short_forwards(model, blocks, plan)
        decoupled = _short_forwards(model, blocks, plan, store)  # each row fed its own clean hidden states
        for name, item in entries(plan):
            ref = store.read(name)
            rows = _rows(plan, ref)

            def on_acc(index, tensor, ref=ref, rows=rows, item=item):
                a = _select(plan, tensor, item)
                acc.add(index, a[rows.mask], ref[block_key(index)][rows.mask], rows.positions)

            if name in shorts:
                logits = _replay(shorts.pop(name), on_acc).numpy()
            else:
                with tap_blocks(blocks, on_acc):
                    out = (_decoder_forward(model, item["ids"], item.get("keep")) if plan["kind"] == "decoder"
                           else _encoder_forward(model, item, accepted))
                logits = _logits(out).detach().float().numpy()
            logits = _select_logits(plan, logits, item)
            logit_cmp["long" if name == "long" else "short"].add(logits, ref["logits"])
            if name == "long":
                continue  # the decoupled run needs every position's input: short inputs only
            if name not in decoupled:
                inputs = {i: torch.from_numpy(_batched(plan, ref[block_key(i - 1)])) for i in range(n)}
                last = torch.from_numpy(_batched(plan, ref[block_key(n - 1)]))

            def on_dec(index, tensor, ref=ref, rows=rows):
                if index < 0:
                    return
                a = _select(plan, tensor, None)
                dec.add(index, a[rows.mask], ref[block_key(index)][rows.mask], rows.positions,
                        prev=ref[block_key(index - 1)][rows.mask])

            if name in decoupled:
                head = _select_logits(plan, _replay(decoupled.pop(name), on_dec).numpy(), {})
            else:
                with tap_blocks(blocks, on_dec, block_inputs=inputs, last_output=last):
                    out = (_decoder_forward(model, item["ids"]) if plan["kind"] == "decoder"
                           else _encoder_forward(model, item, accepted))
                head = _select_logits(plan, _logits(out).detach().float().numpy(), {})
            dec.add(n, head.reshape(-1, head.shape[-1]), ref["logits"].reshape(-1, ref["logits"].shape[-1]),
                    np.zeros(head.reshape(-1, head.shape[-1]).shape[0], np.int64))
    return {"format": spec.to_dict(), "simulated": done, "accumulated": acc.summary(), "decoupled": dec.summary(),
            "logits": logit_cmp["short"].summary(), "logits_long": logit_cmp["long"].summary(),
            "seconds": round(time.monotonic() - t0, 3)}


class _Rows:
    """Which rows of a stored tensor are compared (all, or the unpadded tokens of an encoder batch)."""

    def __init__(self, mask, positions):
        self.mask = mask
        self.positions = positions


def _rows(plan: dict, ref: dict) -> _Rows:
    import numpy as np
    if plan["kind"] == "decoder":
        return _Rows(slice(None), ref["positions"])
    mask = ref["mask"]
    positions = np.broadcast_to(np.arange(mask.shape[1]), mask.shape)[mask]
    return _Rows(mask, positions)


def _select(plan: dict, tensor, item: dict | None):
    a = tensor.detach().float()
    if plan["kind"] == "decoder":
        a = a[0]
        keep = (item or {}).get("keep")
        return (a[keep] if keep is not None else a).numpy()
    return a.numpy()


def _select_logits(plan: dict, logits, item: dict):
    if plan["kind"] != "decoder":
        return logits
    logits = logits[0]
    keep = item.get("keep")
    if keep is not None and logits.shape[0] != len(keep):
        logits = logits[keep]
    return logits


def _batched(plan: dict, array):
    """A stored tensor as a block input: decoders stored [T, H] -> [1, T, H]; encoder batches as they are."""
    import numpy as np
    return np.ascontiguousarray(array[None] if plan["kind"] == "decoder" else array, dtype=np.float32)


# --------------------------------------------------------------------------- child-process bodies

def _to_f32(value):
    torch = _torch()
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() and value.dtype != torch.float32 else value
    if isinstance(value, tuple):
        return tuple(_to_f32(v) for v in value)
    if isinstance(value, list):
        return [_to_f32(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_f32(v) for k, v in value.items()}
    return value


def compute_in_f32(model) -> int:
    """Make every module of a 16-bit model compute in f32 without an f32 copy of the model.

    Before a module's forward its own 16-bit parameters and buffers are swapped for f32 copies (and its
    16-bit inputs widened); after it, even when it raises, the 16-bit storage is put back. At most one
    module's f32 copy is alive at a time besides the activations. Returns the number of modules hooked.
    """
    torch = _torch()
    hooked = 0
    for mod in model.modules():
        own = [t for t in list(mod.parameters(recurse=False)) + list(mod.buffers(recurse=False))
               if t.is_floating_point() and t.dtype != torch.float32]
        if not own:
            continue

        def widen(module, args, kwargs, own=own):
            module.__dict__.setdefault("_modelgate_saved", []).append([(t, t.data) for t in own])
            for t in own:
                t.data = t.data.float()
            return _to_f32(args), _to_f32(kwargs)

        def restore(module, args, kwargs, output):
            for t, data in module.__dict__["_modelgate_saved"].pop():
                t.data = data
            return None

        mod.register_forward_pre_hook(widen, with_kwargs=True)
        mod.register_forward_hook(restore, with_kwargs=True, always_call=True)
        hooked += 1
    return hooked


def load_source(model_dir: str, kind: str, task: str | None = None, trust_remote_code: bool = False):
    """The transformers model in eval mode, computing in f32: loaded in f32, or in its 16-bit storage
    dtype with ``compute_in_f32`` when the checkpoint is stored in bf16 / f16."""
    import transformers

    from modelgate.openvino.tasks import TASK_HF_CLASS
    from modelgate.verify.resources import checkpoint_float_dtype

    torch = _torch()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    cls_name = LOADER.get(kind) or TASK_HF_CLASS.get(task or "", "AutoModel")
    cls = getattr(transformers, cls_name)
    stored = {"BF16": torch.bfloat16, "F16": torch.float16}.get(checkpoint_float_dtype(model_dir) or "")
    model = cls.from_pretrained(model_dir, dtype=stored or torch.float32, trust_remote_code=trust_remote_code).eval()
    if stored is not None:
        compute_in_f32(model)
    return model


def run_reference(model, plan: dict, store_dir: str, num_layers: int | None = None) -> dict:
    """The clean half: stack, store, greedy runs. Returns the store's meta (also written beside it)."""
    found = find_stack(model, num_layers) or find_stack(model)
    store = ReferenceStore(store_dir).create()
    if found is None:
        meta = {"stack": None, "blocks": 0, "entries": [], "reason": "no block stack (ModuleList) in the source model"}
    else:
        path, blocks = found
        meta = record_reference(model, path, blocks, plan, store)
    if plan["kind"] == "decoder" and plan.get("greedy"):
        meta["greedy"] = greedy_runs_batched(model, plan["greedy"], plan["new_tokens"])
    store.write_meta({k: v for k, v in meta.items() if k != "greedy"})
    return meta


def run_expected_noise(model, plan: dict, store_dir: str, spec, num_layers: int | None = None) -> dict | None:
    """The simulated half (mutates ``model``); None when the format is fp32 (nothing to round)."""
    if spec is None or spec.weight_format == "fp32":
        return None
    found = find_stack(model, num_layers) or find_stack(model)
    if found is None:
        return None
    return expected_noise(model, found[1], plan, ReferenceStore(store_dir), spec)


def source_reference(model_dir: str, kind: str, task: str | None, plan: dict, store_dir: str,
                     ir_xml: str | None = None, trust_remote_code: bool = False,
                     num_layers: int | None = None) -> dict:
    """Child body: load the source, record the clean reference, then the format's expected noise.

    The IR's format (read from ``ir_xml``) decides what is simulated. Returns the store meta with
    ``greedy`` runs and ``expected`` noise; arrays stay in the store.
    """
    from modelgate.openvino import format_sim

    torch = _torch()
    t0 = time.monotonic()
    with torch.no_grad():
        model = load_source(model_dir, kind, task, trust_remote_code)
        load_s = time.monotonic() - t0
        meta = run_reference(model, plan, store_dir, num_layers)
        spec = format_sim.spec_from_ir(ir_xml) if ir_xml else None
        meta["format"] = spec.to_dict() if spec else None
        meta["expected"] = run_expected_noise(model, plan, store_dir, spec, num_layers)
    meta["load_s"] = round(load_s, 3)
    meta["seconds"] = round(time.monotonic() - t0, 3)
    return meta
