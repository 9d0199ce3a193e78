"""lm-eval records arithmetic and naming (pure)."""
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelgate.openvino import lmeval


@given(st.lists(st.tuples(st.floats(-500, -0.01), st.integers(1, 400)), min_size=1, max_size=60))
def test_ratio_records_average_to_the_harness_aggregate_exactly(pairs):
    recs = lmeval.ratio_records("bits_per_byte", [(str(i), ll, w, "h") for i, (ll, w) in enumerate(pairs)])
    harness = -math.fsum(ll for ll, _ in pairs) / (math.fsum(w for _, w in pairs) * math.log(2))
    mean = math.fsum(r["score"] for r in recs) / len(recs)
    assert math.isclose(mean, harness, rel_tol=1e-9, abs_tol=1e-12)
    words = lmeval.ratio_records("word_perplexity", [(str(i), ll, w, "h") for i, (ll, w) in enumerate(pairs)])
    log_ppl = -math.fsum(ll for ll, _ in pairs) / math.fsum(w for _, w in pairs)
    assert math.isclose(math.fsum(r["score"] for r in words) / len(words), log_ppl, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("response,answers,match,score", [
    ("Paris.", ["Paris"], "exact", 1.0),
    ("  paris ", ["Paris"], "exact", 1.0),
    ("The capital is Paris.", ["Paris"], "exact", 0.0),
    ("The capital is Paris.", ["Paris"], "contains", 1.0),
    ("Lyon", ["Paris", "Lyon"], "exact", 1.0),
    ("", ["Paris"], "contains", 0.0),
])
def test_qa_scoring_by_exact_match_or_contains(response, answers, match, score):
    assert lmeval.qa_score(response, answers, match) == score


def test_record_file_names_are_portable_and_distinct():
    names = ["lm-eval:cf_mc", "lm-eval_cf_mc", "eval-data:qa", "answer-similarity", "lm-eval:a/b"]
    files = [lmeval.record_file(n) for n in names]
    assert len(set(files)) == len(files)
    assert all(set(f) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") for f in files)
    assert lmeval.record_file("answer-similarity") == "answer-similarity.jsonl"


@pytest.mark.parametrize("ref,cand,score", [("blue", "blue", 1.0), ("  blue ", "blue", 1.0), ("", "", 1.0),
                                            ("blue", "", 0.0), ("", "blue", 0.0)])
def test_answer_pairs_that_the_rules_decide_need_no_embedding(ref, cand, score):
    from modelgate.openvino.similarity import pair_score

    assert pair_score(ref, cand, {}) == score


def test_answer_similarity_is_the_clipped_cosine_of_unit_vectors():
    from modelgate.openvino.similarity import pair_score

    vec = {"a": [1.0, 0.0], "b": [0.6, 0.8], "c": [-1.0, 0.0]}
    assert math.isclose(pair_score("a", "b", vec), 0.6) and pair_score("a", "c", vec) == 0.0
