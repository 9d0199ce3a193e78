"""The real embedding backend (all-MiniLM-L6-v2 exported to OpenVINO) on every routing case.

This is the CI gate for routing: the default (gating) backend, the classifier router, must meet
the acceptance target of evals/routing-config.json (held-out >= 0.95, no false trigger), and the
report must say truthfully whether it does. A default run computes the gate router only; the
comparison routers run with --baselines and never change the gate's routes or verdict.
"""
import json
from pathlib import Path

import pytest

from modelgate import contract
from modelgate.cli.routing import ROUTING_EVALS
from modelgate.cli.spine import run_command
from modelgate.routing import embedding

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("routing") / "report.json"
    code = run_command(ROUTING_EVALS, ["--output", str(out), "--quiet"])
    data = json.loads(out.read_text())
    data["_exit"] = code
    return data


@pytest.fixture(scope="module")
def baseline_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("routing") / "report-baselines.json"
    code = run_command(ROUTING_EVALS, ["--output", str(out), "--quiet", "--baselines"])
    data = json.loads(out.read_text())
    data["_exit"] = code
    return data


@pytest.fixture(scope="module")
def config():
    return json.loads((ROOT / "evals" / "routing-config.json").read_text())


def test_report_is_valid_against_its_schema(report):
    body = {k: v for k, v in report.items() if k != "_exit"}
    assert contract.schema_errors("routing-report", body) == []


def test_default_backend_is_the_embedding_classifier_router(report, config):
    assert report["gate_backend"] == config["gate_backend"] == "embedding"
    assert report["backends"]["embedding"]["router"]["mode"] == "classifier"


def test_a_default_run_computes_only_the_gate_router(report):
    assert report["baselines"] is False
    assert set(report["backends"]) == {"embedding"}


def test_baselines_report_the_comparison_routers_and_leave_the_gate_unchanged(report, baseline_report):
    body = {k: v for k, v in baseline_report.items() if k != "_exit"}
    assert contract.schema_errors("routing-report", body) == []
    assert baseline_report["baselines"] is True
    assert set(baseline_report["backends"]) == {"embedding", "embedding-exemplar", "embedding-description", "lexical"}
    assert baseline_report["backends"]["embedding-exemplar"]["router"]["mode"] == "exemplar"
    assert [(r["name"], r["predicted"]) for r in baseline_report["backends"]["embedding"]["cases"]] == \
           [(r["name"], r["predicted"]) for r in report["backends"]["embedding"]["cases"]]
    assert baseline_report["_exit"] == report["_exit"] and baseline_report["checks"] == report["checks"]


def test_heldout_accuracy_meets_the_acceptance_target(report, config):
    ho = report["backends"][report["gate_backend"]]["splits"]["heldout"]
    assert ho["cases"] >= 90
    assert ho["accuracy"] >= config["min_accuracy"]["heldout"], ho["misrouted"]


def test_no_should_not_trigger_query_is_routed_to_a_skill(report, config):
    for split in ("train", "heldout"):
        m = report["backends"][report["gate_backend"]]["splits"][split]
        assert m["false_triggers"] <= config["max_false_triggers"] == 0, m["false_trigger_cases"]


def test_the_gate_passes_and_the_report_says_the_target_is_met(report):
    assert report["_exit"] == 0 and report["pass"] is True and report["target_met"] is True


def test_report_says_truthfully_whether_the_acceptance_target_is_met(report, config):
    splits = report["backends"][report["gate_backend"]]["splits"]
    met = (all(splits[s]["accuracy"] >= m - 1e-9 for s, m in config["min_accuracy"].items() if s in splits)
           and all(splits[s]["false_triggers"] <= config["max_false_triggers"] for s in ("train", "heldout")))
    assert report["target_met"] is met
    assert ("ACCEPTANCE TARGET NOT MET" in report["detail"]) is (not met)


def test_the_floor_never_asks_more_than_the_acceptance_target_or_less_than_nothing(config):
    floor = config["regression_floor"]
    assert floor["max_false_triggers"] >= config["max_false_triggers"]
    for split, minimum in floor["min_accuracy"].items():
        assert 0.5 <= minimum <= config["min_accuracy"][split]


def _queries():
    out = {}
    for p in list(ROOT.glob("skills/*/evals.json")) + list((ROOT / "evals" / "heldout").glob("*.json")):
        for c in json.loads(p.read_text()):
            out[(str(p.resolve()), c["name"])] = c["query"]
    return out


def test_train_accuracy_is_out_of_round_for_the_classifier(report):
    info = report["backends"]["embedding"]["info"]
    assert info["train_accuracy"] == "out-of-round"
    assert len(info["examples"]["folds"]) >= 3  # the writing rounds: base, r1, r2, ...
    train = report["backends"]["embedding"]["splits"]["train"]
    assert train["cases"] == info["examples"]["train_cases"]


def test_exemplar_train_cases_are_routed_leave_one_out_never_by_their_own_exemplar(baseline_report):
    queries = _queries()
    train = [r for r in baseline_report["backends"]["embedding-exemplar"]["cases"] if r["split"] == "train"]
    assert train
    for r in train:
        own = " ".join(queries[(str(Path(r["source"]).resolve()), r["name"])].lower().split())
        assert all(not (n["origin"] == "case" and " ".join(n["text"].lower().split()) == own)
                   for n in r["neighbours"]), r["name"]


def test_description_only_router_and_lexical_baseline_are_reported_beside_it(baseline_report):
    be = baseline_report["backends"]
    assert be["embedding-description"]["router"]["mode"] == "description"
    assert be["lexical"]["router"]["mode"] == "description"


def test_warm_run_reuses_the_cached_embeddings_and_routes_identically(report, tmp_path):
    out = tmp_path / "warm.json"
    run_command(ROUTING_EVALS, ["--output", str(out), "--quiet"])
    warm = json.loads(out.read_text())
    assert warm["backends"]["embedding"]["info"]["embedding_cache"] == "hit"
    assert [(r["name"], r["predicted"]) for r in warm["backends"]["embedding"]["cases"]] == \
           [(r["name"], r["predicted"]) for r in report["backends"]["embedding"]["cases"]]


def test_runner_exit_code_agrees_with_its_checks(report):
    assert (report["_exit"] == 0) == all(c["pass"] for c in report["checks"])


def test_lexical_baseline_is_reported_beside_the_embedding_backend(baseline_report):
    lex = baseline_report["backends"]["lexical"]
    assert lex["status"] == "ran"
    assert set(lex["splits"]) >= {"train", "heldout"}


def test_every_case_is_routed_by_every_embedding_router(report, baseline_report):
    n_cases = len(_queries())
    assert len(report["backends"]["embedding"]["cases"]) == n_cases
    for name in ("embedding", "embedding-exemplar", "embedding-description"):
        rows = baseline_report["backends"][name]["cases"]
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
