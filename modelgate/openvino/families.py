"""Task families beyond decoder LMs and single-IR text encoders, as data: which IRs optimum-intel
writes for each, what the source folder must hold to make inputs, the optimum-intel class and the
transformers/diffusers class a user runs, and how the two sides are compared.

A family is derived from the task and config.json (``architectures`` / ``model_type``): a local
folder carries no task for optimum-intel to infer. Each family runs the OpenVINO side through the
optimum-intel ``OV*`` class a user would load (greedy ``generate`` for the generative ones, the
pipeline call for Stable Diffusion) and the source in transformers / diffusers on identical seeded
inputs; the comparison yields the fidelity metrics the verify gate judges (``rel_err``,
``cosine_mean``, ``top1_agreement``, ``scale_ratio``, ``greedy_match``), each the worst over the
family's compared outputs, with every component's own numbers kept for the report.

Child-process bodies here import torch / transformers / optimum lazily.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

NEW_TOKENS = 8
TEXTS = ("translate english to german: the house is wonderful",
         "summarize: the quick brown fox jumps over the lazy dog",
         "What is 2+2? The answer is")
QA_PAIRS = (("what jumps over the dog?", "the quick brown fox jumps over the lazy dog"),
            ("what is checked against the source?", "models are converted to openvino and checked against the source"),
            ("what is the answer?", "What is 2+2? The answer is 4."))
VLM_PROMPT = "describe the image in one sentence"
SD_PROMPT = "a photo of a red cat"
SD_STEPS = 4
SD_SIZE = 32
AUDIO_SEEDS = (1, 2, 99)
IMAGE_SEEDS = (1, 2, 3)


@dataclass(frozen=True)
class Family:
    name: str
    task: str               # the optimum task exported (``--task``)
    irs: tuple              # IR files an export of this family must hold
    needs: tuple            # source files (alternatives joined by |) needed to make inputs
    needs_what: str         # what those files are, for the exit-2 message
    ov_class: str
    generative: bool
    library: str = "transformers"


SEQ2SEQ_IRS = ("openvino_encoder_model.xml", "openvino_decoder_model.xml")
TOKENIZER = ("tokenizer.json|tokenizer.model|spiece.model|vocab.json|vocab.txt",)
# transformers 5 saves a processor's parts into processor_config.json; older ones preprocessor_config.json
PROCESSOR = "preprocessor_config.json|processor_config.json"
FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("seq2seq-lm", "text2text-generation-with-past", SEQ2SEQ_IRS, TOKENIZER, "tokenizer",
           "OVModelForSeq2SeqLM", True),
    Family("speech-seq2seq", "automatic-speech-recognition-with-past", SEQ2SEQ_IRS,
           (PROCESSOR,) + TOKENIZER, "feature extractor (preprocessor_config.json) or tokenizer",
           "OVModelForSpeechSeq2Seq", True),
    Family("vision2seq", "image-to-text", SEQ2SEQ_IRS, (PROCESSOR,) + TOKENIZER,
           "image processor (preprocessor_config.json) or tokenizer", "OVModelForVision2Seq", True),
    Family("visual-lm", "image-text-to-text", ("openvino_language_model.xml", "openvino_text_embeddings_model.xml",
                                               "openvino_vision_embeddings_model.xml"),
           (PROCESSOR,) + TOKENIZER, "processor (image processor + tokenizer)", "OVModelForVisualCausalLM", True),
    Family("audio-classification", "audio-classification", ("openvino_model.xml",), (PROCESSOR,),
           "feature extractor (preprocessor_config.json)", "OVModelForAudioClassification", False),
    Family("ctc", "automatic-speech-recognition", ("openvino_model.xml",), (PROCESSOR,),
           "feature extractor (preprocessor_config.json)", "OVModelForCTC", False),
    Family("image-classification", "image-classification", ("openvino_model.xml",), (PROCESSOR,),
           "image processor (preprocessor_config.json)", "OVModelForImageClassification", False),
    Family("question-answering", "question-answering", ("openvino_model.xml",), TOKENIZER, "tokenizer",
           "OVModelForQuestionAnswering", False),
    Family("text-to-image", "text-to-image", ("text_encoder/openvino_model.xml", "unet/openvino_model.xml",
                                              "vae_decoder/openvino_model.xml"),
           ("model_index.json", "scheduler/scheduler_config.json",
            "tokenizer/vocab.json|tokenizer/tokenizer.json|tokenizer/tokenizer_config.json"),
           "scheduler config or tokenizer folder", "OVStableDiffusionPipeline", False, "diffusers"),
)}
# the IR each family's integrity / weight scans start from (its "main" sub-model)
MAIN_IR = {name: f.irs[0] for name, f in FAMILIES.items()}
SPEECH_SEQ2SEQ_TYPES = frozenset({"whisper", "speech_to_text"})
STABLE_DIFFUSION_PIPELINES = frozenset({"StableDiffusionPipeline"})


def family_for(task: str | None, config: dict, model_dir: str | Path | None = None) -> str | None:
    """The family of a task and config (None: not a family handled here, e.g. decoder LMs)."""
    if not task:
        return None
    base = task[: -len("-with-past")] if task.endswith("-with-past") else task
    model_type = str(config.get("model_type") or "").lower()
    if base == "text2text-generation":
        return "seq2seq-lm"
    if base == "automatic-speech-recognition":
        archs = config.get("architectures") or []
        return "ctc" if any(a.endswith("ForCTC") for a in archs) or (
            model_type not in SPEECH_SEQ2SEQ_TYPES and not archs) else "speech-seq2seq"
    if base == "image-to-text":
        return "vision2seq"
    if base == "image-text-to-text":
        return "visual-lm"
    if base in ("audio-classification", "image-classification", "question-answering", "text-to-image"):
        return base
    return None


def export_task(family: str) -> str:
    return FAMILIES[family].task


def missing_irs(ir_dir: str | Path, family: str) -> list[str]:
    """IR files (.xml or its .bin) the family needs that the export folder lacks."""
    ir_dir = Path(ir_dir)
    out = []
    for rel in FAMILIES[family].irs:
        xml = ir_dir / rel
        if not xml.is_file():
            out.append(rel)
        elif not xml.with_suffix(".bin").is_file():
            out.append(str(Path(rel).with_suffix(".bin")))
    return out


def missing_source_files(src_dir: str | Path, family: str) -> list[str]:
    """Source files (alternatives as ``a|b``) the family needs to make its inputs, absent from the folder."""
    src_dir = Path(src_dir)
    return [alts for alts in FAMILIES[family].needs if not any((src_dir / a).is_file() for a in alts.split("|"))]


def export_root(main_xml: str | Path, family: str) -> Path:
    """The export folder of a family's main IR (Stable Diffusion's sits in text_encoder/)."""
    p = Path(main_xml)
    for _ in Path(MAIN_IR[family]).parts:
        p = p.parent
    return p


def sub_models(ir_dir: str | Path, family: str) -> list[Path]:
    """Every IR of the export the family uses (the required ones, in order)."""
    return [Path(ir_dir) / rel for rel in FAMILIES[family].irs]


# =========================================================================== seeded inputs

def seeded_audio(seed: int, seconds: float = 1.0, sr: int = 16000):
    """Three random tones + noise: a real-range, non-silent waveform (silence hides corruption)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) for f in rng.uniform(150, 900, 3))
    return (0.2 * x + rng.normal(0, 0.05, t.size)).astype(np.float32)


def seeded_image(seed: int, h: int = 48, w: int = 40):
    """A smooth random RGB image (sinusoid blobs + noise), not square (exercises resize / crop)."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([np.sin(2 * np.pi * (rng.uniform(0.5, 3) * yy + rng.uniform(0.5, 3) * xx + rng.uniform()))
                    for _ in range(3)], -1)
    img = (img * 0.5 + 0.5) * 200 + rng.integers(0, 56, (h, w, 3))
    return Image.fromarray(img.clip(0, 255).astype(np.uint8))


def make_inputs(family: str, src_dir: str) -> dict:
    """The seeded inputs both sides run, made with the source folder's own processor (numpy arrays)."""
    import numpy as np
    if family == "seq2seq-lm":
        from transformers import AutoTokenizer
        enc = AutoTokenizer.from_pretrained(src_dir)(list(TEXTS), return_tensors="np", padding=True)
        return {"main": "input_ids", "input_ids": enc["input_ids"].astype(np.int64),
                "attention_mask": enc["attention_mask"].astype(np.int64)}
    if family == "speech-seq2seq":
        from transformers import AutoFeatureExtractor
        fe = AutoFeatureExtractor.from_pretrained(src_dir)
        feats = fe([seeded_audio(s) for s in AUDIO_SEEDS], sampling_rate=16000, return_tensors="np").input_features
        return {"main": "input_features", "input_features": feats.astype(np.float32)}
    if family in ("vision2seq", "image-classification"):
        from transformers import AutoImageProcessor
        ip = AutoImageProcessor.from_pretrained(src_dir)
        pix = ip([seeded_image(s) for s in IMAGE_SEEDS], return_tensors="np")["pixel_values"]
        return {"main": "pixel_values", "pixel_values": pix.astype(np.float32)}
    if family in ("audio-classification", "ctc"):
        from transformers import AutoFeatureExtractor
        fe = AutoFeatureExtractor.from_pretrained(src_dir)
        vals = fe([seeded_audio(s) for s in AUDIO_SEEDS], sampling_rate=16000, return_tensors="np",
                  padding=True)["input_values"]
        return {"main": "input_values", "input_values": vals.astype(np.float32)}
    if family == "question-answering":
        from transformers import AutoTokenizer
        q, c = zip(*QA_PAIRS)
        enc = AutoTokenizer.from_pretrained(src_dir)(list(q), list(c), return_tensors="np", padding=True)
        return {"main": "input_ids", **{k: v.astype(np.int64) for k, v in enc.items()}}
    if family == "visual-lm":
        from transformers import AutoProcessor
        proc = AutoProcessor.from_pretrained(src_dir)
        msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": VLM_PROMPT}]}]
        prompt = proc.apply_chat_template(msgs, add_generation_prompt=True)
        return {"main": "samples", "samples": [{k: np.asarray(v) for k, v in proc(images=seeded_image(s), text=prompt,
                                                                                  return_tensors="np").items()}
                                               for s in IMAGE_SEEDS[:2]]}
    if family == "text-to-image":
        latents = np.random.default_rng(7).standard_normal((1, 4, SD_SIZE // 2, SD_SIZE // 2)).astype(np.float32)
        return {"main": "latents", "latents": latents}
    raise ValueError(f"unknown family {family!r}")


# =========================================================================== running

def _gen_kwargs() -> dict:
    return dict(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False, num_beams=1,
                return_dict_in_generate=True, output_logits=True)


def _tensors(inputs: dict) -> dict:
    import torch
    return {k: torch.as_tensor(v) for k, v in inputs.items() if k != "main" and not isinstance(v, list)}


def _generate(model, family: str, inputs: dict, ov: bool) -> dict:
    """Greedy generation through ``model.generate`` (the user's call); new tokens and raw logits per step."""
    import numpy as np
    import torch
    if family == "speech-seq2seq":
        return _speech_greedy(model, inputs, ov=ov)
    if family == "visual-lm":
        toks, logits = [], []
        for sample in inputs["samples"]:
            g = model.generate(**{k: torch.as_tensor(v) for k, v in sample.items()}, **_gen_kwargs())
            toks.append(g.sequences[0, -NEW_TOKENS:].numpy())
            logits.append(torch.stack(g.logits, 1)[0].float().numpy())
        return {"tokens": np.stack(toks), "logits": np.stack(logits)}
    feed = _tensors(inputs)
    g = model.generate(**feed, **_gen_kwargs())
    return {"tokens": g.sequences[:, -NEW_TOKENS:].numpy(), "logits": torch.stack(g.logits, 1).float().numpy()}


def speech_prompt(generation_config) -> list[int]:
    """The decoder prompt Whisper's generate() builds from the generation config: start of transcript
    [+ language + task when multilingual] + no-timestamps."""
    gc = generation_config
    ids = [gc.decoder_start_token_id]
    if getattr(gc, "is_multilingual", False) and getattr(gc, "lang_to_id", None) and getattr(gc, "task_to_id", None):
        ids += [gc.lang_to_id.get("<|en|>", next(iter(gc.lang_to_id.values()))), gc.task_to_id["transcribe"]]
    if getattr(gc, "no_timestamps_token_id", None) is not None:
        ids.append(gc.no_timestamps_token_id)
    return [int(i) for i in ids]


def _speech_greedy(model, inputs: dict, ov: bool) -> dict:
    """Greedy transcription, the encoder once and the decoder one token per call (through its KV cache on
    the OpenVINO side, by full recompute on the source's). optimum-intel 2.2's Whisper ``generate`` cannot
    return per-step logits with transformers 5, so the loop is written out; each side builds the decoder
    prompt from its own generation config (a lying one beside the IR changes the transcript)."""
    import numpy as np
    import torch
    feats = torch.as_tensor(inputs["input_features"])
    start = speech_prompt(model.generation_config)
    ids = torch.tensor([start] * feats.shape[0], dtype=torch.long)
    steps = []
    with torch.no_grad():
        if ov:
            enc = model.encoder(input_ids=feats).last_hidden_state
            cached = getattr(model.decoder, "stateful", False) or getattr(model, "decoder_with_past", None) is not None
            past = None
            for _ in range(NEW_TOKENS):
                dec = model.decoder if past is None or getattr(model, "decoder_with_past", None) is None \
                    else model.decoder_with_past
                out = dec(input_ids=ids if past is None else ids[:, -1:], encoder_hidden_states=enc,
                          past_key_values=past)
                past = out.past_key_values if cached else None
                step = torch.as_tensor(out.logits)[:, -1].float()
                steps.append(step.numpy().copy())
                ids = torch.cat([ids, step.argmax(-1, keepdim=True)], 1)
        else:
            enc = model.get_encoder()(feats)
            for _ in range(NEW_TOKENS):
                step = model(encoder_outputs=enc, decoder_input_ids=ids, use_cache=False).logits[:, -1].float()
                steps.append(step.numpy().copy())
                ids = torch.cat([ids, step.argmax(-1, keepdim=True)], 1)
    return {"tokens": ids[:, len(start):].numpy(), "logits": np.stack(steps, 1)}


def _forward_outputs(out, family: str) -> dict:
    if family == "question-answering":
        return {"start_logits": out.start_logits.float().numpy(), "end_logits": out.end_logits.float().numpy()}
    return {"logits": out.logits.float().numpy()}


def ov_side(family: str, ir_dir: str, inputs: dict, device: str = "CPU", src_dir: str | None = None,
            precision: str = "f32") -> dict:
    """OpenVINO child: the optimum-intel class a user loads, on ``inputs`` (``outputs``: numpy arrays), at
    ``precision`` (``f32``: the faithful run; ``default``: what the device picks; ``bf16``/``f16``);
    ``ran_as``: the precision the compiled sub-models report. With ``src_dir`` and an OpenVINO tokenizer
    in the export, its parity with the source's (``tokenizer``; the f32 run only)."""
    import optimum.intel as oi
    import torch

    from modelgate.openvino import precision as precision_mod
    fam = FAMILIES[family]
    ir_dir = str(Path(ir_dir).resolve())  # a relative path would be taken for a hub id
    # f32: the faithful config (f32 compute, f32 KV cache, no dynamic quantization: an f32 hint alone left
    # the Whisper decoder's cache in f16 and the encoder's in u8, with dynamic quantization on)
    config = precision_mod.runtime_config(precision, device)
    model = getattr(oi, fam.ov_class).from_pretrained(ir_dir, device=device, ov_config=config, compile=True)
    ran = compiled_precisions(model)
    if family == "text-to-image":
        out = _sd_run(model, inputs, ov=True)
    elif fam.generative:
        out = _generate(model, family, inputs, ov=True)
    else:
        with torch.no_grad():
            out = _forward_outputs(model(**_tensors(inputs)), family)
    del model
    return {"outputs": out, "ran_as": ran, "device_default": precision_mod.device_default_precision(device),
            "tokenizer": _tokenizer_parity(src_dir, ir_dir, device) if precision == "f32" else None}


def compiled_precisions(model, depth: int = 3) -> dict[str, list]:
    """What every compiled sub-model of an optimum-intel model reports (read back from the plugin), found
    by walking its attributes (the encoder, decoder, UNet... of a pipeline): {"inference_precision":
    [...], "kv_cache_precision": [...]}, the distinct values of each."""
    import openvino as ov

    from modelgate.openvino import precision as precision_mod
    found: dict[int, dict] = {}

    def walk(obj, level):
        if isinstance(obj, ov.CompiledModel):
            found.setdefault(id(obj), precision_mod.ran_as(obj))
            return
        if level >= depth or isinstance(obj, (str, bytes, int, float, bool, type(None))):
            return
        values = obj.values() if isinstance(obj, dict) else getattr(obj, "__dict__", {}).values()
        for v in list(values):
            walk(v, level + 1)

    walk(model, 0)
    return {key: sorted({str(r.get(key)) for r in found.values()}) for key in ("inference_precision",
                                                                              "kv_cache_precision")}


def _tokenizer_parity(src_dir: str | None, ir_dir: str, device: str) -> dict | None:
    """The export's OpenVINO tokenizer against the source's (None when the export ships none)."""
    if not src_dir or not (Path(ir_dir) / "openvino_tokenizer.xml").is_file():
        return None
    from modelgate.openvino.tokenizer_parity import tokenizer_parity
    try:
        return tokenizer_parity(src_dir, ir_dir, device=device)
    except Exception as exc:  # a tokenizer that cannot run is a tokenizer mismatch, recorded as such
        return {"error": f"{type(exc).__name__}: {str(exc)[:500]}", "present": {"tokenizer": True}}


def source_side(family: str, src_dir: str, trust_remote_code: bool = False) -> dict:
    """Source child: make the seeded inputs, run the transformers / diffusers source on them (f32).
    Returns {"inputs": ..., "outputs": ...} so the OpenVINO child runs exactly the same inputs."""
    import torch
    torch.manual_seed(0)
    inputs = make_inputs(family, src_dir)
    fam = FAMILIES[family]
    if family == "text-to-image":
        from diffusers import StableDiffusionPipeline
        pipe = StableDiffusionPipeline.from_pretrained(src_dir, torch_dtype=torch.float32, safety_checker=None)
        return {"inputs": inputs, "outputs": _sd_run(pipe, inputs, ov=False)}
    import transformers
    cls = {"seq2seq-lm": "AutoModelForSeq2SeqLM", "speech-seq2seq": "AutoModelForSpeechSeq2Seq",
           "vision2seq": "AutoModelForVision2Seq", "visual-lm": "AutoModelForImageTextToText",
           "audio-classification": "AutoModelForAudioClassification", "ctc": "AutoModelForCTC",
           "image-classification": "AutoModelForImageClassification",
           "question-answering": "AutoModelForQuestionAnswering"}[family]
    if family == "vision2seq" and not hasattr(transformers, cls):
        cls = "VisionEncoderDecoderModel"
    model = getattr(transformers, cls).from_pretrained(src_dir, dtype=torch.float32,
                                                       trust_remote_code=trust_remote_code).eval()
    with torch.no_grad():
        out = (_generate(model, family, inputs, ov=False) if fam.generative
               else _forward_outputs(model(**_tensors(inputs)), family))
    return {"inputs": inputs, "outputs": out}


def _sd_run(pipe, inputs: dict, ov: bool) -> dict:
    """One Stable Diffusion pipeline call on fixed latents; every UNet step's noise prediction and the image."""
    import numpy as np
    import torch
    pipe.set_progress_bar_config(disable=True)
    steps = []
    if ov:
        orig = pipe.unet.forward

        def forward(*a, **k):
            out = orig(*a, **k)
            # a tuple, or a ModelOutput (dict-like; its first value is the noise prediction)
            first = out[0] if isinstance(out, (tuple, list)) else next(iter(out.values()))
            steps.append(np.array(first, dtype=np.float32, copy=True))
            return out
        pipe.unet.forward = forward
    else:
        pipe.unet.register_forward_hook(lambda m, a, o: steps.append(o[0].detach().float().numpy().copy()))
    with torch.no_grad():
        img = pipe(prompt=SD_PROMPT, num_inference_steps=SD_STEPS, guidance_scale=7.5, height=SD_SIZE,
                   width=SD_SIZE, latents=torch.from_numpy(inputs["latents"]), output_type="np").images
    return {"unet": np.stack(steps), "image": np.asarray(img, dtype=np.float32),
            "scheduler": type(pipe.scheduler).__name__}


# =========================================================================== comparing

def flat_compare(ov, src) -> dict:
    """One whole tensor as one row (images, noise predictions): the fidelity metrics plus PSNR over [0, 1]."""
    import numpy as np

    from modelgate.openvino import fidelity
    a, b = np.asarray(ov, dtype=np.float64), np.asarray(src, dtype=np.float64)
    if a.shape != b.shape:
        return {"comparable": False, "reason": f"shape {list(a.shape)} vs source {list(b.shape)}"}
    out = fidelity.compare_arrays(a.reshape(1, -1), b.reshape(1, -1))
    out.pop("top1_agreement", None)  # a flattened image has no class axis
    mse = float(np.mean((a - b) ** 2)) if np.isfinite(a).all() else float("nan")
    out["psnr_db"] = (None if not math.isfinite(mse) else (200.0 if mse == 0 else 10 * math.log10(1.0 / mse)))
    return out


def _generation_compare(ov: dict, src: dict) -> dict:
    """Per-step logits compared while both sides saw the same tokens (common prefix + 1), and greedy
    agreement over the new tokens."""
    import numpy as np

    from modelgate.openvino import fidelity
    ov_rows, src_rows, prefixes = [], [], []
    for to, ts, lo, ls in zip(ov["tokens"], src["tokens"], ov["logits"], src["logits"]):
        n = min(len(to), len(ts))
        common = next((i for i in range(n) if int(to[i]) != int(ts[i])), n)
        rows = min(common + 1, n)
        ov_rows.append(np.asarray(lo)[:rows])
        src_rows.append(np.asarray(ls)[:rows])
        prefixes.append(common)
    out = fidelity.compare_arrays(np.concatenate(ov_rows), np.concatenate(src_rows))
    out.update(fidelity.greedy_agreement([list(map(int, t)) for t in ov["tokens"]],
                                         [list(map(int, t)) for t in src["tokens"]], NEW_TOKENS))
    out["first_step"] = fidelity.compare_arrays(np.asarray(ov["logits"])[:, 0], np.asarray(src["logits"])[:, 0])
    return out


WORST = {"rel_err": max, "max_abs_err": max, "cosine_mean": min, "cosine_min": min, "top1_agreement": min}


def merge_worst(components: dict[str, dict]) -> dict:
    """The gate's fidelity metrics as the worst over the compared components (each kept as given)."""
    out: dict = {"components": components}
    bad = {n: c for n, c in components.items() if c.get("comparable") is False}
    if bad:
        name, c = next(iter(bad.items()))
        return dict(out, comparable=False, reason=f"{name}: {c.get('reason')}")
    for key, pick in WORST.items():
        vals = [c[key] for c in components.values() if isinstance(c.get(key), (int, float))]
        if vals:
            out[key] = pick(vals)
        elif any(key in c for c in components.values()):
            out[key] = None  # present but non-finite somewhere: the gate fails closed
    scales = [c.get("scale_ratio") for c in components.values() if "scale_ratio" in c]
    if scales:
        out["scale_ratio"] = (None if any(not isinstance(s, (int, float)) for s in scales)
                              else max(scales, key=lambda s: abs(s - 1.0)))
    out["rows"] = sum(int(c.get("rows") or 0) for c in components.values())
    return out


def compare(family: str, ov: dict, src: dict) -> dict:
    """Fidelity of one family's OpenVINO outputs against the source's: the merged metrics + components."""
    fam = FAMILIES[family]
    if family == "text-to-image":
        import numpy as np
        steps = min(len(ov["unet"]), len(src["unet"]))
        comps = {f"unet_step_{i}": flat_compare(ov["unet"][i], src["unet"][i]) for i in range(steps)}
        comps["image"] = flat_compare(ov["image"], src["image"])
        out = merge_worst(comps)
        out.update(unet_steps=[len(ov["unet"]), len(src["unet"])], image_psnr_db=comps["image"].get("psnr_db"),
                   same_scheduler=ov.get("scheduler") == src.get("scheduler"),
                   image_cosine=_plain_cosine(np.asarray(ov["image"]), np.asarray(src["image"])))
        if len(ov["unet"]) != len(src["unet"]):
            out.update(comparable=False, reason=f"{len(ov['unet'])} UNet steps vs the source's {len(src['unet'])}")
        return out
    if fam.generative:
        gen = _generation_compare(ov, src)
        comps = {"logits": {k: v for k, v in gen.items() if k not in ("greedy_match", "greedy_horizon", "prompts",
                                                                       "common_prefixes")}}
        out = merge_worst(comps)
        out.update({k: gen.get(k) for k in ("greedy_match", "greedy_horizon", "prompts", "common_prefixes")})
        out["first_step"] = gen["first_step"]
        return out
    from modelgate.openvino import fidelity
    return merge_worst({name: fidelity.compare_arrays(ov[name], src[name]) for name in src if name in ov} or
                       {"outputs": {"comparable": False, "reason": f"no common outputs: OV {sorted(ov)} vs source "
                                    f"{sorted(src)}"}})


def _plain_cosine(a, b) -> float | None:
    import numpy as np
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    d = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / d) if d > 0 and np.isfinite(d) else None


def primary_outputs(family: str, out: dict) -> dict:
    """The output arrays whose finiteness / shape the gate checks, by name."""
    if family == "text-to-image":
        return {"image": out["image"], "unet_noise_pred": out["unet"]}
    return {k: v for k, v in out.items() if k in ("logits", "start_logits", "end_logits")}


def read_json(path: Path) -> dict | None:
    try:
        v = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return v if isinstance(v, dict) else None
