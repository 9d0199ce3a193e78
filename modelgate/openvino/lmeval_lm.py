"""An lm-evaluation-harness model (``TemplateLM``) over an OpenVINO causal-LM IR, run by the OpenVINO runtime.

Why an adapter and not the harness's own ``openvino`` model: ``lm_eval.models.optimum_lm.OptimumLM``
subclasses ``HFLM``, whose module imports ``accelerate`` at import time, and lm-eval declares
``accelerate`` only in its ``[hf]`` extra; with lm-eval's base install it does not import. This
adapter needs only lm-eval's base install, OpenVINO and the IR folder (its openvino-tokenizers IRs,
else the Hugging Face tokenizer files). It keeps every convention of ``HFLM`` that decides a score:

- the prefix token of an empty context and of rolling windows: BOS if the tokenizer has one, else EOS;
- (context, continuation) encoding: ``TemplateLM._encode_pair`` (trailing context spaces move to the
  continuation; continuation tokens are ``enc(context + continuation)[len(enc(context)):]``);
- the tokenizer's own special tokens unless the string already starts with BOS;
- left truncation of context + continuation[:-1] to ``max_length`` tokens;
- rolling log-likelihood: lm-eval's ``get_rolling_token_windows`` + ``make_disjoint_window``;
- generation: greedy, ``max_gen_toks`` new tokens, cut at the first ``until`` string and at EOS.

A research prototype of this adapter (over optimum-intel's ``OVModelForCausalLM``) agreed with the
harness's own ``openvino`` model within 5.7e-6 nats per sample on fp32, int8 and int4 IRs, with
identical generations. This one runs the same IR on the runtime directly (no optimum or torch
import: seconds, not tens of seconds, per evaluation child).

Memory at real sizes: an OpenVINO causal-LM IR returns logits for every position, ``[B, T, V]``
float32. ``max_length`` is capped (``DEFAULT_MAX_LENGTH``; recorded in the eval config because
it changes rolling scores) and batches are sized so that ``B * T * V * 4`` bytes stay under
``LOGITS_BUDGET_BYTES``; only the continuation's rows are converted to float64.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from lm_eval import utils
from lm_eval.api.model import TemplateLM

DEFAULT_MAX_LENGTH = 2048
LOGITS_BUDGET_BYTES = 1 << 30
DEFAULT_MAX_GEN_TOKS = 256


def _log_softmax(rows):
    import numpy as np

    x = rows.astype(np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def _text(value: Any) -> str | None:
    """An OpenVINO property value as short text (element types by name: ``f32``, ``bf16``)."""
    if value is None:
        return None
    return value.get_type_name() if hasattr(value, "get_type_name") else str(value)


class _Tokenizer:
    """The IR's tokenizer: openvino-tokenizers IRs when the folder has them (what serving uses), else the
    Hugging Face tokenizer files (never remote code)."""

    def __init__(self, ir_dir: Path):
        if (ir_dir / "openvino_tokenizer.xml").is_file() and (ir_dir / "openvino_detokenizer.xml").is_file():
            import openvino_genai as ov_genai

            self.kind = "openvino-tokenizers"
            self._ov = ov_genai.Tokenizer(str(ir_dir))
            self.bos_id = self._id(self._ov.get_bos_token_id())
            self.eos_id = self._id(self._ov.get_eos_token_id())
            self.pad_id = self._id(self._ov.get_pad_token_id())
            self.bos_text = self._ov.get_bos_token() or None
        else:
            from transformers import AutoTokenizer

            self.kind = "transformers"
            self._hf = AutoTokenizer.from_pretrained(str(ir_dir), trust_remote_code=False)
            self.bos_id, self.eos_id = self._hf.bos_token_id, self._hf.eos_token_id
            self.pad_id = self._hf.pad_token_id
            self.bos_text = self._hf.bos_token
        if self.eos_id is None:
            raise ValueError(f"the tokenizer of {ir_dir} has no EOS token: generation and empty contexts need one")

    @staticmethod
    def _id(value: int) -> int | None:
        return None if value is None or value < 0 else int(value)

    def encode(self, text: str, add_special_tokens: bool) -> list[int]:
        if self.kind == "transformers":
            return list(self._hf.encode(text, add_special_tokens=add_special_tokens))
        if not text:
            return []
        ids = self._ov.encode(text, add_special_tokens=add_special_tokens).input_ids.data
        return [int(t) for t in ids[0]]

    def encode_many(self, texts: list[str], add_special_tokens: bool) -> list[list[int]]:
        """Batch encoding (one runtime call per chunk: a per-string call costs milliseconds)."""
        if self.kind == "transformers":
            return [self.encode(t, add_special_tokens) for t in texts]
        out: list[list[int]] = []
        for start in range(0, len(texts), 256):
            chunk = texts[start:start + 256]
            enc = self._ov.encode(chunk, add_special_tokens=add_special_tokens)
            ids, mask = enc.input_ids.data, enc.attention_mask.data
            out += [[int(t) for t, m in zip(row, mrow) if m] for row, mrow in zip(ids, mask)]
        return [o if t else [] for o, t in zip(out, texts)]

    def decode(self, ids: list[int]) -> str:
        if self.kind == "transformers":
            return self._hf.decode(ids, skip_special_tokens=True)
        return self._ov.decode([int(t) for t in ids], skip_special_tokens=True)


class OVCausalLM(TemplateLM):
    """lm-eval ``TemplateLM`` over ``<ir_dir>/openvino_model.xml`` compiled with ``properties``."""

    def __init__(self, ir_dir: str, *, device: str = "CPU", properties: dict | None = None,
                 max_length: int = DEFAULT_MAX_LENGTH, batch_size: int = 8,
                 logits_budget_bytes: int = LOGITS_BUDGET_BYTES) -> None:
        super().__init__()
        import openvino as ov

        ir = Path(ir_dir)
        self.tok = _Tokenizer(ir)
        self.core = ov.Core()
        self.compiled = self.core.compile_model(str(ir / "openvino_model.xml"), device, dict(properties or {}))
        self.input_names = {next(iter(i.get_names())) for i in self.compiled.inputs}
        self.vocab = int(self.compiled.output("logits").get_partial_shape()[-1].get_length())
        self._encoded: dict[tuple[str, bool], list[int]] = {}
        self._max_length = int(max_length)
        self.batch_size = max(1, int(batch_size))
        self.logits_budget = int(logits_budget_bytes)
        self.runtime = {p: _text(self._property(p)) for p in
                        ("INFERENCE_PRECISION_HINT", "KV_CACHE_PRECISION", "DYNAMIC_QUANTIZATION_GROUP_SIZE",
                         "EXECUTION_MODE_HINT")}

    def _property(self, name: str) -> Any:
        try:
            return self.compiled.get_property(name)
        except RuntimeError:  # a device without the property
            return None

    # ------------------------------------------------------------------ tokenizer facts (TemplateLM API)
    @property
    def eot_token_id(self) -> int:
        return self.tok.eos_id

    @property
    def prefix_token_id(self) -> int:
        return self.tok.bos_id if self.tok.bos_id is not None else self.tok.eos_id

    @property
    def max_length(self) -> int:
        return self._max_length

    def _special(self, string: str, add_special_tokens: bool | None) -> bool:
        if add_special_tokens is None:
            # the tokenizer's own special tokens, unless the string already carries the BOS text (as HFLM)
            return not (self.tok.bos_text and string.startswith(self.tok.bos_text))
        return bool(add_special_tokens)

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        special = self._special(string, add_special_tokens)
        cached = self._encoded.get((string, special))
        return list(cached) if cached is not None else self.tok.encode(string, special)

    def _prefetch(self, wanted: set[tuple[str, bool]]) -> None:
        """Encode every string ``loglikelihood`` will ask for in a few batch calls."""
        for special in (False, True):
            texts = sorted(t for t, s in wanted if s == special)
            self._encoded.update({(t, special): ids for t, ids in zip(texts, self.tok.encode_many(texts, special))})

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        wanted: set[tuple[str, bool]] = set()
        for context, continuation in [r.args for r in requests]:
            if context == "":
                wanted.add((continuation, False))
                continue
            n = len(context) - len(context.rstrip())  # TemplateLM._encode_pair moves trailing spaces
            ctx, cont = (context[:-n], context[-n:] + continuation) if n else (context, continuation)
            wanted |= {(ctx + cont, self._special(ctx + cont, None)), (ctx, self._special(ctx, None))}
        self._prefetch(wanted)
        try:
            return super().loglikelihood(requests, disable_tqdm=True)
        finally:
            self._encoded.clear()

    def tok_decode(self, tokens, **kwargs) -> str:
        return self.tok.decode(list(tokens))

    # ------------------------------------------------------------------ runtime
    def _feed(self, batch: list[list[int]]) -> dict:
        import numpy as np

        width = max(map(len, batch))
        pad = self.tok.pad_id if self.tok.pad_id is not None else self.eot_token_id
        ids = np.full((len(batch), width), pad, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for i, seq in enumerate(batch):
            ids[i, :len(seq)] = seq
            mask[i, :len(seq)] = 1
        feed = {"input_ids": ids}
        if "attention_mask" in self.input_names:
            feed["attention_mask"] = mask
        if "position_ids" in self.input_names:  # right padding: real tokens keep positions 0..len-1
            feed["position_ids"] = np.clip(mask.cumsum(-1) - 1, 0, None).astype(np.int64)
        if "beam_idx" in self.input_names:
            feed["beam_idx"] = np.arange(len(batch), dtype=np.int32)
        return feed

    def _logits(self, batch: list[list[int]]):
        """Right-padded batch -> logits ``[B, T, V]`` (float32), from a fresh state."""
        req = self.compiled.create_infer_request()
        req.reset_state()
        req.infer(self._feed(batch))
        return req.get_tensor("logits").data

    def _batches(self, order: list[int], lengths: list[int]) -> list[list[int]]:
        """Index batches (longest first) whose logits fit the memory budget."""
        out, cur = [], []
        for i in order:
            width = max([lengths[j] for j in cur] + [lengths[i]])
            if cur and (len(cur) >= self.batch_size or (len(cur) + 1) * width * self.vocab * 4 > self.logits_budget):
                out.append(cur)
                cur = []
            cur.append(i)
        if cur:
            out.append(cur)
        return out

    # ------------------------------------------------------------------ scoring (TemplateLM API)
    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs) -> list[tuple[float, bool]]:
        import numpy as np

        inputs, spans = [], []
        for _, ctx, cont in requests:
            if not cont:
                raise ValueError("an empty continuation cannot be scored")
            whole = (list(ctx) + list(cont))[-(self.max_length + 1):]
            inp = whole[:-1]
            inputs.append(inp)
            spans.append((len(inp) - len(cont), len(cont), cont))
        order = sorted(range(len(requests)), key=lambda i: -len(inputs[i]))
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        for idx in self._batches(order, [len(x) for x in inputs]):
            logits = self._logits([inputs[i] for i in idx])
            for row, i in enumerate(idx):
                first, n, cont = spans[i]
                logp = _log_softmax(logits[row, first:first + n])
                target = np.asarray(cont)
                ll = float(logp[np.arange(n), target].sum())
                results[i] = (ll, bool((logp.argmax(-1) == target).all()))
                if requests[i][0] is not None:
                    self.cache_hook.add_partial("loglikelihood", requests[i][0], results[i])
        return results  # type: ignore[return-value]

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        out = []
        for (string,) in [r.args for r in requests]:
            windows = [(None,) + w for w in map(utils.make_disjoint_window, utils.get_rolling_token_windows(
                token_list=self.tok_encode(string, add_special_tokens=False), prefix_token=self.prefix_token_id,
                max_seq_len=self.max_length, context_len=1))]
            out.append(float(sum(ll for ll, _ in self._loglikelihood_tokens(windows))))
        return out

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        import numpy as np

        out = []
        for context, gen_kwargs in [r.args for r in requests]:
            kw = dict(gen_kwargs or {})
            until = kw.pop("until", None) or []
            until = [until] if isinstance(until, str) else list(until)
            max_new = int(kw.pop("max_gen_toks", DEFAULT_MAX_GEN_TOKS))
            if kw.pop("do_sample", False) or kw.get("temperature", 0.0) not in (0, 0.0):
                raise ValueError("only greedy generation is supported (do_sample: false, temperature: 0)")
            ids = self.tok_encode(context)[-max(1, self.max_length - max_new):]
            req = self.compiled.create_infer_request()
            req.reset_state()
            feed = self._feed([ids])
            generated: list[int] = []
            text = ""
            for step in range(max_new):
                req.infer(feed)
                nxt = int(np.asarray(req.get_tensor("logits").data)[0, -1].argmax())
                if nxt == self.eot_token_id:
                    break
                generated.append(nxt)
                text = self.tok_decode(generated)
                if any(s and s in text for s in until):
                    break
                pos = len(ids) + step
                feed = {"input_ids": np.asarray([[nxt]], dtype=np.int64)}
                if "attention_mask" in self.input_names:
                    feed["attention_mask"] = np.ones((1, pos + 1), dtype=np.int64)
                if "position_ids" in self.input_names:
                    feed["position_ids"] = np.asarray([[pos]], dtype=np.int64)
                if "beam_idx" in self.input_names:
                    feed["beam_idx"] = np.zeros(1, dtype=np.int32)
            for stop in until:
                if stop and stop in text:
                    text = text[:text.index(stop)]
            out.append(text)
            self.cache_hook.add_partial("generate_until", (context, gen_kwargs), text)
        return out
