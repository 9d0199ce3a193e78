"""Multimodal families end to end: a tiny LLaVA (image-text-to-text: vision embeddings, text
embeddings and a stateful language model through OVModelForVisualCausalLM, one seeded image and a
chat prompt) and a tiny Stable Diffusion pipeline (text-to-image through OVStableDiffusionPipeline:
same scheduler and latents on both sides, every UNet step's noise prediction and the final image
compared). Faults in one sub-model (vision tower, UNet, VAE decoder), a lying config and a deleted
sub-model IR are rejected."""
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
    "llava": Case("llava", "visual-lm", "image-text-to-text", "openvino_vision_embeddings_model.xml",
                  ("config.json", "image_token_index", family_faults.next_id)),
    "stable-diffusion": Case("stable-diffusion", "text-to-image", "text-to-image", "unet/openvino_model.xml",
                             ("scheduler/scheduler_config.json", "beta_end", lambda v: v * 2)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_good_export_is_verified_against_its_source(name):
    case = CASES[name]
    v = verify(source(case), export(case))
    assert_verified(v, case)
    if name == "llava":
        assert v["metrics"]["greedy_match"] == 1.0
    else:
        assert v["coverage"]["exercised"]["denoising_steps"] == 4


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("fault", ["garbled_weight", "lying_config"])
def test_faulty_export_is_rejected(name, fault, tmp_path):
    v, info = inject_and_verify(CASES[name], fault, tmp_path)
    assert_rejected(v)


def test_garbled_vae_decoder_is_rejected(tmp_path):
    case = CASES["stable-diffusion"]
    family_faults.garbled_weight(export(case), tmp_path / "bad", "vae_decoder/openvino_model.xml")
    assert_rejected(verify(source(case), tmp_path / "bad"))


@pytest.mark.parametrize("name,sub_model", [("llava", "openvino_vision_embeddings_model.xml"),
                                            ("stable-diffusion", "vae_decoder/openvino_model.xml")])
def test_missing_sub_model_ir_is_exit_2_naming_the_file(name, sub_model, tmp_path):
    case = CASES[name]
    family_faults.deleted_sub_model(export(case), tmp_path / "ir", sub_model)
    err = verify_error(source(case), tmp_path / "ir")
    assert err.failure_class == "USER_CONFIG_ERROR" and sub_model in str(err)


def test_diffusion_source_without_a_scheduler_config_is_exit_2(tmp_path):
    case = CASES["stable-diffusion"]
    src = without(source(case), tmp_path / "src", ("scheduler_config.json",))
    err = verify_error(src, export(case))
    assert err.failure_class == "USER_CONFIG_ERROR" and "scheduler" in str(err)
