"""Task detection reads config.json architectures (not a pipeline_tag, which config.json never has)."""
import pytest

from modelgate.openvino import tasks


@pytest.mark.parametrize("cfg,task", [
    ({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}, "text-generation-with-past"),
    ({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"}, "text-generation-with-past"),
    ({"architectures": ["T5ForConditionalGeneration"], "model_type": "t5"}, "text2text-generation-with-past"),
    ({"architectures": ["BartForConditionalGeneration"], "model_type": "bart"}, "text2text-generation-with-past"),
    ({"architectures": ["WhisperForConditionalGeneration"], "model_type": "whisper"}, "automatic-speech-recognition"),
    ({"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava"}, "image-text-to-text"),
    ({"architectures": ["BertForSequenceClassification"]}, "text-classification"),
    ({"architectures": ["BertForTokenClassification"]}, "token-classification"),
    ({"architectures": ["BertForQuestionAnswering"]}, "question-answering"),
    ({"architectures": ["BertForMaskedLM"]}, "fill-mask"),
    ({"architectures": ["BertModel"]}, "feature-extraction"),
    ({"architectures": ["ViTForImageClassification"]}, "image-classification"),
    ({"architectures": ["Wav2Vec2ForCTC"]}, "automatic-speech-recognition"),
    ({"architectures": ["Wav2Vec2ForSequenceClassification"]}, "text-classification"),
    ({"architectures": ["HubertForAudioClassification"]}, "audio-classification"),
    ({"architectures": ["VisionEncoderDecoderModel"]}, "image-to-text"),
    ({"model_type": "t5"}, "text2text-generation-with-past"),
])
def test_task_comes_from_architectures_then_model_type(cfg, task):
    assert tasks.task_from_config(cfg) == task


def test_every_seed_task_is_known_and_has_an_openvino_class():
    seed = ["text-generation-with-past", "text2text-generation-with-past", "image-text-to-text",
            "text-classification", "token-classification", "question-answering", "feature-extraction",
            "fill-mask", "text-to-image", "image-to-text", "automatic-speech-recognition", "audio-classification"]
    for t in seed:
        assert tasks.validate_task(t) == t and t in tasks.TASK_OV_CLASS


@pytest.mark.parametrize("cfg", [{}, {"architectures": ["MysteryNet"]},
                                 {"architectures": ["FooForConditionalGeneration"], "model_type": "foo"}])
def test_unknown_architecture_is_an_error_not_a_text_generation_guess(cfg):
    with pytest.raises(tasks.TaskError):
        tasks.task_from_config(cfg)


def test_unknown_task_name_is_rejected():
    with pytest.raises(tasks.TaskError):
        tasks.validate_task("text-generation-please")
