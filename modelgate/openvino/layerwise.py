"""The OpenVINO side of a layer-wise verification: run the IR on the reference's inputs, compare block by block.

At the f32 (faithful) runtime config the IR runs twice:

- **accumulated**: the IR with every block output (and the embedding output) exposed, on every
  input of the plan: the token sequences (prompt in one call, continuation one token per call
  through the KV cache, as a deployment runs, or for most prompts as one chunk after the cached
  prompt), the long prompt (block outputs gathered at its
  sampled positions only) and the encoder batches. Each block is compared with the stored source
  block as it comes, per position bucket; a fault before the first block (embedding, position
  table) shows at the embedding output, a position fault grows in the deep buckets.
- **decoupled**: a copy whose blocks read the *source's* previous hidden state (``blocks.decouple``),
  and whose head reads the source's last hidden state: each block's (and the head's) own error,
  flat over depth, so a fault in a middle layer is not drowned by the noise accumulated before it
  and the first divergent block is the faulty one.

Greedy generation runs every prompt in one left-padded batch (``greedy_batch``): a decode step
costs about the weights' reading whatever the batch, so eight prompts cost about one.

At a deployment precision (bf16, f16, the device default) the plain IR runs on the same inputs and
its logits are compared with the source and with the f32 run (saved to disk by the f32 run, read
back one input at a time). A NaN/Inf there is located: the block outputs are exposed at that
precision and the first non-finite block is named.

Every body here runs in a child process; results are plain dicts of numbers.
"""
from __future__ import annotations

import time

from modelgate.openvino import blocks as blocks_mod
from modelgate.openvino import fidelity, precision
from modelgate.openvino.block_errors import ErrorTable
from modelgate.openvino.reference import LazyBatches, entries, row_groups
from modelgate.openvino.refstore import ReferenceStore, block_key

DECODER_INPUTS = frozenset({"input_ids", "attention_mask", "position_ids", "beam_idx"})


def _np():
    import numpy as np
    return np


def _left_padded(seqs: list[list[int]]):
    """(ids [B, W], attention mask [B, W], pad per row) of token sequences left-padded to the longest."""
    np = _np()
    width = max(len(q) for q in seqs)
    pad = [width - len(q) for q in seqs]
    ids, mask = np.zeros((len(seqs), width), np.int64), np.zeros((len(seqs), width), np.int64)
    for r, q in enumerate(seqs):
        ids[r, pad[r]:], mask[r, pad[r]:] = q, 1
    return ids, mask, pad


class _Decoder:
    """A compiled stateful decoder: prefill + one token per call, optional exposed outputs and block inputs."""

    def __init__(self, compiled, block_ports: dict | None = None, gathered: bool = False,
                 block_inputs: dict | None = None):
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.names = {n for p in compiled.inputs for n in p.get_names()}
        self.logits_port = next((o for o in compiled.outputs if "logits" in o.get_names()), compiled.outputs[0])
        self.block_ports = {i: compiled.outputs[j] for i, j in (block_ports or {}).items()}
        self.gathered = gathered
        self.block_inputs = block_inputs or {}

    def _call(self, ids, past: int, within=None, inputs=None):
        np = _np()
        total = past + len(ids)
        feed = {"input_ids": np.asarray([ids], dtype=np.int64)}
        if "attention_mask" in self.names:
            feed["attention_mask"] = np.ones((1, total), dtype=np.int64)
        if "position_ids" in self.names:
            feed["position_ids"] = np.arange(past, total, dtype=np.int64)[None, :]
        if "beam_idx" in self.names:
            feed["beam_idx"] = np.zeros((1,), dtype=np.int32)
        if self.gathered:
            feed[blocks_mod.POSITIONS_INPUT] = np.asarray(within if within is not None else range(len(ids)), np.int64)
        for name, arr in (inputs or {}).items():
            feed[name] = arr
        self.request.infer(feed)

    def run(self, ids: list[int], prefill: int, keep=None, reference: dict | None = None, chunked: bool = False):
        """Teacher-forced run; returns ({block: [rows, H]}, logits [rows, V]) at ``keep`` (default all).

        The prompt goes in one call, the rest one token per call through the KV cache (``chunked``: in
        one call after the cached prompt); a decoupled model (block inputs fed from ``reference``) takes
        the whole sequence in one call: its blocks' own errors do not depend on the cache path, which
        the accumulated run covers.
        """
        np = _np()
        keep_set = None if keep is None else {int(k) for k in keep}
        self.request.reset_state()
        got = {i: [] for i in self.block_ports}
        logits = []
        if self.block_inputs:
            steps = [(0, len(ids))]
        else:
            steps = [(0, prefill)] + ([(prefill, len(ids))] if chunked and prefill < len(ids) else
                                      [(t, t + 1) for t in range(prefill, len(ids))])
        for lo, hi in steps:
            within = None
            if keep_set is not None:
                within = [p - lo for p in range(lo, hi) if p in keep_set]
            inputs = None
            if self.block_inputs and reference is not None:
                inputs = {name: np.ascontiguousarray(reference[block_key(i - 1)][None, lo:hi], dtype=np.float32)
                          for i, name in self.block_inputs.items()}
            self._call(list(ids[lo:hi]), lo, within if self.gathered else None, inputs)
            sel = (slice(None) if within is None else np.asarray(within, np.int64))
            for i, port in self.block_ports.items():
                data = self.request.get_tensor(port).data[0]
                got[i].append(np.array(data if self.gathered else data[sel], np.float32, copy=True))
            out = self.request.get_tensor(self.logits_port).data[0]
            logits.append(np.array(out[sel], np.float32, copy=True))
        return {i: np.concatenate(v, 0) for i, v in got.items()}, np.concatenate(logits, 0)

    def greedy(self, prompt: list[int], new_tokens: int) -> dict:
        np = _np()
        self.request.reset_state()
        self._call(list(prompt), 0, range(len(prompt)))
        rows = [np.array(self.request.get_tensor(self.logits_port).data[0], np.float32, copy=True)]
        generated = []
        for k in range(new_tokens):
            last = rows[-1][-1]
            generated.append(int(np.argmax(last)) if np.isfinite(last).any() else 0)
            if k + 1 < new_tokens:
                self._call([generated[-1]], len(prompt) + k, [0])
                rows.append(np.array(self.request.get_tensor(self.logits_port).data[0], np.float32, copy=True))
        return {"prompt_ids": list(prompt), "generated": generated, "logits": np.concatenate(rows, 0)}

    def can_batch(self) -> bool:
        """A padded batch needs the mask, the positions and the cache's row order as inputs."""
        return {"attention_mask", "position_ids", "beam_idx"} <= self.names

    def run_batch(self, items: list[dict], references: list[dict] | None = None) -> list[tuple[dict, object]]:
        """``run`` for several sequences at once: each row is its sequence's run, to float rounding.

        Decoupled (block inputs fed from ``references``): the whole sequences right-padded in one call (a
        causal row never attends to the padding after it). Through the cache: the prompts left-padded
        in one call (attention mask, position ids per row), then the continuation for all rows at once:
        one chunk when the items are ``chunked``, else one token per call. The items must share their
        continuation length and ``chunked``; ``keep`` is not supported (every position is returned).
        """
        np = _np()
        b = len(items)
        beam = np.arange(b, dtype=np.int32)
        if self.block_inputs:
            lens = [len(it["ids"]) for it in items]
            width = max(lens)
            ids = np.zeros((b, width), np.int64)
            for r, it in enumerate(items):
                ids[r, : lens[r]] = it["ids"]
            feed = {"input_ids": ids, "attention_mask": np.ones((b, width), np.int64),
                    "position_ids": np.broadcast_to(np.arange(width), (b, width)).copy(), "beam_idx": beam}
            for i, name in self.block_inputs.items():
                rows = np.zeros((b, width, references[0][block_key(i - 1)].shape[-1]), np.float32)
                for r, ref in enumerate(references):
                    rows[r, : lens[r]] = ref[block_key(i - 1)]
                feed[name] = rows
            self.request.reset_state()
            self.request.infer(feed)
            return [({i: np.array(self.request.get_tensor(p).data[r, : lens[r]], np.float32, copy=True)
                      for i, p in self.block_ports.items()},
                     np.array(self.request.get_tensor(self.logits_port).data[r, : lens[r]], np.float32, copy=True))
                    for r in range(b)]
        prefill = [it["prefill"] for it in items]
        cont = len(items[0]["ids"]) - prefill[0]
        ids, mask, pad = _left_padded([it["ids"][: n] for it, n in zip(items, prefill)])
        got: list[dict] = [{i: [] for i in self.block_ports} for _ in range(b)]
        logits: list[list] = [[] for _ in range(b)]

        def call(step_ids, positions, start):
            feed = {"input_ids": step_ids, "attention_mask": mask, "position_ids": positions, "beam_idx": beam}
            if self.gathered:
                feed[blocks_mod.POSITIONS_INPUT] = np.arange(step_ids.shape[1], dtype=np.int64)
            self.request.infer(feed)
            for r in range(b):
                lo = start[r]
                for i, port in self.block_ports.items():
                    got[r][i].append(np.array(self.request.get_tensor(port).data[r, lo:], np.float32, copy=True))
                logits[r].append(np.array(self.request.get_tensor(self.logits_port).data[r, lo:], np.float32,
                                          copy=True))

        self.request.reset_state()
        call(ids, np.maximum(np.cumsum(mask, 1) - 1, 0), pad)
        chunks = [(0, cont)] if items[0].get("chunked") else [(t, t + 1) for t in range(cont)]
        for lo, hi in chunks:
            if hi <= lo:
                continue
            mask = np.concatenate([mask, np.ones((b, hi - lo), np.int64)], 1)
            step = np.asarray([it["ids"][prefill[r] + lo: prefill[r] + hi] for r, it in enumerate(items)], np.int64)
            positions = np.asarray([[prefill[r] + t for t in range(lo, hi)] for r in range(b)], np.int64)
            call(step, positions, [0] * b)
        return [({i: np.concatenate(v, 0) for i, v in got[r].items()}, np.concatenate(logits[r], 0)) for r in range(b)]

    def greedy_batch(self, prompts: list[list[int]], new_tokens: int) -> list[dict]:
        """``greedy`` for every prompt at once: one left-padded batch, one call per new token for all of
        them (decode steps are bound by reading the weights, so a batch costs about one prompt). The same
        tokens and logits as prompt by prompt, to float rounding; one at a time when the IR cannot take
        a padded batch (no attention_mask / position_ids / beam_idx inputs)."""
        np = _np()
        if len(prompts) < 2 or not self.can_batch():
            return [self.greedy(p, new_tokens) for p in prompts]
        b = len(prompts)
        ids, mask, pad = _left_padded(prompts)
        self.request.reset_state()
        feed = {"input_ids": ids, "attention_mask": mask, "position_ids": np.maximum(np.cumsum(mask, 1) - 1, 0),
                "beam_idx": np.arange(b, dtype=np.int32)}
        if self.gathered:
            feed[blocks_mod.POSITIONS_INPUT] = np.asarray([ids.shape[1] - 1], np.int64)
        self.request.infer(feed)
        out = self.request.get_tensor(self.logits_port).data
        rows = [[np.array(out[r, pad[r]:], np.float32, copy=True)] for r in range(b)]
        generated: list[list[int]] = [[] for _ in range(b)]
        for k in range(new_tokens):
            for r in range(b):
                last = rows[r][-1][-1]
                generated[r].append(int(np.argmax(last)) if np.isfinite(last).any() else 0)
            if k + 1 < new_tokens:
                mask = np.concatenate([mask, np.ones((b, 1), np.int64)], 1)
                feed = {"input_ids": np.asarray([[g[-1]] for g in generated], np.int64), "attention_mask": mask,
                        "position_ids": np.asarray([[len(p) + k] for p in prompts], np.int64),
                        "beam_idx": np.arange(b, dtype=np.int32)}
                if self.gathered:
                    feed[blocks_mod.POSITIONS_INPUT] = np.asarray([0], np.int64)
                self.request.infer(feed)
                out = self.request.get_tensor(self.logits_port).data
                for r in range(b):
                    rows[r].append(np.array(out[r, -1:], np.float32, copy=True))
        return [{"prompt_ids": list(p), "generated": g, "logits": np.concatenate(rw, 0)}
                for p, g, rw in zip(prompts, generated, rows)]


class _Encoder:
    """A compiled single-pass model: one infer per batch, optional exposed outputs and block inputs."""

    def __init__(self, compiled, block_ports: dict | None = None, block_inputs: dict | None = None):
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.names = {n for p in compiled.inputs for n in p.get_names()}
        self.logits_port = next((o for o in compiled.outputs if "logits" in o.get_names()), compiled.outputs[0])
        self.block_ports = {i: compiled.outputs[j] for i, j in (block_ports or {}).items()}
        self.block_inputs = block_inputs or {}

    def run(self, batch: dict, reference: dict | None = None):
        np = _np()
        feed = {}
        for name in self.names:
            if name in batch:
                feed[name] = batch[name]
            elif name == "token_type_ids":
                feed[name] = np.zeros_like(batch["input_ids"])
            elif name == "position_ids":
                feed[name] = np.broadcast_to(np.arange(batch["input_ids"].shape[1]), batch["input_ids"].shape).copy()
        for i, name in self.block_inputs.items():
            if reference is not None:
                feed[name] = np.ascontiguousarray(reference[block_key(i - 1)], dtype=np.float32)
        self.request.infer(feed)
        got = {i: np.array(self.request.get_tensor(p).data, np.float32, copy=True) for i, p in self.block_ports.items()}
        return got, np.array(self.request.get_tensor(self.logits_port).data, np.float32, copy=True)


def _runner(plan: dict, compiled, **kwargs):
    if plan["kind"] == "decoder":
        return _Decoder(compiled, **kwargs)
    kwargs.pop("gathered", None)
    return _Encoder(compiled, **kwargs)


def _run_entry(plan: dict, runner, item: dict, reference: dict | None = None):
    if plan["kind"] == "decoder":
        return runner.run(item["ids"], item["prefill"], item.get("keep"), reference, bool(item.get("chunked")))
    return runner.run(item, reference)


def _batched_entries(plan: dict, runner, store: ReferenceStore | None = None) -> LazyBatches:
    """The decoder plan's teacher-forced sequences as padded batches (``_Decoder.run_batch``, at most
    ``BATCH_ROWS`` rows of one kind of continuation each), run when first taken; nothing when the runner
    cannot batch or for encoders (their inputs already are batches). With ``store`` the runner is
    decoupled and each row is fed its own reference hidden states; entries missing from the store are
    left out."""
    items = dict(entries(plan))
    kinds: dict = {}
    if plan["kind"] == "decoder" and runner.can_batch():
        for name, item in items.items():
            if name == "long" or item.get("keep") is not None or (store is not None and not store.has(name)):
                continue
            kinds.setdefault((bool(item.get("chunked")), len(item["ids"]) - item["prefill"]), []).append(name)

    def run(group: list[str]) -> dict:
        refs = [store.read(name) for name in group] if store is not None else None
        return dict(zip(group, runner.run_batch([items[g] for g in group], refs)))

    return LazyBatches([g for names in kinds.values() for g in row_groups(names)], run)


def _rows(plan: dict, ref: dict):
    """(row selector, positions) of the compared tokens of an entry (encoders: unpadded tokens)."""
    np = _np()
    if plan["kind"] == "decoder":
        return slice(None), ref["positions"]
    mask = ref["mask"]
    return mask, np.broadcast_to(np.arange(mask.shape[1]), mask.shape)[mask]


def match_stack(stacks: dict, source_path: str | None):
    """The IR stack that is the source's ``source_path`` (same path, or one a suffix of the other:
    an exported sub-model drops its parent's prefix), or None."""
    if not source_path:
        return None
    if source_path in stacks:
        return stacks[source_path]
    for path, stack in stacks.items():
        if source_path.endswith("." + path) or path.endswith("." + source_path):
            return stack
    return None


def _compile(core, model, device: str, prec: str):
    t0 = time.monotonic()
    compiled = core.compile_model(model, device, precision.runtime_config(prec, device, core))
    return compiled, time.monotonic() - t0


# --------------------------------------------------------------------------- faithful (f32) run

def faithful_run(core, model, stack, store: ReferenceStore, plan: dict, device: str, save_logits: ReferenceStore,
                 decoupled: bool = True):
    """Accumulated and (unless ``decoupled`` is False) decoupled comparisons at f32, the greedy runs and the
    logits; see the module doc."""
    np = _np()
    out: dict = {"seconds": {}}
    acc, dec = ErrorTable(), ErrorTable()
    logit_cmp = {"short": fidelity.LogitComparison(), "long": fidelity.LogitComparison()}
    outputs, equal_rows = [], {"rows": 0, "equal_rows": 0}
    exposed = stack.all_outputs() if stack is not None else []
    gathered = plan["kind"] == "decoder"
    if exposed:
        m, ports = blocks_mod.expose(model, exposed, gather_positions=gathered)
    else:
        m, ports = model, {}
    compiled, out["seconds"]["compile_f32"] = _compile(core, m, device, "f32")
    out["ran_as"] = precision.ran_as(compiled)
    runner = _runner(plan, compiled, block_ports=ports, gathered=gathered and bool(exposed))
    t0 = time.monotonic()
    batched = _batched_entries(plan, runner)
    for name, item in entries(plan):
        ref = store.read(name) if store.has(name) else None
        got, logits = batched.pop(name) if name in batched else _run_entry(plan, runner, item)
        save_logits.write(name, {"logits": logits})
        outputs.append(_output_summary(name, logits, ref))
        eq = fidelity.equal_logit_rows(logits)
        equal_rows["rows"] += eq["rows"]
        equal_rows["equal_rows"] += eq["equal_rows"]
        if ref is None:
            continue
        sel, positions = _rows(plan, ref)
        for i, arr in got.items():
            if block_key(i) in ref:
                acc.add(i, arr[sel], ref[block_key(i)][sel], positions)
        if logits.shape == ref["logits"].shape:
            logit_cmp["long" if name == "long" else "short"].add(logits, ref["logits"])
    if plan["kind"] == "decoder" and plan.get("greedy"):
        out["greedy"] = runner.greedy_batch(plan["greedy"], plan["new_tokens"])
    out["seconds"]["accumulated"] = time.monotonic() - t0
    del runner, compiled, m
    if decoupled and stack is not None and store.meta().get("stack"):
        t0 = time.monotonic()
        dm, inputs, dports = blocks_mod.decouple(model, stack)
        head_port = _head_output(dm, model)
        compiled, out["seconds"]["compile_decoupled"] = _compile(core, dm, device, "f32")
        runner = _runner(plan, compiled, block_ports=dports, block_inputs=inputs)
        runner.logits_port = compiled.outputs[head_port]
        n = len(stack.blocks)
        last_name = inputs.get(n)
        batched = _batched_entries(plan, runner, store)
        for name, item in entries(plan):
            if name == "long" or not store.has(name):
                continue
            ref = store.read(name)
            got, logits = batched.pop(name) if name in batched else _run_entry(plan, runner, item, ref)
            sel, positions = _rows(plan, ref)
            for i, arr in got.items():
                if i in inputs and block_key(i) in ref:
                    dec.add(i, arr[sel], ref[block_key(i)][sel], positions, prev=ref[block_key(i - 1)][sel])
            if last_name is not None and logits.shape == ref["logits"].shape:
                flat = logits.reshape(-1, logits.shape[-1])
                dec.add(n, flat, ref["logits"].reshape(-1, logits.shape[-1]), np.zeros(flat.shape[0], np.int64))
        out["decoupled_inputs"] = sorted(inputs)
        out["seconds"]["decoupled"] = time.monotonic() - t0
        del runner, compiled, dm
    out.update(accumulated=acc.summary(), decoupled=dec.summary(), logits=logit_cmp["short"].summary(),
               logits_long=logit_cmp["long"].summary(), outputs=outputs, equal_logit_rows=equal_rows)
    return out


def _head_output(decoupled_model, original) -> int:
    """Index of the logits in the decoupled copy's outputs (the original model's first output)."""
    names = set(original.outputs[0].get_names())
    for j, o in enumerate(decoupled_model.outputs):
        if names & set(o.get_names()):
            return j
    return 0


def _output_summary(name: str, logits, ref: dict | None) -> dict:
    o = fidelity.nonfinite_counts(logits)
    o["name"] = f"logits[{name}]"
    o["expected_shape"] = list(ref["logits"].shape) if ref is not None else None
    o["expected_dtype_kind"] = "float"
    return o


# --------------------------------------------------------------------------- deployment precision run

def deployment_run(core, model, stack, store: ReferenceStore, plan: dict, device: str, prec: str,
                   f32_logits: ReferenceStore) -> dict:
    """The plain IR at ``prec`` (``default`` = the device's choice): logits vs the source and vs the
    f32 run, greedy tokens, NaN/Inf counts, and where a NaN/Inf first appears."""
    out: dict = {"requested": prec, "seconds": {}}
    compiled, out["seconds"]["compile"] = _compile(core, model, device, prec)
    out["ran_as"] = precision.ran_as(compiled)
    runner = _runner(plan, compiled)
    # agreement is judged on the short inputs; the long prompt is searched for NaN/Inf
    vs_source, vs_f32 = fidelity.LogitComparison(), fidelity.LogitComparison()
    nonfinite_entries = []
    t0 = time.monotonic()
    batched = _batched_entries(plan, runner)
    for name, item in entries(plan):
        _, logits = batched.pop(name) if name in batched else _run_entry(plan, runner, item)
        counts = fidelity.nonfinite_counts(logits)
        if counts["nan"] or counts["inf"]:
            nonfinite_entries.append(name)
        if name == "long":
            continue
        if store.has(name):
            ref = store.read(name)["logits"]
            if ref.shape == logits.shape:
                vs_source.add(logits, ref)
        if f32_logits.has(name):
            base = f32_logits.read(name)["logits"]
            if base.shape == logits.shape:
                vs_f32.add(logits, base)
    if plan["kind"] == "decoder" and plan.get("greedy"):
        out["greedy"] = [{"generated": r["generated"]} for r in runner.greedy_batch(plan["greedy"], plan["new_tokens"])]
    out["seconds"]["run"] = time.monotonic() - t0
    del runner, compiled
    out.update(vs_source=vs_source.summary(), vs_f32=vs_f32.summary(), nonfinite_entries=nonfinite_entries)
    if nonfinite_entries and stack is not None:
        out["first_nonfinite_layer"] = _first_nonfinite_layer(core, model, stack, plan, device, prec,
                                                              nonfinite_entries[0])
    return out


def _first_nonfinite_layer(core, model, stack, plan: dict, device: str, prec: str, entry: str):
    """The first exposed tensor (embedding, then blocks in order) with a NaN/Inf at ``prec``, or "head"."""
    np = _np()
    exposed = stack.all_outputs()
    m, ports = blocks_mod.expose(model, exposed, gather_positions=False)
    compiled, _ = _compile(core, m, device, prec)
    runner = _runner(plan, compiled, block_ports=ports)
    item = dict(entries(plan))[entry]
    got, _ = _run_entry(plan, runner, item)
    for b in exposed:
        arr = got.get(b.index)
        if arr is not None and not np.isfinite(arr).all():
            return "embedding" if b.index < 0 else b.index
    return "head"


def record_ir(core, model, stack, plan: dict, store: ReferenceStore, device: str = "CPU") -> dict:
    """Write the IR's own f32 outputs (embedding, blocks, logits) on ``plan`` as a reference store.

    Another IR can then be compared with this one exactly as with the source (``faithful_run``):
    how far a changed IR moved from a good one, block by block.
    """
    np = _np()
    exposed = stack.all_outputs()
    gathered = plan["kind"] == "decoder"
    m, ports = blocks_mod.expose(model, exposed, gather_positions=gathered)
    compiled, _ = _compile(core, m, device, "f32")
    runner = _runner(plan, compiled, block_ports=ports, gathered=gathered)
    store.create()
    for name, item in entries(plan):
        got, logits = _run_entry(plan, runner, item)
        arrays = {block_key(i): arr for i, arr in got.items()}
        arrays["logits"] = logits
        if plan["kind"] == "decoder":
            arrays["positions"] = np.asarray(item.get("keep") or range(len(item["ids"])), np.int64)
        else:
            arrays["mask"] = item["attention_mask"].astype(bool) if "attention_mask" in item else np.ones(
                item["input_ids"].shape, bool)
        store.write(name, arrays)
    meta = {"stack": stack.path, "blocks": len(stack.blocks), "entries": [n for n, _ in entries(plan)]}
    store.write_meta(meta)
    return meta
