"""The task-family tables and comparisons as pure functions (no model runs here)."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelgate.openvino import families
from modelgate.openvino.tasks import task_from_config
from modelgate.verify import hub

CONFIGS = [  # (config.json, the task detected, the family)
    ({"architectures": ["T5ForConditionalGeneration"], "model_type": "t5"}, "seq2seq-lm"),
    ({"architectures": ["BartForConditionalGeneration"], "model_type": "bart"}, "seq2seq-lm"),
    ({"architectures": ["WhisperForConditionalGeneration"], "model_type": "whisper"}, "speech-seq2seq"),
    ({"architectures": ["Wav2Vec2ForCTC"], "model_type": "wav2vec2"}, "ctc"),
    ({"architectures": ["Wav2Vec2ForSequenceClassification"], "model_type": "wav2vec2"}, "audio-classification"),
    ({"architectures": ["HubertForSequenceClassification"], "model_type": "hubert"}, "audio-classification"),
    ({"architectures": ["ViTForImageClassification"], "model_type": "vit"}, "image-classification"),
    ({"architectures": ["VisionEncoderDecoderModel"], "model_type": "vision-encoder-decoder"}, "vision2seq"),
    ({"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava"}, "visual-lm"),
    ({"architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl"}, "visual-lm"),
    ({"architectures": ["BertForQuestionAnswering"], "model_type": "bert"}, "question-answering"),
    ({"architectures": ["BertForSequenceClassification"], "model_type": "bert"}, None),  # text encoder path
    ({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}, None),              # decoder path
]


@pytest.mark.parametrize("config,family", CONFIGS)
def test_family_comes_from_the_config_architectures(config, family):
    assert families.family_for(task_from_config(config), config) == family


def test_diffusers_pipeline_is_text_to_image():
    assert families.family_for("text-to-image", {}) == "text-to-image"


def test_every_family_names_its_irs_inputs_and_class():
    for name, fam in families.FAMILIES.items():
        assert fam.irs and fam.needs and fam.needs_what and fam.ov_class.startswith("OV"), name
        assert families.MAIN_IR[name] == fam.irs[0]


def test_missing_irs_names_each_absent_xml_or_bin(tmp_path):
    (tmp_path / "openvino_encoder_model.xml").write_text("<net/>")
    (tmp_path / "openvino_encoder_model.bin").write_bytes(b"")
    (tmp_path / "openvino_decoder_model.xml").write_text("<net/>")
    assert families.missing_irs(tmp_path, "seq2seq-lm") == ["openvino_decoder_model.bin"]
    assert families.missing_irs(tmp_path, "text-to-image") == list(families.FAMILIES["text-to-image"].irs)


def test_missing_source_files_accepts_any_alternative(tmp_path):
    (tmp_path / "processor_config.json").write_text("{}")
    assert families.missing_source_files(tmp_path, "audio-classification") == []
    assert families.missing_source_files(tmp_path, "speech-seq2seq") == [families.TOKENIZER[0]]


finite = st.floats(-1e3, 1e3, allow_nan=False)


@given(st.dictionaries(st.sampled_from(["a", "b", "c"]),
                       st.fixed_dictionaries({"rel_err": st.floats(0, 10), "cosine_mean": st.floats(-1, 1),
                                              "scale_ratio": st.floats(0.01, 10)}), min_size=1))
def test_merged_metrics_are_the_worst_component(comps):
    m = families.merge_worst(comps)
    assert m["rel_err"] == max(c["rel_err"] for c in comps.values())
    assert m["cosine_mean"] == min(c["cosine_mean"] for c in comps.values())
    assert abs(m["scale_ratio"] - 1) == max(abs(c["scale_ratio"] - 1) for c in comps.values())


def test_a_non_comparable_component_makes_the_whole_not_comparable():
    m = families.merge_worst({"image": {"rel_err": 0.0}, "unet_step_0": {"comparable": False, "reason": "shape"}})
    assert m["comparable"] is False and "unet_step_0" in m["reason"]


def test_a_missing_number_in_one_component_fails_closed():
    m = families.merge_worst({"a": {"scale_ratio": 1.0}, "b": {"scale_ratio": None}})
    assert m["scale_ratio"] is None


def test_flat_compare_of_an_image_has_no_class_axis_and_reports_psnr():
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 1, (1, 8, 8, 3))
    same = families.flat_compare(img, img)
    assert "top1_agreement" not in same and same["rel_err"] == 0 and same["psnr_db"] == 200.0
    noisy = families.flat_compare(img + 0.01, img)
    assert math.isclose(noisy["psnr_db"], 40.0, abs_tol=1e-6)


def test_generation_compare_stops_comparing_logits_after_the_first_disagreement():
    logits = np.random.default_rng(1).normal(size=(2, 8, 11))
    src = {"tokens": logits.argmax(-1), "logits": logits}
    ov_logits = logits.copy()
    ov_logits[0, 3:] = -ov_logits[0, 3:]              # sequence 0 diverges at step 3
    ov = {"tokens": ov_logits.argmax(-1), "logits": ov_logits}
    out = families.compare("seq2seq-lm", ov, src)
    assert out["common_prefixes"][1] == 8 and out["common_prefixes"][0] == 3
    assert out["greedy_match"] == pytest.approx((3 / 8 + 1) / 2)
    assert out["components"]["logits"]["rows"] == 4 + 8   # common prefix + the first differing step


def test_hub_offline_flags(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.offline()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "")
    assert not hub.offline()


@pytest.mark.parametrize("line", [
    "KeyError: 'foo model, that is a custom or unsupported architecture' ",
    "ValueError: Trying to export a foo model, that is a custom or unsupported architecture, but no custom export",
    "KeyError: \"bar is not supported yet with the openvino backend. Only ['onnx'] are supported.\"",
    "ValueError: vit doesn't support task text-generation for the openvino backend",
])
def test_optimum_intels_own_refusals_are_recognised_as_unsupported(line):
    from modelgate.openvino.convert import UNSUPPORTED_EXPORT
    assert UNSUPPORTED_EXPORT.search(line)


def test_an_ordinary_export_crash_is_not_called_unsupported():
    from modelgate.openvino.convert import UNSUPPORTED_EXPORT
    assert not UNSUPPORTED_EXPORT.search("RuntimeError: Exception from src/core/src/node.cpp: shape inference failed")
