"""The single-IR text encoders of the other heads end to end: fill-mask (DistilBERT, so not BERT
only), token classification and feature extraction (a bare encoder whose output is hidden states),
each a tiny seeded fixture exported with optimum-intel, run through the OpenVINO runtime and
compared with its transformers source layer by layer and at the output; a garbled weight in the
export is rejected."""
import pytest

from tests.support import family_faults
from tests.support.families_run import export, source, verify

pytestmark = pytest.mark.integration

FIXTURES = {"fill-mask": "distilbert-mlm", "token-classification": "bert-ner", "feature-extraction": "bert-features"}


class _Case:   # what tests.support.families_run reads of a case
    def __init__(self, fixture: str):
        self.fixture = fixture


def _case(task: str) -> _Case:
    return _Case(FIXTURES[task])


@pytest.mark.parametrize("task", sorted(FIXTURES))
def test_good_export_is_verified_with_layerwise_and_output_fidelity(task):
    v = verify(source(_case(task)), export(_case(task)))
    assert v["pass"] and v["decision"] == "VERIFIED", v["detail"]
    assert v["task"] == task and v["mode"] == "forward"
    ran = {c["name"]: c["pass"] for c in v["checks"]}
    for name in ("ir_loads_and_runs", "outputs_finite", "outputs_shape", "source_ran", "logits_not_constant",
                 "layerwise_blocks", "layerwise_hidden_states", "fidelity_rel_err", "fidelity_cosine",
                 "fidelity_scale_ratio", "precision_default_agreement"):
        assert ran[name] is True, (name, v["detail"])
    # a head is compared on the source's last hidden state; a bare encoder has none, and says so
    assert ran["layerwise_head"] is (None if task == "feature-extraction" else True)
    # hidden states have no class axis: top-1 over channels is not judged for them, and is for the heads
    assert ran["fidelity_top1"] is (None if task == "feature-extraction" else True)
    assert v["coverage"]["exercised"]["layerwise_blocks"] == 2
    assert v["metrics"]["cosine_mean"] > 0.999 and v["metrics"]["rel_err"] < 0.01


@pytest.mark.parametrize("task", sorted(FIXTURES))
def test_garbled_weight_is_rejected(task, tmp_path):
    info = family_faults.garbled_weight(export(_case(task)), tmp_path / "bad", "openvino_model.xml")
    v = verify(source(_case(task)), tmp_path / "bad")
    assert not v["pass"] and v["exit_code"] == 1 and v["decision"] == "REJECTED", (info, v["detail"])
    assert v["failure_class"] == "FIDELITY_REGRESSION", (info, v["failure_class"], v["detail"])
