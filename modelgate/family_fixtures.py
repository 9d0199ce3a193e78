"""Tiny real-architecture models of every task family the verify skill promises, built offline.

Each recipe is a config plus a seed (no hub); a few seconds of training where greedy output must
depend on the input (a random seq2seq or VLM repeats one token whatever it is fed, so an encoder
fault would not change a single generated token). Built once into the recipe-hash build cache
(``modelgate.buildcache``), shared by tests, benchmarks and demos.
"""
from __future__ import annotations

import json
from pathlib import Path

from modelgate.buildcache import cached_build

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "hello world this is a small test of the tokenizer",
    "models are converted to openvino and checked against the source",
    "one two three four five six seven eight nine ten",
    "a release is accepted only when the candidate matches the baseline",
    "What is 2+2? The answer is 4. What is 3+5? The answer is 8.",
    "a photo of a red cat sitting on a blue chair",
    "describe the image in one sentence",
    "translate english to german: the house is wonderful",
    "summarize: the quick brown fox jumps over the lazy dog",
]
WHISPER_SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|translate|>",
                    "<|notimestamps|>"]
CHAT = ("{% for message in messages %}<|{{ message['role'] }}|>"
        "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for c in message['content'] %}"
        "{% if c['type'] == 'image' %}<image>{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
        "{% endif %}</s>{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")
# name -> recipe (the recipe hash keys the cache; bump "v" when a builder changes)
RECIPES: dict[str, dict] = {
    "t5": {"family": "t5", "seed": 4, "train_steps": 150, "v": 2},
    "bart": {"family": "bart", "seed": 5, "train_steps": 150, "v": 1},
    "whisper": {"family": "whisper", "seed": 11, "train_steps": 150, "v": 1},
    "wav2vec2": {"family": "wav2vec2", "seed": 12, "v": 1},
    "vit": {"family": "vit", "seed": 13, "v": 1},
    # the same ViT function in exact arithmetic, built to break bf16: every position embedding + 1,024 on
    # every channel (each LayerNorm removes it; bf16's step at 1,024 is 8, so the O(1) signal is lost)
    "vit-bf16-offset": {"family": "vit", "seed": 13, "v": 1, "position_offset": 1024.0},
    "vision-encoder-decoder": {"family": "ved", "seed": 14, "train_steps": 100, "v": 1},
    "llava": {"family": "llava", "seed": 21, "train_steps": 80, "v": 1},
    "stable-diffusion": {"family": "sd", "seed": 31, "v": 1},
    "bert-qa": {"family": "bert-qa", "seed": 41, "v": 1},
    # single-IR text encoders of the other heads (verified in the forward mode, not as a family)
    "distilbert-mlm": {"family": "encoder", "arch": "DistilBertForMaskedLM", "seed": 42, "v": 1},
    "bert-ner": {"family": "encoder", "arch": "BertForTokenClassification", "labels": 5, "seed": 43, "v": 1},
    "bert-features": {"family": "encoder", "arch": "BertModel", "seed": 44, "v": 1},
}


def family_model(name: str, seed: int | None = None, train_steps: int | None = None) -> Path:
    """The cached folder of recipe ``name``; ``seed`` (and ``train_steps``) build a twin: the same
    architecture with other weights."""
    r = dict(RECIPES[name])
    if seed is not None:
        r["seed"] = seed
    if train_steps is not None and "train_steps" in r:
        r["train_steps"] = train_steps
    twin = seed is not None or train_steps is not None
    return cached_build(f"family-{name}" + (f"-s{r['seed']}" if twin else ""), r,
                        lambda out: BUILDERS[r["family"]](r, out))


# --------------------------------------------------------------------------- helpers

def _seed(seed: int):
    import random

    import numpy as np
    import torch
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(1)


def _widen(model, std: float = 0.15, skip: tuple = ()):
    """Default init (std 0.02) leaves residual branches near zero: a garbled weight then moves the output
    by 1e-4. Widened, every layer matters."""
    import torch
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2 and not any(s in name for s in skip):
                p.normal_(0.0, std)


def _bpe(vocab_size: int, extra_specials=(), add_prefix_space: bool = False):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>", "<pad>",
                                                                         *extra_specials],
                                  show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 4, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", model_max_length=128)


def _unigram(vocab_size: int):
    """A T5-style Unigram tokenizer (Metaspace; runs of spaces collapsed as T5's normalizer does)."""
    from modelgate.fixtures import _unigram_tokenizer
    return _unigram_tokenizer(vocab_size, CORPUS, collapse_spaces=True)


def _wordpiece(vocab_size: int):
    from modelgate.fixtures import _wordpiece_tokenizer
    return _wordpiece_tokenizer(vocab_size, CORPUS)


def _train_seq2seq_copy(model, tok, steps: int, lr: float = 3e-3):
    """Copy-task training: non-degenerate, input-dependent greedy output."""
    import torch
    x = tok(CORPUS, return_tensors="pt", padding=True)
    labels = x["input_ids"].masked_fill(x["attention_mask"] == 0, -100)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss = model(**x, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def _train_decoder_on_encoder(model, enc_out, tok, prefix: list[int], eos: int, frozen: str, steps: int,
                              lr: float = 3e-3):
    """Teacher-forced: emit CORPUS[i] after ``prefix`` for encoder output i (encoder frozen, run once)."""
    import torch
    texts = CORPUS[: enc_out.last_hidden_state.shape[0]]
    n = len(texts)
    lab = tok(list(texts), return_tensors="pt", padding=True, add_special_tokens=False)
    labels = torch.cat([torch.tensor([prefix[1:]] * n, dtype=torch.long), lab.input_ids, torch.full((n, 1), eos)], 1)
    keep = torch.cat([torch.ones(n, len(prefix) - 1), lab.attention_mask, torch.ones(n, 1)], 1)
    dec_in = torch.cat([torch.tensor([[prefix[0]]] * n), labels[:, :-1]], 1)
    labels = labels.masked_fill(keep == 0, -100)
    enc_out = type(enc_out)(last_hidden_state=enc_out.last_hidden_state.detach())
    params = [p for name, p in model.named_parameters() if not name.startswith(frozen)]
    opt = torch.optim.AdamW(params, lr=lr)
    model.train()
    for _ in range(steps):
        loss = model(encoder_outputs=enc_out, decoder_input_ids=dec_in, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


# --------------------------------------------------------------------------- builders

def _build_t5(r: dict, out: Path):
    from transformers import T5Config, T5ForConditionalGeneration
    _seed(r["seed"])
    tok = _unigram(200)
    cfg = T5Config(vocab_size=len(tok), d_model=64, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2,
                   num_heads=4, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                   decoder_start_token_id=tok.pad_token_id, tie_word_embeddings=False,
                   architectures=["T5ForConditionalGeneration"])
    _save_trained_seq2seq(T5ForConditionalGeneration(cfg), tok, r, out)


def _save_trained_seq2seq(m, tok, r: dict, out: Path) -> None:
    """Train a text2text fixture on the copy task, make its generation greedy, save it with its tokenizer."""
    _train_seq2seq_copy(m, tok, r["train_steps"])
    m.generation_config.do_sample = False
    m.save_pretrained(out)
    tok.save_pretrained(out)


def _build_bart(r: dict, out: Path):
    from tokenizers import processors
    from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerFast
    _seed(r["seed"])
    base = _bpe(300, extra_specials=["<mask>"], add_prefix_space=True)
    t = base.backend_tokenizer
    t.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", base.bos_token_id), ("</s>", base.eos_token_id)])
    tok = PreTrainedTokenizerFast(tokenizer_object=t, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                  pad_token="<pad>", mask_token="<mask>", model_max_length=128)
    cfg = BartConfig(vocab_size=len(tok), d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                     decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, max_position_embeddings=128,
                     pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                     decoder_start_token_id=tok.eos_token_id, forced_bos_token_id=None, forced_eos_token_id=None,
                     architectures=["BartForConditionalGeneration"])
    _save_trained_seq2seq(BartForConditionalGeneration(cfg), tok, r, out)


def _build_whisper(r: dict, out: Path):
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

    from modelgate.openvino.families import seeded_audio
    _seed(r["seed"])
    tok = _bpe(300, extra_specials=WHISPER_SPECIALS)
    tok.add_special_tokens({"eos_token": "<|endoftext|>", "bos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"})
    ids = {t: tok.convert_tokens_to_ids(t) for t in WHISPER_SPECIALS}
    eot = ids["<|endoftext|>"]
    cfg = WhisperConfig(vocab_size=len(tok), num_mel_bins=80, d_model=64, encoder_layers=2, decoder_layers=2,
                        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128,
                        max_source_positions=1500, max_target_positions=64, pad_token_id=eot, bos_token_id=eot,
                        eos_token_id=eot, decoder_start_token_id=ids["<|startoftranscript|>"], suppress_tokens=[],
                        begin_suppress_tokens=[], architectures=["WhisperForConditionalGeneration"])
    m = WhisperForConditionalGeneration(cfg)
    fe = WhisperFeatureExtractor(feature_size=80, sampling_rate=16000)
    m.generation_config = GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"], eos_token_id=eot, pad_token_id=eot, bos_token_id=eot,
        do_sample=False, no_timestamps_token_id=ids["<|notimestamps|>"], is_multilingual=False, max_length=64,
        forced_decoder_ids=None, suppress_tokens=[], begin_suppress_tokens=[])
    # transcribe seeded clip i as corpus line i (decoder trained, encoder frozen and widened: at the
    # default init the fixed positions swamp the audio and every clip gives the same tokens)
    _widen(m.model.encoder, 0.15, skip=("embed_positions",))
    feats = fe([seeded_audio(i) for i in range(1, 7)], sampling_rate=16000, return_tensors="pt").input_features
    _train_decoder_on_encoder(m, m.model.encoder(feats), tok, [ids["<|startoftranscript|>"], ids["<|notimestamps|>"]],
                              eot, "model.encoder", r["train_steps"])
    m.save_pretrained(out)
    WhisperProcessor(feature_extractor=fe, tokenizer=tok).save_pretrained(out)


def _build_wav2vec2(r: dict, out: Path):
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification
    _seed(r["seed"])
    labels = ["yes", "no", "up", "down"]
    cfg = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                         conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                         classifier_proj_size=16, num_labels=len(labels), id2label=dict(enumerate(labels)),
                         label2id={v: k for k, v in enumerate(labels)}, vocab_size=8,
                         architectures=["Wav2Vec2ForSequenceClassification"])
    m = Wav2Vec2ForSequenceClassification(cfg)
    _widen(m)
    m.eval().save_pretrained(out)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=False).save_pretrained(out)


def _build_vit(r: dict, out: Path):
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor
    _seed(r["seed"])
    labels = ["cat", "dog", "car", "tree", "boat"]
    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=64, num_labels=len(labels), id2label=dict(enumerate(labels)),
                    label2id={v: k for k, v in enumerate(labels)}, architectures=["ViTForImageClassification"])
    m = ViTForImageClassification(cfg)
    _widen(m)
    if r.get("position_offset"):
        import torch
        with torch.no_grad():
            m.vit.embeddings.position_embeddings.add_(r["position_offset"])
    m.eval().save_pretrained(out)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(out)


def _build_ved(r: dict, out: Path):
    from transformers import (
        GPT2Config,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
    )

    from modelgate.openvino.families import seeded_image
    _seed(r["seed"])
    tok = _bpe(300)
    enc = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=64)
    dec = GPT2Config(vocab_size=len(tok), n_embd=64, n_layer=2, n_head=4, n_positions=64, add_cross_attention=True,
                     is_decoder=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                     pad_token_id=tok.pad_token_id)
    cfg = VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    cfg.decoder_start_token_id, cfg.pad_token_id = tok.bos_token_id, tok.pad_token_id
    cfg.eos_token_id = tok.eos_token_id
    cfg.architectures = ["VisionEncoderDecoderModel"]
    m = VisionEncoderDecoderModel(cfg)
    gc = m.generation_config
    gc.decoder_start_token_id, gc.pad_token_id, gc.eos_token_id, gc.do_sample = (
        tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, False)
    ip = ViTImageProcessor(size={"height": 32, "width": 32})
    _widen(m.encoder)
    pix = ip([seeded_image(i) for i in range(1, 7)], return_tensors="pt")["pixel_values"]
    _train_decoder_on_encoder(m, m.encoder(pixel_values=pix), tok, [tok.bos_token_id], tok.eos_token_id, "encoder.",
                              r["train_steps"])
    m.save_pretrained(out)
    tok.save_pretrained(out)
    ip.save_pretrained(out)


def _build_llava(r: dict, out: Path):
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    from modelgate.openvino.families import VLM_PROMPT, seeded_image
    _seed(r["seed"])
    tok = _bpe(320, extra_specials=["<image>", "<|user|>", "<|assistant|>"])
    vc = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                          image_size=32, patch_size=8, projection_dim=32)
    tc = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                     tie_word_embeddings=False)
    cfg = LlavaConfig(vision_config=vc, text_config=tc, image_token_index=tok.convert_tokens_to_ids("<image>"),
                      vision_feature_select_strategy="default", vision_feature_layer=-1, image_seq_length=16,
                      architectures=["LlavaForConditionalGeneration"])
    m = LlavaForConditionalGeneration(cfg)
    gc = m.generation_config
    gc.do_sample, gc.eos_token_id, gc.pad_token_id, gc.bos_token_id = (False, tok.eos_token_id, tok.pad_token_id,
                                                                       tok.bos_token_id)
    tok.chat_template = CHAT
    ip = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    proc = LlavaProcessor(image_processor=ip, tokenizer=tok, patch_size=8, vision_feature_select_strategy="default",
                          num_additional_image_tokens=1, chat_template=CHAT)
    # answer the prompt about seeded image i with corpus line i: image-dependent greedy tokens
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": VLM_PROMPT}]}]
    prompt = proc.apply_chat_template(msgs, add_generation_prompt=True)
    n = 6
    enc = proc(images=[seeded_image(i) for i in range(1, n + 1)],
               text=[prompt + line + tok.eos_token for line in CORPUS[:n]], return_tensors="pt", padding=True)
    plen = proc(images=seeded_image(1), text=prompt, return_tensors="pt")["input_ids"].shape[1]
    labels = enc["input_ids"].clone()
    labels[:, :plen] = -100
    labels[enc["attention_mask"] == 0] = -100
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    m.train()
    for _ in range(r["train_steps"]):
        loss = m(**enc, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    m.save_pretrained(out)
    proc.save_pretrained(out)


def _clip_tokenizer(vocab_size: int = 300, max_len: int = 32):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import CLIPTokenizer
    t = Tokenizer(models.BPE(unk_token="<|endoftext|>", end_of_word_suffix="</w>"))
    t.normalizer = normalizers.Lowercase()
    t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(),
                                               pre_tokenizers.ByteLevel(add_prefix_space=False)])
    t.train_from_iterator(CORPUS * 4, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<|startoftext|>", "<|endoftext|>"], end_of_word_suffix="</w>",
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    d = json.loads(t.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in d["merges"]]
    return CLIPTokenizer(vocab=d["vocab"], merges=merges, model_max_length=max_len)


def _build_sd(r: dict, out: Path):
    import logging

    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    logging.getLogger("diffusers").setLevel(logging.ERROR)
    _seed(r["seed"])
    tok = _clip_tokenizer()
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, sample_size=16, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                attention_head_dim=8, norm_num_groups=32)
    vae = AutoencoderKL(block_out_channels=(32, 64), in_channels=3, out_channels=3,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        latent_channels=4, norm_num_groups=32, sample_size=32)
    te = CLIPTextModel(CLIPTextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, max_position_embeddings=32, projection_dim=32,
                                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                      pad_token_id=tok.pad_token_id))
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                          set_alpha_to_one=False, steps_offset=1)
    StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=te, tokenizer=tok, scheduler=sched, safety_checker=None,
                            feature_extractor=None, requires_safety_checker=False).save_pretrained(out)


def _build_bert_qa(r: dict, out: Path):
    from transformers import BertConfig, BertForQuestionAnswering
    _seed(r["seed"])
    tok = _wordpiece(200)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=128, max_position_embeddings=128, pad_token_id=tok.pad_token_id,
                     architectures=["BertForQuestionAnswering"])
    m = BertForQuestionAnswering(cfg)
    _widen(m)
    m.eval().save_pretrained(out)
    tok.save_pretrained(out)


def _build_encoder(r: dict, out: Path):
    """A tiny text encoder with the head of ``r["arch"]`` (masked LM, token classifier, bare encoder)."""
    import transformers
    _seed(r["seed"])
    tok = _wordpiece(200)
    if r["arch"].startswith("DistilBert"):
        cfg = transformers.DistilBertConfig(vocab_size=len(tok), dim=64, n_layers=2, n_heads=4, hidden_dim=128,
                                            max_position_embeddings=128, pad_token_id=tok.pad_token_id)
    else:
        cfg = transformers.BertConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                      intermediate_size=128, max_position_embeddings=128,
                                      pad_token_id=tok.pad_token_id, num_labels=r.get("labels", 2))
    cfg.architectures = [r["arch"]]
    m = getattr(transformers, r["arch"])(cfg)
    _widen(m)
    m.eval().save_pretrained(out)
    tok.save_pretrained(out)


BUILDERS = {"t5": _build_t5, "bart": _build_bart, "whisper": _build_whisper, "wav2vec2": _build_wav2vec2,
            "vit": _build_vit, "ved": _build_ved, "llava": _build_llava, "sd": _build_sd, "bert-qa": _build_bert_qa,
            "encoder": _build_encoder}
