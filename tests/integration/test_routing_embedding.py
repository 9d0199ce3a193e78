"""The real embedding backend (all-MiniLM-L6-v2 exported to OpenVINO) on every routing case.

This is the CI gate for routing: held-out accuracy and false triggers must meet
evals/routing-config.json.
"""
import json
from pathlib import Path

import pytest

from modelgate import contract
from modelgate.routing import cli, embedding

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("routing") / "report.json"
    code = cli.main(["--output", str(out), "--quiet"])
    data = json.loads(out.read_text())
    data["_exit"] = code
    return data


@pytest.fixture(scope="module")
def config():
    return json.loads((ROOT / "evals" / "routing-config.json").read_text())


def test_report_is_valid_against_its_schema(report):
    body = {k: v for k, v in report.items() if k != "_exit"}
    assert contract.schema_errors("routing-report", body) == []


def test_heldout_accuracy_meets_the_configured_minimum(report, config):
    ho = report["backends"]["embedding"]["splits"]["heldout"]
    assert ho["cases"] >= 36
    assert ho["accuracy"] >= config["min_accuracy"]["heldout"], ho["misrouted"]


def test_no_should_not_trigger_query_is_routed_to_a_skill(report, config):
    for split in ("train", "heldout"):
        m = report["backends"]["embedding"]["splits"][split]
        assert m["false_triggers"] <= config["max_false_triggers"], m["false_trigger_cases"]


def test_runner_exit_code_agrees_with_its_checks(report):
    assert (report["_exit"] == 0) == all(c["pass"] for c in report["checks"])


def test_lexical_baseline_is_reported_beside_the_embedding_backend(report):
    lex = report["backends"]["lexical"]
    assert lex["status"] == "ran"
    assert set(lex["splits"]) >= {"train", "heldout"}


def test_every_case_is_routed_by_the_embedding_backend(report):
    rows = report["backends"]["embedding"]["cases"]
    n_cases = sum(len(json.loads(p.read_text())) for p in
                  list(ROOT.glob("skills/*/evals.json")) + list((ROOT / "evals" / "heldout").glob("*.json")))
    assert len(rows) == n_cases
    assert all(set(r["scores"]) >= {"none"} for r in rows)


def test_openvino_embeddings_match_the_torch_model_with_sentence_transformers_pooling():
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = embedding.prepare()
    texts = ["convert gpt2 to openvino and check it", "certify qwen2 at the quick tier", "hello"]
    ov = np.asarray(embedding.encode(model, texts)["vectors"])
    tok = AutoTokenizer.from_pretrained(model.tokenizer_dir)
    ref_model = AutoModel.from_pretrained(model.tokenizer_dir).eval()
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = ref_model(**enc).last_hidden_state.numpy()
    ref = embedding.mean_pool_normalize(hidden, enc["attention_mask"].numpy())
    assert np.allclose(np.linalg.norm(ov, axis=1), 1.0, atol=1e-5)
    assert (ov * ref).sum(axis=1).min() > 0.9999
