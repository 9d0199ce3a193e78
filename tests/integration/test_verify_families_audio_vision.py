"""Audio and vision task families end to end: Whisper (automatic-speech-recognition, encoder + decoder
with its KV cache, seeded synthetic audio through its feature extractor), wav2vec2
(audio-classification), ViT (image-classification) and a ViT+GPT-2 VisionEncoderDecoder
(image-to-text). Each is exported with optimum-intel, run through the optimum-intel class a user
loads and compared with its transformers source; faults and missing pieces are rejected."""
import pytest

from tests.support import family_faults
from tests.support.families_run import (
    Case,
    assert_rejected,
    assert_verified,
    export,
    inject_and_verify,
    source,
    verify,
    verify_error,
    without,
)

pytestmark = pytest.mark.integration

CASES = {
    "whisper": Case("whisper", "speech-seq2seq", "automatic-speech-recognition-with-past",
                    "openvino_encoder_model.xml",
                    ("generation_config.json", "no_timestamps_token_id", family_faults.next_id), twin=True),
    "wav2vec2": Case("wav2vec2", "audio-classification", "audio-classification", "openvino_model.xml",
                     ("config.json", "id2label", family_faults.permuted_labels)),
    "vit": Case("vit", "image-classification", "image-classification", "openvino_model.xml",
                ("config.json", "id2label", family_faults.permuted_labels)),
    "vision-encoder-decoder": Case("vision-encoder-decoder", "vision2seq", "image-to-text",
                                   "openvino_encoder_model.xml",
                                   ("config.json", "decoder_start_token_id", family_faults.next_id)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_good_export_is_verified_against_its_source(name):
    case = CASES[name]
    v = verify(source(case), export(case))
    assert_verified(v, case)
    assert v["metrics"]["top1_agreement"] == 1.0
    if case.family in ("speech-seq2seq", "vision2seq"):
        assert v["metrics"]["greedy_match"] == 1.0
        assert {c["name"]: c["pass"] for c in v["checks"]}["generation_not_degenerate"] is True


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("fault", ["garbled_weight", "lying_config"])
def test_faulty_export_is_rejected(name, fault, tmp_path):
    v, info = inject_and_verify(CASES[name], fault, tmp_path)
    assert_rejected(v)


def test_whisper_encoder_swapped_in_from_another_export_is_rejected(tmp_path):
    v, _ = inject_and_verify(CASES["whisper"], "swapped_sub_model", tmp_path)
    assert_rejected(v)
    # a wrong sub-model shows as wrong logits, or (a barely trained twin) as repeating output first
    assert v["failure_class"] in ("FIDELITY_REGRESSION", "DEGENERATE_OUTPUT"), v["detail"]


def test_missing_encoder_ir_is_exit_2_naming_the_file(tmp_path):
    case = CASES["vision-encoder-decoder"]
    family_faults.deleted_sub_model(export(case), tmp_path / "ir", "openvino_encoder_model.xml")
    err = verify_error(source(case), tmp_path / "ir")
    assert err.failure_class == "USER_CONFIG_ERROR" and "openvino_encoder_model.xml" in str(err)


@pytest.mark.parametrize("name", ["whisper", "wav2vec2", "vit"])
def test_source_without_its_feature_extractor_or_image_processor_is_exit_2(name, tmp_path):
    case = CASES[name]
    src = without(source(case), tmp_path / "src", ("preprocessor_config.json", "processor_config.json"))
    err = verify_error(src, export(case))
    assert err.failure_class == "USER_CONFIG_ERROR" and "preprocessor_config.json" in str(err)
