"""Text task families end to end: T5 and BART (text2text, encoder + decoder with its KV cache) and
question answering, each a tiny seeded fixture exported with optimum-intel, run through the
optimum-intel class a user loads and compared with its transformers source; faults in one
sub-model, a config that lies, and missing pieces are rejected."""
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
    "t5": Case("t5", "seq2seq-lm", "text2text-generation-with-past", "openvino_decoder_model.xml",
               ("generation_config.json", "decoder_start_token_id", family_faults.next_id), twin=True),
    "bart": Case("bart", "seq2seq-lm", "text2text-generation-with-past", "openvino_encoder_model.xml",
                 ("config.json", "decoder_start_token_id", family_faults.next_id)),
    "bert-qa": Case("bert-qa", "question-answering", "question-answering", "openvino_model.xml",
                    ("config.json", "num_hidden_layers", family_faults.one_more)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_good_export_is_verified_against_its_source(name):
    case = CASES[name]
    v = verify(source(case), export(case))
    assert_verified(v, case)
    if case.family == "seq2seq-lm":
        assert v["metrics"]["greedy_match"] == 1.0 and v["metrics"]["greedy_horizon"] == 8
        assert {c["name"]: c["pass"] for c in v["checks"]}["generation_not_degenerate"] is True
    else:
        assert v["metrics"]["top1_agreement"] == 1.0


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("fault", ["garbled_weight", "lying_config"])
def test_faulty_export_is_rejected(name, fault, tmp_path):
    v, info = inject_and_verify(CASES[name], fault, tmp_path)
    assert_rejected(v)


def test_decoder_swapped_in_from_another_export_is_rejected(tmp_path):
    v, _ = inject_and_verify(CASES["t5"], "swapped_sub_model", tmp_path)
    assert_rejected(v)
    # a wrong sub-model shows as wrong logits, or (a barely trained twin) as repeating output first
    assert v["failure_class"] in ("FIDELITY_REGRESSION", "DEGENERATE_OUTPUT"), v["detail"]


def test_missing_decoder_ir_is_exit_2_naming_the_file(tmp_path):
    case = CASES["t5"]
    family_faults.deleted_sub_model(export(case), tmp_path / "ir", "openvino_decoder_model.xml")
    err = verify_error(source(case), tmp_path / "ir")
    assert err.failure_class == "USER_CONFIG_ERROR" and "openvino_decoder_model.xml" in str(err)


def test_source_without_a_tokenizer_is_exit_2_naming_what_is_missing(tmp_path):
    case = CASES["bert-qa"]
    src = without(source(case), tmp_path / "src", ("tokenizer.json", "tokenizer_config.json", "vocab.txt"))
    err = verify_error(src, export(case))
    assert err.failure_class == "USER_CONFIG_ERROR" and "tokenizer" in str(err)
