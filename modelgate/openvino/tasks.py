"""Task detection as data tables: architecture / model type -> optimum-intel task -> OV model class.

Reading ``pipeline_tag`` from config.json (as earlier tools did) finds nothing, since config.json
never has one, so nearly every model fell back to text generation. Here the task comes from ``architectures``
(and ``model_type`` where the architecture name is ambiguous), and an unknown
architecture is an explicit error, not a guess.
"""
from __future__ import annotations

import json
from pathlib import Path

# Every task of the original pipeline's table, plus the ones optimum-intel exports that a user meets.
KNOWN_TASKS = (
    "text-generation", "text-generation-with-past",
    "text2text-generation", "text2text-generation-with-past",
    "image-text-to-text", "text-classification", "token-classification",
    "question-answering", "feature-extraction", "fill-mask", "text-to-image",
    "image-to-text", "automatic-speech-recognition", "audio-classification",
    "image-classification", "multiple-choice", "sentence-similarity",
)

# Architecture-name suffix -> task, longest suffix wins. (Order matters only for equal length.)
ARCHITECTURE_SUFFIX_TASK = {
    "ForCausalLM": "text-generation-with-past",
    "LMHeadModel": "text-generation-with-past",
    "ForSequenceClassification": "text-classification",
    "ForTokenClassification": "token-classification",
    "ForQuestionAnswering": "question-answering",
    "ForMaskedLM": "fill-mask",
    "ForMultipleChoice": "multiple-choice",
    "ForImageClassification": "image-classification",
    "ForAudioClassification": "audio-classification",
    "ForCTC": "automatic-speech-recognition",
    "ForSpeechSeq2Seq": "automatic-speech-recognition",
    "ForVision2Seq": "image-text-to-text",
    "ForImageTextToText": "image-text-to-text",
    "VisionEncoderDecoderModel": "image-to-text",
    "ForConditionalGeneration": None,  # ambiguous: resolved by model_type below
    "Model": "feature-extraction",
    "Pipeline": "text-to-image",
}

# model_type -> task for architectures whose name does not say (mostly *ForConditionalGeneration).
MODEL_TYPE_TASK = {
    "t5": "text2text-generation-with-past", "mt5": "text2text-generation-with-past",
    "longt5": "text2text-generation-with-past", "bart": "text2text-generation-with-past",
    "mbart": "text2text-generation-with-past", "marian": "text2text-generation-with-past",
    "pegasus": "text2text-generation-with-past", "blenderbot": "text2text-generation-with-past",
    "m2m_100": "text2text-generation-with-past", "whisper": "automatic-speech-recognition",
    "speech_to_text": "automatic-speech-recognition", "pix2struct": "image-to-text",
    "llava": "image-text-to-text", "llava_next": "image-text-to-text", "qwen2_vl": "image-text-to-text",
    "qwen2_5_vl": "image-text-to-text", "idefics3": "image-text-to-text", "gemma3": "image-text-to-text",
    "paligemma": "image-text-to-text", "phi3_v": "image-text-to-text", "internvl_chat": "image-text-to-text",
    "minicpmv": "image-text-to-text", "smolvlm": "image-text-to-text", "mllama": "image-text-to-text",
}

# Task -> optimum-intel model class name (resolved lazily, so this module stays import-light).
TASK_OV_CLASS = {
    "text-generation": "OVModelForCausalLM",
    "text-generation-with-past": "OVModelForCausalLM",
    "text2text-generation": "OVModelForSeq2SeqLM",
    "text2text-generation-with-past": "OVModelForSeq2SeqLM",
    "image-text-to-text": "OVModelForVisualCausalLM",
    "text-classification": "OVModelForSequenceClassification",
    "token-classification": "OVModelForTokenClassification",
    "question-answering": "OVModelForQuestionAnswering",
    "feature-extraction": "OVModelForFeatureExtraction",
    "sentence-similarity": "OVModelForFeatureExtraction",
    "fill-mask": "OVModelForMaskedLM",
    "multiple-choice": "OVModelForMultipleChoice",
    "text-to-image": "OVStableDiffusionPipeline",
    "image-to-text": "OVModelForVision2Seq",
    "automatic-speech-recognition": "OVModelForSpeechSeq2Seq",
    "audio-classification": "OVModelForAudioClassification",
    "image-classification": "OVModelForImageClassification",
}

# Task -> transformers Auto class for running the source model.
TASK_HF_CLASS = {
    "text-generation": "AutoModelForCausalLM",
    "text-generation-with-past": "AutoModelForCausalLM",
    "text2text-generation": "AutoModelForSeq2SeqLM",
    "text2text-generation-with-past": "AutoModelForSeq2SeqLM",
    "text-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "question-answering": "AutoModelForQuestionAnswering",
    "feature-extraction": "AutoModel",
    "sentence-similarity": "AutoModel",
    "fill-mask": "AutoModelForMaskedLM",
    "multiple-choice": "AutoModelForMultipleChoice",
    "image-classification": "AutoModelForImageClassification",
    "audio-classification": "AutoModelForAudioClassification",
    "automatic-speech-recognition": "AutoModelForSpeechSeq2Seq",
}

# speech encoders: their *ForSequenceClassification heads classify audio, not text
AUDIO_MODEL_TYPES = frozenset({"wav2vec2", "wav2vec2-conformer", "wav2vec2-bert", "hubert", "wavlm", "unispeech",
                               "unispeech-sat", "sew", "sew-d", "data2vec-audio", "whisper"})
SUFFIX_TASK_BY_MODALITY = {"text-classification": "audio-classification"}

GENERATIVE_TASKS = frozenset({"text-generation", "text-generation-with-past", "text2text-generation",
                              "text2text-generation-with-past", "image-text-to-text", "image-to-text",
                              "automatic-speech-recognition"})
DECODER_TASKS = frozenset({"text-generation", "text-generation-with-past"})


class TaskError(ValueError):
    """The task cannot be determined or is not known."""


def task_from_config(config: dict) -> str:
    """Resolve the optimum task from a config.json dict (``architectures`` then ``model_type``)."""
    archs = config.get("architectures") or []
    if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
        raise TaskError(f"config.json architectures {str(archs)[:80]} is not a list of class names")
    model_type = str(config.get("model_type") or "").lower()
    for arch in archs:
        suffix = max((s for s in ARCHITECTURE_SUFFIX_TASK if arch.endswith(s)), key=len, default=None)
        if suffix is None:
            continue
        task = ARCHITECTURE_SUFFIX_TASK[suffix]
        if task is None:  # ambiguous name: ask the model type
            task = MODEL_TYPE_TASK.get(model_type)
        if model_type in AUDIO_MODEL_TYPES:
            task = SUFFIX_TASK_BY_MODALITY.get(task, task)
        if task is not None:
            return task
    if not archs and model_type in MODEL_TYPE_TASK:
        return MODEL_TYPE_TASK[model_type]
    raise TaskError(f"cannot determine the task from architectures={archs!r} model_type={model_type!r}; "
                    f"pass --task (one of: {', '.join(KNOWN_TASKS)})")


def task_from_model_dir(path: str | Path) -> str:
    """Task of a local Hugging Face folder (config.json, or model_index.json for diffusers)."""
    path = Path(path)
    if (path / "model_index.json").is_file():
        return "text-to-image"
    cfg = path / "config.json"
    if not cfg.is_file():
        raise TaskError(f"no config.json in {path}")
    try:  # a config.json that is not JSON (or not UTF-8) is a bad input, not a crash
        config = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise TaskError(f"{cfg} is not readable JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise TaskError(f"{cfg} is not a JSON object")
    return task_from_config(config)


def validate_task(task: str) -> str:
    if task not in KNOWN_TASKS:
        raise TaskError(f"unknown task {task!r}; known: {', '.join(KNOWN_TASKS)}")
    return task


def base_task(task: str) -> str:
    """The task without the ``-with-past`` suffix."""
    return task[: -len("-with-past")] if task.endswith("-with-past") else task
